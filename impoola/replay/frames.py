"""Frame store: per-env rings of uint8 frames, each frame stored once and shared by the transitions that use it."""

from __future__ import annotations

import math

import numpy as np

from impoola.replay.layout import Layout, allocate, layout_nbytes


class FrameStore:
    """`num_envs` rings of `frames_per_env` frames; each slot remembers the transition whose observation it is.

    An env's frames form a stream: each step appends its next observation, and an observation that is not the
    env's latest frame starts a new stream. Overwriting a slot reports the transition that observed it, so the
    memory can invalidate it.
    """

    def __init__(self, num_envs: int, frames_per_env: int, obs_shape: tuple[int, ...]):
        self.num_envs, self.frames_per_env, self.obs_shape = num_envs, frames_per_env, tuple(obs_shape)
        self.arrays = allocate(self.layout(num_envs, frames_per_env))
        # Zeroed by calloc, whose pages are still committed lazily: slots not yet written are zeros, not whatever the
        # allocator reused, so a saved replay snapshot is the same bytes in every process.
        self.arrays["frames"] = np.zeros((num_envs * frames_per_env, *self.obs_shape), np.uint8)
        self._last_next_obs: np.ndarray | None = None

    @staticmethod
    def frames_per_env_for(capacity: int, num_envs: int, n_step: int) -> int:
        """Ring length per env: its share of the capacity plus room for the pending window (2 frames a step at most)."""
        return -(-capacity // num_envs) + 2 * n_step + 2

    @staticmethod
    def layout(num_envs: int, frames_per_env: int) -> Layout:
        """The store's index arrays (the frames themselves aside)."""
        num_frames = num_envs * frames_per_env
        if num_frames >= 2**31:
            raise ValueError(f"invalid capacity: {num_frames} frames; valid: frame indices that fit int32")
        return {
            "frame_owner": ((num_frames,), np.int32, -1),  # transition whose observation is this frame
            "frame_count": ((num_envs,), np.int64, 0),
            "last_frame": ((num_envs,), np.int64, -1),  # frame of each env's latest next observation
        }

    @staticmethod
    def nbytes_for(num_envs: int, frames_per_env: int, obs_shape: tuple[int, ...]) -> int:
        """Bytes of a store of this size, frames included."""
        frames = num_envs * frames_per_env * math.prod(obs_shape)
        return layout_nbytes(FrameStore.layout(num_envs, frames_per_env)) + frames

    @property
    def frames(self) -> np.ndarray:
        """The frames, (num_envs * frames_per_env, *obs_shape) uint8."""
        return self.arrays["frames"]

    def stream_slots(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(slot of each env's latest frame, which envs' `obs` is not that frame and so starts a new stream)."""
        slots = self.arrays["last_frame"].copy()
        fresh = slots < 0
        if obs is not self._last_next_obs:  # obs is normally the previous next_obs itself, already stored
            for e in np.flatnonzero(~fresh):  # byte comparison per env: no large temporaries
                fresh[e] = self.frames[slots[e]].tobytes() != np.asarray(obs[e], np.uint8).tobytes()
        return slots, fresh

    def write(self, envs: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Append one frame to each env's ring in `envs`: (slots written, owners of overwritten slots, those slots)."""
        a = self.arrays
        slots = envs * self.frames_per_env + a["frame_count"][envs] % self.frames_per_env
        owners = a["frame_owner"][slots]
        owned = owners >= 0
        a["frame_owner"][slots] = -1
        a["frames"][slots] = data
        a["frame_count"][envs] += 1
        return slots, owners[owned], slots[owned]

    def continue_streams(self, next_slots: np.ndarray, next_obs: np.ndarray) -> None:
        """Make `next_slots` (holding `next_obs`) each env's latest frame."""
        self.arrays["last_frame"][:] = next_slots
        self._last_next_obs = next_obs

    def set_owners(self, slots: np.ndarray, transitions: np.ndarray) -> None:
        """Record that `transitions` observe the frames at `slots`."""
        self.arrays["frame_owner"][slots] = transitions

    def forget_latest_obs(self) -> None:
        """Compare the next observation by its bytes (after a restore, the caller's array is a new one)."""
        self._last_next_obs = None
