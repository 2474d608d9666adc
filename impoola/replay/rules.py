"""The release and textbook rules of DQN's replay, loss and exploration: one frozen dataclass, two instances."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class ReplayRules:
    """The five places where the paper's release departs from the textbook (facts §3), decided once per run."""

    name: str
    flush_episode_tails: bool
    """n-step storage: store (s_t, R_t^(n), s_{t+n}) and an episode's last n−1 steps (True), or (s_t, R, s_{t+1})
    emitted when n steps are pending or the episode ends, the pending steps dropped (False, the release)"""
    weighted_td_priorities: bool
    """priorities |w·δ|^α + ε (True, the release) or |δ|^α + ε"""
    batch_mean_weights: bool
    """importance weights (N·P)^−β over their batch mean (True, the release) or over the buffer's largest weight,
    which needs the tree's minimum"""
    transformed_new_priority: bool
    """new items get (max p)^α + ε (True, the release: max p is already transformed) or max p"""
    squared_weighted_loss: bool
    """loss mean((w·δ)²) (True, the release) or mean(w·δ²)"""
    one_coin_per_step: bool
    """ε-greedy: one coin flip decides random or greedy for all envs of a vectorized step (True) or one per env"""

    def bootstrap_gamma(self, gamma: float, n_step: int) -> float:
        """Discount of the bootstrap term: γⁿ from s_{t+n} when tails are flushed, else γ from s_{t+1}."""
        return gamma**n_step if self.flush_episode_tails else gamma

    def new_priority(self, max_priority: float, alpha: float, eps: float) -> float:
        """Priority of a newly stored transition."""
        return max_priority**alpha + eps if self.transformed_new_priority else max_priority

    def priorities(self, td: np.ndarray, weights: np.ndarray, alpha: float, eps: float) -> np.ndarray:
        """New priorities of sampled transitions from their TD errors δ and importance weights w."""
        err = np.abs(td * weights) if self.weighted_td_priorities else np.abs(td)
        return err.astype(np.float64) ** alpha + eps

    def loss(self, td: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Importance-weighted squared TD error of a batch."""
        return ((weights * td) ** 2).mean() if self.squared_weighted_loss else (weights * td**2).mean()

    def explore(self, num_envs: int, epsilon: float) -> np.ndarray:
        """Which envs act randomly this step, drawn from numpy's global generator (checkpointed with the run)."""
        if self.one_coin_per_step:
            return np.full(num_envs, np.random.random() < epsilon)
        return np.random.random(num_envs) < epsilon


RELEASE = ReplayRules("release", flush_episode_tails=False, weighted_td_priorities=True, batch_mean_weights=True,
                      transformed_new_priority=True, squared_weighted_loss=True, one_coin_per_step=True)
TEXTBOOK = ReplayRules("textbook", flush_episode_tails=True, weighted_td_priorities=False, batch_mean_weights=False,
                       transformed_new_priority=False, squared_weighted_loss=False, one_coin_per_step=False)
RULES = {rules.name: rules for rules in (RELEASE, TEXTBOOK)}


def rules_for(mode: str) -> ReplayRules:
    """The rules named `mode`; a one-line ValueError naming the valid ones otherwise."""
    if mode not in RULES:
        raise ValueError(f"invalid replay mode {mode!r}; valid: {', '.join(RULES)}")
    return RULES[mode]
