"""End to end on real Procgen: a tiny PPO run writes its outputs, its checkpoint reloads and evaluates, bad input is
one line, a NaN stops the run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from impoola.run.checkpoint import list_checkpoints, load_agent, load_checkpoint
from impoola.evaluation.episodes import evaluate_spec
from impoola.evaluation.registry import EvalSpec
from impoola.evaluation.video import count_video_frames
from impoola.run.guards import EXIT_NONFINITE
from impoola.models.agents import agent_policy
from ppo_training import main
from support.identical_runs import CONFIG
from support.paths import ROOT
from support.runs import tiny_ppo_args


def test_nan_in_training_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    """A NaN loss in iteration 3 (its NaN gradients make the parameters NaN too): exit 4, nothing after iteration 2."""
    import ppo_training

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


def test_tiny_run_writes_config_metrics_checkpoints_and_done(tiny_run):
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["env_id"] == "bigfish" and config["num_iterations"] == 2 and config["batch_size"] == 32
    assert config["base_learning_rate"] == pytest.approx(3.5e-4 * 2)  # 3.5e-4 at τ=2, rescaled by 2/τ for τ=1
    rows = [json.loads(line) for line in (tiny_run / "metrics.jsonl").open()]
    assert [row["global_step"] for row in rows] == [0, 32, 64, 64]
    assert rows[0]["charts/total_network_params"] == 110_160
    assert "dormant_neurons/dormant_fraction" in rows[0]
    for key in ("charts/SPS", "charts/learning_rate", "losses/value_loss", "losses/policy_loss", "losses/entropy",
                "losses/approx_kl", "losses/clipfrac", "losses/explained_variance", "charts/elapsed_train_time"):
        assert key in rows[1]
    # one evaluation during training (after half the steps), and the final one with both splits
    assert "scores/eval_avg_return_train" in rows[1] and "scores/normalized_score_test" in rows[1]
    assert "scores/eval_avg_return_train" not in rows[2]
    assert {"scores/eval_avg_return_train", "scores/eval_avg_return_test", "scores/normalized_score_train",
            "scores/normalized_score_test", "dormant_neurons/zero_fraction"} <= set(rows[3])
    assert rows[3]["charts/eval_episodes_per_second_test"] > 0  # evaluation speed, logged with every evaluation
    assert (tiny_run / "done").exists()
    videos = sorted((tiny_run / "videos").glob("step_*.mp4"))  # --capture_video: one episode per evaluation, final too
    assert [v.name for v in videos] == ["step_000000000032.mp4", "step_000000000064.mp4"]
    assert all(count_video_frames(video) > 0 for video in videos)
    assert list((tiny_run / "tb").iterdir())
    assert len(list_checkpoints(tiny_run / "checkpoints")) >= 1


def test_checkpoint_holds_everything_and_reloads_to_evaluate(tiny_run, tiny_checkpoint):
    payload = load_checkpoint(tiny_checkpoint)
    assert {"agent", "optimizer", "args", "reward_normalizer", "global_step", "env_state", "rng"} <= set(payload)
    assert payload["global_step"] == 64
    agent, args = load_agent(tiny_run)
    assert args["encoder"] == "impoola" and not agent.training
    for name, tensor in agent.state_dict().items():
        torch.testing.assert_close(tensor, payload["agent"][name])
    result = evaluate_spec(agent_policy(agent, torch.device("cpu"), greedy=False), "bigfish", "easy",
                            EvalSpec("test", "generalization", "test"), num_episodes=2, num_envs=2, seed=1,
                            num_threads=1)
    assert result.num_episodes == 2


def test_existing_run_directory_is_an_error_and_untouched(tiny_run, capsys):
    before = (tiny_run / "metrics.jsonl").read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        main(tiny_ppo_args(tiny_run.parent))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already exists" in err and "--resume" in err
    assert (tiny_run / "metrics.jsonl").read_bytes() == before


def test_resume_of_a_finished_run_changes_nothing(tiny_run):
    before = (tiny_run / "metrics.jsonl").read_bytes()
    main(tiny_ppo_args(tiny_run.parent, resume=True))
    assert (tiny_run / "metrics.jsonl").read_bytes() == before


def test_cli_bad_game_exits_2_with_one_line():
    proc = subprocess.run([sys.executable, "ppo_training.py", "--env_id", "pong"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: invalid env_id 'pong'")
