"""rliable wrappers on the tidy table: score matrices, aggregates with bootstrap CIs, curves, PoI, profiles."""

from __future__ import annotations

import contextlib
import re
import warnings
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.stats
from rliable import library as rly
from rliable import metrics as rly_metrics

from impoola.envs.games import GAMES

REPS = 10_000
CONFIDENCE = 0.95
AGGREGATES: dict[str, Callable[[np.ndarray], float]] = {
    "IQM": rly_metrics.aggregate_iqm,
    "Median": rly_metrics.aggregate_median,
    "Mean": rly_metrics.aggregate_mean,
    "Optimality Gap": rly_metrics.aggregate_optimality_gap,
}


@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Seed numpy's global RNG (rliable's bootstrap draws its indices from it) and restore it afterwards."""
    if seed is None:
        yield
        return
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def model_order(models: Sequence[str]) -> list[str]:
    """Models sorted by name with numbers compared numerically (impoola_s2 before impoola_s10)."""
    return sorted(models, key=lambda m: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(m))])


def game_order(games: Sequence[str]) -> list[str]:
    """Games in the package's GAMES order, unknown ones after it alphabetically."""
    return sorted(set(games), key=lambda g: (GAMES.index(g) if g in GAMES else len(GAMES), g))


def _select(table: pd.DataFrame, metric: str, models: Sequence[str] | None) -> pd.DataFrame:
    """Rows of one metric (of `models` if given), raising if none."""
    rows = table[table.metric == metric]
    if models is not None:
        rows = rows[rows.model.isin(models)]
    if rows.empty:
        raise ValueError(f"no values of {metric!r} in the table" + (f" for models {list(models)}" if models else ""))
    return rows


def final_values(table: pd.DataFrame, metric: str, models: Sequence[str] | None = None) -> pd.DataFrame:
    """Each run's last evaluation of `metric`: columns model, game, seed, run, step, value."""
    rows = _select(table, metric, models).sort_values("step")
    return rows.groupby("run", as_index=False).last()[["model", "game", "seed", "run", "step", "value"]]


def _layout(
    runs: pd.DataFrame, models: Sequence[str] | None
) -> tuple[list[str], list[str], int, dict[str, dict[str, list[str]]]]:
    """Models, the games all of them have, runs per game (the minimum) and the run ids per model and game by seed."""
    models = list(models) if models is not None else model_order(runs.model.unique())
    missing = set(models) - set(runs.model)
    if missing:
        raise ValueError(f"no runs of {sorted(missing)}; models in the table: {model_order(runs.model.unique())}")
    per_model = {m: runs[runs.model == m] for m in models}
    common = set.intersection(*(set(frame.game) for frame in per_model.values()))
    games = game_order(common)
    dropped = set(runs.game) - common
    if dropped:
        warnings.warn(f"games not run by every model are left out: {sorted(dropped)}", stacklevel=3)
    if not games:
        raise ValueError("the models have no game in common")
    ids = {m: {g: list(frame[frame.game == g].sort_values(["seed", "run"]).run.unique()) for g in games}
           for m, frame in per_model.items()}
    counts = [len(r) for per_game in ids.values() for r in per_game.values()]
    if len(set(counts)) > 1:
        warnings.warn(f"unequal runs per game ({min(counts)}..{max(counts)}): using the first {min(counts)} by seed",
                      stacklevel=3)
    return models, games, min(counts), ids


def score_matrices(
    table: pd.DataFrame, metric: str, models: Sequence[str] | None = None
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Final scores per model as rliable matrices (runs x games), and the game of each column."""
    final = final_values(table, metric, models).set_index("run")
    models, games, n, ids = _layout(final.reset_index(), models)
    scores = {m: np.array([[final.value[ids[m][g][i]] for g in games] for i in range(n)]) for m in models}
    return scores, games


def smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard-style debiased exponential moving average (weight 0 = no smoothing)."""
    if weight <= 0:
        return np.asarray(values, dtype=float)
    out, last, norm = [], 0.0, 0.0
    for value in values:
        last, norm = weight * last + (1 - weight) * value, weight * norm + (1 - weight)
        out.append(last / norm)
    return np.array(out)


def step_grid(steps: Sequence[np.ndarray], num_points: int | None = None) -> np.ndarray:
    """Common grid: the runs' evaluation steps if they all share them, else evenly spaced over the common range."""
    if num_points is None and all(np.array_equal(s, steps[0]) for s in steps):
        return np.asarray(steps[0], dtype=float)
    low, high = max(s[0] for s in steps), min(s[-1] for s in steps)
    if low >= high:
        raise ValueError(f"the runs' evaluation steps do not overlap (common range {low}..{high})")
    return np.linspace(low, high, num_points or int(np.median([len(s) for s in steps])))


def run_series(table: pd.DataFrame, metric: str, models: Sequence[str] | None = None,
               smoothing: float = 0.0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per run: (steps, values) of `metric` in step order, smoothed with `smooth`."""
    rows = _select(table, metric, models).sort_values("step")
    return {run: (g.step.to_numpy(float), smooth(g.value.to_numpy(float), smoothing)) for run, g in rows.groupby("run")}


def interpolated_scores(
    table: pd.DataFrame,
    metric: str,
    models: Sequence[str] | None = None,
    num_points: int | None = None,
    smoothing: float = 0.0,
) -> tuple[dict[str, np.ndarray], np.ndarray, list[str]]:
    """Evaluation curves on a common step grid: per model runs x games x steps, the grid, the games."""
    series = run_series(table, metric, models, smoothing)
    runs = _select(table, metric, models).drop_duplicates("run")
    models, games, n, ids = _layout(runs, models)
    grid = step_grid([series[r][0] for m in models for g in games for r in ids[m][g][:n]], num_points)
    curves = {
        m: np.array([[np.interp(grid, *series[ids[m][g][i]]) for g in games] for i in range(n)]) for m in models
    }
    return curves, grid, games


def mean_curves(
    table: pd.DataFrame,
    metric: str,
    by: Sequence[str] = ("model", "game"),
    models: Sequence[str] | None = None,
    num_points: int | None = None,
    smoothing: float = 0.0,
) -> pd.DataFrame:
    """Mean and std over the runs of each `by` group on the group's step grid: columns *by, step, mean, std, runs."""
    series = run_series(table, metric, models, smoothing)
    runs = _select(table, metric, models).drop_duplicates("run")
    frames = []
    for key, group in runs.groupby(list(by)):
        grid = step_grid([series[r][0] for r in group.run], num_points)
        values = np.array([np.interp(grid, *series[r]) for r in group.run])
        frames.append(pd.DataFrame({**dict(zip(by, key)), "step": grid, "mean": values.mean(0),
                                    "std": values.std(0), "runs": len(values)}))
    return pd.concat(frames, ignore_index=True)


def iqm_per_column(scores: np.ndarray) -> np.ndarray:
    """IQM over runs and games at every step of a runs x games x steps array (rliable's aggregate_iqm per step)."""
    return scipy.stats.trim_mean(scores.reshape(-1, scores.shape[-1]), proportiontocut=0.25, axis=0)


def aggregate_scores(
    scores: Mapping[str, np.ndarray],
    reps: int = REPS,
    seed: int | None = 0,
    aggregates: Mapping[str, Callable[[np.ndarray], float]] = AGGREGATES,
) -> pd.DataFrame:
    """Point estimates and 95% stratified bootstrap CIs: columns model, aggregate, value, lower, upper."""
    def func(x: np.ndarray) -> np.ndarray:
        return np.array([f(x) for f in aggregates.values()])

    with seeded(seed):
        points, intervals = rly.get_interval_estimates(dict(scores), func, reps=reps,
                                                       confidence_interval_size=CONFIDENCE)
    return pd.DataFrame([
        (model, name, points[model][i], intervals[model][0, i], intervals[model][1, i])
        for model in scores for i, name in enumerate(aggregates)
    ], columns=["model", "aggregate", "value", "lower", "upper"])


def iqm_curves(
    table: pd.DataFrame,
    metric: str,
    models: Sequence[str] | None = None,
    reps: int = REPS,
    seed: int | None = 0,
    num_points: int | None = None,
    smoothing: float = 0.0,
) -> pd.DataFrame:
    """IQM with 95% CIs at every point of the common step grid: columns model, step, iqm, lower, upper."""
    curves, grid, _ = interpolated_scores(table, metric, models, num_points, smoothing)
    with seeded(seed):
        points, intervals = rly.get_interval_estimates(curves, iqm_per_column, reps=reps,
                                                       confidence_interval_size=CONFIDENCE)
    return pd.concat([
        pd.DataFrame({"model": model, "step": grid, "iqm": points[model],
                      "lower": intervals[model][0], "upper": intervals[model][1]})
        for model in curves
    ], ignore_index=True)


def improvement_probability(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """rliable's probability_of_improvement (Mann-Whitney U / (n·m) per game, averaged), vectorized over games."""
    greater = (scores_x[:, None, :] > scores_y[None, :, :]).mean(axis=(0, 1))
    ties = (scores_x[:, None, :] == scores_y[None, :, :]).mean(axis=(0, 1))
    return float(np.mean(greater + 0.5 * ties))


def score_distribution(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """rliable's score distribution (fraction of all runs x games above each τ), vectorized over τ."""
    return (scores.reshape(-1, 1) > np.asarray(taus).reshape(1, -1)).mean(axis=0)


def probability_of_improvement(
    scores: Mapping[str, np.ndarray], pairs: Sequence[tuple[str, str]], reps: int = REPS, seed: int | None = 0
) -> pd.DataFrame:
    """P(X > Y) with 95% CIs (rliable's stratified independent bootstrap): columns x, y, probability, lower, upper."""
    unknown = {m for pair in pairs for m in pair} - set(scores)
    if unknown:
        raise ValueError(f"unknown model(s) {sorted(unknown)} in the comparison; known: {list(scores)}")
    pair_scores = {f"{x},{y}": [scores[x], scores[y]] for x, y in pairs}
    with seeded(seed):
        points, intervals = rly.get_interval_estimates(pair_scores, improvement_probability,
                                                       reps=reps, confidence_interval_size=CONFIDENCE)
    return pd.DataFrame([(x, y, float(points[f"{x},{y}"]), *np.ravel(intervals[f"{x},{y}"])) for x, y in pairs],
                        columns=["x", "y", "probability", "lower", "upper"])


def performance_profiles(
    scores: Mapping[str, np.ndarray], taus: np.ndarray | None = None, reps: int = REPS, seed: int | None = 0
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Score distributions (fraction of runs above τ) with 95% CIs: taus, profiles, CIs per model."""
    if taus is None:
        top = max(float(np.max(s)) for s in scores.values())
        taus = np.linspace(0.0, max(top, 1.0), 81)
    with seeded(seed):
        profiles, cis = rly.create_performance_profile(dict(scores), taus, custom_profile_func=score_distribution,
                                                       reps=reps, confidence_interval_size=CONFIDENCE)
    return taus, profiles, cis
