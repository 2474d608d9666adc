"""The replay memory: n-step transitions over a frame store, sampled uniformly or in proportion to priorities."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from impoola.replay.frames import FrameStore
from impoola.replay.layout import Layout, allocate, layout_nbytes
from impoola.replay.nstep import NStepAccumulator, Transitions
from impoola.replay.rules import ReplayRules, rules_for
from impoola.replay.sum_tree import PriorityTree


class Batch(NamedTuple):
    """A sampled batch on the memory's device; frames stay uint8 (the network divides by 255)."""

    obs: torch.Tensor
    actions: torch.Tensor
    returns: torch.Tensor
    next_obs: torch.Tensor
    dones: torch.Tensor
    weights: torch.Tensor
    indices: np.ndarray


class ReplayMemory:
    """Replay memory of `capacity` n-step transitions from `num_envs` lock-stepped envs.

    Every frame is stored once (FrameStore); a transition holds the frame slots of its observation and next
    observation. A transition whose observation frame has been overwritten is invalidated (priority 0) and never
    sampled; that happens mainly under the release rules, whose skipped episode tails let transitions outlive
    their frames (about capacity·(1 − (n−1)/episode length) stay sampleable). The rules of `mode` (ReplayRules)
    decide the n-step storage (NStepAccumulator), new items' priority and the importance weights.
    """

    def __init__(
        self,
        capacity: int,
        num_envs: int,
        obs_shape: tuple[int, ...],
        n_step: int = 3,
        gamma: float = 0.99,
        mode: str = "release",
        prioritized: bool = True,
        alpha: float = 0.5,
        beta: float = 0.5,
        eps: float = 1e-6,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ):
        self.rules: ReplayRules = rules_for(mode)
        if capacity < 1 or num_envs < 1 or n_step < 1:
            raise ValueError(
                f"invalid replay size: capacity={capacity}, num_envs={num_envs}, n_step={n_step}; "
                "valid: positive integers"
            )
        self.capacity, self.num_envs, self.obs_shape = capacity, num_envs, tuple(obs_shape)
        self.n_step, self.gamma, self.prioritized = n_step, gamma, prioritized
        self.alpha, self.beta, self.eps = alpha, beta, eps
        self.device = torch.device(device)
        self.rng = np.random.default_rng(seed)
        self.store = FrameStore(num_envs, FrameStore.frames_per_env_for(capacity, num_envs, n_step), self.obs_shape)
        self.nstep = NStepAccumulator(num_envs, n_step, gamma, self.rules.flush_episode_tails)
        self.arrays = allocate(self.layout(capacity))
        self.tree = PriorityTree(capacity, track_min=not self.rules.batch_mean_weights) if prioritized else None
        self.pos = self.size = self.num_valid = 0
        self.max_priority = 1.0
        self._envs = np.arange(num_envs)

    @staticmethod
    def layout(capacity: int) -> Layout:
        """The stored transitions."""
        return {
            "obs_frame": ((capacity,), np.int32, 0),
            "next_frame": ((capacity,), np.int32, 0),
            "actions": ((capacity,), np.int32, 0),
            "returns": ((capacity,), np.float32, 0),
            "dones": ((capacity,), np.bool_, False),
            "valid": ((capacity,), np.bool_, False),
        }

    @staticmethod
    def required_bytes(
        capacity: int,
        obs_shape: tuple[int, ...],
        num_envs: int,
        n_step: int = 3,
        mode: str = "release",
        prioritized: bool = True,
    ) -> int:
        """Bytes a memory of this configuration allocates, computed before allocating it."""
        frames_per_env = FrameStore.frames_per_env_for(capacity, num_envs, n_step)
        total = layout_nbytes(ReplayMemory.layout(capacity)) + layout_nbytes(NStepAccumulator.layout(num_envs, n_step))
        total += FrameStore.nbytes_for(num_envs, frames_per_env, tuple(obs_shape))
        track_min = not rules_for(mode).batch_mean_weights
        return total + (PriorityTree.nbytes_for(capacity, track_min) if prioritized else 0)

    @property
    def mode(self) -> str:
        """Name of the rules: release or textbook."""
        return self.rules.name

    @property
    def step(self) -> int:
        """Vectorized steps added so far."""
        return self.nstep.step

    @property
    def nbytes(self) -> int:
        """Bytes held by all arrays (the frame ring is committed lazily as it fills)."""
        return sum(a.nbytes for a in self.state_arrays().values())

    @property
    def bytes_per_transition(self) -> float:
        """Bytes held per transition of capacity (≈ one frame plus indices and tree nodes)."""
        return self.nbytes / self.capacity

    @property
    def frames(self) -> np.ndarray:
        """The frame store, (num_envs * frames_per_env, *obs_shape) uint8."""
        return self.store.frames

    @property
    def bootstrap_gamma(self) -> float:
        """Discount of the bootstrap term under this memory's rules."""
        return self.rules.bootstrap_gamma(self.gamma, self.n_step)

    def __len__(self) -> int:
        """Number of sampleable transitions."""
        return self.num_valid

    def _write_frames(self, envs: np.ndarray, data: np.ndarray) -> np.ndarray:
        """Append frames to the rings of `envs`, invalidating transitions that observed the overwritten slots."""
        slots, owners, owned_slots = self.store.write(envs, data)
        a = self.arrays
        stale = owners[a["valid"][owners] & (a["obs_frame"][owners] == owned_slots)]
        if len(stale):
            a["valid"][stale] = False
            self.num_valid -= len(stale)
            if self.tree is not None:
                self.tree.update(stale, 0.0)
        return slots

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, dones: np.ndarray,
            next_obs: np.ndarray) -> None:
        """Record one vectorized step of all envs; `next_obs` after a done is the next episode's first frame."""
        dones = np.asarray(dones, dtype=bool)
        obs_slots, fresh = self.store.stream_slots(obs)
        if fresh.any():  # a frame that does not continue the env's stream starts a new one, dropping its pending steps
            obs_slots[fresh] = self._write_frames(self._envs[fresh], obs[fresh])
            self.nstep.drop(fresh)
        next_slots = self._write_frames(self._envs, next_obs)
        self.store.continue_streams(next_slots, next_obs)
        self._store(self.nstep.push(obs_slots, next_slots, actions, rewards, dones))

    def _store(self, new: Transitions) -> None:
        """Append transitions to the circular transition store, oldest overwritten first."""
        count = len(new.obs_frame)
        keep = min(count, self.capacity)
        if keep == 0:
            return
        a = self.arrays
        idx = (self.pos + np.arange(count - keep, count)) % self.capacity
        sl = slice(count - keep, None)
        self.num_valid += keep - int(a["valid"][idx].sum())
        a["obs_frame"][idx], a["next_frame"][idx] = new.obs_frame[sl], new.next_frame[sl]
        a["actions"][idx], a["returns"][idx], a["dones"][idx] = new.actions[sl], new.returns[sl], new.dones[sl]
        a["valid"][idx] = True
        self.store.set_owners(new.obs_frame[sl], idx)
        if self.tree is not None:
            self.tree.update(idx, self.rules.new_priority(self.max_priority, self.alpha, self.eps))
        self.pos = (self.pos + count) % self.capacity
        self.size = min(self.size + keep, self.capacity)

    def sample_indices(self, batch_size: int, beta: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(indices, importance weights float32): stratified proportional draws, or uniform ones with unit weights."""
        if self.num_valid == 0:
            raise RuntimeError("cannot sample from an empty replay memory")
        valid = self.arrays["valid"]
        if self.tree is None:
            idx = self.rng.integers(0, self.size, batch_size)
            bad = ~valid[idx]
            while bad.any():
                idx[bad] = self.rng.integers(0, self.size, int(bad.sum()))
                bad = ~valid[idx]
            return idx, np.ones(batch_size, np.float32)
        beta = self.beta if beta is None else beta
        total = self.tree.total()
        if not total > 0:
            raise RuntimeError("cannot sample: every stored transition has priority 0 (use eps > 0)")
        idx = self.tree.find((np.arange(batch_size) + self.rng.random(batch_size)) * (total / batch_size))
        priorities = self.tree.get(idx)
        bad = priorities <= 0  # a draw rounded onto an empty leaf: draw it again
        while bad.any():
            idx[bad] = self.tree.find(self.rng.random(int(bad.sum())) * total)
            priorities = self.tree.get(idx)
            bad = priorities <= 0
        weights = (self.num_valid * priorities / total) ** -beta
        if self.rules.batch_mean_weights:
            weights /= weights.mean()
        else:
            weights /= (self.num_valid * self.tree.min() / total) ** -beta
        return idx, weights.astype(np.float32)

    def gather(self, indices: np.ndarray, weights: np.ndarray | None = None) -> Batch:
        """The transitions at `indices` as a Batch on the device (unit weights unless given)."""
        a, frames, to = self.arrays, self.store.frames, self.device
        weights = np.ones(len(indices), np.float32) if weights is None else weights
        return Batch(  # np.take: a fast contiguous copy per frame
            obs=torch.from_numpy(np.take(frames, a["obs_frame"][indices], axis=0)).to(to),
            actions=torch.from_numpy(a["actions"][indices].astype(np.int64)).to(to),
            returns=torch.from_numpy(a["returns"][indices]).to(to),
            next_obs=torch.from_numpy(np.take(frames, a["next_frame"][indices], axis=0)).to(to),
            dones=torch.from_numpy(a["dones"][indices].astype(np.float32)).to(to),
            weights=torch.from_numpy(weights).to(to),
            indices=indices,
        )

    def sample(self, batch_size: int, beta: float | None = None) -> Batch:
        """Draw a batch (prioritized or uniform) with its importance weights."""
        return self.gather(*self.sample_indices(batch_size, beta))

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Set already-transformed priorities (see ReplayRules.priorities); a no-op for uniform replay."""
        if self.tree is None:
            return
        priorities = np.asarray(priorities, dtype=np.float64)
        live = self.arrays["valid"][indices]
        self.tree.update(indices[live], priorities[live])
        self.max_priority = max(self.max_priority, float(priorities.max()))

    def ordered_indices(self) -> np.ndarray:
        """Indices of the sampleable transitions, oldest first."""
        order = (self.pos - self.size + np.arange(self.size)) % self.capacity
        return order[self.arrays["valid"][order]]

    def config(self) -> dict[str, Any]:
        """The settings a saved state must match."""
        return {
            "capacity": self.capacity, "num_envs": self.num_envs, "obs_shape": list(self.obs_shape),
            "n_step": self.n_step, "gamma": self.gamma, "mode": self.mode, "prioritized": self.prioritized,
        }

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every array of the memory and its parts by name (the arrays themselves, not copies)."""
        tree = self.tree.arrays() if self.tree is not None else {}
        return {**self.arrays, **self.store.arrays, **self.nstep.arrays, **tree}

    def state_dict(self) -> dict[str, Any]:
        """Config, counters and arrays (the arrays themselves, not copies)."""
        counters = {
            "pos": self.pos, "size": self.size, "num_valid": self.num_valid, "step": self.step,
            "max_priority": self.max_priority, "rng": self.rng.bit_generator.state,
        }
        return {"config": self.config(), "counters": counters, "arrays": self.state_arrays()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy a state in (arrays may be memory-mapped); a one-line ValueError if its config differs."""
        if state["config"] != self.config():
            raise ValueError(f"replay state config {state['config']} does not match this memory's {self.config()}")
        for name, target in self.state_arrays().items():
            np.copyto(target, state["arrays"][name])
        c = state["counters"]
        self.pos, self.size, self.num_valid, self.nstep.step = c["pos"], c["size"], c["num_valid"], c["step"]
        self.max_priority = c["max_priority"]
        self.rng.bit_generator.state = c["rng"]
        self.store.forget_latest_obs()
