"""DQN learns the synthetic image task in bf16 to float32's thresholds."""

import json

import numpy as np
import pytest
import torch

import dqn_training
from impoola.performance import native_bf16
from support.runs import tiny_dqn_args
from support.synthetic_env import TargetImageEnv


CPU = torch.device("cpu")
NO_NATIVE_BF16 = pytest.mark.skipif(not native_bf16(CPU), reason="bf16 is emulated on this CPU (no AVX512-BF16/AMX)")


def episodic_returns(run_dir) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]
    return [row["charts/episodic_return"] for row in rows if "charts/episodic_return" in row]


@NO_NATIVE_BF16
def test_dqn_learns_the_target_image_task_in_bf16(tmp_path, monkeypatch):
    monkeypatch.setattr(dqn_training, "ProcgenVecEnv", TargetImageEnv)
    args = tiny_dqn_args(tmp_path, encoder="impoola", scale=1, num_envs=16, total_timesteps=16 * 200, buffer_size=2000,
                         batch_size=64, learning_starts=256, target_network_frequency=160, exploration_fraction=0.3,
                         log_every=20, num_eval_episodes=0, num_final_eval_episodes=0, learning_rate=1e-3,
                         scale_lr=False, precision="bf16", run_name="bf16")
    dqn_training.main(args)
    returns = episodic_returns(tmp_path / "bf16")
    assert returns[0] < 0.2 and np.mean(returns[-3:]) >= 0.9, returns
