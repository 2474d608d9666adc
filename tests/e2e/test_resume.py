"""Exact resume: a run stopped at any point and continued with --resume ends bitwise identical to an uninterrupted
one (weights, optimizer, RNG) with the same metrics rows, none doubled or missing.

In-process tests stop the run by raising at chosen points (before the first checkpoint, between a metrics row and
its checkpoint, inside a checkpoint write, after the final row); a subprocess test stops it with a configured
checkpoint signal (exit status 3). The slow tests SIGKILL real training processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from impoola.run.checkpoint import list_checkpoints, load_checkpoint
from impoola.run.runlog import RunLog
from ppo_training import main
from support.identical_runs import CONFIG, assert_same_state, final_state, is_wall_clock, metric_rows, run
from support.paths import ROOT
from support.runs import TINY_DQN, TINY_PPO, read_scalars, tiny_dqn_args, tiny_ppo_args

HANDLED = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


class Killed(BaseException):
    """Stands in for SIGKILL in-process: nothing after the raise point runs."""


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted CONFIG run."""
    return run(tmp_path_factory.mktemp("reference"), "run")


@pytest.fixture(autouse=True)
def signal_handlers():
    """Restore the handlers a killed in-process run left installed."""
    previous = {sig: signal.getsignal(sig) for sig in HANDLED}
    yield
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def cli_flags(options: dict) -> list[str]:
    """`--name value` flags of ppo_training.py for an options dict (booleans as --name / --no-name)."""
    flags = []
    for name, value in options.items():
        if isinstance(value, bool):
            flags.append(f"--{name}" if value else f"--no-{name}")
        elif isinstance(value, tuple):
            flags += [f"--{name}", *map(str, value)]
        else:
            flags += [f"--{name}", str(value)]
    return flags


def assert_resumed_like_reference(run_dir: Path, reference: Path) -> None:
    """Same metrics rows (wall-clock keys aside), bitwise same final state, no leftovers, done."""
    assert metric_rows(run_dir) == metric_rows(reference)
    assert_same_state(final_state(run_dir), final_state(reference))
    assert (run_dir / "done").exists()
    leftovers = [p.name for d in (run_dir, run_dir / "checkpoints") for p in d.iterdir() if ".tmp" in p.name]
    assert not leftovers
    assert len(list_checkpoints(run_dir / "checkpoints")) <= 3


def kill_after_row(monkeypatch, step: int, final: bool = False) -> None:
    """Raise Killed right after the metrics row at `step` (the final row when `final`) is written."""
    original = RunLog.log

    def log(self, metrics, global_step):
        original(self, metrics, global_step)
        if global_step == step and final == ("charts/SPS" not in metrics and global_step > 0):
            raise Killed

    monkeypatch.setattr(RunLog, "log", log)


def kill_inside_checkpoint_write(monkeypatch, step: int) -> None:
    """Raise Killed after `ckpt_<step>.pt`'s temporary file is written and fsynced, before its rename."""
    from impoola.run import files

    original = os.replace

    def replace(src, dst):
        if Path(dst).name == f"ckpt_{step:012d}.pt":
            raise Killed
        original(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)


@pytest.mark.parametrize("point", ["before_first_checkpoint", "between_row_and_checkpoint", "inside_checkpoint_write",
                                   "after_final_row"])
def test_killed_anywhere_then_resumed_is_identical(tmp_path, monkeypatch, reference, point):
    with monkeypatch.context() as patch:
        if point == "before_first_checkpoint":
            kill_after_row(patch, 0)
        elif point == "between_row_and_checkpoint":
            kill_after_row(patch, 64)  # iteration 2: the row with the evaluation, written before its checkpoint
        elif point == "inside_checkpoint_write":
            kill_inside_checkpoint_write(patch, 96)
        else:
            kill_after_row(patch, 128, final=True)
        with pytest.raises(Killed):
            run(tmp_path, "run")
    rows_before = len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
    main(tiny_ppo_args(tmp_path, run_name="run", resume=True, **CONFIG))
    assert_resumed_like_reference(tmp_path / "run", reference)
    assert rows_before >= 1  # the killed attempt had logged rows that the resume had to reconcile


def test_checkpoint_signal_checkpoints_exits_3_and_resumes_identically(tmp_path, reference):
    """A configured signal (SIGUSR1 here) during training: checkpoint at the iteration's end, exit 3, resume."""
    run_dir = tmp_path / "run"
    options = {**TINY_PPO, **CONFIG, "run_name": "run", "output_dir": str(tmp_path), "checkpoint_signals": ("SIGUSR1",)}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # the in-process tests' single thread
    proc = subprocess.Popen([sys.executable, "ppo_training.py", *cli_flags(options)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not any(json.loads(line)["global_step"] == 32 for line in read_lines(run_dir / "metrics.jsonl")):
            assert proc.poll() is None and time.time() < deadline, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGUSR1)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 3, err
    assert "received signal SIGUSR1: checkpoint written at step" in out
    rows = [json.loads(line) for line in read_lines(run_dir / "metrics.jsonl")]
    payload = load_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])
    assert payload["global_step"] == rows[-1]["global_step"] < 128 and payload["metrics_rows"] == len(rows)
    assert not (run_dir / "done").exists()
    main(tiny_ppo_args(tmp_path, run_name="run", resume=True, **CONFIG))
    assert_resumed_like_reference(run_dir, reference)


def signal_during_final_evaluation(monkeypatch, module, sig: int) -> None:
    """`sig` to this process while `module`'s final evaluation runs (the evaluation itself goes on)."""
    original = module.evaluate_scores

    def evaluate_scores(*args):
        if args[6] == "final":
            os.kill(os.getpid(), sig)
        return original(*args)

    monkeypatch.setattr(module, "evaluate_scores", evaluate_scores)


def test_checkpoint_signal_during_the_final_evaluation_exits_3_and_resume_redoes_it(tmp_path, monkeypatch, capsys,
                                                                                      reference):
    """SIGTERM during the final evaluation: exit 3 with the last checkpoint, no final row, no done marker; --resume
    redoes the final evaluation and ends like the uninterrupted run."""
    import ppo_training

    run_dir, handler = tmp_path / "run", signal.getsignal(signal.SIGTERM)
    with monkeypatch.context() as patch:
        signal_during_final_evaluation(patch, ppo_training, signal.SIGTERM)
        with pytest.raises(SystemExit) as exit_info:
            run(tmp_path, "run")
    assert exit_info.value.code == 3
    assert "received signal SIGTERM: checkpoint written at step 128" in capsys.readouterr().out
    assert load_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])["global_step"] == 128
    assert metric_rows(run_dir) == metric_rows(reference)[:-1]  # everything but the final evaluation's row
    assert not (run_dir / "done").exists() and not (run_dir / ".lock").exists()
    assert signal.getsignal(signal.SIGTERM) == handler  # the session put the handler back
    main(tiny_ppo_args(tmp_path, run_name="run", resume=True, **CONFIG))
    assert_resumed_like_reference(run_dir, reference)


def test_dqn_checkpoint_signal_during_the_final_evaluation_exits_3_and_resume_redoes_it(tmp_path, monkeypatch):
    """The same for DQN (SIGUSR2): its resume ends with the uninterrupted run's rows and state."""
    import dqn_training

    options = {"run_name": "run", "cuda": False}
    dqn_training.main(tiny_dqn_args(tmp_path / "reference", **options))
    with monkeypatch.context() as patch:
        signal_during_final_evaluation(patch, dqn_training, signal.SIGUSR2)
        with pytest.raises(SystemExit) as exit_info:
            dqn_training.main(tiny_dqn_args(tmp_path / "signalled", **options))
    assert exit_info.value.code == 3
    run_dir, reference = tmp_path / "signalled" / "run", tmp_path / "reference" / "run"
    assert metric_rows(run_dir) == metric_rows(reference)[:-1] and not (run_dir / "done").exists()
    dqn_training.main(tiny_dqn_args(tmp_path / "signalled", resume=True, **options))
    assert metric_rows(run_dir) == metric_rows(reference)
    assert_same_state(final_state(run_dir), final_state(reference))
    assert (run_dir / "done").exists()


def read_lines(path: Path) -> list[str]:
    """The complete lines of a file another process may be writing (none while it does not exist)."""
    return path.read_text().split("\n")[:-1] if path.exists() else []


def training_command(options: dict) -> list[str]:
    """The ppo_training.py command line of an options dict."""
    return [sys.executable, "ppo_training.py", *cli_flags(options)]


def single_thread_env() -> dict[str, str]:
    """The environment of training subprocesses: one torch thread, like the in-process runs."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "WANDB_SILENT": "true"}


def scalars_without_wall_clock(run_dir: Path) -> dict:
    """TensorBoard's scalars of a run, wall-clock tags left out."""
    return {tag: values for tag, values in read_scalars(run_dir / "tb").items() if not is_wall_clock(tag)}


# Reads the history records of an offline W&B run file, in a fresh interpreter: importing wandb next to torch is slow.
WANDB_HISTORY = """
import json, sys
from wandb.proto.wandb_internal_pb2 import Record
from wandb.sdk.internal.datastore import DataStore
store, rows = DataStore(), []
store.open_for_scan(sys.argv[1])
while (data := store.scan_data()) is not None:
    record = Record()
    record.ParseFromString(data)
    if record.WhichOneof("record_type") == "history":
        items = record.history.item
        rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items})
print(json.dumps(rows))
"""


def wandb_history(wandb_file: Path) -> list[dict]:
    """An offline W&B run's history rows, W&B's own and wall-clock keys left out."""
    out = subprocess.run([sys.executable, "-c", WANDB_HISTORY, str(wandb_file)], capture_output=True, text=True,
                         check=True, timeout=300).stdout
    return [{k: v for k, v in row.items() if not k.startswith("_") and not is_wall_clock(k)} for row in json.loads(out)]


def merged_by_step(rows: list[dict]) -> list[dict]:
    """Rows logged at the same global step merged into one, as W&B shows them."""
    merged: dict[int, dict] = {}
    for row in rows:
        merged.setdefault(row["global_step"], {}).update(row)
    return list(merged.values())


SLOW_VARIANTS = {
    "redo": {"pruning": False, "redo": True, "redo_every": 2},
    "pruning": {},
}


def variant_options(variant: str) -> dict:
    """The options of a SLOW_VARIANTS run: CONFIG's, less the pruning schedule a run without pruning refuses."""
    options = {**TINY_PPO, **CONFIG, **SLOW_VARIANTS[variant]}
    return {key: value for key, value in options.items()
            if options["pruning"] or key not in ("pruning_start", "pruning_end")}


@pytest.fixture(scope="module")
def subprocess_reference(tmp_path_factory):
    """The uninterrupted run of a SLOW_VARIANTS entry, run once as a subprocess."""
    runs: dict[str, Path] = {}

    def get(variant: str) -> Path:
        if variant not in runs:
            output_dir = tmp_path_factory.mktemp(f"reference_{variant}")
            options = {**variant_options(variant), "output_dir": str(output_dir), "run_name": "run"}
            subprocess.run(training_command(options), cwd=ROOT, env=single_thread_env(), check=True,
                           capture_output=True, timeout=300)
            runs[variant] = output_dir / "run"
        return runs[variant]

    return get


@pytest.mark.slow
@pytest.mark.parametrize(("variant", "kill_when", "delay_s", "wandb_mode"), [
    ("redo", "row 64", 0.0, "offline"),  # iteration 2's row is out: usually before its checkpoint is
    ("redo", "row 96", 0.15, "disabled"),  # somewhere in iteration 4
    ("pruning", "checkpoint 128", 0.05, "disabled"),  # the last checkpoint is out: during the final evaluation
])
def test_sigkill_then_resume_matches_the_uninterrupted_run(tmp_path, subprocess_reference, variant, kill_when,
                                                           delay_s, wandb_mode):
    options = {**variant_options(variant), "output_dir": str(tmp_path), "run_name": "run", "wandb_mode": wandb_mode}
    run_dir, env = tmp_path / "run", single_thread_env()
    proc = subprocess.Popen(training_command(options), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    kind, step = kill_when.split()
    try:
        deadline = time.time() + 300
        while not (any(json.loads(line)["global_step"] == int(step) for line in read_lines(run_dir / "metrics.jsonl"))
                   if kind == "row" else (run_dir / "checkpoints" / f"ckpt_{int(step):012d}.pt").exists()):
            assert proc.poll() is None and time.time() < deadline, "the run ended before the kill point"
            time.sleep(0.01)
        time.sleep(delay_s)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL and not (run_dir / "done").exists()
    resumed = subprocess.run(training_command({**options, "resume": True}), cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=300, check=False)
    assert resumed.returncode == 0 and "warning" not in resumed.stderr.lower(), resumed.stderr
    reference = subprocess_reference(variant)
    assert_resumed_like_reference(run_dir, reference)
    assert scalars_without_wall_clock(run_dir) == scalars_without_wall_clock(reference)
    if wandb_mode == "offline":
        run_id = (run_dir / "wandb_id").read_text()
        attempts = sorted((run_dir / "wandb").glob(f"offline-run-*-{run_id}"))
        assert len(attempts) == 2  # the same id; the newest directory holds the whole history
        assert wandb_history(attempts[-1] / f"run-{run_id}.wandb") == merged_by_step(metric_rows(run_dir))


DQN_CONFIG = {**TINY_DQN, "save_buffer": True, "checkpoint_every": 1, "cuda": False}
REPLAY_WRITES = 17  # files per replay snapshot of DQN_CONFIG: 16 arrays, then meta.json


@pytest.fixture(scope="module")
def dqn_reference(tmp_path_factory) -> Path:
    """The uninterrupted DQN_CONFIG run (32 vector steps, a row and a checkpoint every 4), as a subprocess."""
    output_dir = tmp_path_factory.mktemp("dqn_reference")
    subprocess.run([sys.executable, "dqn_training.py", *cli_flags({**DQN_CONFIG, "output_dir": str(output_dir),
                                                                  "run_name": "run"})],
                   cwd=ROOT, env=single_thread_env(), check=True, capture_output=True, timeout=300)
    return output_dir / "run"


def resume_dqn(options: dict) -> None:
    """Resume a killed DQN run in a subprocess: it must finish without a warning (no refilled memory)."""
    resumed = subprocess.run([sys.executable, "dqn_training.py", *cli_flags({**options, "resume": True})], cwd=ROOT,
                             env=single_thread_env(), capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0 and "warning" not in resumed.stderr.lower(), resumed.stderr


def assert_dqn_resumed_like_reference(run_dir: Path, reference: Path) -> None:
    """Like assert_resumed_like_reference, plus the target network and the replay memory, bitwise; no leftovers."""
    assert_resumed_like_reference(run_dir, reference)
    mine, theirs = (load_checkpoint(list_checkpoints(d / "checkpoints")[-1]) for d in (run_dir, reference))
    for name, tensor in theirs["target_network"].items():
        assert torch.equal(mine["target_network"][name], tensor), name
    assert [p.name for p in (run_dir / "replay").iterdir()] == [mine["replay_snapshot"]]  # no temporaries, no others
    snapshot, expected = run_dir / "replay" / mine["replay_snapshot"], reference / "replay" / theirs["replay_snapshot"]
    assert sorted(p.name for p in snapshot.iterdir()) == sorted(p.name for p in expected.iterdir())
    for path in expected.glob("*.npy"):
        assert np.array_equal(np.load(snapshot / path.name), np.load(path)), path.name
    assert json.loads((snapshot / "meta.json").read_text()) == json.loads((expected / "meta.json").read_text())


@pytest.mark.slow
def test_dqn_sigkill_with_saved_replay_memory_then_resume_matches(tmp_path, dqn_reference):
    """DQN with --save_buffer: SIGKILL at a moment chosen by time once learning has started, resume: bitwise the
    uninterrupted run."""
    options = {**DQN_CONFIG, "output_dir": str(tmp_path), "run_name": "run"}
    run_dir, env = tmp_path / "run", single_thread_env()
    proc = subprocess.Popen([sys.executable, "dqn_training.py", *cli_flags(options)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while not any(json.loads(line)["global_step"] == 40 for line in read_lines(run_dir / "metrics.jsonl")):
            assert proc.poll() is None and time.time() < deadline, "the run ended before the kill point"
            time.sleep(0.01)
        time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    resume_dqn(options)
    assert_dqn_resumed_like_reference(run_dir, dqn_reference)


# (function the run SIGKILLs itself at, its n-th call, before or after the call, --keep_checkpoints). A checkpoint
# (and its snapshot) is saved every 8 env steps, 8 in all, then once more at step 64 before the final evaluation.
DQN_KILL_POINTS = {
    "inside the first replay save": ("impoola.replay.persistence:atomic_write_bytes", 5, "before", 3),
    "inside the fourth replay save, keep 1": ("impoola.replay.persistence:atomic_write_bytes",
                                              3 * REPLAY_WRITES + 9, "before", 1),
    "snapshot written, its checkpoint not, keep 1": ("impoola.run.checkpoint:save_checkpoint", 3, "before", 1),
    "inside a checkpoint write, keep 1": ("torch:save", 3, "after", 1),
    "before older snapshots are deleted, keep 1": ("impoola.replay:keep_only", 3, "before", 1),
    "inside the last replay save, keep 1": ("impoola.replay.persistence:atomic_write_bytes",
                                            8 * REPLAY_WRITES + 9, "before", 1),
}


@pytest.mark.slow
@pytest.mark.parametrize("point", list(DQN_KILL_POINTS))
def test_dqn_sigkill_at_each_save_stage_then_resume_matches(tmp_path, dqn_reference, point):
    """DQN with --save_buffer, SIGKILLed at an exact point of saving (tests/support/kill_at.py), resumed: bitwise the
    uninterrupted run, whatever --keep_checkpoints says; the resume removes the partial snapshot it left."""
    target, nth, when, keep = DQN_KILL_POINTS[point]
    options = {**DQN_CONFIG, "output_dir": str(tmp_path), "run_name": "run", "keep_checkpoints": keep}
    killed = subprocess.run([sys.executable, "tests/support/kill_at.py", target, str(nth), when, "dqn_training.py",
                             *cli_flags(options)], cwd=ROOT, env=single_thread_env(), capture_output=True, text=True,
                            timeout=300, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run_dir = tmp_path / "run"
    assert not (run_dir / "done").exists()
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    assert len(checkpoints) <= keep
    if point.startswith("inside the first"):
        assert not checkpoints and [p.name for p in (run_dir / "replay").iterdir()][0].startswith(".snapshot_000000")
    resume_dqn(options)
    assert_dqn_resumed_like_reference(run_dir, dqn_reference)
