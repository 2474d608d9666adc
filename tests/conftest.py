"""Shared fixtures: one tiny real PPO run whose checkpoint several test modules reuse."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(1)

TINY_PPO = dict(
    env_id="bigfish", num_envs=2, num_steps=16, total_timesteps=64, num_minibatches=2, update_epochs=1,
    num_eval_episodes=2, num_final_eval_episodes=2, eval_every_fraction=0.5, scale=1.0, procgen_threads=1,
    capture_video=True,
    wandb_mode="disabled", progress_bar=False,
)


@pytest.fixture(autouse=True)
def restore_global_rng():
    """numpy's global RNG as it was before each test: rliable's bootstrap draws from it, and some tests seed it."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked `cuda` are skipped on machines without a CUDA GPU."""
    if not torch.cuda.is_available():
        for item in items:
            if item.get_closest_marker("cuda") is not None:
                item.add_marker(pytest.mark.skip(reason="needs CUDA"))


def tiny_ppo_args(output_dir: Path, **overrides):
    """Args of a real PPO run that takes a few seconds: 2 envs x 16 steps x 2 iterations."""
    from impoola.options import from_flat
    from ppo_training import Args

    return from_flat(Args, output_dir=str(output_dir), **{**TINY_PPO, **overrides})


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """Run directory of one tiny, finished PPO run (metrics, checkpoints, done marker)."""
    from ppo_training import main

    output_dir = tmp_path_factory.mktemp("tiny_runs")
    args = tiny_ppo_args(output_dir)
    main(args)
    return output_dir / f"bigfish__ppo__{args.model_name}__s1"


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_run) -> Path:
    """The newest checkpoint file of the shared tiny run."""
    from impoola.checkpoint import list_checkpoints

    return list_checkpoints(tiny_run / "checkpoints")[-1]


TINY_DQN = dict(
    env_id="starpilot", num_envs=2, total_timesteps=64, buffer_size=64, batch_size=8, learning_starts=16,
    target_network_frequency=16, log_every=4, num_eval_episodes=2, num_final_eval_episodes=2, eval_every_fraction=0.5,
    scale=1.0, procgen_threads=1, wandb_mode="disabled", progress_bar=False,
)


def tiny_dqn_args(output_dir: Path, **overrides):
    """Args of a real DQN run that takes a few seconds: 2 envs x 32 vector steps on starpilot (short greedy episodes)."""
    from dqn_training import Args
    from impoola.options import from_flat

    return from_flat(Args, output_dir=str(output_dir), **{**TINY_DQN, **overrides})


@pytest.fixture(scope="session")
def tiny_dqn_run(tmp_path_factory) -> Path:
    """Run directory of one tiny, finished DQN run (metrics, checkpoints, done marker)."""
    from dqn_training import main

    output_dir = tmp_path_factory.mktemp("tiny_dqn_runs")
    args = tiny_dqn_args(output_dir)
    main(args)
    return output_dir / f"{args.env.env_id}__dqn__{args.model_name}__s1"
