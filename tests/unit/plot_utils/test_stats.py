"""plot_utils.stats against rliable on known scores: aggregates, intervals, probability of improvement, profiles,
IQM curves, step grids, unequal seeds."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from rliable import library as rly, metrics as rly_metrics

from plot_utils import stats
from support.synthetic_runs import EVAL_STEPS, GAMES, MODELS, REPS, SEEDS, TOTAL, known_matrix, known_score


def test_final_scores_and_aggregates_match_rliable(table: pd.DataFrame) -> None:
    scores, games = stats.score_matrices(table, "scores/normalized_score_test")
    assert games == list(GAMES) and list(scores) == ["impala_s1", "impoola_s1"]
    for model in MODELS:
        np.testing.assert_allclose(scores[model], known_matrix(model), atol=1e-12)
    ours = stats.aggregate_scores(scores, reps=REPS, seed=3).set_index(["model", "aggregate"])
    np.random.seed(3)
    points, cis = rly.get_interval_estimates(
        scores, lambda x: np.array([f(x) for f in stats.AGGREGATES.values()]), reps=REPS)
    for model in scores:
        for i, name in enumerate(stats.AGGREGATES):
            assert ours.loc[(model, name)].tolist() == [points[model][i], cis[model][0, i], cis[model][1, i]]
    assert ours.loc[("impoola_s1", "IQM"), "value"] == rly_metrics.aggregate_iqm(known_matrix("impoola_s1"))

    poi = stats.probability_of_improvement(scores, [("impoola_s1", "impala_s1")], reps=REPS, seed=1)
    np.random.seed(1)
    point, ci = rly.get_interval_estimates({"p": [scores["impoola_s1"], scores["impala_s1"]]},
                                           rly_metrics.probability_of_improvement, reps=REPS)
    assert poi.iloc[0].tolist()[:2] == ["impoola_s1", "impala_s1"]
    np.testing.assert_allclose(poi.iloc[0].tolist()[2:], [point["p"], *np.ravel(ci["p"])], rtol=1e-12)
    assert point["p"] == 1.0  # impoola's every run beats impala's on every game

    taus, profiles, profile_cis = stats.performance_profiles(scores, np.linspace(0, 1, 11), reps=REPS, seed=2)
    np.random.seed(2)
    direct, direct_cis = rly.create_performance_profile(scores, taus, reps=REPS)
    np.testing.assert_array_equal(profiles["impala_s1"], direct["impala_s1"])
    np.testing.assert_array_equal(profile_cis["impala_s1"], direct_cis["impala_s1"])


def test_vectorized_metrics_equal_rliable() -> None:
    rng = np.random.default_rng(0)
    for shape_x, shape_y in (((5, 4), (5, 4)), ((3, 6), (4, 6))):
        x, y = rng.integers(0, 4, shape_x).astype(float), rng.integers(0, 4, shape_y).astype(float)  # many ties
        assert stats.improvement_probability(x, y) == pytest.approx(rly_metrics.probability_of_improvement(x, y),
                                                                    abs=1e-12)
    assert stats.improvement_probability(x, x) == rly_metrics.probability_of_improvement(x, x) == 0.5
    taus = np.linspace(0, 4, 17)
    np.testing.assert_array_equal(stats.score_distribution(x, taus), rly.score_distributions(x, taus))


def test_iqm_curves_match_rliable(table: pd.DataFrame) -> None:
    curves, grid, games = stats.interpolated_scores(table, "scores/normalized_score_test")
    np.testing.assert_array_equal(grid, EVAL_STEPS)
    expected = np.stack([known_matrix("impoola_s1", s) for s in EVAL_STEPS], axis=-1)
    np.testing.assert_allclose(curves["impoola_s1"], expected, atol=1e-12)
    ours = stats.iqm_curves(table, "scores/normalized_score_test", reps=REPS, seed=5)
    np.random.seed(5)
    points, cis = rly.get_interval_estimates(
        curves, lambda x: np.array([rly_metrics.aggregate_iqm(x[..., t]) for t in range(x.shape[-1])]), reps=REPS)
    for model in curves:
        rows = ours[ours.model == model]
        np.testing.assert_allclose(rows.iqm, points[model], rtol=1e-12)
        np.testing.assert_allclose(rows[["lower", "upper"]].to_numpy().T, cis[model], rtol=1e-12)


def test_step_grid_interpolates_unaligned_runs() -> None:
    grid = stats.step_grid([np.array([0.0, 100.0, 300.0]), np.array([50.0, 250.0, 400.0])])
    np.testing.assert_array_equal(grid, [50.0, 175.0, 300.0])
    np.testing.assert_array_equal(stats.step_grid([np.array([1, 2, 3])] * 2), [1, 2, 3])
    np.testing.assert_allclose(stats.smooth(np.array([1.0, 1.0, 1.0]), 0.9), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="overlap"):
        stats.step_grid([np.array([0.0, 1.0]), np.array([2.0, 3.0])])


def test_mean_curves_known_values(table: pd.DataFrame) -> None:
    curves = stats.mean_curves(table, "scores/normalized_score_test")
    row = curves[(curves.model == "impala_s1") & (curves.game == "coinrun") & (curves.step == TOTAL)].iloc[0]
    finals = [known_score("impala_s1", "coinrun", s, TOTAL) for s in SEEDS]
    assert row["mean"] == pytest.approx(np.mean(finals)) and row["std"] == pytest.approx(np.std(finals))


def test_layout_warns_and_truncates_unequal_seeds(table: pd.DataFrame) -> None:
    fewer = table[~((table.model == "impala_s1") & (table.game == "bigfish") & (table.seed == 3))]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores, _ = stats.score_matrices(fewer, "scores/normalized_score_test")
    assert any("unequal runs per game" in str(w.message) for w in caught)
    assert scores["impoola_s1"].shape == (2, 3)
