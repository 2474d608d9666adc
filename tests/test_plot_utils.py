"""plot_utils on synthetic runs with known values: tidy table, rliable statistics, figures, tables, W&B export/cache."""

from __future__ import annotations

import ast
import json
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rliable import library as rly
from rliable import metrics as rly_metrics

from impoola.envs import games as games_module
from impoola.envs.games import NORMALIZATION
from plot_utils import data, figures, published, stats, tables

REPS = 100
GAMES = ("bigfish", "coinrun", "starpilot")
SEEDS = (1, 2, 3)
MODELS = {"impoola_s1": ("impoola", 1, 0.5), "impala_s1": ("impala", 1, 0.3)}  # name: encoder, scale, final base
TOTAL = 1000
EVAL_STEPS = [100 * k for k in range(1, 11)]
PARAMS = {"impoola_s1": 110_160, "impala_s1": 626_256}


def known_score(model: str, game: str, seed: int, step: int) -> float:
    """Known normalized test score: rises linearly in the step to base + 0.1·game index + 0.01·seed."""
    final = MODELS[model][2] + 0.1 * GAMES.index(game) + 0.01 * seed
    return final * step / TOTAL


def raw_return(game: str, normalized: float) -> float:
    """The raw return with this normalized score in easy mode (package constants)."""
    r_min, r_max = NORMALIZATION["easy"][game]
    return r_min + normalized * (r_max - r_min)


def write_run(root: Path, model: str, game: str, seed: int, log_normalized: bool = True,
              steps: list[int] = EVAL_STEPS, name: str | None = None) -> Path:
    """A run directory as the training scripts write it: config.json, metrics.jsonl (dense train rows, sparse evals)."""
    encoder, scale, _ = MODELS[model]
    name = name or f"{game}__ppo__{model}__s{seed}"
    run_dir = root / name
    run_dir.mkdir(parents=True)
    config = {"env_id": game, "distribution_mode": "easy", "track": "generalization", "seed": seed,
              "exp_name": "ppo", "encoder": encoder, "scale": scale, "model_name": model, "wandb_tags": ["synthetic"]}
    (run_dir / "config.json").write_text(json.dumps(config))
    records = [{"global_step": 0, "charts/total_network_params": PARAMS[model],
                "dormant_neurons/dormant_fraction": 1.0}]
    for step in range(50, steps[-1] + 1, 50):
        records.append({"global_step": step, "charts/episodic_return": 1.0, "losses/value_loss": 0.5})
        if step in steps:
            score = known_score(model, game, seed, step)
            record = {"global_step": step, "scores/eval_avg_return_test": raw_return(game, score),
                      "scores/eval_avg_return_train": raw_return(game, score + 0.1),
                      "dormant_neurons/dormant_fraction": 1.0 + step / TOTAL}
            if log_normalized:
                record |= {"scores/normalized_score_test": score, "scores/normalized_score_train": score + 0.1}
            records.append(record)
    text = "\n".join(json.dumps(r) for r in records) + '\n{"global_step": 99'  # torn last line
    (run_dir / "metrics.jsonl").write_text(text)
    (run_dir / "done").touch()
    return run_dir


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 models x 3 games x 3 seeds; impala runs log only raw returns (normalized keys are derived)."""
    root = tmp_path_factory.mktemp("runs")
    for model in MODELS:
        for game in GAMES:
            for seed in SEEDS:
                write_run(root, model, game, seed, log_normalized=model == "impoola_s1")
    return root


@pytest.fixture(scope="module")
def table(runs_dir: Path) -> pd.DataFrame:
    """The synthetic runs as a tidy table."""
    return data.load_local(runs_dir)


def known_matrix(model: str, step: int = TOTAL) -> np.ndarray:
    """runs x games matrix of the known scores at `step`."""
    return np.array([[known_score(model, g, s, step) for g in GAMES] for s in SEEDS])


def test_tidy_table_local(table: pd.DataFrame) -> None:
    assert list(table.columns) == [*data.COLUMNS, *data.META_COLUMNS]
    assert set(table.model) == set(MODELS) and set(table.game) == set(GAMES) and set(table.seed) == set(SEEDS)
    # dense training keys are not requested by default; the torn last line is skipped
    assert set(table.metric) == {"scores/eval_avg_return_test", "scores/eval_avg_return_train",
                                 "scores/normalized_score_test", "scores/normalized_score_train",
                                 "charts/total_network_params", "dormant_neurons/dormant_fraction"}
    for model in MODELS:
        rows = table[(table.model == model) & (table.metric == "scores/normalized_score_test")]
        assert len(rows) == len(GAMES) * len(SEEDS) * len(EVAL_STEPS)
        for row in rows.sample(10, random_state=0).itertuples():
            assert row.value == pytest.approx(known_score(model, row.game, row.seed, row.step), abs=1e-12)
    row = table[(table.run == "coinrun__ppo__impala_s1__s2") & (table.metric == "scores/eval_avg_return_test")
                & (table.step == 500)].iloc[0]
    assert (row.model, row.game, row.seed, row.encoder, row.scale) == ("impala_s1", "coinrun", 2, "impala", 1)
    assert row.value == pytest.approx(raw_return("coinrun", known_score("impala_s1", "coinrun", 2, 500)))
    info = data.model_info(table).set_index("model")
    assert info.params.to_dict() == PARAMS and info.scale.to_dict() == {m: 1 for m in MODELS}


def test_metric_selection_and_duplicates(tmp_path: Path) -> None:
    write_run(tmp_path, "impoola_s1", "bigfish", 1, steps=EVAL_STEPS[:4], name="short")
    write_run(tmp_path, "impoola_s1", "bigfish", 1, name="long")
    with pytest.warns(UserWarning, match="duplicate"):
        table = data.load_local(tmp_path, metrics=("scores/normalized_score_test", "charts/episodic_return"))
    assert set(table.run) == {"long"}
    assert set(table.metric) == {"scores/normalized_score_test", "charts/episodic_return"}
    (tmp_path / "long" / "done").unlink()
    assert set(data.load_local(tmp_path, finished_only=True).run) == {"short"}


def test_runs_of_other_settings_are_kept_and_flagged(tmp_path: Path) -> None:
    write_run(tmp_path / "easy", "impoola_s1", "bigfish", 1)
    hard = write_run(tmp_path / "hard", "impoola_s1", "bigfish", 1, log_normalized=False)
    config = json.loads((hard / "config.json").read_text())
    (hard / "config.json").write_text(json.dumps(config | {"distribution_mode": "hard"}))
    with pytest.warns(UserWarning, match="mix several distribution_mode"):
        table = data.load_local(tmp_path)
    assert set(table.run) == {"easy/bigfish__ppo__impoola_s1__s1", "hard/bigfish__ppo__impoola_s1__s1"}
    labelled = data.load_local(tmp_path, label_keys=("model_name", "distribution_mode"))
    assert set(labelled.model) == {"impoola_s1/easy", "impoola_s1/hard"}
    hard_rows = labelled[(labelled.model == "impoola_s1/hard") & (labelled.step == TOTAL)].set_index("metric").value
    raw = hard_rows["scores/eval_avg_return_test"]
    assert hard_rows["scores/normalized_score_test"] == pytest.approx(raw / 40.0)  # hard-mode bigfish: (0, 40)


def test_normalized_scores_use_package_constants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_run(tmp_path, "impala_s1", "bigfish", 1, log_normalized=False)
    raw = raw_return("bigfish", known_score("impala_s1", "bigfish", 1, TOTAL))
    final_of = lambda t: t[(t.metric == "scores/normalized_score_test") & (t.step == TOTAL)].value.iloc[0]
    assert final_of(data.load_local(tmp_path)) == pytest.approx((raw - 1.0) / 39.0)  # easy bigfish: (1, 40)
    monkeypatch.setitem(games_module.NORMALIZATION["easy"], "bigfish", (0.0, 100.0))
    assert final_of(data.load_local(tmp_path)) == pytest.approx(raw / 100.0)  # the package's constants are read


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
        "error: no values of 'scores/normalized_score_test' in the table for models ['nature_s9']"]
    assert figures.main(["--source", "wandb", "--out", str(tmp_path)]) == 2


def test_heatmap_loader_checks_shape(tmp_path: Path) -> None:
    (tmp_path / "good.csv").write_text("dy\\dx,-1,0,1\n-1,0.1,0.2,0.3\n0,0.4,0,0.6\n1,0.7,0.8,0.9\n")
    heat = data.load_heatmap(tmp_path / "good.csv")  # the analysis module's layout
    assert heat.loc[-1, 1] == 0.3 and heat.loc[1, -1] == 0.7 and list(heat.columns) == [-1, 0, 1]
    pd.DataFrame(np.zeros((3, 5)), index=[-1, 0, 1], columns=range(-2, 3)).to_csv(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="2k\\+1"):
        data.load_heatmap(tmp_path / "bad.csv")


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


class FakeRun:
    """What plot_utils reads of a wandb.apis.public.Run, backed by a local run directory."""

    def __init__(self, run_dir: Path, run_id: str, state: str = "finished"):
        self.config = json.loads((run_dir / "config.json").read_text())
        self.tags = self.config["wandb_tags"]
        self.name, self.id, self.state = run_dir.name, run_id, state
        self._records = data.read_jsonl(run_dir / "metrics.jsonl")
        self.summary = {key: value for record in self._records for key, value in record.items()} | {"_step": 0}

    def scan_history(self, keys: list[str] | None = None, page_size: int = 1000):
        """W&B semantics: only rows that have every requested key, only those keys (plus _step)."""
        for i, record in enumerate(self._records):
            if all(key in record for key in keys):
                yield {"_step": i, **{key: record[key] for key in keys}}

    def history(self, **kwargs):
        raise AssertionError("plot_utils should read the unsampled scan_history")


class FakeApi:
    """A stand-in for wandb.Api that records its queries."""

    calls: list[tuple[str, dict]] = []
    runs_by_path: dict[str, list[FakeRun]] = {}

    def __init__(self, *args, **kwargs):
        pass

    def runs(self, path: str, filters: dict | None = None, **kwargs):
        FakeApi.calls.append((path, filters))
        return FakeApi.runs_by_path[path]


def test_wandb_export_mocked_and_cached(runs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wandb = types.ModuleType("wandb")  # stands in for the real module (whose import takes seconds): only Api is used
    monkeypatch.setitem(sys.modules, "wandb", wandb)
    fake = [FakeRun(d, f"id{i}") for i, d in enumerate(sorted(p for p in runs_dir.iterdir() if p.is_dir()))]
    odd = FakeRun(next(runs_dir.iterdir()), "crashed", state="crashed")
    odd.tags = ["other"]
    FakeApi.runs_by_path = {"ent/proj": [*fake, odd]}
    FakeApi.calls = []
    wandb.Api = FakeApi
    kwargs = dict(tags=["synthetic"], config={"distribution_mode": "easy"}, cache_dir=tmp_path / "cache")
    table = data.load_wandb("ent", "proj", finished_only=True, **kwargs)
    assert FakeApi.calls == [("ent/proj", {"$and": [{"tags": {"$in": ["synthetic"]}},
                                                   {"config.distribution_mode": "easy"}]})]
    local = data.load_local(runs_dir)
    pd.testing.assert_frame_equal(table.drop(columns="run"), local.drop(columns="run"))
    assert table.run.str.endswith(")").all()

    class Offline:
        def __init__(self, *args, **kwargs):
            raise AssertionError("network used although the export is cached")

    wandb.Api = Offline
    again = data.load_wandb("ent", "proj", finished_only=True, **kwargs)
    pd.testing.assert_frame_equal(again, table)
    cached = list((tmp_path / "cache").glob("wandb_ent_proj_*"))
    assert sorted(p.suffix for p in cached) == [".csv", ".json"]
    with pytest.raises(AssertionError, match="network"):
        data.load_wandb("ent", "proj", finished_only=True, refresh=True, **kwargs)
    cli_out = tmp_path / "cli"
    assert figures.main(["--source", "wandb", "--entity", "ent", "--project", "proj", "--tags", "synthetic",
                         "--finished-only", "--filter", "distribution_mode=easy",
                         "--cache-dir", str(tmp_path / "cache"),
                         "--out", str(cli_out), "--figures", "final_intervals", "--reps", str(REPS),
                         "--metric", "scores/normalized_score_test"]) == 0
    assert (cli_out / "final_intervals.png").stat().st_size > 0


def test_parse_filters() -> None:
    assert data.parse_filters(["scale=2", "encoder=impoola", "cuda=true"]) == {"scale": 2, "encoder": "impoola",
                                                                               "cuda": True}
    with pytest.raises(ValueError):
        data.parse_filters(["scale"])


def test_notebook_is_valid_and_uses_existing_api() -> None:
    path = Path(__file__).resolve().parents[1] / "plot_utils" / "paper_figures.ipynb"
    notebook = json.loads(path.read_text())
    assert notebook["nbformat"] == 4 and {"metadata", "cells"} <= set(notebook)
    kinds = {cell["cell_type"] for cell in notebook["cells"]}
    assert kinds == {"markdown", "code"}
    modules = {"data": data, "stats": stats, "figures": figures, "tables": tables, "published": published}
    for cell in notebook["cells"]:
        assert isinstance(cell["source"], list) and "metadata" in cell
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and "execution_count" in cell
            tree = ast.parse("".join(line for line in cell["source"] if not line.startswith("%")))  # no magics
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
                    assert hasattr(modules[node.value.id], node.attr), f"{node.value.id}.{node.attr}"


def test_layout_warns_and_truncates_unequal_seeds(table: pd.DataFrame) -> None:
    fewer = table[~((table.model == "impala_s1") & (table.game == "bigfish") & (table.seed == 3))]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores, _ = stats.score_matrices(fewer, "scores/normalized_score_test")
    assert any("unequal runs per game" in str(w.message) for w in caught)
    assert scores["impoola_s1"].shape == (2, 3)
