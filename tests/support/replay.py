"""Helpers of the replay tests: scripted trajectories of constant frames fed into a memory, and what it stored."""

from __future__ import annotations

import numpy as np

from impoola.replay import Batch, ReplayMemory


def frames_of(ids, shape: tuple[int, ...] = (3, 4, 4)) -> np.ndarray:
    """Constant uint8 frames, one per id."""
    ids = np.asarray(ids, dtype=np.uint8)
    return np.broadcast_to(ids.reshape(-1, *([1] * len(shape))), (len(ids), *shape)).copy()


def stored(mem: ReplayMemory) -> list[tuple]:
    """(obs id, next obs id, action, return, done) of the stored transitions, oldest first."""
    b = mem.gather(mem.ordered_indices())
    return [
        (int(o[0, 0, 0]), int(n[0, 0, 0]), int(a), float(r), float(d))
        for o, n, a, r, d in zip(b.obs, b.next_obs, b.actions, b.returns, b.dones)
    ]


def feed(mem: ReplayMemory, obs_ids, actions, rewards, dones, shape: tuple[int, ...] = (3, 4, 4)) -> None:
    """Feed a scripted trajectory; obs_ids has one more row than the other arrays."""
    obs = frames_of(obs_ids[0], shape)
    for t in range(len(rewards)):
        next_obs = frames_of(obs_ids[t + 1], shape)
        mem.add(obs, np.asarray(actions[t]), np.asarray(rewards[t], np.float32), np.asarray(dones[t]), next_obs)
        obs = next_obs


def filled_memory(mode: str, priorities: np.ndarray, seed: int = 0) -> ReplayMemory:
    """A one-env 1-step memory holding one transition per priority, with those priorities set."""
    k = len(priorities)
    mem = ReplayMemory(k, 1, (1, 2, 2), n_step=1, gamma=0.9, mode=mode, seed=seed)
    feed(mem, [[t] for t in range(k + 1)], [[t] for t in range(k)], [[0.0]] * k, np.zeros((k, 1), bool), (1, 2, 2))
    mem.update_priorities(np.arange(k), priorities)
    return mem


def trajectory(steps: int, periods: tuple[int, int], seed: int = 0) -> tuple:
    """Two envs whose frames encode (env, step); env e ends an episode every periods[e] steps."""
    rng = np.random.default_rng(seed)
    obs_ids = [[(e, t) for e in range(2)] for t in range(steps + 1)]
    actions = rng.integers(0, 15, (steps, 2))
    rewards = rng.normal(size=(steps, 2)).astype(np.float32)
    dones = np.array([[(t + 1) % periods[e] == 0 for e in range(2)] for t in range(steps)])
    return obs_ids, actions, rewards, dones


def coded_frames(row) -> np.ndarray:
    """(3, 1, 1) frames (env, step % 256, 7) for a row of (env, step) ids."""
    return np.array([[[[e]], [[t % 256]], [[7]]] for e, t in row], np.uint8)


def feed_coded(mem: ReplayMemory, obs_ids, actions, rewards, dones) -> None:
    """Feed a trajectory whose frames are (3, 1, 1) = (env, step % 256, 7)."""
    obs = coded_frames(obs_ids[0])
    for t in range(len(rewards)):
        next_obs = coded_frames(obs_ids[t + 1])
        mem.add(obs, actions[t], rewards[t], dones[t], next_obs)
        obs = next_obs


def as_tuples(batch: Batch) -> set[tuple]:
    """The batch's transitions as (obs, next obs, action, return, done) tuples."""
    return {
        (tuple(o.flatten().tolist()), tuple(n.flatten().tolist()), int(a), round(float(r), 5), float(d))
        for o, n, a, r, d in zip(batch.obs, batch.next_obs, batch.actions, batch.returns, batch.dones)
    }
