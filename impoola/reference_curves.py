"""OpenAI's published PPO learning curves on Procgen (openai/train-procgen, easy mode, 200 levels, 3 runs per game).

The table ships as `impoola/data/train_procgen_easy200.csv.gz`; `impoola/data/PROVENANCE.md` says where it comes
from, which rows and columns were kept and under which settings the runs were made (`SETTINGS`).

    table = load()                                  # 16 games x 3 runs x 2 splits, every 4th update
    wide = curves("fruitbot", "train")             # index total_timesteps, one column per run
    diag = diagnostics("fruitbot")                  # every update 1-244 of the training worker: losses too
"""

from __future__ import annotations

from importlib import resources
from types import MappingProxyType
from typing import Any, Final, Mapping

import pandas as pd

from impoola.envs.games import GAMES, SPLITS
from impoola.options import check_choice

DATA_FILE: Final = "train_procgen_easy200.csv.gz"
DIAGNOSTICS_FILE: Final = "train_procgen_easy200_diagnostics.csv.gz"
DIAGNOSTIC_COLUMNS: Final = ("eprewmean", "eplenmean", "value_loss", "policy_loss", "policy_entropy", "approxkl",
                             "clipfrac", "explained_variance")
LAST_DIAGNOSTIC_UPDATE: Final = 244
SOURCE: Final = "openai/train-procgen (MIT), train_procgen/results/easy-200-run{0,1,2}, commit 1a2ae21"
RUNS: Final = (0, 1, 2)
COLUMNS: Final = ("eprewmean", "eplenmean")
STEPS_PER_UPDATE: Final = 64 * 256
LAST_UPDATE: Final = 3051
PAPER_BUDGET_STEPS: Final = 25_000_000
# The settings of the published runs (Cobbe et al. 2020; train-procgen's train.py on baselines ppo2, TF 1.x).
SETTINGS: Final[Mapping[str, Any]] = MappingProxyType({
    "distribution_mode": "easy", "num_levels": 200, "start_level": 0, "encoder": "impala", "scale": 1.0,
    "channels": (16, 32, 32), "pooling": "flatten", "latent_dim": 256, "num_envs": 64, "num_steps": 256,
    "num_minibatches": 8, "update_epochs": 3, "learning_rate": 5e-4, "adam_eps": 1e-5, "adam_eps_form": "tf",
    "anneal_lr": False, "gamma": 0.999, "gae_lambda": 0.95, "clip_coef": 0.2, "clip_vloss": True, "ent_coef": 0.01,
    "vf_coef": 0.5, "max_grad_norm": 0.5, "reward_normalization": "running std of the discounted return",
    "reward_norm_gamma": 0.99, "reward_clip": 10.0, "encoder_init": "glorot", "maxpool_padding": "same",
})
_DTYPES: Final = {"game": "string", "run": "int64", "split": "string", "update": "int64", "eprewmean": "float64",
                  "eplenmean": "float64"}


def load() -> pd.DataFrame:
    """The whole table: game, run, split, update, total_timesteps, eprewmean, eplenmean (raw returns).

    Rows come sorted by game (in `GAMES` order), run, split (train, then test) and update.
    """
    with resources.files("impoola").joinpath("data", DATA_FILE).open("rb") as handle:
        table = pd.read_csv(handle, compression="gzip", dtype=_DTYPES)
    table.insert(table.columns.get_loc("update") + 1, "total_timesteps", table["update"] * STEPS_PER_UPDATE)
    return table


def curves(game: str, split: str = "train", column: str = "eprewmean", table: pd.DataFrame | None = None
           ) -> pd.DataFrame:
    """One game's curves of one split: index `total_timesteps`, one column per run (0, 1, 2), values of `column`.

    `table` is a table from `load()` (loaded here when omitted, so pass it when drawing many games).
    """
    check_choice("env_id", game, GAMES)
    check_choice("split", split, SPLITS)
    check_choice("column", column, COLUMNS)
    table = load() if table is None else table
    rows = table[(table.game == game) & (table.split == split)]
    wide = rows.pivot(index="total_timesteps", columns="run", values=column)
    wide.columns.name = "run"
    return wide


def diagnostics(game: str) -> pd.DataFrame:
    """One game's training-worker log for every update 1-244 (about 4M steps) of the three runs: columns run,
    update, total_timesteps and `DIAGNOSTIC_COLUMNS` (each loss the mean over all minibatches of all epochs of the
    update; approxkl is baselines' 0.5·mean((log p_new − log p_old)²); PROVENANCE.md has the columns)."""
    check_choice("env_id", game, GAMES)
    with resources.files("impoola").joinpath("data", DIAGNOSTICS_FILE).open("rb") as handle:
        table = pd.read_csv(handle, compression="gzip", dtype={"game": "string", "run": "int64", "update": "int64"})
    return table[table.game == game].drop(columns="game").reset_index(drop=True)
