"""plot_utils.figures: every figure from the command line, one-line errors, the published Figure 1 and the scaling
points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plot_utils import data, figures, published, stats
from support.synthetic_runs import PARAMS, REPS


def assert_figure_files(paths: list[Path]) -> None:
    """Every path exists and starts like a PDF, PNG or text file should."""
    for path in paths:
        head = path.read_bytes()[:8]
        assert path.stat().st_size > (1000 if path.suffix in (".pdf", ".png") else 0), path
        if path.suffix == ".pdf":
            assert head.startswith(b"%PDF"), path
        if path.suffix == ".png":
            assert head == b"\x89PNG\r\n\x1a\n", path


def test_cli_writes_every_figure(runs_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    k = 2
    heat = pd.DataFrame(np.abs(np.add.outer(np.arange(-k, k + 1), np.arange(-k, k + 1))) / 4,
                        index=pd.Index(range(-k, k + 1), name="dy\\dx"), columns=range(-k, k + 1))
    heat.to_csv(tmp_path / "impoola.csv")
    heat.to_csv(tmp_path / "impala.csv")
    out = tmp_path / "figs"
    code = figures.main(["--source", str(runs_dir), "--out", str(out), "--reps", str(REPS), "--smoothing", "0.5",
                         "--compare", "impoola_s1:impala_s1", "--translation", str(tmp_path / "impoola.csv"),
                         str(tmp_path / "impala.csv"), "--export", str(tmp_path / "tidy.csv")])
    assert code == 0
    printed = [Path(line) for line in capsys.readouterr().out.split()]
    names = {"game_curves", "aggregate_curves", "final_intervals", "scaling", "train_test", "dormant", "profiles",
             "poi", "translation"}
    assert {p.name for p in printed} >= {f"{n}.{e}" for n in names for e in ("pdf", "png")}
    assert (out / "tables" / "aggregate.md").exists()
    assert_figure_files(printed)
    pd.testing.assert_frame_equal(data.load_table(tmp_path / "tidy.csv"), data.load_local(runs_dir))


def test_cli_errors_are_one_line(runs_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert figures.main(["--source", str(runs_dir), "--out", str(tmp_path), "--models", "nature_s9"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: invalid models: unknown model(s) nature_s9 (no scores/normalized_score_test in the runs); valid: "
        "impala_s1, impoola_s1"]
    assert not list(tmp_path.iterdir())  # nothing written before the refusal
    assert figures.main(["--source", "wandb", "--out", str(tmp_path)]) == 2


def test_published_figure1(table: pd.DataFrame, tmp_path: Path) -> None:
    fig1 = published.figure1_table().set_index(["family", "scale"])
    assert len(fig1) == 10 and fig1.loc[("impoola", 4)].params == 1_588_752
    gain = fig1.loc[("impoola", 4)].iqm / fig1.loc[("impala", 3)].iqm - 1
    fewer = 1 - fig1.loc[("impoola", 4)].params / fig1.loc[("impala", 3)].params
    assert round(gain, 2) == 0.17 and round(fewer, 2) == 0.35  # the paper's "+17% with 35% fewer parameters"
    assert figures.main(["--out", str(tmp_path), "--figures", "scaling"]) == 0  # no runs: the published figure alone
    assert_figure_files([tmp_path / "scaling.pdf", tmp_path / "scaling.png"])
    scores, _ = stats.score_matrices(table, "scores/normalized_score_test")
    points = figures.scaling_points(stats.aggregate_scores(scores, reps=REPS), data.model_info(table))
    assert points.set_index("model").params.to_dict() == PARAMS
    fig = figures.plot_scaling(points)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "Impoola-CNN (paper)" in labels and "Impoola-CNN (runs)" in labels


def test_scaling_points_families() -> None:
    models = ["impala_s2", "impala_s2_pruned", "impoola_s1.5", "ppo/nature_s1"]
    aggregates = pd.DataFrame({"model": models, "aggregate": "IQM", "value": 0.5, "lower": 0.4, "upper": 0.6})
    info = pd.DataFrame({"model": models, "encoder": ["impala", "impala", "impoola", "nature"],
                         "scale": [2.0, 2.0, 1.5, 1.0], "params": [np.nan, 5.0, 7.0, np.nan]})
    points = figures.scaling_points(aggregates, info).set_index("model")
    assert points.family.to_dict() == {"impala_s2": "impala", "impala_s2_pruned": "impala_pruned",
                                       "impoola_s1.5": "impoola"}  # ppo/nature_s1: no count logged or known
    assert points.params.to_dict() == {"impala_s2": 1_441_680, "impala_s2_pruned": 5.0, "impoola_s1.5": 7.0}
