"""Fixtures shared by every test group: tiny real PPO and DQN runs whose outputs several test modules reuse, the
global RNG restored after each test, and CUDA tests skipped without a GPU. Helpers live in `support/`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from support.runs import tiny_dqn_args, tiny_ppo_args

os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(1)


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
    from impoola.run.checkpoint import list_checkpoints

    return list_checkpoints(tiny_run / "checkpoints")[-1]


@pytest.fixture(scope="session")
def tiny_dqn_run(tmp_path_factory) -> Path:
    """Run directory of one tiny, finished DQN run (metrics, checkpoints, done marker)."""
    from dqn_training import main

    output_dir = tmp_path_factory.mktemp("tiny_dqn_runs")
    args = tiny_dqn_args(output_dir, capture_video=True)
    main(args)
    return output_dir / f"{args.env.env_id}__dqn__{args.model_name}__s1"
