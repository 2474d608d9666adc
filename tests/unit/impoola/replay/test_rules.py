"""The release and textbook rules: one frozen dataclass, two instances, each rule as facts §3 states it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from impoola.replay import RELEASE, RULES, TEXTBOOK, rules_for


def test_two_frozen_instances_by_name_and_one_line_error_otherwise():
    assert RULES == {"release": RELEASE, "textbook": TEXTBOOK}
    assert rules_for("release") is RELEASE and rules_for("textbook") is TEXTBOOK
    with pytest.raises(dataclasses.FrozenInstanceError):
        RELEASE.flush_episode_tails = True
    with pytest.raises(ValueError, match=r"^invalid replay mode 'paper'; valid: release, textbook$"):
        rules_for("paper")
    flags = [f.name for f in dataclasses.fields(RELEASE) if f.name != "name"]
    assert all(getattr(RELEASE, f) != getattr(TEXTBOOK, f) for f in flags)  # every rule differs


def test_bootstrap_discount_and_new_priority():
    assert RELEASE.bootstrap_gamma(0.99, 3) == 0.99
    assert TEXTBOOK.bootstrap_gamma(0.99, 3) == pytest.approx(0.99**3)
    assert RELEASE.new_priority(9.0, 0.5, 1e-6) == pytest.approx(3.0 + 1e-6)
    assert TEXTBOOK.new_priority(9.0, 0.5, 1e-6) == 9.0


def test_priorities_from_td_errors():
    td, w = np.array([0.5, -2.0]), np.array([2.0, 0.5])
    np.testing.assert_allclose(RELEASE.priorities(td, w, 0.5, 1e-6), np.abs(td * w) ** 0.5 + 1e-6)
    np.testing.assert_allclose(TEXTBOOK.priorities(td, w, 0.5, 1e-6), np.abs(td) ** 0.5 + 1e-6)
    assert RELEASE.priorities(td, w, 0.5, 1e-6).dtype == np.float64


def test_losses():
    td, w = torch.tensor([0.5, -2.0]), torch.tensor([2.0, 0.5])
    assert RELEASE.loss(td, w).item() == pytest.approx(((2.0 * 0.5) ** 2 + (0.5 * 2.0) ** 2) / 2)
    assert TEXTBOOK.loss(td, w).item() == pytest.approx((2.0 * 0.25 + 0.5 * 4.0) / 2)


def test_exploration_draws_one_coin_per_step_or_one_per_env():
    np.random.seed(0)
    release = np.array([RELEASE.explore(64, 0.5) for _ in range(200)])
    assert set(release.sum(1).tolist()) == {0, 64} and 0.35 < release[:, 0].mean() < 0.65
    textbook = np.array([TEXTBOOK.explore(64, 0.5) for _ in range(200)])
    assert np.all((textbook.sum(1) > 10) & (textbook.sum(1) < 54))
    np.random.seed(1)
    first = RELEASE.explore(4, 0.3)
    np.random.seed(1)
    assert first.tolist() == [np.random.random() < 0.3] * 4  # the release's draw from the global generator
