"""The run log: a resumed log keeps the checkpointed rows, W&B credentials, and the live progress display (a
headline with the time to the end)."""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time

import pytest

from impoola.run.rundir import RunDir
from impoola.run.runlog import Progress, RunLog, duration, wandb_credentials, wandb_refusal
from support.runs import read_scalars


def test_run_log_resume_keeps_the_checkpointed_rows_and_purges_tensorboard(tmp_path):
    run = RunDir(tmp_path.parent, tmp_path.name)
    log = RunLog(run, {}, 100, wandb_mode="disabled", progress=False)
    for step, value in ((0, 1.0), (10, 2.0), (20, 3.0)):
        log.log({"a": value}, step)
    kept = log.rows  # a checkpoint at step 20, then a second row at step 20 (like the final one's) and more
    log.log({"b": 9.0}, 20)
    log.log({"a": 4.0}, 30)
    log.close()
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"global_step": 40, "a": 5')  # a row a SIGKILL cut short
    time.sleep(1.01 - time.time() % 1)  # TensorBoard orders event files by name, which starts with the second
    resumed = RunLog(run, {}, 100, wandb_mode="disabled", progress=False, start_step=20, keep_rows=kept)
    assert resumed.rows == 3
    resumed.log({"b": 9.0}, 20)
    resumed.log({"a": 6.0}, 30)
    resumed.close()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows == [{"global_step": 0, "a": 1.0}, {"global_step": 10, "a": 2.0}, {"global_step": 20, "a": 3.0},
                    {"global_step": 20, "b": 9.0}, {"global_step": 30, "a": 6.0}]
    assert read_scalars(tmp_path / "tb") == {"a": [(0, 1.0), (10, 2.0), (20, 3.0), (30, 6.0)], "b": [(20, 9.0)]}


def test_wandb_credentials_come_from_the_key_or_netrc(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert not wandb_credentials()
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "x" * 40 + "\n")
    assert wandb_credentials()
    monkeypatch.setenv("NETRC", str(tmp_path / "missing"))
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_credentials()


@pytest.fixture
def wandb_server(monkeypatch):
    """A local stand-in for the W&B server that answers every request with `answer[0]` (status, body); the
    requests it saw are in `answer[1]`."""
    answer: list = [(500, b"{}"), []]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer[1].append((self.path, self.headers.get("Authorization"), body))
            status, content = answer[0]
            self.send_response(status)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    yield answer
    server.shutdown()


@pytest.mark.parametrize("status,body,refusal", [
    (200, b'{"data": {"viewer": {"id": "VXNlcjox"}}}', None),
    (200, b'{"data": {"viewer": null}}', "it does not know the API key"),
    (401, b'{"errors": []}', "it answered HTTP 401"),
    (500, b"{}", "it answered HTTP 500"),
    (200, b"<html>", "its answer is not W&B's"),
])
def test_the_wandb_server_is_asked_whose_key_it_is_before_a_run_goes_online(wandb_server, status, body, refusal):
    wandb_server[0] = (status, body)
    assert wandb_refusal() == refusal
    path, authorization, query = wandb_server[1][-1]
    assert path == "/graphql" and "viewer" in json.loads(query)["query"]
    assert base64.b64decode(authorization.removeprefix("Basic ")) == b"api:" + b"k" * 40


def test_wandb_online_with_a_server_that_cannot_take_the_run_logs_offline_with_a_warning(
        wandb_server, tmp_path, capsys):
    """A server that answers with errors (wandb.init would time out after 90 s and wedge W&B's service until the
    process is killed) or none at all: the run logs offline at once."""
    run = RunDir(tmp_path, "run").acquire(resume=False)
    start = time.time()
    log = RunLog(run, {"a": 1}, 10, wandb_mode="online", progress=False)
    log.log({"x": 1.0}, 0)
    log.close()
    run.release()
    assert time.time() - start < 60 and log.wandb_run.offline
    err = capsys.readouterr().err
    assert "warning: the W&B server http://127.0.0.1:" in err and "cannot take the run: it answered HTTP 500" in err
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))


def test_an_unreachable_wandb_server_is_refused_within_the_timeout(monkeypatch):
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there: the connection is refused
    start = time.time()
    assert wandb_refusal().startswith("it cannot be reached") and time.time() - start < 15


def test_durations_read_like_a_clock():
    assert [duration(s) for s in (-1, 45, 725, 11_220)] == ["0s", "45s", "12m05s", "3h07m"]


def test_headline_gives_the_time_to_the_end_at_the_measured_speed(capsys):
    progress = Progress(total_steps=1000, start_step=0, enabled=True)
    progress.headline("cpu (a CPU), 2 torch + 2 Procgen threads | float32 channels-last | impoola_s2: 7 parameters")
    assert progress.head.desc.endswith("impoola_s2: 7 parameters | measuring speed")
    progress.start_time -= 10.0  # the first 100 steps took 10 s: the other 900 take 90 s
    progress.update(100, ret=1.5)
    progress.headline(progress.text)
    assert progress.head.desc.endswith("| 1m30s to the end")
    assert progress.bar.n == 100 and "ret=1.5" in progress.bar.postfix
    progress.close()
    err = capsys.readouterr().err
    assert "impoola_s2: 7 parameters" in err and "100/1000" in err
