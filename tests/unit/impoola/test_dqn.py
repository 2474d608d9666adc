"""DQN loss: the release's and the textbook's weighted TD loss, its gradient and the new priorities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from impoola.dqn import dqn_loss
from impoola.replay import RELEASE, TEXTBOOK


def test_loss_td_error_and_priorities_per_rules():
    q = torch.tensor([1.0, 2.0], requires_grad=True)
    target = torch.tensor([1.5, 0.0], requires_grad=True)
    weights = torch.tensor([2.0, 0.5])
    loss, delta, prios = dqn_loss(q, target, weights, RELEASE)
    assert loss.item() == pytest.approx(((2.0 * 0.5) ** 2 + (0.5 * 2.0) ** 2) / 2)
    np.testing.assert_allclose(delta.numpy(), [0.5, -2.0])
    assert not delta.requires_grad
    np.testing.assert_allclose(prios, [1.0 + 1e-6, 1.0 + 1e-6])
    loss.backward()
    np.testing.assert_allclose(q.grad.numpy(), [-2 * 4.0 * 0.5 / 2, -2 * 0.25 * -2.0 / 2])  # d/dq mean((w·δ)²)
    assert target.grad is None  # the target carries no gradient
    loss, _, prios = dqn_loss(q.detach(), target, weights, TEXTBOOK, alpha=0.5, eps=1e-6)
    assert loss.item() == pytest.approx((2.0 * 0.25 + 0.5 * 4.0) / 2)
    np.testing.assert_allclose(prios, np.array([0.5, 2.0]) ** 0.5 + 1e-6)
