"""The synthetic runs plot_utils' tests read: one directory of known runs per test module, and its tidy table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from plot_utils import data
from support.synthetic_runs import GAMES, MODELS, SEEDS, write_run


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
