"""Games, normalization constants (checked against the release's table) and track level ranges."""

import json
import math

import pytest

from impoola.envs.games import GAMES, NORMALIZATION, level_range, normalized_score
from support.paths import DATA


def test_constants_match_release_table():
    release = json.loads((DATA / "reference.json").read_text())["normalization"]
    for mode in ("easy", "hard"):
        assert set(release[mode]) == set(GAMES) and len(GAMES) == 16
        for game, (_, r_min, r_max) in release[mode].items():
            assert NORMALIZATION[mode][game] == (r_min, r_max)


@pytest.mark.parametrize(("game", "mode", "ret", "expected"), [
    ("bigfish", "easy", 40.0, 1.0), ("bigfish", "easy", 1.0, 0.0), ("bigfish", "hard", 20.0, 0.5),
    ("fruitbot", "easy", -1.5 + 33.9 / 2, 0.5), ("fruitbot", "hard", 27.2, 1.0), ("starpilot", "hard", 1.5, 0.0),
])
def test_normalized_score(game, mode, ret, expected):
    assert normalized_score(game, mode, ret) == pytest.approx(expected)


def test_normalized_score_rejects_bad_input():
    with pytest.raises(ValueError, match="invalid env_id 'pong'; valid: bigfish"):
        normalized_score("pong", "easy", 1.0)
    with pytest.raises(ValueError, match="invalid distribution_mode 'medium'"):
        normalized_score("bigfish", "medium", 1.0)
    assert math.isnan(normalized_score("bigfish", "easy", float("nan")))


def test_level_ranges():
    assert level_range("generalization", "easy", "train") == (0, 200)
    assert level_range("generalization", "hard", "train") == (0, 500)
    assert level_range("generalization", "easy", "test") == (0, 0)
    assert level_range("efficiency", "hard", "train") == (0, 0)
    assert level_range("finetuning", "easy", "train") == (201, 100)
    assert level_range("finetuning", "hard", "test") == (501, 100)
    with pytest.raises(ValueError, match="invalid track 'zero_shot'"):
        level_range("zero_shot", "easy", "train")
