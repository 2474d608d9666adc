"""Reward normalization (gym 0.26 NormalizeReward rule) and Gaussian pixel noise for vectorized envs."""

from __future__ import annotations

from typing import Any

import numpy as np


class RunningMeanStd:
    """Running mean/variance of scalars, merged batch by batch with Chan et al.'s parallel formula."""

    def __init__(self, count: float = 1e-4) -> None:
        self.mean = 0.0
        self.var = 1.0
        self.count = count

    def update(self, batch: np.ndarray) -> None:
        """Merge the population mean/variance of `batch` into the running statistics."""
        batch_mean, batch_var, batch_count = float(np.mean(batch)), float(np.var(batch)), batch.shape[0]
        delta = batch_mean - self.mean
        total = self.count + batch_count
        m2 = self.var * self.count + batch_var * batch_count + delta * delta * self.count * batch_count / total
        self.mean = self.mean + delta * batch_count / total
        self.var = m2 / total
        self.count = total


class RewardNormalizer:
    """Scale rewards by the running std of the discounted return, then clip (gym 0.26 NormalizeReward rule)."""

    # Per step: G <- gamma*G + r per env; update the statistics with the batch of G; r / sqrt(var + epsilon)
    # (no mean subtraction); G <- 0 where the episode ended; clip to [-clip, clip].

    def __init__(self, num_envs: int, gamma: float = 0.99, epsilon: float = 1e-8, clip: float = 10.0) -> None:
        self.gamma = gamma
        self.epsilon = epsilon
        self.clip = clip
        self.returns = np.zeros(num_envs, np.float64)
        self.rms = RunningMeanStd()

    def __call__(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        """Normalized, clipped float32 rewards for one vector step; `dones` marks envs whose episode ended."""
        self.returns = self.returns * self.gamma + rewards
        self.rms.update(self.returns)
        normalized = rewards / np.sqrt(self.rms.var + self.epsilon)
        self.returns[np.asarray(dones, bool)] = 0.0
        return np.clip(normalized, -self.clip, self.clip).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        """Running statistics and per-env discounted returns."""
        return {"returns": self.returns.copy(), "mean": self.rms.mean, "var": self.rms.var, "count": self.rms.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict()` returned."""
        self.returns = np.array(state["returns"], np.float64)
        self.rms.mean, self.rms.var, self.rms.count = float(state["mean"]), float(state["var"]), float(state["count"])


def add_pixel_noise(obs: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """uint8 frames plus rounded Gaussian noise N(0, std^2), clamped to [0, 255]."""
    if std == 0:
        return obs
    noise = np.rint(rng.standard_normal(obs.shape, np.float32) * np.float32(std))
    return np.clip(obs + noise, 0, 255).astype(np.uint8)


class PixelNoise:
    """Adds Gaussian pixel noise to the observations of `step()` (not to the frame `reset()` returns)."""

    def __init__(self, env: Any, std: float, seed: int) -> None:
        if std < 0:
            raise ValueError(f"invalid noise std {std!r}; must be >= 0")
        self.env = env
        self.noise_std = float(std)
        self.rng = np.random.default_rng(seed)

    def __getattr__(self, name: str) -> Any:
        """Everything else (num_envs, spaces, get_state, close, ...) is the wrapped env's."""
        return getattr(self.env, name)

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the wrapped env (and re-seed the noise when a seed is given); the frame is not noised."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        return self.env.reset(seed=seed)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step the wrapped env and noise its observations."""
        obs, reward, terminated, truncated, info = self.env.step(actions)
        return add_pixel_noise(obs, self.noise_std, self.rng), reward, terminated, truncated, info
