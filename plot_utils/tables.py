"""Final scores per game (mean ± std) and aggregate IQM [CI] tables as Markdown, CSV and LaTeX."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from plot_utils import stats

_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$",
                  "{": r"\{", "}": r"\}"}


def _fmt(value: float, digits: int) -> str:
    """A number with `digits` decimals, never "-0.000"."""
    return f"{round(value, digits) + 0.0:.{digits}f}"


def final_score_table(table: pd.DataFrame, metric: str, models: Sequence[str] | None = None) -> pd.DataFrame:
    """Per game and model, mean and std (ddof 0) of the runs' last evaluations: game, model, mean, std, runs."""
    final = stats.final_values(table, metric, models)
    long = final.groupby(["game", "model"]).value.agg(mean="mean", std=lambda v: v.std(ddof=0), runs="count")
    long = long.reset_index()
    games, model_names = stats.game_order(long.game), list(models or stats.model_order(long.model.unique()))
    long["game"] = pd.Categorical(long.game, games, ordered=True)
    long["model"] = pd.Categorical(long.model, model_names, ordered=True)
    return long.sort_values(["game", "model"]).astype({"game": str, "model": str}).reset_index(drop=True)


def final_score_cells(final: pd.DataFrame, digits: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Wide "mean ± std" cells (games x models) and a mask of each game's best mean."""
    order = list(dict.fromkeys(final.model))
    means = final.pivot(index="game", columns="model", values="mean").reindex(columns=order)
    stds = final.pivot(index="game", columns="model", values="std").reindex(columns=order)
    means = means.reindex(list(dict.fromkeys(final.game)))
    stds = stds.reindex(means.index)
    cells = means.map(lambda v: _fmt(v, digits)) + " ± " + stds.map(lambda v: _fmt(v, digits))
    cells = cells.where(means.notna(), "–")
    best = means.eq(means.max(axis=1), axis=0)
    return cells, best


def aggregate_cells(aggregates: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Wide "value [lower, upper]" cells: models x aggregates (IQM, Median, Mean, Optimality Gap)."""
    text = aggregates.assign(cell=[f"{_fmt(v, digits)} [{_fmt(lo, digits)}, {_fmt(hi, digits)}]"
                                   for v, lo, hi in zip(aggregates.value, aggregates.lower, aggregates.upper)])
    cells = text.pivot(index="model", columns="aggregate", values="cell")
    return cells.reindex(index=list(dict.fromkeys(aggregates.model)),
                         columns=list(dict.fromkeys(aggregates["aggregate"])))


def to_markdown(cells: pd.DataFrame, bold: pd.DataFrame | None = None) -> str:
    """A GitHub Markdown table of string cells (index as first column), `bold` cells in **bold**."""
    if bold is not None:
        cells = cells.where(~bold, "**" + cells + "**")
    header = [cells.index.name or "", *map(str, cells.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---", *["---:"] * len(cells.columns)]) + "|"]
    lines += ["| " + " | ".join([str(index), *map(str, row)]) + " |" for index, row in zip(cells.index, cells.values)]
    return "\n".join(lines) + "\n"


def _latex_escape(text: str) -> str:
    """Escape LaTeX special characters; ± becomes $\\pm$."""
    return "".join(_LATEX_ESCAPES.get(c, c) for c in str(text)).replace("±", r"$\pm$")


def to_latex(cells: pd.DataFrame, bold: pd.DataFrame | None = None) -> str:
    """A booktabs tabular of string cells (index as first column), `bold` cells in \\textbf."""
    body = cells.map(_latex_escape)
    if bold is not None:
        body = body.where(~bold, r"\textbf{" + body + "}")
    header = [_latex_escape(cells.index.name or ""), *map(_latex_escape, cells.columns)]
    lines = [r"\begin{tabular}{l" + "r" * len(cells.columns) + "}", r"\toprule", " & ".join(header) + r" \\",
             r"\midrule"]
    lines += [" & ".join([_latex_escape(index), *row]) + r" \\" for index, row in zip(cells.index, body.values)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_tables(final: pd.DataFrame, aggregates: pd.DataFrame, out: str | Path, digits: int = 3) -> list[Path]:
    """Write final_scores.{md,csv,tex} (`final_score_table`) and aggregate.{md,csv,tex} (`stats.aggregate_scores`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cells, best = final_score_cells(final, digits)
    cells.index.name = "game"
    agg_cells = aggregate_cells(aggregates, digits)
    agg_cells.index.name = "model"
    written = {
        "final_scores.md": to_markdown(cells, best), "final_scores.tex": to_latex(cells, best),
        "aggregate.md": to_markdown(agg_cells), "aggregate.tex": to_latex(agg_cells),
    }
    paths = []
    for name, text in written.items():
        (out / name).write_text(text)
        paths.append(out / name)
    final.to_csv(out / "final_scores.csv", index=False)
    aggregates.to_csv(out / "aggregate.csv", index=False)
    return [*paths, out / "final_scores.csv", out / "aggregate.csv"]
