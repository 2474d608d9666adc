"""N-step accumulator: each env's pending steps and the n-step transitions they complete."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from impoola.replay.layout import Layout, allocate


class Transitions(NamedTuple):
    """Completed transitions, env-major: frame slots of observation and next observation, action, return, done."""

    obs_frame: np.ndarray
    next_frame: np.ndarray
    actions: np.ndarray
    returns: np.ndarray
    dones: np.ndarray


class NStepAccumulator:
    """The last `n_step` steps of `num_envs` lock-stepped envs, turned into n-step transitions (facts §3).

    - `flush_episode_tails` False (release): emit (s_t, Σ_{i<n} γ^i r_{t+i} cut at the episode end, s_{t+1},
      done of the newest step) when n steps are pending or the newest step ends the episode; the pending steps
      are then dropped, so an episode's last n−1 steps are never emitted.
    - True (textbook): emit (s_t, R_t^(n), s_{t+n}, done) once n steps are pending, and at the episode's end
      every pending step with done=1.
    """

    def __init__(self, num_envs: int, n_step: int, gamma: float, flush_episode_tails: bool):
        self.num_envs, self.n_step, self.gamma, self.flush_episode_tails = num_envs, n_step, gamma, flush_episode_tails
        self.arrays = allocate(self.layout(num_envs, n_step))
        self.step = 0

    @staticmethod
    def layout(num_envs: int, n_step: int) -> Layout:
        """The pending steps of each env, column = step % n_step."""
        pending = (num_envs, n_step)
        return {
            "pend_obs": (pending, np.int32, 0),
            "pend_next": (pending, np.int32, 0),
            "pend_actions": (pending, np.int32, 0),
            "pend_rewards": (pending, np.float32, 0),
            "pend_len": ((num_envs,), np.int64, 0),
        }

    def drop(self, envs: np.ndarray) -> None:
        """Forget the pending steps of `envs` (a boolean mask)."""
        self.arrays["pend_len"][envs] = 0

    def push(self, obs_slots: np.ndarray, next_slots: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
             dones: np.ndarray) -> Transitions:
        """Add one step of every env (frame slots, action, reward, done); the transitions it completes."""
        a, n = self.arrays, self.n_step
        col = self.step % n
        a["pend_obs"][:, col] = obs_slots
        a["pend_next"][:, col] = next_slots
        a["pend_actions"][:, col] = actions
        a["pend_rewards"][:, col] = rewards
        length = np.minimum(a["pend_len"] + 1, n)
        a["pend_len"][:] = length
        ages = np.arange(n)
        cols = (col - ages) % n  # column of the step `age` steps back
        back_rewards = a["pend_rewards"][:, cols].astype(np.float64)
        returns = np.empty_like(back_rewards)  # returns[:, j]: discounted sum from the step j back to the newest
        returns[:, 0] = back_rewards[:, 0]
        for j in range(1, n):
            returns[:, j] = back_rewards[:, j] + self.gamma * returns[:, j - 1]
        if self.flush_episode_tails:
            emit = (ages < length[:, None]) & (dones[:, None] | ((length == n)[:, None] & (ages == n - 1)))
            env, rev_age = np.nonzero(emit[:, ::-1])  # env-major, oldest first
            age = n - 1 - rev_age
            next_col = np.full(len(env), col)
        else:
            env = np.flatnonzero((length == n) | dones)
            age = length[env] - 1
            next_col = cols[age]
        start_col = cols[age]
        done = Transitions(a["pend_obs"][env, start_col], a["pend_next"][env, next_col],
                           a["pend_actions"][env, start_col], returns[env, age], dones[env])
        a["pend_len"][dones] = 0
        self.step += 1
        return done
