"""Replay memory throughput: prioritized sampling + weights + priority update, frame gather, add, bytes per transition.

    python -m benchmark_utils.replay_throughput [--capacity 1000000] [--batch 512] [--gather_capacity 100000]

The index work (tree descent, weights, priority update) does not depend on the frame size, so it is timed on a
full memory of `--capacity` transitions with 1-byte frames; the frame gather is timed on a memory of 64x64x3
frames filled to `--gather_capacity` (random reads from a store far larger than the CPU caches).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from impoola.cli import run_command
from impoola.options import Checked, Int
from impoola.replay import ReplayMemory, available_memory
from impoola.run.startup import check_memory_need

FRAME = (3, 64, 64)


def fill(mem: ReplayMemory, rng: np.random.Generator, extra_steps: int = 0, done_prob: float = 0.005) -> float:
    """Add random steps until the memory is full, then `extra_steps` more; median ms of those extra add() calls."""
    shape = (mem.num_envs, *mem.obs_shape)
    pool = rng.integers(0, 256, (8, *shape), dtype=np.uint8)
    obs, step, times = pool[0], 0, []
    while mem.size < mem.capacity or len(times) < extra_steps:
        next_obs = pool[(step + 1) % len(pool)].copy()
        actions = rng.integers(0, 15, mem.num_envs)
        rewards = rng.normal(size=mem.num_envs).astype(np.float32)
        start = time.perf_counter()
        mem.add(obs, actions, rewards, rng.random(mem.num_envs) < done_prob, next_obs)
        if mem.size == mem.capacity:
            times.append(time.perf_counter() - start)
        obs, step = next_obs, step + 1
    return float(np.median(times) * 1e3) if times else float("nan")


def time_index_work(mem: ReplayMemory, batch: int, repeats: int, rng: np.random.Generator) -> tuple[float, float]:
    """(median, mean) ms of sample_indices + the rules' new priorities + update_priorities for one batch."""
    times = []
    for i in range(repeats + 50):
        td = rng.normal(size=batch)
        start = time.perf_counter()
        idx, weights = mem.sample_indices(batch)
        mem.update_priorities(idx, mem.rules.priorities(td, weights, mem.alpha, mem.eps))
        if i >= 50:  # the first draws spread the priorities
            times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3), float(np.mean(times) * 1e3)


@dataclass(frozen=True)
class ReplayThroughputOptions(Checked):
    """Sizes of the timed replay memories."""

    capacity: Int(1, 10**9) = 1_000_000
    """transitions of the index-work memory (1-byte frames)"""
    batch: Int(1, 2**20) = 512
    """transitions per sampled batch"""
    num_envs: Int(1, 4096) = 128
    """envs per added step"""
    repeats: Int(1, 10**6) = 500
    """timed batches"""
    gather_capacity: Int(1, 10**8) = 100_000
    """transitions of the frame-gather memory (64x64x3 frames)"""
    device: str = "cpu"
    """device the gathered batch goes to (cpu, cuda, cuda:1, ...)"""

    def check(self) -> None:
        try:
            device = torch.device(self.device)
        except RuntimeError:
            raise ValueError(f"invalid device {self.device!r}; valid: cpu, cuda, cuda:N") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"invalid device {self.device!r}: no CUDA device here; valid: cpu")
        if self.batch > min(self.capacity, self.gather_capacity):
            raise ValueError(f"invalid batch {self.batch}; valid: at most the capacities "
                             f"({min(self.capacity, self.gather_capacity)})")
        need = ReplayMemory.required_bytes(self.gather_capacity, FRAME, self.num_envs) + ReplayMemory.required_bytes(
            self.capacity, (1, 1, 1), self.num_envs)
        check_memory_need("gather_capacity / capacity", need, available_memory(), "smaller capacities")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: the exit status (0, or 2 after a one-line error)."""
    return run_command(ReplayThroughputOptions, measure, argv, description=__doc__)


def measure(args: ReplayThroughputOptions) -> None:
    """Time the replay memory's parts and print the figures."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    for mode in ("release", "textbook"):
        mem = ReplayMemory(args.capacity, args.num_envs, (1, 1, 1), mode=mode, seed=0)
        fill(mem, rng)
        median, mean = time_index_work(mem, args.batch, args.repeats, rng)
        print(f"{mode:8s} sample+weights+priority update, batch {args.batch} at capacity {args.capacity:,}: "
              f"{median:.3f} ms median, {mean:.3f} ms mean")
    mem = ReplayMemory(args.gather_capacity, args.num_envs, FRAME, device=args.device, seed=0)
    add_ms = fill(mem, rng, extra_steps=200)
    times = []
    for _ in range(min(args.repeats, 100)):
        idx, weights = mem.sample_indices(args.batch)
        start = time.perf_counter()
        batch = mem.gather(idx, weights)
        if batch.obs.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    print(f"frame gather (obs + next_obs, {args.batch} x {FRAME} uint8 -> {args.device}) at capacity "
          f"{args.gather_capacity:,}: {np.median(times) * 1e3:.2f} ms median")
    print(f"add() of one {args.num_envs}-env step with {FRAME} frames, memory full: {add_ms:.2f} ms median")
    print(f"bytes per transition (arrays of this memory): {mem.bytes_per_transition:,.1f}")
    for mode in ("release", "textbook"):
        need = ReplayMemory.required_bytes(args.capacity, FRAME, args.num_envs, mode=mode)
        print(f"{mode:8s} at capacity {args.capacity:,}: {need / args.capacity:,.1f} bytes per transition, "
              f"{need / 2**30:.2f} GiB in all")


if __name__ == "__main__":
    sys.exit(main())
