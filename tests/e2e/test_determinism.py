"""Determinism on CPU: the same seed and config give identical metrics (wall-clock keys aside) and weights."""

from __future__ import annotations

import json

from support.identical_runs import WALL_CLOCK_KEYS, assert_same_state, final_state, metric_rows, run


def test_same_seed_and_config_give_identical_metrics_and_weights(tmp_path):
    first, second = run(tmp_path, "first"), run(tmp_path, "second")
    rows = metric_rows(first)
    assert [row["global_step"] for row in rows] == [0, 32, 64, 96, 128, 128]
    assert "scores/eval_avg_return_test" in rows[2] and rows[3]["charts/sparsity"] > 0  # evaluation and pruning ran
    assert rows == metric_rows(second)
    assert_same_state(final_state(first), final_state(second))
    timed = [json.loads(line) for line in (first / "metrics.jsonl").read_text().splitlines()][1]
    assert set(WALL_CLOCK_KEYS) <= set(timed)  # the excepted keys exist (and are the only ones left out)
