"""DQN parts: the importance-weighted TD loss and the new priorities it implies, under the release or textbook rules."""

from __future__ import annotations

import numpy as np
import torch

from impoola.replay.rules import ReplayRules

LOSS_KEYS = ("losses/td_loss", "losses/q_values")
"""Metric keys of a DQN gradient step's (TD loss, mean Q(s, a)), in the order dqn_training.train_step returns them."""


def dqn_loss(
    q_taken: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, rules: ReplayRules, alpha: float = 0.5,
    eps: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """(loss, TD error δ, new priorities) under `rules`: release mean((w·δ)²), textbook mean(w·δ²).

    No gradient flows to `target`."""
    td = target.detach() - q_taken
    loss = rules.loss(td, weights)
    td = td.detach()
    priorities = rules.priorities(td.cpu().numpy(), weights.detach().cpu().numpy(), alpha, eps)
    return loss, td, priorities
