"""DQN, through the training script's own loop, learns a synthetic image task within a minute of CPU, in both modes."""

import json
import time

import numpy as np
import pytest

import dqn_training
from support.runs import tiny_dqn_args
from support.synthetic_env import TargetImageEnv


@pytest.mark.parametrize("mode", ["release", "textbook"])
def test_dqn_solves_the_target_image_task(tmp_path, monkeypatch, mode):
    monkeypatch.setattr(dqn_training, "ProcgenVecEnv", TargetImageEnv)
    # 200 vector steps of 16 envs; ε decays over the first 60; one-step episodes, so every step is stored.
    args = tiny_dqn_args(tmp_path, encoder="impoola", scale=1, num_envs=16, total_timesteps=16 * 200, buffer_size=2000,
                         batch_size=64, learning_starts=256, target_network_frequency=160, exploration_fraction=0.3,
                         log_every=20, num_eval_episodes=0, num_final_eval_episodes=0, learning_rate=1e-3,
                         scale_lr=False, replay_mode=mode)
    start = time.process_time()
    dqn_training.main(args)
    cpu_seconds = time.process_time() - start
    run_dir = tmp_path / f"{args.env.env_id}__dqn__{args.model_name}__s1"
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]
    returns = [row["charts/episodic_return"] for row in rows if "charts/episodic_return" in row]
    assert returns[0] < 0.2  # starts near chance (1/15)
    assert np.mean(returns[-3:]) >= 0.9, returns  # best return 1.0; ε = 0.025 at the end
    assert cpu_seconds < 60
