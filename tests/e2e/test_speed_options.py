"""The PPO training script runs in NCHW and in bf16 with finite losses."""

import json

import numpy as np

import ppo_training
from support.runs import tiny_ppo_args


def test_training_runs_in_nchw_and_bf16(tmp_path):
    for name, overrides in (("nchw", dict(channels_last=False)), ("bf16", dict(precision="bf16"))):
        args = tiny_ppo_args(tmp_path, run_name=name, num_eval_episodes=0, num_final_eval_episodes=0, **overrides)
        ppo_training.main(args)
        rows = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").open()]
        assert all(np.isfinite(row["losses/loss"]) for row in rows if "losses/loss" in row)
        assert json.loads((tmp_path / name / "config.json").read_text())[next(iter(overrides))] == next(
            iter(overrides.values()))
