"""The run directory: one writer at a time (a lock naming its holder, taken over from a dead one), a full disk
during a checkpoint, and runs written by the previous version resuming with this one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

import ppo_training
from impoola.run.checkpoint import list_checkpoints, load_agent, load_checkpoint, save_checkpoint
from impoola.cli import run_command, user_errors
from impoola.run.rundir import RunDir, RunDirectoryError
from support.paths import DATA, ROOT
from support.runs import tiny_ppo_args

V1 = DATA / "v1_runs"
TINY = ["--env_id", "bigfish", "--num_envs", "2", "--num_steps", "16", "--num_minibatches", "2", "--update_epochs",
        "1", "--num_eval_episodes", "0", "--num_final_eval_episodes", "0", "--scale", "0.5", "--procgen_threads", "1",
        "--wandb_mode", "disabled", "--no-progress_bar", "--checkpoint_every", "1"]


def test_second_writer_is_refused_naming_the_holder_while_the_first_finishes_intact(tmp_path, capsys):
    first = subprocess.Popen([sys.executable, str(ROOT / "ppo_training.py"), *TINY, "--total_timesteps", "256",
                              "--output_dir", str(tmp_path), "--run_name", "run"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / "run" / ".lock"
    deadline = time.time() + 300
    while not (lock.exists() and lock.read_text()) and time.time() < deadline:
        time.sleep(0.05)
    refused = [run_command(ppo_training.Args, ppo_training.main,
                           [*TINY, "--total_timesteps", "256", "--output_dir", str(tmp_path), "--run_name", "run",
                            *resume], algorithm="ppo") for resume in ([], ["--resume"])]
    err = capsys.readouterr().err
    out, first_err = first.communicate(timeout=600)
    assert first.returncode == 0, first_err
    assert refused == [2, 2]
    holder = f"in use by PID {first.pid} on host {socket.gethostname()}"
    assert err.count("\n") == 2 and all(line.startswith("error: run directory") and holder in line
                                        for line in err.splitlines()), err
    run = tmp_path / "run"
    steps = [json.loads(line)["global_step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 32, 64, 96, 128, 160, 192, 224, 256, 256]  # every row once, in order
    assert (run / "done").exists() and not lock.exists()
    assert load_checkpoint(run)["global_step"] == 256


def test_a_dead_holders_lock_is_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from impoola.run.rundir import RunDir; RunDir(sys.argv[1], 'run').acquire(False); "
        "print('locked', flush=True); time.sleep(600)"), str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(RunDirectoryError, match=f"in use by PID {holder.pid} on host"):
        RunDir(tmp_path, "run").acquire(resume=True)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    assert (tmp_path / "run" / ".lock").exists()  # left behind by the killed holder
    run = RunDir(tmp_path, "run").acquire(resume=True)
    assert (tmp_path / "run" / ".lock").read_text().startswith(f"PID {os.getpid()} on host")
    run.release()
    assert not (tmp_path / "run" / ".lock").exists()


def test_a_failed_start_up_removes_the_directories_it_created(tmp_path):
    run = RunDir(tmp_path / "out" / "deeper", "run").acquire(resume=False)
    with pytest.raises(RuntimeError), run.starting():
        (run.path / "config.json").write_text("{}")
        raise RuntimeError("environment failed to start")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def small_fs(tmp_path):
    """A 2 MiB tmpfs, mounted for the test (needs root and mount permission)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({' '.join(done.stderr.split())[:120] or 'mount failed'}): the "
                    "disk-full checkpoint test needs root and mount permission")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_completed_run_asked_for_more_steps_loses_its_done_marker_only_after_its_start_up(tmp_path, capsys):
    run = RunDir(tmp_path, "r").acquire(resume=False)
    run.config.write_text(json.dumps({"total_timesteps": 64}))
    run.mark_done()
    run.release()
    same = RunDir(tmp_path, "r").acquire(resume=True)
    assert same.release_if_done(64) and same.is_done()  # nothing to do, and the lock is given up
    assert "already complete" in capsys.readouterr().out
    refused = RunDir(tmp_path, "r").acquire(resume=True)
    with pytest.raises(ValueError), refused.starting():
        assert not refused.release_if_done(128)
        raise ValueError("the resume's own checks refuse it")
    assert refused.is_done() and (tmp_path / "r").is_dir()  # a refused continuation changes nothing
    longer = RunDir(tmp_path, "r").acquire(resume=True)
    with longer.starting():
        assert not longer.release_if_done(128) and longer.is_done()
    assert not longer.is_done()
    assert "completed 64 steps; continuing it to 128" in capsys.readouterr().out
    longer.release()


def test_a_completed_run_resumed_with_more_steps_trains_on_to_them(tmp_path):
    ppo_training.main(tiny_ppo_args(tmp_path, run_name="r", capture_video=False))
    final = ppo_training.main(tiny_ppo_args(tmp_path, run_name="r", capture_video=False, total_timesteps=128,
                                            resume=True))
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").open()]
    steps = [row["global_step"] for row in rows if "losses/loss" in row]
    assert steps == [32, 64, 96, 128] and final and (tmp_path / "r" / "done").exists()
    assert json.loads((tmp_path / "r" / "config.json").read_text())["total_timesteps"] == 128


def test_full_disk_during_a_checkpoint_is_one_line_and_keeps_the_previous_one(small_fs, capsys):
    checkpoints = small_fs / "run" / "checkpoints"
    save_checkpoint(checkpoints, 32, {"agent": {"w": torch.ones(16)}, "args": {}}, keep=3)
    previous = (checkpoints / "ckpt_000000000032.pt").read_bytes()
    with pytest.raises(SystemExit) as info, user_errors():
        save_checkpoint(checkpoints, 64, {"agent": {"w": torch.ones(2**20)}, "args": {}}, keep=3)  # 4 MiB
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert err == (f"error: cannot use {str(checkpoints / 'ckpt_000000000064.pt')!r}: No space left on device\n")
    assert sorted(p.name for p in checkpoints.iterdir()) == ["ckpt_000000000032.pt"]  # no temporary file left
    assert (checkpoints / "ckpt_000000000032.pt").read_bytes() == previous


def test_a_previous_versions_runs_load_and_resume_with_a_changed_learning_rate_applied(tmp_path, capsys):
    """v1_runs were written before the options rewrite: same config keys, loadable agents, resumable runs."""
    for name in ("v1_ppo", "v1_dqn"):
        agent, args = load_agent(V1 / name)
        assert json.loads((V1 / name / "config.json").read_text())["encoder"] == args["encoder"] == "impoola"
    shutil.copytree(V1 / "v1_ppo", tmp_path / "v1_ppo")
    (tmp_path / "v1_ppo" / "done").unlink()
    old_config = json.loads((V1 / "v1_ppo" / "config.json").read_text())
    code = run_command(ppo_training.Args, ppo_training.main,
                       [*TINY, "--total_timesteps", "96", "--keep_checkpoints", "1", "--learning_rate", "2e-3",
                        "--output_dir", str(tmp_path), "--run_name", "v1_ppo", "--resume"], algorithm="ppo")
    assert code == 0, capsys.readouterr().err
    assert "warning: resuming with changed args: total_timesteps 64 (checkpoint) vs 96 (now); learning_rate 0.001" \
        in capsys.readouterr().err
    config = json.loads((tmp_path / "v1_ppo" / "config.json").read_text())
    assert set(config) == set(old_config) | {"preset", "redo_mode", "maxpool_padding", "encoder_init",
                                             "adam_eps_form", "reward_norm_gamma"}  # plus the newer options
    assert (config["maxpool_padding"], config["encoder_init"], config["adam_eps_form"], config["reward_norm_gamma"]) \
        == ("symmetric", "torch", "torch", None)  # resumed with the numerics it ran with
    changed = {key for key in old_config if config[key] != old_config[key]}
    assert changed == {"total_timesteps", "learning_rate", "base_learning_rate", "num_iterations", "resume",
                       "output_dir", "checkpoint_every", "reuse_host_memory"}  # a speed option; its default is now on
    assert config["learning_rate"] == 2e-3 and config["base_learning_rate"] == pytest.approx(8e-3)  # 2e-3 x 2/τ
    rows = [json.loads(line) for line in (tmp_path / "v1_ppo" / "metrics.jsonl").read_text().splitlines()]
    assert [row["global_step"] for row in rows][-2:] == [96, 96]
    assert rows[-2]["charts/learning_rate"] == pytest.approx(8e-3)  # what config.json says is what ran
    assert [p.name for p in list_checkpoints(tmp_path / "v1_ppo" / "checkpoints")] == ["ckpt_000000000096.pt"]


def test_resume_on_a_name_that_does_not_exist_says_it_starts_it_in_one_line(tmp_path, capsys):
    RunDir(tmp_path, "typo").acquire(resume=True).release()
    assert capsys.readouterr().out == f"no run named typo under {str(tmp_path)!r}: starting it\n"
    RunDir(tmp_path, "typo").acquire(resume=True).release()  # it exists now: continued without the line
    RunDir(tmp_path, "fresh").acquire(resume=False).release()
    assert capsys.readouterr().out == ""
