"""The shipped example (OpenAI's published PPO runs) as plot_utils' tidy table, and every interval plot's marks:
figures of the example data and of degenerate cases (zero-width intervals, one-point curves) have no empty axes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from impoola import reference_curves
from impoola.envs.games import GAMES, NORMALIZATION
from plot_utils import data, figures, stats

REPS = 100
TEST, TRAIN = figures.TEST_METRIC, figures.TRAIN_METRIC


@pytest.fixture(scope="module")
def example() -> pd.DataFrame:
    return data.load_example()


def test_example_table(example: pd.DataFrame) -> None:
    assert list(example.columns) == [*data.COLUMNS, *data.META_COLUMNS]
    assert set(example.model) == {"impala_s1 (train-procgen)"}
    assert set(example.metric) == {TEST, TRAIN, data.PARAMS_METRIC}
    assert data.model_info(example).params.tolist() == [626_256]  # train-procgen's network is Impala-CNN τ=1
    assert set(example.game) == set(GAMES) and set(example.seed) == {0, 1, 2} and example.run.nunique() == 48
    assert set(zip(example.encoder, example.scale, example.distribution_mode, example.track, example.exp_name)) == {
        ("impala", 1.0, "easy", "generalization", "train-procgen")}
    assert example.attrs["settings"]["gamma"] == 0.999 and "openai/train-procgen" in example.attrs["source"]
    steps = np.sort(example[example.metric == TEST].step.unique())
    assert steps[0] == 16384 and steps[-1] == 1525 * 16384 == 24_985_600 and len(steps) == 97  # updates 1, 17, ...
    # known published value: fruitbot run 2, full-distribution worker at update 1525: eprewmean 26.40
    r_min, r_max = NORMALIZATION["easy"]["fruitbot"]
    row = example[(example.game == "fruitbot") & (example.seed == 2) & (example.metric == TEST)
                  & (example.step == 24_985_600)]
    assert row.value.tolist() == [pytest.approx((26.40 - r_min) / (r_max - r_min))]
    # normalized with the package's constants: jumper's R_min is 3 here (1 in train-procgen's constants.py)
    raw = reference_curves.curves("jumper", "train").loc[16384, 0]
    jumper = example[(example.game == "jumper") & (example.seed == 0) & (example.metric == TRAIN)
                     & (example.step == 16384)]
    assert jumper.value.tolist() == [pytest.approx((raw - 3.0) / 7.0)]
    assert data.load_runs("example").equals(example)
    longer = data.load_example(max_steps=50_000_000, every=64)
    assert longer.step.max() == 3051 * 16384 and longer.step.nunique() == 49  # 1, 65, ..., 3009 and 3051
    scaling = figures.scaling_points(stats.aggregate_scores(stats.score_matrices(example, TEST)[0], reps=REPS),
                                     data.model_info(example))
    assert scaling[["family", "scale", "params"]].values.tolist() == [["impala (train-procgen)", 1.0, 626_256]]
    with pytest.raises(ValueError, match="every 0"):
        data.load_example(every=0)


def data_marks(ax: Axes) -> list[str]:
    """What an axes shows in data coordinates inside its view limits: "line", "marker", "bar", "band" (one per artist).

    Reference lines (axvline, grid) are not counted: their transform is not the data transform.
    """
    (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())

    def inside(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.isfinite(x) & np.isfinite(y) & (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)

    marks = []
    for line in ax.lines:
        if not line.get_visible() or line.get_transform() != ax.transData:
            continue
        x, y = (np.asarray(v, dtype=float) for v in line.get_data())
        shown = inside(x, y)
        if line.get_marker() not in ("", "None", None, " ") and shown.any():
            marks.append("marker")
        elif line.get_linestyle() not in ("None", "", " ") and shown.sum() >= 2:
            marks.append("line")
    marks += ["bar" for patch in ax.patches if isinstance(patch, Rectangle) and patch.get_width() > 0
              and patch.get_height() > 0 and x0 <= patch.get_x() + patch.get_width() / 2 <= x1]
    marks += ["band" for collection in ax.collections if isinstance(collection, PolyCollection)
              and any(len(path.vertices) > 2 for path in collection.get_paths())]
    return marks


def assert_no_empty_axes(fig: Figure) -> None:
    """Every visible axes of `fig` shows a line or a marker (a point estimate), not just an interval or nothing."""
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert shown
    for ax in shown:
        marks = data_marks(ax)
        assert {"line", "marker"} & set(marks), f"axes {ax.get_title()!r} shows {marks}"


def dark_pixel_at(fig: Figure, ax: Axes, x: float, y: float) -> bool:
    """Whether the rendered figure is dark (a black marker) at data point (x, y) of `ax`."""
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())
    px, py = ax.transData.transform((x, y))
    r, g, b, _ = image[image.shape[0] - int(round(py)), int(round(px))]
    return max(r, g, b) < 60


def test_example_figures_have_no_empty_axes(example: pd.DataFrame) -> None:
    scores, _ = stats.score_matrices(example, TEST)
    aggregates = stats.aggregate_scores(scores, reps=REPS)
    test = stats.iqm_curves(example, TEST, reps=REPS)
    built = [
        figures.plot_game_curves(stats.mean_curves(example, TEST), "normalized score"),
        figures.plot_aggregate_curves(test, "normalized score"),
        figures.plot_final_intervals(aggregates),
        figures.plot_scaling(figures.scaling_points(aggregates, data.model_info(example))),
        figures.plot_train_test(stats.iqm_curves(example, TRAIN, reps=REPS), test),
        figures.plot_profiles(*stats.performance_profiles(scores, reps=REPS)),
        figures.plot_scaling(None),
    ]
    for fig in built:
        assert_no_empty_axes(fig)
    assert len(built[0].axes) == 16 and sum(ax.get_visible() for ax in built[0].axes) == 16


def degenerate_scores() -> dict[str, np.ndarray]:
    """Two models whose every run scores the same on each game, and `better` beats `worse` on every run."""
    games = np.array([0.2, 0.4, 0.6])
    return {"better": np.tile(games + 0.3, (3, 1)), "worse": np.tile(games, (3, 1))}


def test_probability_one_with_zero_width_interval_is_a_visible_marker() -> None:
    poi = stats.probability_of_improvement(degenerate_scores(), [("better", "worse"), ("worse", "better")],
                                           reps=REPS)
    assert poi[["probability", "lower", "upper"]].values.tolist() == [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    fig = figures.plot_poi(poi)
    ax = fig.axes[0]
    assert [patch.get_width() for patch in ax.patches] == [0.0, 0.0]  # both intervals have zero width
    markers = [line for line in ax.lines if line.get_marker() == "o"]
    assert [(line.get_xdata()[0], line.get_ydata()[0]) for line in markers] == [(1.0, 0), (0.0, 1)]
    lo, hi = ax.get_xlim()
    assert lo < -0.02 and hi > 1.02  # off the frame, not hidden under it
    assert dark_pixel_at(fig, ax, 1.0, 0) and dark_pixel_at(fig, ax, 0.0, 1)
    assert_no_empty_axes(fig)


def test_zero_width_aggregate_intervals_are_visible_markers() -> None:
    aggregates = stats.aggregate_scores(degenerate_scores(), reps=REPS)
    assert (aggregates.lower == aggregates.upper).all() and (aggregates.value == aggregates.lower).all()
    fig = figures.plot_final_intervals(aggregates)
    for ax, name in zip(fig.axes, stats.AGGREGATES):
        expected = aggregates[aggregates["aggregate"] == name].value.tolist()
        markers = [line.get_xdata()[0] for line in ax.lines if line.get_marker() == "o"]
        assert markers == expected
        lo, hi = ax.get_xlim()
        assert all(lo < value < hi for value in expected)
        assert all(dark_pixel_at(fig, ax, value, y) for y, value in enumerate(expected))
    assert_no_empty_axes(fig)


def test_one_point_curves_are_markers_with_error_bars() -> None:
    curves = pd.DataFrame({"model": ["a", "b"], "step": [1e6, 1e6], "iqm": [0.4, 0.5], "lower": [0.3, 0.5],
                           "upper": [0.45, 0.5]})
    for fig in (figures.plot_aggregate_curves(curves, "score"), figures.plot_train_test(curves, curves)):
        ax = fig.axes[0]
        assert {(line.get_xdata()[0], line.get_ydata()[0]) for line in ax.lines if line.get_marker() == "o"} == {
            (1.0, 0.4), (1.0, 0.5)}
        assert_no_empty_axes(fig)
    game = pd.DataFrame({"model": ["a"], "game": ["bigfish"], "step": [5e5], "mean": [0.2], "std": [0.0]})
    assert_no_empty_axes(figures.plot_game_curves(game, "score"))


def test_degenerate_runs_draw_every_figure(tmp_path: Path) -> None:
    rows = []
    for model, matrix in degenerate_scores().items():
        for seed in range(3):
            for g, game in enumerate(("bigfish", "coinrun", "ninja")):
                for step in (0, 100, 200):
                    rows.append((model, game, seed, step, TEST, matrix[seed, g] * step / 200, f"{game}-{model}-{seed}"))
    table = pd.DataFrame(rows, columns=["model", "game", "seed", "step", "metric", "value", "run"]).assign(
        encoder="impala", scale=1.0, distribution_mode="easy", track="generalization", exp_name="ppo")
    path = data.save_table(table.astype(data.DTYPES), tmp_path / "tidy.csv")
    assert figures.main(["--source", str(path), "--out", str(tmp_path / "figs"), "--reps", str(REPS),
                         "--compare", "better:worse", "--formats", "png"]) == 0
    poi = pd.read_csv(tmp_path / "figs" / "poi.csv")
    assert poi[["probability", "lower", "upper"]].values.tolist() == [[1.0, 1.0, 1.0]]
    for name in ("game_curves", "aggregate_curves", "final_intervals", "profiles", "poi"):
        assert (tmp_path / "figs" / f"{name}.png").stat().st_size > 1000


def test_cli_example_source(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert figures.main(["--source", "example", "--out", str(tmp_path), "--figures", "final_intervals", "tables",
                         "--reps", str(REPS), "--formats", "png"]) == 0
    assert (tmp_path / "final_intervals.png").stat().st_size > 1000
    assert "| impala_s1 (train-procgen) |" in (tmp_path / "tables" / "aggregate.md").read_text()
