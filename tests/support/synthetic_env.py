"""A synthetic image task with ProcgenVecEnv's interface: the image shows which action pays.

Each episode is one step. The 16x16 observation is black except for an 8x8 square at a random
position whose colour (one of `NUM_TARGETS`) names the paying action: that action earns reward 1,
every other action 0. Best return 1.0; a uniform random policy over 15 actions earns 1/15.
"""

from __future__ import annotations

import gymnasium
import numpy as np

COLOURS = np.array([[255, 0, 0], [0, 0, 255]], np.uint8)
NUM_TARGETS = len(COLOURS)
SIZE, SQUARE = 16, 8


class TargetImageEnv:
    """Drop-in for ProcgenVecEnv (same constructor and step/reset API)."""

    def __init__(self, env_id, num_envs, distribution_mode="easy", start_level=0, num_levels=0, seed=1,
                 num_threads=None, render_mode=None):
        self.num_envs = num_envs
        self.num_threads = 1
        self.single_observation_space = gymnasium.spaces.Box(0, 255, (3, SIZE, SIZE), np.uint8)
        self.single_action_space = gymnasium.spaces.Discrete(15)
        self.rng = np.random.default_rng(seed)
        self.targets = self.rng.integers(0, NUM_TARGETS, num_envs)

    def _obs(self) -> np.ndarray:
        obs = np.zeros((self.num_envs, 3, SIZE, SIZE), np.uint8)
        corners = self.rng.integers(0, SIZE - SQUARE, (self.num_envs, 2))
        for i, (target, (y, x)) in enumerate(zip(self.targets, corners)):
            obs[i, :, y:y + SQUARE, x:x + SQUARE] = COLOURS[target][:, None, None]
        return obs

    def reset(self, seed=None):
        return self._obs(), {}

    def step(self, actions):
        reward = (np.asarray(actions) == self.targets).astype(np.float32)
        done = np.ones(self.num_envs, bool)
        info = {"episode_return": reward.astype(np.float64), "episode_length": np.ones(self.num_envs, np.int64)}
        self.targets = self.rng.integers(0, NUM_TARGETS, self.num_envs)
        return self._obs(), reward, done, np.zeros(self.num_envs, bool), info

    def get_state(self):
        return [b""] * self.num_envs

    def set_state(self, states):
        pass

    def close(self):
        pass
