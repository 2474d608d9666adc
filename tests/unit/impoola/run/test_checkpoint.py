"""Checkpoint files: rotation and clean-up, corrupt and foreign files, the model they fit and the
resume's choice of checkpoint."""

from __future__ import annotations

import pytest
import torch

from impoola.run.checkpoint import (
    CheckpointError, list_checkpoints, load_checkpoint, load_resume_checkpoint, save_checkpoint,
)
from impoola.run.rundir import RunDir


def payload(**args) -> dict:
    """A minimal checkpoint payload with the given run args."""
    return {"agent": {"w": torch.ones(2)}, "args": {"encoder": "impoola", "scale": 2.0, "learning_rate": None,
                                                   "num_envs": 64, "seed": 1, **args}, "agent_kind": "ppo"}


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


@pytest.mark.parametrize("saved,now,fits", [
    (None, "flatten", True),  # Impala's own head, named or not, is the same model
    ("flatten", None, True),
    (None, "avg", False),
    ("avg", None, False),
])
def test_an_unset_pooling_head_is_compared_as_the_one_it_stands_for(tmp_path, saved, now, fits):
    save_checkpoint(tmp_path / "checkpoints", 32, payload(encoder="impala", pooling=saved))
    args = {**payload()["args"], "encoder": "impala", "pooling": now}
    if fits:
        assert torch.equal(load_resume_checkpoint(tmp_path, args, "ppo")["agent"]["w"], torch.ones(2))
    else:
        with pytest.raises(CheckpointError, match="pooling"):
            load_resume_checkpoint(tmp_path, args, "ppo")


def test_a_checkpoint_older_than_the_train_procgen_options_ran_with_the_releases_numerics(tmp_path, capsys):
    """A checkpoint without encoder_init / maxpool_padding / adam_eps_form / reward_norm_gamma resumes with their
    defaults, and is refused as another model when the corrected train-procgen preset asks for TF's."""
    old = payload(encoder="impala")
    for added in ("encoder_init", "maxpool_padding", "adam_eps_form", "reward_norm_gamma"):
        old["args"].pop(added, None)
    save_checkpoint(tmp_path / "checkpoints", 32, old)
    now = {**old["args"], "encoder_init": "torch", "maxpool_padding": "symmetric", "adam_eps_form": "torch",
           "reward_norm_gamma": None}
    assert load_resume_checkpoint(tmp_path, now, "ppo") is not None and capsys.readouterr().err == ""
    with pytest.raises(CheckpointError, match="encoder_init 'torch' \\(checkpoint\\) vs 'glorot' \\(now\\)"):
        load_resume_checkpoint(tmp_path, {**now, "encoder_init": "glorot", "maxpool_padding": "same"}, "ppo")
    load_resume_checkpoint(tmp_path, {**now, "adam_eps_form": "tf", "reward_norm_gamma": 0.99}, "ppo")
    assert "adam_eps_form 'torch' (checkpoint) vs 'tf' (now)" in capsys.readouterr().err


def test_resume_prefers_the_newest_checkpoint_that_matches_the_saved_replay_memory(tmp_path):
    for step, replay_step in ((8, 4), (16, 8), (24, 12)):
        save_checkpoint(tmp_path / "checkpoints", step, {**payload(), "global_step": step, "replay_step": replay_step})
    pick = load_resume_checkpoint(tmp_path, payload()["args"], "ppo", prefer=lambda p: p["replay_step"] == 8)
    assert pick["global_step"] == 16
    assert load_resume_checkpoint(tmp_path, payload()["args"], "ppo", prefer=lambda p: False)["global_step"] == 24
