"""The shipped train-procgen reference curves: shape, known published values, the per-game helper, packaging."""

from __future__ import annotations

import pandas as pd
import pytest

from impoola import reference_curves
from impoola.envs.games import GAMES
from support.paths import ROOT


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return reference_curves.load()


def test_sixteen_games_three_runs_two_splits(table):
    counts = table.groupby(["game", "run", "split"]).size()
    assert len(counts) == 16 * 3 * 2
    assert set(table.game) == set(GAMES) and set(table.run) == set(reference_curves.RUNS)
    assert set(table.split) == {"train", "test"}
    assert (counts == 764).all()  # updates 1, 5, ..., 3049 and the last one, 3051
    assert list(table.columns) == ["game", "run", "split", "update", "total_timesteps", "eprewmean", "eplenmean"]
    assert not table.isna().any().any()
    assert list(dict.fromkeys(table.game)) == list(GAMES)


def test_known_published_values(table):
    def value(game, run, split, update, column="eprewmean"):
        row = table[(table.game == game) & (table.run == run) & (table.split == split) & (table["update"] == update)]
        assert len(row) == 1
        return float(row[column].iloc[0])

    assert value("bigfish", 0, "train", 1) == 0.71
    assert value("bigfish", 0, "train", 1, "eplenmean") == 99.1
    assert value("bigfish", 0, "train", 3051) == 19.26
    assert value("fruitbot", 0, "train", 1525) == 31.18
    assert value("fruitbot", 2, "test", 3051) == 26.17
    assert (table.total_timesteps == table["update"] * 16384).all()
    assert table.total_timesteps.max() == 49_987_584 == reference_curves.LAST_UPDATE * reference_curves.STEPS_PER_UPDATE


def test_curves_one_column_per_run(table):
    wide = reference_curves.curves("fruitbot", "test", table=table)
    assert list(wide.columns) == [0, 1, 2] and len(wide) == 764
    assert wide.index.is_monotonic_increasing and wide.index[0] == 16384
    assert wide.loc[1525 * 16384].tolist() == [25.61, 25.97, 26.40]
    lengths = reference_curves.curves("fruitbot", "test", "eplenmean", table=table)
    assert lengths.loc[3051 * 16384, 2] == 377.1
    assert reference_curves.curves("bigfish").equals(reference_curves.curves("bigfish", "train", table=table))


@pytest.mark.parametrize("args, match", [
    (("fruitbots", "train"), "env_id 'fruitbots'"),
    (("fruitbot", "eval"), "split 'eval'"),
    (("fruitbot", "train", "fps"), "column 'fps'"),
])
def test_curves_reject_bad_arguments(table, args, match):
    with pytest.raises(ValueError, match=match):
        reference_curves.curves(*args, table=table)


def test_data_file_is_package_data():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["impoola"]
    shipped = {path.name for pattern in patterns for path in (ROOT / "impoola").glob(pattern)}
    assert {reference_curves.DATA_FILE, "PROVENANCE.md"} <= shipped
