"""End to end on real Procgen: a tiny DQN run with checkpoint reload and evaluation, preemption and resume, and bad
input (one line, exit 2, nothing created)."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

import dqn_training
from dqn_training import act, main
from impoola.run.checkpoint import list_checkpoints, load_agent, load_checkpoint
from impoola.evaluation.episodes import evaluate_spec
from impoola.evaluation.registry import EvalSpec
from impoola.run.guards import EXIT_PREEMPTED
from impoola.models.agents import DQNAgent, agent_policy
from impoola.replay import ReplayMemory
from support.paths import ROOT
from support.runs import tiny_dqn_args


CPU = torch.device("cpu")


def rows_of(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]


def test_tiny_run_writes_config_metrics_checkpoints_and_done(tiny_dqn_run):
    config = json.loads((tiny_dqn_run / "config.json").read_text())
    assert config["num_vector_steps"] == 32 and config["target_update_every_vector_steps"] == 8
    assert config["base_learning_rate"] == pytest.approx(2e-4)  # 1e-4 at τ=2, rescaled by 2/τ for τ=1
    assert config["replay_mode"] == "release" and config["prioritized"] and config["n_step"] == 3
    rows = rows_of(tiny_dqn_run)
    assert [row["global_step"] for row in rows] == [0, 8, 16, 24, 32, 40, 48, 56, 64, 64]
    assert rows[0]["charts/total_network_params"] == 110_160 - 257
    assert "dormant_neurons/dormant_fraction" in rows[0]
    for row in rows[1:-1]:
        assert {"charts/SPS", "charts/learning_rate", "charts/epsilon", "charts/elapsed_train_time"} <= set(row)
    assert rows[1]["charts/epsilon"] == pytest.approx(1.0 - 0.975 * 6 / 6.4)  # ε over the first 10% of 64 steps
    assert rows[2]["charts/epsilon"] == pytest.approx(0.025)
    # learning starts after 16 env steps: the first losses are in the row of step 24
    assert "losses/td_loss" not in rows[2] and {"losses/td_loss", "losses/q_values"} <= set(rows[3])
    # one evaluation during training (after half the steps, train and test splits), then the final one
    evaluated = [row["global_step"] for row in rows if "scores/eval_avg_return_train" in row]
    assert evaluated == [32, 64]
    for row in (rows[4], rows[-1]):
        assert {"scores/eval_avg_return_test", "scores/normalized_score_train", "scores/normalized_score_test",
                "dormant_neurons/zero_fraction"} <= set(row)
        assert row["charts/eval_episodes_per_second_train"] > 0 and row["charts/eval_episodes_per_second_test"] > 0
    assert (tiny_dqn_run / "done").exists()
    assert list((tiny_dqn_run / "tb").iterdir())
    videos = sorted((tiny_dqn_run / "videos").glob("step_*.mp4"))  # --capture_video: one per evaluation, final too
    assert [v.name for v in videos] == ["step_000000000032.mp4", "step_000000000064.mp4"]
    assert all(v.stat().st_size > 0 for v in videos)
    assert [p.name for p in list_checkpoints(tiny_dqn_run / "checkpoints")] == [
        "ckpt_000000000032.pt", "ckpt_000000000064.pt"]


def test_checkpoint_holds_everything_and_reloads_to_evaluate(tiny_dqn_run):
    payload = load_checkpoint(tiny_dqn_run)
    assert {"agent", "target_network", "optimizer", "args", "env_state", "next_obs", "rng", "epsilon",
            "vector_step"} <= set(payload)
    assert payload["agent_kind"] == "dqn" and payload["global_step"] == 64 and payload["epsilon"] == 0.025
    assert "replay" not in payload
    agent, args = load_agent(tiny_dqn_run)
    assert isinstance(agent, DQNAgent) and args["exp_name"] == "dqn" and not agent.training
    for name, tensor in agent.state_dict().items():
        torch.testing.assert_close(tensor, payload["agent"][name])
    result = evaluate_spec(agent_policy(agent, CPU, greedy=True), "starpilot", "easy",
                            EvalSpec("test", "generalization", "test"), num_episodes=2, num_envs=2, seed=1,
                            num_threads=1)
    assert result.num_episodes == 2


def test_resume_of_a_finished_run_changes_nothing(tiny_dqn_run):
    before = (tiny_dqn_run / "metrics.jsonl").read_bytes()
    main(tiny_dqn_args(tiny_dqn_run.parent, resume=True))
    assert (tiny_dqn_run / "metrics.jsonl").read_bytes() == before


def test_signal_checkpoints_and_resume_refills_the_replay_memory(tmp_path, monkeypatch):
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGUSR2)}
    calls = []

    def act_then_signal(*a):
        calls.append(1)
        if len(calls) == 10:
            os.kill(os.getpid(), signal.SIGUSR2)
        return act(*a)

    args = tiny_dqn_args(tmp_path, num_eval_episodes=0, num_final_eval_episodes=0)
    run_dir = tmp_path / f"{args.env.env_id}__dqn__{args.model_name}__s1"
    try:
        monkeypatch.setattr(dqn_training, "act", act_then_signal)
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == EXIT_PREEMPTED
        assert load_checkpoint(run_dir)["global_step"] == 24  # at the end of the logging interval it arrived in
        assert not (run_dir / "done").exists()
        main(tiny_dqn_args(tmp_path, num_eval_episodes=0, num_final_eval_episodes=0, resume=True))
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    rows = rows_of(run_dir)
    assert [row["global_step"] for row in rows] == [0, 8, 16, 24, 32, 40, 48, 56, 64, 64]
    # the replay memory is not checkpointed: learning restarts 16 env steps after the resume at step 24
    assert ["losses/td_loss" in row for row in rows[3:-1]] == [True, False, False, True, True, True]
    assert (run_dir / "done").exists() and load_checkpoint(run_dir)["global_step"] == 64


class Killed(BaseException):
    """Stands in for SIGKILL in-process: nothing after the raise point runs."""


def test_save_buffer_run_killed_inside_a_replay_save_resumes_with_its_memory(tmp_path, monkeypatch, capsys):
    """--save_buffer --keep_checkpoints 1, killed inside the snapshot of step 24: the resume continues from step 16
    with step 16's memory (learning goes on at once), and only the final checkpoint's snapshot is left."""
    from impoola.replay import persistence

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGUSR2)}
    options = dict(save_buffer=True, keep_checkpoints=1, checkpoint_every=1, num_eval_episodes=0,
                   num_final_eval_episodes=0)
    original, writes = persistence.atomic_write_bytes, []
    per_snapshot = len(ReplayMemory(8, 2, (3, 64, 64)).state_arrays()) + 1  # its arrays, then meta.json

    def write(path, fn):
        writes.append(path)
        if len(writes) == 2 * per_snapshot + 5:  # inside the third snapshot (step 24)
            raise Killed
        original(path, fn)

    run_dir = tmp_path / f"starpilot__dqn__{tiny_dqn_args(tmp_path).model_name}__s1"
    try:
        with monkeypatch.context() as patch:
            patch.setattr(persistence, "atomic_write_bytes", write)
            with pytest.raises(Killed):
                main(tiny_dqn_args(tmp_path, **options))
        assert [p.name for p in list_checkpoints(run_dir / "checkpoints")] == ["ckpt_000000000016.pt"]
        assert sorted(p.name for p in (run_dir / "replay").iterdir())[0].startswith(".snapshot_000002.tmp")
        capsys.readouterr()
        main(tiny_dqn_args(tmp_path, resume=True, **options))
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert "warning" not in capsys.readouterr().err
    rows = rows_of(run_dir)
    assert [row["global_step"] for row in rows] == [0, 8, 16, 24, 32, 40, 48, 56, 64, 64]
    assert all("losses/td_loss" in row for row in rows[3:-1])  # a refilled memory would wait until step 32
    payload = load_checkpoint(run_dir)
    assert [p.name for p in (run_dir / "replay").iterdir()] == [payload["replay_snapshot"]]


def test_textbook_uniform_softmax_polyak_variant_runs(tmp_path):
    args = tiny_dqn_args(tmp_path, replay_mode="textbook", prioritized=False, exploration="softmax", tau=0.5,
                         train_frequency=0.5, anneal_lr=True, num_eval_episodes=0, num_final_eval_episodes=0)
    main(args)
    rows = rows_of(tmp_path / f"{args.env.env_id}__dqn__{args.model_name}__s1")
    assert all("charts/epsilon" not in row for row in rows)
    rates = [row["charts/learning_rate"] for row in rows if "charts/learning_rate" in row]
    assert rates == sorted(rates, reverse=True) and rates[-1] < rates[0]
    assert all(np.isfinite(row["losses/td_loss"]) for row in rows if "losses/td_loss" in row)


def test_replay_memory_larger_than_available_memory_stops_before_allocating(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(tiny_dqn_args(tmp_path, buffer_size=10**9))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid buffer_size: it needs 11") and "GiB are available" in err
    assert err.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_paper_capacity_fits_24_gib_with_room_to_train():
    need = ReplayMemory.required_bytes(1_000_000, (3, 64, 64), 128, 3, "release", True)
    assert 11 * 2**30 < need < 12 * 2**30  # ~11.5 GiB of frames, stored once


def test_cli_memory_check_exits_2_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "dqn_training.py", "--buffer-size", str(10**9), "--output_dir",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: invalid buffer_size: it needs") and "GiB are available" in line
    assert not list(tmp_path.iterdir())
