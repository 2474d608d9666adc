"""Vectorized Procgen environment with a gymnasium-style API over `procgen.ProcgenGym3Env`."""

from __future__ import annotations

import contextlib
import io
import os
from typing import Any

import gymnasium
import numpy as np

from impoola.envs.games import DISTRIBUTION_MODES, GAMES, NUM_ACTIONS, level_range
from impoola.options import check_choice
from impoola.envs.wrappers import PixelNoise

# procgen imports gym 0.26, which prints an "unmaintained" notice to stderr on import: keep the CLIs quiet.
with contextlib.redirect_stderr(io.StringIO()):
    import procgen

OBS_SHAPE = (3, 64, 64)
RENDER_MODES = ("rgb_array",)
# Each env's state is procgen's serialized game followed by this trailer: running episode return and length.
_TRAILER = np.dtype([("ret", "<f8"), ("len", "<i8")])


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a SLURM allocation), else the machine's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_num_threads() -> int:
    """Procgen worker threads when none are given: min(4, the cores this process may use)."""
    return min(4, usable_cores())


def hwc_to_chw(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, C) -> contiguous (N, C, H, W) with a single copy."""
    n, h, w, c = frames.shape
    return frames.reshape(n, h * w, c).transpose(0, 2, 1).copy().reshape(n, c, h, w)


class ProcgenVecEnv:
    """N Procgen games stepped together; obs (N, 3, 64, 64) uint8, finished episodes' raw return/length in info."""

    # Procgen semantics: an env resets inside the step that ends its episode, so the observation returned with
    # terminated=True is the first frame of the next episode; time limits count as terminated (truncated is
    # always False). info["episode_return"/"episode_length"] hold the finished episode's raw values where
    # terminated, 0 elsewhere; info["level_seed"/"prev_level_seed"/"prev_level_complete"] come from procgen.

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        distribution_mode: str = "easy",
        start_level: int = 0,
        num_levels: int = 0,
        seed: int = 1,
        num_threads: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        check_choice("env_id", env_id, GAMES)
        check_choice("distribution_mode", distribution_mode, DISTRIBUTION_MODES)
        if render_mode is not None:
            check_choice("render_mode", render_mode, RENDER_MODES)
        for name, value, low in (("num_envs", num_envs, 1), ("start_level", start_level, 0),
                                 ("num_levels", num_levels, 0), ("num_threads", num_threads, 0)):
            if value is not None and (not isinstance(value, (int, np.integer)) or value < low):
                raise ValueError(f"invalid {name} {value!r}; must be an integer >= {low}")
        self.env_id = env_id
        self.num_envs = int(num_envs)
        self.distribution_mode = distribution_mode
        self.start_level = int(start_level)
        self.num_levels = int(num_levels)
        self.seed = int(seed)
        self.num_threads = default_num_threads() if num_threads is None else int(num_threads)
        self.render_mode = render_mode
        self.single_observation_space = gymnasium.spaces.Box(0, 255, OBS_SHAPE, np.uint8)
        self.single_action_space = gymnasium.spaces.Discrete(NUM_ACTIONS)
        self._env = self._make(self.seed)
        self._stepped = False
        self._returns = np.zeros(self.num_envs, np.float64)
        self._lengths = np.zeros(self.num_envs, np.int64)

    def _make(self, seed: int) -> procgen.ProcgenGym3Env:
        """Create the underlying gym3 env; its first observations are the first frames of new episodes."""
        return procgen.ProcgenGym3Env(
            num=self.num_envs, env_name=self.env_id, distribution_mode=self.distribution_mode,
            start_level=self.start_level, num_levels=self.num_levels, rand_seed=seed,
            num_threads=self.num_threads, render_mode=self.render_mode,
        )

    def _level_info(self) -> dict[str, np.ndarray]:
        """Per-env level seeds of the last observation (gym3's info buffers, read without a per-env loop)."""
        info = self._env._info  # filled by the libenv_observe() that observe() just ran
        return {key: info[key].copy() for key in ("level_seed", "prev_level_seed", "prev_level_complete")}

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Start new episodes in all envs (re-creating the game when it was stepped or a seed is given)."""
        if seed is not None or self._stepped:
            self.seed = self.seed if seed is None else int(seed)
            self._env.close()
            self._env = self._make(self.seed)
            self._stepped = False
        self._returns[:] = 0.0
        self._lengths[:] = 0
        _, ob, _ = self._env.observe()
        return hwc_to_chw(ob["rgb"]), self._level_info()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Act in all envs; returns (obs, reward float32, terminated, truncated (all False), info)."""
        self._env.act(np.asarray(actions).astype(np.int32, copy=False).reshape(self.num_envs))
        self._stepped = True
        reward, ob, first = self._env.observe()
        self._returns += reward
        self._lengths += 1
        info = self._level_info()
        info["episode_return"] = np.where(first, self._returns, 0.0)
        info["episode_length"] = np.where(first, self._lengths, 0)
        self._returns[first] = 0.0
        self._lengths[first] = 0
        return hwc_to_chw(ob["rgb"]), reward, first, np.zeros(self.num_envs, bool), info

    def render(self) -> np.ndarray:
        """The current 512x512 RGB frames (N, 512, 512, 3) uint8; needs render_mode='rgb_array'."""
        if self.render_mode != "rgb_array":
            raise ValueError("render() needs ProcgenVecEnv(..., render_mode='rgb_array')")
        self._env.observe()
        return self._env._info["rgb"].copy()

    def get_state(self) -> list[bytes]:
        """Per-env snapshots: procgen's game state plus this wrapper's running episode return and length."""
        states = self._env.callmethod("get_state")
        trailers = np.empty(self.num_envs, _TRAILER)
        trailers["ret"], trailers["len"] = self._returns, self._lengths
        return [state + trailer.tobytes() for state, trailer in zip(states, trailers)]

    def set_state(self, states: list[bytes]) -> None:
        """Restore snapshots from `get_state()`; subsequent steps reproduce the original ones bit for bit."""
        if len(states) != self.num_envs:
            raise ValueError(f"got {len(states)} states for {self.num_envs} envs")
        size = _TRAILER.itemsize
        trailers = np.frombuffer(b"".join(state[-size:] for state in states), _TRAILER)
        self._env.callmethod("set_state", [state[:-size] for state in states])
        self._returns[:], self._lengths[:] = trailers["ret"], trailers["len"]
        self._stepped = True

    def close(self) -> None:
        """Free the game instances."""
        self._env.close()


def make_track_env(
    env_id: str,
    distribution_mode: str,
    track: str,
    split: str,
    num_envs: int,
    seed: int,
    *,
    num_threads: int | None = None,
    noise_std: float = 0.0,
    render_mode: str | None = None,
) -> ProcgenVecEnv | PixelNoise:
    """Env on the levels of a track's `train`/`test` split, with Gaussian pixel noise when noise_std > 0."""
    start_level, num_levels = level_range(track, distribution_mode, split)
    env = ProcgenVecEnv(env_id, num_envs, distribution_mode, start_level, num_levels, seed, num_threads, render_mode)
    return PixelNoise(env, noise_std, seed) if noise_std > 0 else env
