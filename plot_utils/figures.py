"""The paper's figures (PDF and PNG, matplotlib Agg canvases, no LaTeX) and the one-command CLI.

    python -m plot_utils.figures --source runs/ --out figures/
    python -m plot_utils.figures --source example --out figures/        # OpenAI's published PPO runs, no runs needed
    python -m plot_utils.figures --source wandb --entity E --project P --tags paper --filter distribution_mode=easy
    python -m plot_utils.figures --out figures/ --figures scaling        # the published Figure 1 alone
"""

from __future__ import annotations

import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from impoola.cli import run_command
from impoola.options import Checked, Float, Int, Maybe
from impoola.run.rundir import check_output_dir, check_output_file
from plot_utils import data, published, stats, tables

FORMATS = ("pdf", "png")
DPI = 150
TEST_METRIC = "scores/normalized_score_test"
TRAIN_METRIC = "scores/normalized_score_train"
DORMANT_METRICS = ("dormant_neurons/dormant_fraction",)
FIGURES = ("game_curves", "aggregate_curves", "final_intervals", "scaling", "train_test", "dormant", "profiles",
           "poi", "tables")
STEPS_LABEL = "Environment steps (M)"
_WIDTH_TOKEN = r"_s\d+(?:\.\d+)?(?=[_ ]|$)"


def new_figure(width: float, height: float) -> Figure:
    """A figure on an Agg canvas (no pyplot state, no display needed)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, out: str | Path, name: str, formats: Sequence[str] = FORMATS, dpi: int = DPI
                ) -> list[Path]:
    """Write `fig` as out/name.<format> for each format (raster formats at `dpi`) and return the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.{fmt}" for fmt in formats]
    for path in paths:
        fig.savefig(path, dpi=dpi)
    return paths


def model_colors(models: Sequence[str]) -> dict[str, Any]:
    """A fixed colour per model (tab10, then tab20) so that every figure uses the same one."""
    palette = list(colormaps["tab10"].colors) + list(colormaps["tab20"].colors)
    return {model: palette[i % len(palette)] for i, model in enumerate(models)}


def _ordered(models: Sequence[str], colors: Mapping[str, Any] | None) -> list[str]:
    """The distinct models, in the order of `colors` where given (the order the caller chose)."""
    present = list(dict.fromkeys(models))
    return [m for m in colors if m in present] + [m for m in present if m not in colors] if colors else present


def metric_label(metric: str) -> str:
    """Axis label of a metric key: "scores/normalized_score_test" -> "normalized score test"."""
    return metric.split("/")[-1].replace("_", " ")


def _legend(fig: Figure, axes: Axes) -> None:
    """One legend for the whole figure, above the axes."""
    handles, labels = axes.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 4), frameon=False)


def draw_curve(ax: Axes, x: Any, y: Any, lower: Any, upper: Any, color: Any, label: str, linestyle: str = "-",
               alpha: float = 0.2) -> None:
    """A curve and its interval band; a curve of a single point is a marker with an error bar (hollow if not solid)."""
    x, y, lower, upper = (np.asarray(values, dtype=float) for values in (x, y, lower, upper))
    if len(x) == 1:
        yerr = np.maximum(np.vstack([y - lower, upper - y]), 0.0)
        bars = ax.errorbar(x, y, yerr=yerr, fmt="o", color=color, label=label, capsize=3,
                           markerfacecolor=color if linestyle == "-" else "white")
        bars.lines[2][0].set_linestyle(linestyle)
        return
    ax.plot(x, y, linestyle, color=color, label=label)
    ax.fill_between(x, lower, upper, color=color, alpha=alpha)


def plot_game_curves(curves: pd.DataFrame, ylabel: str, colors: Mapping[str, Any] | None = None) -> Figure:
    """Per-game learning curves, mean ± std over seeds (`stats.mean_curves` grouped by model and game)."""
    games = stats.game_order(curves.game.unique())
    models = _ordered(curves.model, colors)
    colors = colors or model_colors(models)
    ncols = min(4, len(games))
    nrows = math.ceil(len(games) / ncols)
    fig = new_figure(3.2 * ncols, 2.4 * nrows + 0.6)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, game in zip(axes, games):
        for model in models:
            rows = curves[(curves.game == game) & (curves.model == model)]
            draw_curve(ax, rows.step / 1e6, rows["mean"], rows["mean"] - rows["std"], rows["mean"] + rows["std"],
                       colors[model], model)
        ax.set_title(game)
        ax.grid(alpha=0.3)
    for ax in axes[len(games):]:
        ax.set_visible(False)
    fig.supxlabel(STEPS_LABEL)
    fig.supylabel(ylabel)
    _legend(fig, axes[0])
    return fig


def plot_aggregate_curves(curves: pd.DataFrame, ylabel: str, colors: Mapping[str, Any] | None = None) -> Figure:
    """IQM over games and seeds with 95% CI bands against environment steps (`stats.iqm_curves`)."""
    models = _ordered(curves.model, colors)
    colors = colors or model_colors(models)
    fig = new_figure(5.0, 4.0)
    ax = fig.subplots()
    for model in models:
        rows = curves[curves.model == model]
        draw_curve(ax, rows.step / 1e6, rows.iqm, rows.lower, rows.upper, colors[model], model)
    ax.set_xlabel(STEPS_LABEL)
    ax.set_ylabel(f"IQM {ylabel}")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return fig


def draw_interval(ax: Axes, y: float, value: float, lower: float, upper: float, color: Any) -> None:
    """A horizontal interval bar at row `y` and a marker at its point estimate, visible even if the bar has no width.

    The axes' x limits get a margin beyond the outermost bar, so that a point on an interval's end (a
    probability of 1.0 with the interval [1.0, 1.0]) is not hidden under the frame.
    """
    ax.barh(y, upper - lower, left=lower, height=0.6, color=color, alpha=0.75)
    ax.plot([value], [y], marker="o", markersize=7, color="black", markeredgecolor="white", linestyle="none",
            zorder=3)
    ax.use_sticky_edges = False
    ax.margins(x=0.05)


def plot_final_intervals(aggregates: pd.DataFrame, colors: Mapping[str, Any] | None = None) -> Figure:
    """Point estimates (markers) and 95% CIs (bars) of each aggregate (one panel each), one row per model.

    `aggregates` as `stats.aggregate_scores` returns it.
    """
    models = _ordered(aggregates.model, colors)
    names = list(dict.fromkeys(aggregates["aggregate"]))
    colors = colors or model_colors(models)
    fig = new_figure(2.6 * len(names), 0.45 * len(models) + 1.2)
    axes = fig.subplots(1, len(names), sharey=True, squeeze=False).ravel()
    for ax, name in zip(axes, names):
        for y, model in enumerate(models):
            row = aggregates[(aggregates.model == model) & (aggregates["aggregate"] == name)].iloc[0]
            draw_interval(ax, y, row.value, row.lower, row.upper, colors[model])
        ax.set_title(name)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(models)), models)
    axes[0].invert_yaxis()
    fig.supxlabel("Normalized score")
    return fig


def scaling_points(aggregates: pd.DataFrame, info: pd.DataFrame) -> pd.DataFrame:
    """Scaling-figure points: model, family, scale, params (logged, else the known count), iqm, lower, upper.

    The family is the model name without its width token (impala_s2_pruned -> impala_pruned), else the encoder.
    """
    iqm = aggregates[aggregates["aggregate"] == "IQM"].rename(columns={"value": "iqm"})
    points = iqm.merge(info, on="model")
    stripped = points.model.str.replace(_WIDTH_TOKEN, "", regex=True)
    points["family"] = stripped.where(points.model.str.contains(_WIDTH_TOKEN), points.encoder).fillna(points.model)
    known = [published.PARAM_COUNTS.get(f, {}).get(s, np.nan) for f, s in zip(points.family, points.scale)]
    points["params"] = points.params.fillna(pd.Series(known, index=points.index, dtype=float))
    if points.params.isna().any():
        print(f"scaling: left out {list(points.model[points.params.isna()])} (no charts/total_network_params logged "
              "and no known count)", file=sys.stderr)
    return points[points.params.notna()][["model", "family", "scale", "params", "iqm", "lower", "upper"]]


def _scaling_series(ax: Axes, points: pd.DataFrame, style: str, suffix: str = "", hollow: bool = False) -> None:
    """One line per family through its τ points, with error bars and τ labels; the paper's families keep their colours,
    other families get the other tab10 colours."""
    known = set(published.FAMILY_COLORS.values())
    spare = [color for color in map(to_hex, colormaps["tab10"].colors) if color not in known]
    unknown = [family for family in points.family.unique() if family not in published.FAMILY_COLORS]
    colors = {**published.FAMILY_COLORS, **{family: spare[i % len(spare)] for i, family in enumerate(unknown)}}
    for family, rows in points.groupby("family", sort=False):
        rows = rows.sort_values("params")
        x, y = rows.params.to_numpy(float), rows.iqm.to_numpy(float)
        yerr = np.vstack([y - rows.lower.to_numpy(float), rows.upper.to_numpy(float) - y])
        line = ax.errorbar(x, y, yerr=yerr, fmt=style, color=colors[family], capsize=3,
                           label=f"{published.FAMILY_LABELS.get(family, family)}{suffix}",
                           markerfacecolor="none" if hollow else None)
        for px, py, scale in zip(x, y, rows.scale):
            if pd.notna(scale):
                ax.annotate(f"τ={scale:g}", (px, py), textcoords="offset points", xytext=(4, -10), fontsize=7,
                            color=line.lines[0].get_color())


def plot_scaling(points: pd.DataFrame | None = None, show_published: bool = True) -> Figure:
    """Final test IQM vs parameter count per model family and τ (the paper's Figure 1), with the published points.

    Without `points` the published figure is drawn alone (solid); with them the paper's points are dashed and hollow.
    """
    fig = new_figure(5.5, 4.2)
    ax = fig.subplots()
    if points is None:
        _scaling_series(ax, published.figure1_table(), "o-")
    else:
        if show_published:
            _scaling_series(ax, published.figure1_table(), "o--", " (paper)", hollow=True)
        _scaling_series(ax, points, "s-", " (runs)" if show_published else "")
    ax.set_xscale("log")
    ax.margins(x=0.08)
    ax.set_xlabel("Parameters")
    ax.set_ylabel("IQM normalized test score")
    ax.grid(alpha=0.3, which="both")
    ax.legend(frameon=False, fontsize=8)
    return fig


def plot_train_test(train: pd.DataFrame, test: pd.DataFrame, colors: Mapping[str, Any] | None = None) -> Figure:
    """IQM curves of the train-level score (dashed) and the test score (solid) per model, with CI bands."""
    models = _ordered([*test.model, *train.model], colors)
    colors = colors or model_colors(models)
    fig = new_figure(5.0, 4.0)
    ax = fig.subplots()
    for curves, style, split in ((train, "--", "train"), (test, "-", "test")):
        for model in models:
            rows = curves[curves.model == model]
            draw_curve(ax, rows.step / 1e6, rows.iqm, rows.lower, rows.upper, colors[model], f"{model} ({split})",
                       style, alpha=0.15)
    ax.set_xlabel(STEPS_LABEL)
    ax.set_ylabel("IQM normalized score")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    return fig


def plot_dormant(curves: Mapping[str, pd.DataFrame], colors: Mapping[str, Any] | None = None) -> Figure:
    """Dormant-neuron curves: per metric one panel, mean ± std over all runs of each model (`stats.mean_curves`)."""
    models = _ordered([m for frame in curves.values() for m in frame.model], colors)
    colors = colors or model_colors(models)
    fig = new_figure(4.5 * len(curves), 3.8)
    axes = fig.subplots(1, len(curves), squeeze=False).ravel()
    for ax, (metric, frame) in zip(axes, curves.items()):
        for model in models:
            rows = frame[frame.model == model]
            draw_curve(ax, rows.step / 1e6, rows["mean"], rows["mean"] - rows["std"], rows["mean"] + rows["std"],
                       colors[model], model)
        ax.set_title(metric_label(metric))
        ax.set_xlabel(STEPS_LABEL)
        ax.grid(alpha=0.3)
    axes[0].legend(frameon=False)
    return fig


def plot_heatmaps(frames: Mapping[str, pd.DataFrame], vmax: float | None = None) -> Figure:
    """Translation-sensitivity heatmaps (`data.load_heatmap`) side by side on one colour scale starting at 0."""
    vmax = vmax or max(float(np.nanmax(frame.to_numpy())) for frame in frames.values()) or 1.0
    fig = new_figure(3.6 * len(frames) + 0.8, 3.6)
    axes = fig.subplots(1, len(frames), squeeze=False).ravel()
    for ax, (label, frame) in zip(axes, frames.items()):
        k = int(frame.columns.max())
        image = ax.imshow(frame.to_numpy(), cmap="viridis", vmin=0.0, vmax=vmax,
                          extent=(-k - 0.5, k + 0.5, k + 0.5, -k - 0.5))
        ax.set_title(label)
        ax.set_xlabel("dx (pixels)")
        ax.set_ylabel("dy (pixels)")
    fig.colorbar(image, ax=list(axes), label="mean L1 distance of action probabilities")
    return fig


def plot_profiles(taus: np.ndarray, profiles: Mapping[str, np.ndarray], cis: Mapping[str, np.ndarray],
                  colors: Mapping[str, Any] | None = None) -> Figure:
    """Performance profiles: fraction of runs with a final score above τ, with 95% CI bands."""
    colors = colors or model_colors(list(profiles))
    fig = new_figure(5.0, 4.0)
    ax = fig.subplots()
    for model, profile in profiles.items():
        draw_curve(ax, taus, profile, cis[model][0], cis[model][1], colors[model], model)
    ax.set_xlabel("Normalized score (τ)")
    ax.set_ylabel("Fraction of runs with score > τ")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return fig


def plot_poi(poi: pd.DataFrame) -> Figure:
    """Probability of improvement P(X > Y) (markers) with 95% CIs (bars), one row per pair."""
    fig = new_figure(5.0, 0.5 * len(poi) + 1.2)
    ax = fig.subplots()
    for y, row in enumerate(poi.itertuples()):
        draw_interval(ax, y, row.probability, row.lower, row.upper, "#1f77b4")
    ax.set_yticks(range(len(poi)), [f"P({row.x} > {row.y})" for row in poi.itertuples()])
    ax.axvline(0.5, color="gray", linestyle=":")
    ax.invert_yaxis()
    ax.set_xlabel("Probability of improvement")
    return fig


def make_figures(
    table: pd.DataFrame,
    out: str | Path,
    *,
    metric: str = TEST_METRIC,
    train_metric: str = TRAIN_METRIC,
    models: Sequence[str] | None = None,
    figures: Sequence[str] = FIGURES,
    reps: int = stats.REPS,
    seed: int = 0,
    smoothing: float = 0.0,
    num_points: int | None = None,
    dormant_metrics: Sequence[str] = DORMANT_METRICS,
    compare: Sequence[tuple[str, str]] = (),
    show_published: bool = True,
    formats: Sequence[str] = FORMATS,
    dpi: int = DPI,
) -> list[Path]:
    """Every requested figure (and the tables) of the runs in `table`; figures whose metrics are missing are skipped.
    The models asked for are checked against the table before the first file is written."""
    out = Path(out)
    known = stats.model_order(table[table.metric == metric].model.unique())
    for option, asked in (("models", models or ()), ("compare", [m for pair in compare for m in pair])):
        unknown = [m for m in dict.fromkeys(asked) if m not in known]
        if unknown:
            raise ValueError(f"invalid {option}: unknown model(s) {', '.join(unknown)} (no {metric} in the runs); "
                             f"valid: {', '.join(known)}")
    models = list(models) if models else known
    colors = model_colors(models)
    label = metric_label(metric)
    paths: list[Path] = []
    scores, _ = stats.score_matrices(table, metric, models)
    aggregates = stats.aggregate_scores(scores, reps=reps, seed=seed)
    if "game_curves" in figures:
        curves = stats.mean_curves(table, metric, ("model", "game"), models, num_points, smoothing)
        paths += save_figure(plot_game_curves(curves, label, colors), out, "game_curves", formats, dpi)
    if {"aggregate_curves", "train_test"} & set(figures):
        test = stats.iqm_curves(table, metric, models, reps, seed, num_points, smoothing)
    if "aggregate_curves" in figures:
        paths += save_figure(plot_aggregate_curves(test, label, colors), out, "aggregate_curves", formats, dpi)
    if "final_intervals" in figures:
        paths += save_figure(plot_final_intervals(aggregates, colors), out, "final_intervals", formats, dpi)
    if "scaling" in figures:
        points = scaling_points(aggregates, data.model_info(table))
        paths += save_figure(plot_scaling(points, show_published), out, "scaling", formats, dpi)
    if "train_test" in figures:
        with_train = [m for m in models if ((table.metric == train_metric) & (table.model == m)).any()]
        if with_train and train_metric != metric:
            train = stats.iqm_curves(table, train_metric, with_train, reps, seed, num_points, smoothing)
            paths += save_figure(plot_train_test(train, test, colors), out, "train_test", formats, dpi)
        else:
            print(f"train_test skipped: no {train_metric} distinct from {metric}", file=sys.stderr)
    if "dormant" in figures:
        logged = set(table.metric[table.model.isin(models)])
        present = [m for m in dormant_metrics if m in logged]
        if present:
            curves = {m: stats.mean_curves(table, m, ("model",), models, num_points, smoothing) for m in present}
            paths += save_figure(plot_dormant(curves, colors), out, "dormant", formats, dpi)
        else:
            print(f"dormant skipped: none of {list(dormant_metrics)} logged", file=sys.stderr)
    if "profiles" in figures:
        paths += save_figure(plot_profiles(*stats.performance_profiles(scores, reps=reps, seed=seed), colors),
                             out, "profiles", formats, dpi)
    if "poi" in figures and compare:
        poi = stats.probability_of_improvement(scores, compare, reps=reps, seed=seed)
        paths += save_figure(plot_poi(poi), out, "poi", formats, dpi)
        poi.to_csv(out / "poi.csv", index=False)
        paths.append(out / "poi.csv")
    if "tables" in figures:
        paths += tables.write_tables(tables.final_score_table(table, metric, models), aggregates, out / "tables")
    return paths


def load_translations(csvs: Sequence[str | Path], labels: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
    """The translation-sensitivity heatmaps of CSVs written by the analysis module, by title."""
    labels = list(labels) if labels else [Path(path).stem for path in csvs]
    if len(labels) != len(csvs):
        raise ValueError(f"invalid translation_labels: {len(labels)} labels for {len(csvs)} CSVs; valid: one each")
    return {label: data.load_heatmap(path) for label, path in zip(labels, csvs)}


def _pair(text: str) -> tuple[str, str]:
    """Parse X:Y into a (X, Y) model pair."""
    x, sep, y = text.partition(":")
    if not sep or not x or not y:
        raise ValueError(f"invalid compare {text!r}; valid: MODEL_X:MODEL_Y")
    return x, y


@dataclass(frozen=True)
class FiguresOptions(Checked):
    """Where the runs come from, which figures to draw and how."""

    source: str | None = None
    """run directory root, a tidy CSV, 'wandb', or 'example' (OpenAI's published PPO runs); omitted: published
    Figure 1 only"""
    out: str = "figures"
    """output directory"""
    entity: str | None = None
    """W&B entity (with --source wandb)"""
    project: str = "impoola"
    """W&B project (with --source wandb)"""
    tags: tuple[str, ...] = ()
    """W&B runs must carry all of these tags"""
    filter: tuple[str, ...] = ()
    """W&B config filters KEY=VALUE"""
    cache_dir: str = data.DEFAULT_CACHE_DIR
    """where W&B exports are cached"""
    refresh: bool = False
    """re-download a cached W&B export"""
    finished_only: bool = False
    """only runs marked done / W&B state finished"""
    label_keys: tuple[str, ...] = tuple(data.DEFAULT_LABEL_KEYS)
    """config keys joined by '/' into the model label"""
    metric: str = TEST_METRIC
    """score for curves, final scores and tables"""
    train_metric: str = TRAIN_METRIC
    """train-level score of the train-vs-test figure"""
    dormant_metrics: tuple[str, ...] = tuple(DORMANT_METRICS)
    """dormant-neuron metrics to plot"""
    models: tuple[str, ...] | None = None
    """models to plot, in this order (default: all)"""
    figures: tuple[str, ...] = FIGURES
    """figures to draw (default: all; --help of the module docstring lists them)"""
    compare: tuple[str, ...] = ()
    """model pairs X:Y for the probability-of-improvement figure"""
    reps: Int(1, 10**6) = stats.REPS
    """bootstrap repetitions"""
    seed: Int(0, 2**32, high_open=True) = 0
    """bootstrap seed"""
    smoothing: Float(0, 1, high_open=True) = 0.0
    """EMA weight of the curves"""
    num_points: Maybe(Int(2, 10**6)) = None
    """points of the common step grid (default: the eval steps)"""
    published: bool = True
    """draw the paper's points on the scaling figure (--no-published leaves them off)"""
    translation: tuple[str, ...] = ()
    """translation-sensitivity CSVs to draw"""
    translation_labels: tuple[str, ...] | None = None
    """titles of the translation heatmaps"""
    formats: tuple[str, ...] = FORMATS
    """file formats of every figure (e.g. pdf png svg)"""
    export: str | None = None
    """also write the tidy table to this CSV"""

    def check(self) -> None:
        for figure in self.figures:
            if figure not in FIGURES:
                raise ValueError(f"invalid figures value {figure!r}; valid: {', '.join(FIGURES)}")
        for pair in self.compare:
            _pair(pair)
        if self.source == "wandb" and not self.entity:
            raise ValueError("invalid --source wandb without --entity; valid: --source wandb --entity E")
        if self.source not in (None, "wandb", data.EXAMPLE_SOURCE):
            check_source(self.source)
        check_output_dir("out", self.out)
        if self.export is not None:
            check_output_file("export", self.export)
        for path in self.translation:
            if not Path(path).is_file():
                raise ValueError(f"invalid translation {path!r}: no such file; valid: CSVs of analyze.py")
        supported = FigureCanvasAgg.get_supported_filetypes()
        for fmt in self.formats:
            if fmt not in supported:
                raise ValueError(f"invalid formats value {fmt!r}; valid: {', '.join(sorted(supported))}")


def check_source(source: str) -> None:
    """A one-line ValueError unless `source` is a directory or a CSV with the tidy table's columns."""
    path = Path(source)
    if not path.exists():
        raise ValueError(f"invalid source {source!r}: it does not exist; valid: a run directory root, a tidy CSV, "
                         "or 'wandb'")
    if path.is_file():
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        missing = [column for column in data.COLUMNS if column not in header]
        if missing:
            raise ValueError(f"invalid source {source!r}: missing columns {', '.join(missing)}; valid: a tidy CSV "
                             f"with columns {', '.join(data.COLUMNS)}")


def run(args: FiguresOptions) -> list[Path]:
    """Load the runs named by `args`, write the figures and tables and return the written paths."""
    paths: list[Path] = []
    translations = load_translations(args.translation, args.translation_labels) if args.translation else None
    if args.source:
        metrics = tuple(dict.fromkeys([*data.DEFAULT_METRICS, args.metric, args.train_metric, *args.dormant_metrics]))
        table = data.load_runs(
            args.source, entity=args.entity, project=args.project, tags=args.tags,
            config=data.parse_filters(args.filter), metrics=metrics, label_keys=args.label_keys,
            finished_only=args.finished_only, cache_dir=args.cache_dir, refresh=args.refresh,
        )
        paths += make_figures(
            table, args.out, metric=args.metric, train_metric=args.train_metric, models=args.models,
            figures=args.figures, reps=args.reps, seed=args.seed, smoothing=args.smoothing,
            num_points=args.num_points, dormant_metrics=args.dormant_metrics,
            compare=[_pair(pair) for pair in args.compare], show_published=args.published, formats=args.formats,
        )
        if args.export:
            paths.insert(0, data.save_table(table, args.export))
    elif "scaling" in args.figures:
        paths += save_figure(plot_scaling(None), args.out, "scaling", args.formats)
    if translations:
        paths += save_figure(plot_heatmaps(translations), args.out, "translation", args.formats)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: print the written paths; bad input or a data problem is a one-line error and exit status 2."""
    return run_command(FiguresOptions, print_written, argv, description=__doc__)


def print_written(options: FiguresOptions) -> None:
    """Draw what the options ask for and print each written path."""
    for path in run(options):
        print(path)


if __name__ == "__main__":
    sys.exit(main())
