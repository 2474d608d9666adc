"""Both training scripts follow the session's one rule for checkpoints after evaluations."""

from __future__ import annotations

import pytest

import dqn_training
import ppo_training
from impoola.run.checkpoint import list_checkpoints
from support.runs import tiny_dqn_args, tiny_ppo_args


@pytest.mark.parametrize("algorithm", ["ppo", "dqn"])
def test_both_scripts_checkpoint_at_an_evaluation_point_without_evaluation_episodes(tmp_path, algorithm):
    """--num_eval_episodes 0: the evaluation point at step 32 (dormant neurons only) is still followed by a
    checkpoint, in PPO as in DQN (checkpoint_every is far away)."""
    module, make_args = (ppo_training, tiny_ppo_args) if algorithm == "ppo" else (dqn_training, tiny_dqn_args)
    module.main(make_args(tmp_path, run_name="run", num_eval_episodes=0, num_final_eval_episodes=0,
                          capture_video=False, cuda=False))
    steps = [int(path.stem.split("_")[1]) for path in list_checkpoints(tmp_path / "run" / "checkpoints")]
    assert steps == [32, 64]
