"""plot_utils.tables: Markdown, CSV and LaTeX tables of the aggregates."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from plot_utils import stats, tables
from support.synthetic_runs import REPS


def test_tables(table: pd.DataFrame, tmp_path: Path) -> None:
    final = tables.final_score_table(table, "scores/normalized_score_test")
    assert final.game.tolist()[:2] == ["bigfish", "bigfish"] and final.runs.eq(3).all()
    aggregates = stats.aggregate_scores(stats.score_matrices(table, "scores/normalized_score_test")[0], reps=REPS)
    paths = tables.write_tables(final, aggregates, tmp_path)
    assert {p.name for p in paths} == {f"{n}.{e}" for n in ("final_scores", "aggregate") for e in ("md", "csv", "tex")}
    md = (tmp_path / "final_scores.md").read_text()
    assert "| starpilot | 0.520 ± 0.008 | **0.720 ± 0.008** |" in md
    tex = (tmp_path / "final_scores.tex").read_text()
    assert r"impoola\_s1" in tex and r"\textbf{0.720 $\pm$ 0.008}" in tex and r"\bottomrule" in tex
    iqm = aggregates.set_index(["model", "aggregate"]).loc[("impoola_s1", "IQM")]
    assert f"{iqm.value:.3f} [{iqm.lower:.3f}, {iqm.upper:.3f}]" in (tmp_path / "aggregate.md").read_text()
    assert pd.read_csv(tmp_path / "final_scores.csv").shape == (6, 5)
