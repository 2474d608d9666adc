"""The run log: a resumed log keeps the checkpointed rows, W&B credentials, and the live progress display (a
headline with the time to the end)."""

from __future__ import annotations

import json
import time

from impoola.rundir import RunDir
from impoola.runlog import Progress, RunLog, duration, wandb_credentials
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
