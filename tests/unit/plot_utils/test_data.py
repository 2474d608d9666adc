"""plot_utils.data on synthetic runs with known values: the tidy table, metric selection, other settings flagged,
package normalization, heatmap CSVs, W&B export and cache, filters."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impoola.envs import games as games_module
from plot_utils import data, figures
from support.synthetic_runs import (
    EVAL_STEPS, GAMES, MODELS, PARAMS, REPS, SEEDS, TOTAL, known_score, raw_return, write_run,
)


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

    def final_of(t):
        return t[(t.metric == "scores/normalized_score_test") & (t.step == TOTAL)].value.iloc[0]

    assert final_of(data.load_local(tmp_path)) == pytest.approx((raw - 1.0) / 39.0)  # easy bigfish: (1, 40)
    monkeypatch.setitem(games_module.NORMALIZATION["easy"], "bigfish", (0.0, 100.0))
    assert final_of(data.load_local(tmp_path)) == pytest.approx(raw / 100.0)  # the package's constants are read


def test_heatmap_loader_checks_shape(tmp_path: Path) -> None:
    (tmp_path / "good.csv").write_text("dy\\dx,-1,0,1\n-1,0.1,0.2,0.3\n0,0.4,0,0.6\n1,0.7,0.8,0.9\n")
    heat = data.load_heatmap(tmp_path / "good.csv")  # the analysis module's layout
    assert heat.loc[-1, 1] == 0.3 and heat.loc[1, -1] == 0.7 and list(heat.columns) == [-1, 0, 1]
    pd.DataFrame(np.zeros((3, 5)), index=[-1, 0, 1], columns=range(-2, 3)).to_csv(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="2k\\+1"):
        data.load_heatmap(tmp_path / "bad.csv")


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
