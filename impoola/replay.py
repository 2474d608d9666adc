"""DQN replay memory: frame-efficient storage, n-step returns (release or textbook) and prioritized sampling."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from impoola.checkpoint import atomic_write_bytes

MODES = ("release", "textbook")
TOP_LEVEL = 12  # trees are kept up to the level of 2**12 nodes; sampling searches that level's cumulative sum


class Batch(NamedTuple):
    """A sampled batch on the memory's device; frames stay uint8 (the network divides by 255)."""

    obs: torch.Tensor
    actions: torch.Tensor
    returns: torch.Tensor
    next_obs: torch.Tensor
    dones: torch.Tensor
    weights: torch.Tensor
    indices: np.ndarray


def check_mode(mode: str) -> None:
    """Raise a one-line ValueError unless `mode` is release or textbook."""
    if mode not in MODES:
        raise ValueError(f"invalid replay mode {mode!r}; valid: {', '.join(MODES)}")


def gamma_for_bootstrap(mode: str, gamma: float, n_step: int) -> float:
    """Discount of the bootstrap term: γ in release mode (it bootstraps from s_{t+1}), γⁿ in textbook mode."""
    check_mode(mode)
    return gamma if mode == "release" else gamma**n_step


def priority_from_td(td: np.ndarray, weights: np.ndarray, mode: str, alpha: float, eps: float) -> np.ndarray:
    """New priorities: |w·δ|^α + ε in release mode (the weighted TD error), |δ|^α + ε in textbook mode."""
    check_mode(mode)
    err = np.abs(td * weights) if mode == "release" else np.abs(td)
    return err.astype(np.float64) ** alpha + eps


def dqn_loss(
    q_taken: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor,
    mode: str = "release",
    alpha: float = 0.5,
    eps: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """(loss, TD error, new priorities): release mean((w·δ)²), textbook mean(w·δ²); `target` carries no gradient."""
    check_mode(mode)
    td = target.detach() - q_taken
    loss = ((weights * td) ** 2).mean() if mode == "release" else (weights * td**2).mean()
    td = td.detach()
    priorities = priority_from_td(td.cpu().numpy(), weights.detach().cpu().numpy(), mode, alpha, eps)
    return loss, td, priorities


def available_memory() -> int:
    """Bytes of memory available to a new allocation (MemAvailable of /proc/meminfo, else free physical pages)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(required: int, available: int) -> None:
    """Raise a one-line MemoryError when the replay memory needs more bytes than are available."""
    if required > available:
        raise MemoryError(
            f"replay memory needs {required / 2**30:.2f} GiB but only {available / 2**30:.2f} GiB are available; "
            "lower the buffer size or free memory"
        )


class PriorityTree:
    """Array binary sum tree (plus an optional min tree) over `capacity` leaves, kept up to a flat top level."""

    def __init__(self, capacity: int, track_min: bool = False):
        self.depth = self.depth_for(capacity)
        self.num_leaves = 1 << self.depth
        self.top_level = min(self.depth, TOP_LEVEL)
        self.sums = np.zeros(2 * self.num_leaves)
        self.mins = np.full(2 * self.num_leaves, math.inf) if track_min else None

    @staticmethod
    def depth_for(capacity: int) -> int:
        """Number of levels below the root for `capacity` leaves."""
        return max(1, math.ceil(math.log2(capacity)))

    @staticmethod
    def nbytes_for(capacity: int, track_min: bool) -> int:
        """Bytes of the tree arrays for `capacity` leaves."""
        return (1 + track_min) * 2 * (1 << PriorityTree.depth_for(capacity)) * 8

    def _top(self, nodes: np.ndarray) -> np.ndarray:
        """The flat top level of `nodes` (a view)."""
        return nodes[1 << self.top_level : 2 << self.top_level]

    def total(self) -> float:
        """Sum of all leaves."""
        return float(self._top(self.sums).sum())

    def min(self) -> float:
        """Smallest positive leaf (needs track_min)."""
        return float(self._top(self.mins).min())

    def get(self, idx: np.ndarray) -> np.ndarray:
        """Leaf values at `idx`."""
        return self.sums[self.num_leaves + idx]

    def update(self, idx: np.ndarray, values: np.ndarray | float) -> None:
        """Set leaves `idx` to `values` (0 removes an item) and recompute their ancestors, one numpy op per level."""
        pos = np.asarray(idx, dtype=np.int64) + self.num_leaves
        self.sums[pos] = values
        if self.mins is not None:
            values = np.broadcast_to(values, pos.shape)
            self.mins[pos] = np.where(values > 0, values, math.inf)
        for _ in range(self.depth - self.top_level):
            pos = pos >> 1
            left = pos << 1
            right = left + 1
            self.sums[pos] = self.sums[left] + self.sums[right]
            if self.mins is not None:
                self.mins[pos] = np.minimum(self.mins[left], self.mins[right])

    def find(self, mass: np.ndarray) -> np.ndarray:
        """Leaf index holding each cumulative `mass`, all samples descended together."""
        top = self._top(self.sums)
        cum = np.concatenate(([0.0], np.cumsum(top)))
        node = np.minimum(np.searchsorted(cum, mass, side="right") - 1, len(top) - 1)
        mass = mass - cum[node]
        pos = node + (1 << self.top_level)
        for _ in range(self.depth - self.top_level):
            left = pos << 1
            left_mass = self.sums[left]
            right = mass >= left_mass
            np.subtract(mass, left_mass, out=mass, where=right)
            pos = left + right
        return pos - self.num_leaves


class ReplayMemory:
    """Replay memory of `capacity` n-step transitions from `num_envs` lock-stepped envs.

    Every frame is stored once, in a per-env ring of frames; a transition holds the frame
    indices of its observation and next observation. A transition whose observation frame has
    been overwritten is invalidated (priority 0) and never sampled; that happens mainly in release
    mode, whose skipped episode tails let transitions outlive their frames (about
    capacity·(1 − (n−1)/episode length) stay sampleable). Modes (facts §3):
    - release: (s_t, a_t, Σ_{i<n} γ^i r_{t+i} cut at the episode end, s_{t+1}, done of the newest
      step), emitted when n steps are pending or the newest step ends the episode; the pending
      steps are then dropped, so the last n−1 steps of an episode are never stored; new
      priorities (max p)^α + ε; weights (N·P)^−β over their batch mean.
    - textbook: (s_t, a_t, R_t^(n), s_{t+n}, done) with episode tails flushed at the episode end
      (done=1); new priorities max p; weights (N·P)^−β over the buffer's largest weight.
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
        check_mode(mode)
        if capacity < 1 or num_envs < 1 or n_step < 1:
            raise ValueError(
                f"invalid replay size: capacity={capacity}, num_envs={num_envs}, n_step={n_step}; valid: positive integers"
            )
        self.capacity, self.num_envs, self.obs_shape = capacity, num_envs, tuple(obs_shape)
        self.n_step, self.gamma, self.mode, self.prioritized = n_step, gamma, mode, prioritized
        self.alpha, self.beta, self.eps = alpha, beta, eps
        self.device = torch.device(device)
        self.rng = np.random.default_rng(seed)
        self.frames_per_env = self._frames_per_env(capacity, num_envs, n_step)
        layout = self._layout(capacity, num_envs, self.obs_shape, n_step)
        self.arrays = {name: np.full(shape, fill, dtype) for name, (shape, dtype, fill) in layout.items()}
        self.arrays["frames"] = np.empty((num_envs * self.frames_per_env, *self.obs_shape), np.uint8)
        self.tree = PriorityTree(capacity, track_min=mode == "textbook") if prioritized else None
        self.pos = self.size = self.num_valid = self.step = 0
        self.max_priority = 1.0
        self._last_next_obs: np.ndarray | None = None

    @staticmethod
    def _frames_per_env(capacity: int, num_envs: int, n_step: int) -> int:
        """Ring length per env: its share of the capacity plus room for the pending window (2 frames a step at most)."""
        return -(-capacity // num_envs) + 2 * n_step + 2

    @staticmethod
    def _layout(capacity: int, num_envs: int, obs_shape: tuple[int, ...], n_step: int) -> dict[str, tuple]:
        """Name -> (shape, dtype, fill) of every array except the frames and the trees."""
        num_frames = num_envs * ReplayMemory._frames_per_env(capacity, num_envs, n_step)
        if num_frames >= 2**31:
            raise ValueError(f"invalid capacity {capacity}: frame indices must fit int32")
        pending = (num_envs, n_step)
        return {
            "frame_owner": ((num_frames,), np.int32, -1),  # transition whose observation is this frame
            "obs_frame": ((capacity,), np.int32, 0),
            "next_frame": ((capacity,), np.int32, 0),
            "actions": ((capacity,), np.int32, 0),
            "returns": ((capacity,), np.float32, 0),
            "dones": ((capacity,), np.bool_, False),
            "valid": ((capacity,), np.bool_, False),
            "pend_obs": (pending, np.int32, 0),  # the pending steps of each env, column = step % n
            "pend_next": (pending, np.int32, 0),
            "pend_actions": (pending, np.int32, 0),
            "pend_rewards": (pending, np.float32, 0),
            "pend_len": ((num_envs,), np.int64, 0),
            "frame_count": ((num_envs,), np.int64, 0),
            "last_frame": ((num_envs,), np.int64, -1),  # frame of each env's latest next observation
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
        layout = ReplayMemory._layout(capacity, num_envs, tuple(obs_shape), n_step)
        total = sum(math.prod(shape) * np.dtype(dtype).itemsize for shape, dtype, _ in layout.values())
        total += num_envs * ReplayMemory._frames_per_env(capacity, num_envs, n_step) * math.prod(obs_shape)
        return total + (PriorityTree.nbytes_for(capacity, mode == "textbook") if prioritized else 0)

    @property
    def nbytes(self) -> int:
        """Bytes held by all arrays (the frame ring is committed lazily as it fills)."""
        return sum(a.nbytes for a in self.state_dict()["arrays"].values())

    @property
    def bytes_per_transition(self) -> float:
        """Bytes held per transition of capacity (≈ one frame plus indices and tree nodes)."""
        return self.nbytes / self.capacity

    @property
    def frames(self) -> np.ndarray:
        """The frame store, (num_envs * frames_per_env, *obs_shape) uint8."""
        return self.arrays["frames"]

    @property
    def bootstrap_gamma(self) -> float:
        """Discount of the bootstrap term for this memory's mode."""
        return gamma_for_bootstrap(self.mode, self.gamma, self.n_step)

    def __len__(self) -> int:
        """Number of sampleable transitions."""
        return self.num_valid

    def _write_frames(self, envs: np.ndarray, data: np.ndarray) -> np.ndarray:
        """Append one frame to each env's ring in `envs`, invalidating transitions observing the overwritten slots."""
        a = self.arrays
        slots = envs * self.frames_per_env + a["frame_count"][envs] % self.frames_per_env
        owners = a["frame_owner"][slots]
        owned = owners >= 0
        owners, owned_slots = owners[owned], slots[owned]
        stale = owners[a["valid"][owners] & (a["obs_frame"][owners] == owned_slots)]
        if len(stale):
            a["valid"][stale] = False
            self.num_valid -= len(stale)
            if self.tree is not None:
                self.tree.update(stale, 0.0)
        a["frame_owner"][slots] = -1
        a["frames"][slots] = data
        a["frame_count"][envs] += 1
        return slots

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, dones: np.ndarray, next_obs: np.ndarray) -> None:
        """Record one vectorized step of all envs; `next_obs` after a done is the next episode's first frame."""
        a, n, envs = self.arrays, self.n_step, np.arange(self.num_envs)
        dones = np.asarray(dones, dtype=bool)
        obs_slots = a["last_frame"].copy()
        fresh = obs_slots < 0
        if obs is not self._last_next_obs:  # obs is normally the previous next_obs itself, already stored
            for e in np.flatnonzero(~fresh):  # byte comparison per env: no large temporaries
                fresh[e] = a["frames"][obs_slots[e]].tobytes() != np.asarray(obs[e], np.uint8).tobytes()
        if fresh.any():  # a frame that does not continue the env's stream starts a new one, dropping its pending steps
            obs_slots[fresh] = self._write_frames(envs[fresh], obs[fresh])
            a["pend_len"][fresh] = 0
        next_slots = self._write_frames(envs, next_obs)
        a["last_frame"][:] = next_slots
        self._last_next_obs = next_obs
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
        if self.mode == "release":
            env = np.flatnonzero((length == n) | dones)
            age = length[env] - 1
            next_col = cols[age]
        else:
            emit = (ages < length[:, None]) & (dones[:, None] | ((length == n)[:, None] & (ages == n - 1)))
            env, rev_age = np.nonzero(emit[:, ::-1])  # env-major, oldest first
            age = n - 1 - rev_age
            next_col = np.full(len(env), col)
        start_col = cols[age]
        self._store(
            a["pend_obs"][env, start_col],
            a["pend_next"][env, next_col],
            a["pend_actions"][env, start_col],
            returns[env, age],
            dones[env],
        )
        a["pend_len"][dones] = 0
        self.step += 1

    def _store(self, obs_frame: np.ndarray, next_frame: np.ndarray, actions: np.ndarray, returns: np.ndarray, dones: np.ndarray) -> None:
        """Append transitions to the circular transition store, oldest overwritten first."""
        keep = min(len(obs_frame), self.capacity)
        if keep == 0:
            return
        a = self.arrays
        idx = (self.pos + np.arange(len(obs_frame) - keep, len(obs_frame))) % self.capacity
        sl = slice(len(obs_frame) - keep, None)
        self.num_valid += keep - int(a["valid"][idx].sum())
        a["obs_frame"][idx], a["next_frame"][idx] = obs_frame[sl], next_frame[sl]
        a["actions"][idx], a["returns"][idx], a["dones"][idx] = actions[sl], returns[sl], dones[sl]
        a["valid"][idx] = True
        a["frame_owner"][obs_frame[sl]] = idx
        if self.tree is not None:
            new = self.max_priority**self.alpha + self.eps if self.mode == "release" else self.max_priority
            self.tree.update(idx, new)
        self.pos = (self.pos + len(obs_frame)) % self.capacity
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
        if self.mode == "release":
            weights /= weights.mean()
        else:
            weights /= (self.num_valid * self.tree.min() / total) ** -beta
        return idx, weights.astype(np.float32)

    def gather(self, indices: np.ndarray, weights: np.ndarray | None = None) -> Batch:
        """The transitions at `indices` as a Batch on the device (unit weights unless given)."""
        a = self.arrays
        to = self.device
        weights = np.ones(len(indices), np.float32) if weights is None else weights
        return Batch(  # np.take: a fast contiguous copy per frame
            obs=torch.from_numpy(np.take(a["frames"], a["obs_frame"][indices], axis=0)).to(to),
            actions=torch.from_numpy(a["actions"][indices].astype(np.int64)).to(to),
            returns=torch.from_numpy(a["returns"][indices]).to(to),
            next_obs=torch.from_numpy(np.take(a["frames"], a["next_frame"][indices], axis=0)).to(to),
            dones=torch.from_numpy(a["dones"][indices].astype(np.float32)).to(to),
            weights=torch.from_numpy(weights).to(to),
            indices=indices,
        )

    def sample(self, batch_size: int, beta: float | None = None) -> Batch:
        """Draw a batch (prioritized or uniform) with its importance weights."""
        return self.gather(*self.sample_indices(batch_size, beta))

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Set already-transformed priorities (see priority_from_td); a no-op for uniform replay."""
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

    def state_dict(self) -> dict[str, Any]:
        """Config, counters and arrays (the arrays themselves, not copies)."""
        arrays = dict(self.arrays)
        if self.tree is not None:
            arrays["tree_sums"] = self.tree.sums
            if self.tree.mins is not None:
                arrays["tree_mins"] = self.tree.mins
        counters = {
            "pos": self.pos, "size": self.size, "num_valid": self.num_valid, "step": self.step,
            "max_priority": self.max_priority, "rng": self.rng.bit_generator.state,
        }
        return {"config": self.config(), "counters": counters, "arrays": arrays}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy a state in (arrays may be memory-mapped); a one-line ValueError if its config differs."""
        if state["config"] != self.config():
            raise ValueError(f"replay state config {state['config']} does not match this memory's {self.config()}")
        targets = self.state_dict()["arrays"]
        for name, target in targets.items():
            np.copyto(target, state["arrays"][name])
        c = state["counters"]
        self.pos, self.size, self.num_valid, self.step = c["pos"], c["size"], c["num_valid"], c["step"]
        self.max_priority = c["max_priority"]
        self.rng.bit_generator.state = c["rng"]
        self._last_next_obs = None

    def save(self, directory: str | Path) -> None:
        """Write the state as one .npy file per array plus meta.json, each atomically; meta.json names the set."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta_path = directory / "meta.json"
        generation = json.loads(meta_path.read_text())["generation"] + 1 if meta_path.exists() else 0
        state = self.state_dict()
        for name, array in state["arrays"].items():
            atomic_write_bytes(directory / f"{name}.{generation}.npy", lambda f, array=array: np.save(f, array))
        meta = {"generation": generation, "config": state["config"], "counters": state["counters"]}
        atomic_write_bytes(meta_path, lambda f: f.write(json.dumps(meta).encode()))
        for name in state["arrays"]:  # older generations go once meta.json points at the new one
            for path in directory.glob(f"{name}.*.npy"):
                if path.name != f"{name}.{generation}.npy":
                    path.unlink()

    def load(self, directory: str | Path) -> None:
        """Load a state written by save(), reading the arrays through memory maps."""
        directory = Path(directory)
        meta = json.loads((directory / "meta.json").read_text())
        names = self.state_dict()["arrays"]
        arrays = {name: np.load(directory / f"{name}.{meta['generation']}.npy", mmap_mode="r") for name in names}
        self.load_state_dict({"config": meta["config"], "counters": meta["counters"], "arrays": arrays})
