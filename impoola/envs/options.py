"""The environment's option group: which Procgen game, mode and levels (`EnvOptions`)."""

from __future__ import annotations

from dataclasses import dataclass

from impoola.envs.games import DistributionMode, Game, Track
from impoola.options import Checked, Int, Maybe


@dataclass(frozen=True)
class EnvOptions(Checked):
    """Environment: which Procgen game, mode and levels."""

    env_id: Game = "bigfish"
    """Procgen game (one of the 16)"""
    distribution_mode: DistributionMode = "easy"
    """Procgen distribution mode: easy or hard"""
    track: Track = "generalization"
    """generalization (train on 200/500 levels, test on all), efficiency (train on all) or finetuning (100 levels from 201/501)"""  # noqa: E501
    procgen_threads: Maybe(Int(0, 256)) = None
    """Procgen worker threads per vectorized env (default: min(4, cores); 0: step in the calling thread)"""
