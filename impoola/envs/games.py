"""The 16 Procgen games, their normalization constants and the level ranges of each track."""

from __future__ import annotations

import math
from typing import Literal, get_args

from impoola.options import check_choice

Game = Literal[
    "bigfish", "bossfight", "caveflyer", "chaser", "climber", "coinrun", "dodgeball", "fruitbot",
    "heist", "jumper", "leaper", "maze", "miner", "ninja", "plunder", "starpilot",
]
GAMES: tuple[Game, ...] = get_args(Game)
AGENT_CENTERED_GAMES: tuple[str, ...] = ("ninja", "jumper", "caveflyer", "coinrun")
ABLATION_GAMES: tuple[str, ...] = (
    "bigfish", "dodgeball", "ninja", "caveflyer", "starpilot", "heist", "plunder", "chaser", "coinrun", "fruitbot",
)
DistributionMode = Literal["easy", "hard"]
DISTRIBUTION_MODES: tuple[DistributionMode, ...] = get_args(DistributionMode)
Track = Literal["generalization", "efficiency", "finetuning"]
"""the training level split, as in the paper"""
TRACKS: tuple[Track, ...] = get_args(Track)
Split = Literal["train", "test"]
"""a track's training levels or its test levels"""
SPLITS: tuple[Split, ...] = get_args(Split)
NUM_ACTIONS = 15

# (R_min, R_max) per distribution mode (Cobbe et al. 2020 constants, as used by the release).
NORMALIZATION: dict[str, dict[str, tuple[float, float]]] = {
    "easy": {
        "bigfish": (1.0, 40.0), "bossfight": (0.5, 13.0), "caveflyer": (3.5, 12.0), "chaser": (0.5, 13.0),
        "climber": (2.0, 12.6), "coinrun": (5.0, 10.0), "dodgeball": (1.5, 19.0), "fruitbot": (-1.5, 32.4),
        "heist": (3.5, 10.0), "jumper": (3.0, 10.0), "leaper": (3.0, 10.0), "maze": (5.0, 10.0),
        "miner": (1.5, 13.0), "ninja": (3.5, 10.0), "plunder": (4.5, 30.0), "starpilot": (2.5, 64.0),
    },
    "hard": {
        "bigfish": (0.0, 40.0), "bossfight": (0.5, 13.0), "caveflyer": (2.0, 13.4), "chaser": (0.5, 14.2),
        "climber": (1.0, 12.6), "coinrun": (5.0, 10.0), "dodgeball": (1.5, 19.0), "fruitbot": (-0.5, 27.2),
        "heist": (2.0, 10.0), "jumper": (1.0, 10.0), "leaper": (1.5, 10.0), "maze": (4.0, 10.0),
        "miner": (1.5, 20.0), "ninja": (2.0, 10.0), "plunder": (3.0, 30.0), "starpilot": (1.5, 35.0),
    },
}

# Training levels of the generalization track and the first level of the fine-tuning track.
TRAIN_LEVELS = {"easy": 200, "hard": 500}
FINETUNE_START_LEVEL = {"easy": 201, "hard": 501}
FINETUNE_NUM_LEVELS = 100


def normalized_score(env_id: str, distribution_mode: str, mean_return: float) -> float:
    """(mean return - R_min) / (R_max - R_min) with the constants of the game and mode."""
    check_choice("distribution_mode", distribution_mode, DISTRIBUTION_MODES)
    check_choice("env_id", env_id, GAMES)
    r_min, r_max = NORMALIZATION[distribution_mode][env_id]
    if mean_return is None or (isinstance(mean_return, float) and math.isnan(mean_return)):
        return float("nan")
    return (float(mean_return) - r_min) / (r_max - r_min)


def level_range(track: str, distribution_mode: str, split: str) -> tuple[int, int]:
    """(start_level, num_levels) of a track's `train` or `test` split; num_levels 0 = full distribution.

    generalization: train on [0, 200) easy / [0, 500) hard, test on the full distribution.
    efficiency: train and test on the full distribution.
    finetuning: 100 levels from 201 (easy) / 501 (hard), for both splits.
    """
    check_choice("track", track, TRACKS)
    check_choice("distribution_mode", distribution_mode, DISTRIBUTION_MODES)
    check_choice("split", split, SPLITS)
    if track == "finetuning":
        return FINETUNE_START_LEVEL[distribution_mode], FINETUNE_NUM_LEVELS
    if track == "generalization" and split == "train":
        return 0, TRAIN_LEVELS[distribution_mode]
    return 0, 0
