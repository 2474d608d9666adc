"""A tiny real run of each script on the fine-tuning track logs both train and test scores."""

from __future__ import annotations

import json

import pytest

from impoola.evaluation.registry import ALGORITHMS
from support.runs import tiny_dqn_args, tiny_ppo_args


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_finetuning_run_logs_train_and_test_scores(algo, tmp_path):
    """A tiny real run of each script on the fine-tuning track (the release's DQN logged only `_train` there)."""
    if algo == "ppo":
        from ppo_training import main

        args = tiny_ppo_args(tmp_path, track="finetuning", capture_video=False)
    else:
        from dqn_training import main

        args = tiny_dqn_args(tmp_path, track="finetuning")
    final = main(args)
    rows = [json.loads(line) for line in next(tmp_path.glob("*/metrics.jsonl")).open()]
    assert rows[-1]["scores/normalized_score_train"] == rows[-1]["scores/normalized_score_test"]
    assert final["scores/normalized_score_test"] == rows[-1]["scores/normalized_score_test"]
    during = [row for row in rows[1:-1] if "scores/normalized_score_train" in row]
    assert during and all("scores/normalized_score_test" in row for row in during)
