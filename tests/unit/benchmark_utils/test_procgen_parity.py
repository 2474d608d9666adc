"""benchmark_utils.procgen_parity: the random first update's statistics, the verdict rule, the report."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark_utils import procgen_parity


def test_verdict_rule_is_a_z_score_against_our_seeds_spread():
    ours = np.array([10.0, 12.0, 8.0, 10.0])  # mean 10, std 1.63
    spread = np.std(ours, ddof=1) * math.sqrt(1 / 3 + 1 / 4)
    assert procgen_parity.verdict(np.array([10.0, 11.0, 12.0]), ours, ("shorter", "longer")) == (
        "alike", pytest.approx(1 / spread))
    word, z = procgen_parity.verdict(np.array([20.0, 20.0, 20.0]), ours, ("shorter", "longer"))
    assert word == "longer" and z == pytest.approx(10 / spread) and z > procgen_parity.Z_LIMIT
    assert procgen_parity.verdict(np.array([1.0, 1.0, 1.0]), ours, ("shorter", "longer"))[0] == "shorter"


def test_first_update_keeps_the_last_100_finished_episodes():
    """A real random first update on bigfish: episodes finish, their mean length is the last-100 window's."""
    length, ret, episodes = procgen_parity.first_update("bigfish", 1, 1)
    assert episodes > 100  # 16,384 steps of ~100-step episodes: the window is full
    assert 20 < length < 300 and math.isfinite(ret)
    assert procgen_parity.first_update("bigfish", 1, 1) == (length, ret, episodes)  # seeded: the same update


def test_report_names_each_game_and_counts_the_alike_ones():
    results = [{"game": "fruitbot", "episodes": [200.0, 210.0],
                "length": {"ours": [80.0, 79.0], "published": [80.8, 81.0, 77.5], "verdict": ("alike", 0.1)},
                "return": {"ours": [-2.1, -2.3], "published": [-2.2, -2.1, -2.1], "verdict": ("alike", 0.4)}},
               {"game": "miner", "episodes": [60.0, 61.0],
                "length": {"ours": [250.0, 252.0], "published": [120.0, 121.0, 119.0],
                           "verdict": ("published shorter", -90.0)},
                "return": {"ours": [0.5, 0.6], "published": [0.5, 0.6, 0.55], "verdict": ("alike", 0.0)}}]
    lines = procgen_parity.format_report(results, 2).splitlines()
    assert lines[1].split()[0] == "fruitbot" and lines[1].endswith("alike")
    assert lines[2].split()[0] == "miner" and lines[2].endswith("length: published shorter")
    assert lines[-1] == "alike (|z| <= 3 on length and return): 1 of 2 games: fruitbot"
