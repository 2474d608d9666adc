"""Checkpoint files, the resumable run log, checkpoint signals, the non-finite guard and one-line CLI errors."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from impoola.checkpoint import (
    CheckpointError, atomic_write_bytes, list_checkpoints, load_checkpoint, load_resume_checkpoint, save_checkpoint,
)
from impoola.cli import parse_cli, tyro_message, user_errors
from impoola.config import parse_signal
from impoola.guards import EXIT_NONFINITE, FiniteGuard, StopFlag
from impoola.rundir import RunDir
from impoola.runlog import RunLog, wandb_credentials
from ppo_training import LOSS_KEYS, Args


def payload(**args) -> dict:
    """A minimal checkpoint payload with the given run args."""
    return {"agent": {"w": torch.ones(2)}, "args": {"encoder": "impoola", "scale": 2.0, "learning_rate": None,
                                                   "num_envs": 64, "seed": 1, **args}, "agent_kind": "ppo"}


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, lambda f: f.write(b"old"))

    def fail(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write_bytes(path, fail)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_save_rotates_and_a_new_writer_removes_killed_writers_temporary_files_everywhere(tmp_path):
    run = RunDir(tmp_path, "run")
    for step in (1, 2, 3, 4):
        save_checkpoint(run.checkpoints, step, payload(), keep=2)
    assert [p.name for p in list_checkpoints(run.checkpoints)] == ["ckpt_000000000003.pt", "ckpt_000000000004.pt"]
    run.replay.mkdir()
    leftovers = [run.checkpoints / ".ckpt_000000000005.pt.tmp99999", run.path / ".metrics.jsonl.tmp123",
                 run.replay / ".obs.npy.tmp77"]  # what SIGKILL mid-write leaves
    for path in leftovers:
        path.write_bytes(b"partial")
    (run.replay / "obs.npy").write_bytes(b"kept")
    run.acquire(resume=True)
    run.release()
    assert not any(path.exists() for path in leftovers) and (run.replay / "obs.npy").read_bytes() == b"kept"
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["ckpt_000000000003.pt", "ckpt_000000000004.pt"]


@pytest.mark.parametrize("content", [b"garbage", b"PK\x03\x04truncated zip", b""])
def test_corrupt_checkpoint_is_a_one_line_error(tmp_path, content):
    path = tmp_path / "ckpt_000000000001.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(info.value).startswith(f"corrupt checkpoint {str(path)!r}") and "\n" not in str(info.value)


def test_truncated_real_checkpoint_and_other_format_version_are_clear_errors(tmp_path):
    path = save_checkpoint(tmp_path, 7, payload())
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt checkpoint"):
        load_checkpoint(path)
    torch.save({**payload(), "format_version": 99}, path)
    with pytest.raises(CheckpointError, match="format version 99; valid: 1"):
        load_checkpoint(path)


def test_resume_checkpoint_must_fit_the_model_args(tmp_path, capsys):
    assert load_resume_checkpoint(tmp_path, payload()["args"], "ppo") is None  # killed before its first checkpoint
    save_checkpoint(tmp_path / "checkpoints", 32, payload(torch_threads=None, compile=False, compile_mode=None))
    with pytest.raises(CheckpointError) as info:
        load_resume_checkpoint(tmp_path, {**payload()["args"], "encoder": "impala", "scale": 1.0}, "ppo")
    message = str(info.value)
    assert "encoder 'impoola' (checkpoint) vs 'impala' (now)" in message
    assert "scale 2.0 (checkpoint) vs 1.0 (now)" in message and "\n" not in message
    with pytest.raises(CheckpointError, match="agent_kind 'ppo' \\(checkpoint\\) vs 'dqn' \\(now\\)"):
        load_resume_checkpoint(tmp_path, payload()["args"], "dqn")
    speed = {"torch_threads": 2, "compile": True, "compile_mode": "default"}  # speed options resume silently
    loaded = load_resume_checkpoint(tmp_path, {**payload()["args"], "learning_rate": 1e-3, "progress_bar": False,
                                               **speed}, "ppo")
    assert torch.equal(loaded["agent"]["w"], torch.ones(2))
    err = capsys.readouterr().err
    assert err.startswith("warning: resuming with changed args: learning_rate None (checkpoint) vs 0.001 (now)")
    assert "progress_bar" not in err and "compile" not in err and "threads" not in err and err.count("\n") == 1


def test_resume_prefers_the_newest_checkpoint_that_matches_the_saved_replay_memory(tmp_path):
    for step, replay_step in ((8, 4), (16, 8), (24, 12)):
        save_checkpoint(tmp_path / "checkpoints", step, {**payload(), "global_step": step, "replay_step": replay_step})
    pick = load_resume_checkpoint(tmp_path, payload()["args"], "ppo", prefer=lambda p: p["replay_step"] == 8)
    assert pick["global_step"] == 16
    assert load_resume_checkpoint(tmp_path, payload()["args"], "ppo", prefer=lambda p: False)["global_step"] == 24


def read_scalars(tb_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """(step, value) per tag, as TensorBoard shows them (purges applied)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(tb_dir))
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


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


def test_stop_flag_uses_the_configured_signals_and_restores_handlers():
    before = signal.getsignal(signal.SIGUSR1)
    flag = StopFlag(("usr1", "SIGUSR1"))
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        assert flag.signal == signal.SIGUSR1 and flag.name == "SIGUSR1"
    finally:
        flag.close()
    assert signal.getsignal(signal.SIGUSR1) == before


@pytest.mark.parametrize("name", ["SIGKILL", "STOP", "SIGFOO", "9", ""])
def test_uncatchable_or_unknown_signals_are_rejected(name):
    with pytest.raises(ValueError, match=f"invalid checkpoint_signals value {name!r}"):
        parse_signal(name)


def test_finite_guard_passes_finite_values_and_stops_on_nan(tmp_path, capsys):
    module = torch.nn.Linear(3, 2)
    closed = []
    guard = FiniteGuard(module, LOSS_KEYS, tmp_path, (lambda: closed.append(1),))
    losses = torch.arange(7, dtype=torch.float32)
    assert guard.read(losses, 1, 32) == losses.tolist() and not closed
    save_checkpoint(tmp_path, 32, payload())
    with pytest.raises(SystemExit) as info:
        guard.read(losses.index_fill(0, torch.tensor([2]), float("nan")), 2, 64)
    assert info.value.code == EXIT_NONFINITE and closed == [1]
    err = capsys.readouterr().err
    assert err.startswith("error: non-finite training state at iteration 2 (global step 64): losses/value_loss=nan")
    assert "ckpt_000000000032.pt' is kept" in err and err.count("\n") == 1
    with torch.no_grad():
        module.bias[0] = float("inf")
    with pytest.raises(SystemExit):
        guard.read(losses, 3, 96)
    assert "parameters bias;" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--encoder", "foo"], "error: invalid choice 'foo' for argument '--encoder'. Expected one of ('impala', "),
    (["--num_envs", "abc"], "error: Error parsing --num-envs: invalid integer 'abc'; valid: an integer such as 64"),
    (["--num_envs", "2.5"], "error: Error parsing --num-envs: invalid integer '2.5'"),
    (["--bogus", "1"], "error: Unrecognized options: --bogus"),
    (["--wandb_mode", "loud"], "error: invalid choice 'loud' for argument '--wandb-mode'"),
])
def test_command_line_errors_are_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        parse_cli(Args, argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith(message) and err.count("\n") == 1


@pytest.mark.parametrize("box", [
    ("╭─ Invalid choice ──────╮\n│ invalid choice 'x' for  │\n│ argument '--encoder'.   │\n│ ─────────────────────── │\n"
     "│ For full helptext, run - --help │\n╰─────────────────────────╯\n"),
    (" Invalid choice \n ------------------------ \n  invalid choice 'x' for \n  argument '--encoder'. \n"
     "  ------------------------\n  For full helptext, run - --help \n"),
], ids=["terminal", "ascii"])
def test_tyro_error_box_becomes_its_message(box):
    assert tyro_message(box) == "invalid choice 'x' for argument '--encoder'."


def test_command_line_parses_signals_and_help_still_works(capsys):
    args = parse_cli(Args, ["--checkpoint_signals", "SIGUSR1", "SIGINT"])
    assert args.run.checkpoint_signals == ("SIGUSR1", "SIGINT")
    with pytest.raises(SystemExit) as info:
        parse_cli(Args, ["--help"])
    assert info.value.code == 0 and "--checkpoint-signals" in capsys.readouterr().out


def test_user_errors_collapse_multi_line_messages(capsys):
    with pytest.raises(SystemExit), user_errors():
        raise ValueError("first\n  second")
    assert capsys.readouterr().err == "error: first second\n"


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


def test_nan_in_training_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    """A NaN loss in iteration 3 (its NaN gradients make the parameters NaN too): exit 4, nothing after iteration 2."""
    import ppo_training
    from conftest import tiny_ppo_args
    from test_determinism import CONFIG

    calls = []

    def poisoned(*args, **kwargs):
        out = ppo_loss(*args, **kwargs)
        calls.append(1)
        if len(calls) > 4:  # 2 minibatches per iteration: iteration 3 onwards
            out.loss, out.v_loss = out.loss * float("nan"), out.v_loss * float("nan")
        return out

    ppo_loss = ppo_training.ppo_loss
    monkeypatch.setattr(ppo_training, "ppo_loss", poisoned)
    with pytest.raises(SystemExit) as info:
        ppo_training.main(tiny_ppo_args(tmp_path, run_name="run", **CONFIG))
    assert info.value.code == EXIT_NONFINITE
    err = capsys.readouterr().err
    assert err.startswith("error: non-finite training state at iteration 3 (global step 96): losses/loss=nan; ")
    assert "losses/value_loss=nan" in err and "; parameters encoder." in err and err.count("\n") == 1
    run_dir = tmp_path / "run"
    assert "ckpt_000000000064.pt' is kept" in err
    assert [p.name for p in list_checkpoints(run_dir / "checkpoints")] == ["ckpt_000000000032.pt",
                                                                           "ckpt_000000000064.pt"]
    kept = load_checkpoint(run_dir / "checkpoints" / "ckpt_000000000064.pt")
    assert all(bool(torch.isfinite(t).all()) for t in kept["agent"].values() if t.is_floating_point())
    steps = [json.loads(line)["global_step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 32, 64] and not (run_dir / "done").exists()
