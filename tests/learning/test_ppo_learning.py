"""PPO, through the training script's own loop, learns a synthetic image task within a minute of CPU."""

import json
import time

import numpy as np
import pytest
import torch

import ppo_training
from impoola.run.checkpoint import load_agent
from impoola.evaluation.episodes import evaluate
from impoola.models.agents import agent_policy
from impoola.performance import native_bf16
from support.runs import tiny_ppo_args
from support.synthetic_env import TargetImageEnv

BF16 = pytest.param("bf16", marks=pytest.mark.skipif(not native_bf16(torch.device("cpu")),
                                                      reason="bf16 is emulated on this CPU (no AVX512-BF16/AMX)"))


@pytest.mark.parametrize("precision", ["float32", BF16])
def test_ppo_solves_the_target_image_task(tmp_path, monkeypatch, precision):
    """bf16 (the encoder under autocast) must learn as float32 does: same budget, same thresholds."""
    monkeypatch.setattr(ppo_training, "ProcgenVecEnv", TargetImageEnv)
    # Rewards are 0/1 and episodes one step long: the release's reward scaling (tested on its own) only adds noise.
    args = tiny_ppo_args(tmp_path, encoder="impoola", scale=1, num_envs=16, num_steps=16, num_minibatches=8,
                         update_epochs=3, total_timesteps=16 * 16 * 30, num_eval_episodes=0,
                         num_final_eval_episodes=0, learning_rate=6e-4, scale_lr=False, normalize_reward=False,
                         precision=precision)
    start = time.process_time()
    ppo_training.main(args)
    cpu_seconds = time.process_time() - start
    run_dir = tmp_path / f"bigfish__ppo__{args.model_name}__s1"
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]
    returns = [row["charts/episodic_return"] for row in rows if "charts/episodic_return" in row]
    assert np.mean(returns[:3]) < 0.2  # the sampling policy starts near chance (1/15)
    assert max(returns) >= 0.9, returns
    # The trained policy, reloaded from its checkpoint and acting greedily on fresh images, solves the task.
    agent, _ = load_agent(run_dir)
    result = evaluate(agent_policy(agent, torch.device("cpu"), greedy=True), TargetImageEnv("bigfish", 32, seed=7), 256)
    assert result.mean_return >= 0.9  # the best return is 1.0
    assert cpu_seconds < 60
