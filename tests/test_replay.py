"""Replay memory: release/textbook n-step storage, prioritized sampling, wrap-around, memory accounting, save/load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from impoola.replay import (
    Batch,
    PriorityTree,
    ReplayMemory,
    available_memory,
    check_memory,
    dqn_loss,
    gamma_for_bootstrap,
    priority_from_td,
)

GOLDEN = Path(__file__).parent / "data" / "nstep_release.json"
CHI2_DF7_P001 = 24.322  # chi-square critical value, 7 degrees of freedom, p = 0.001


def frames_of(ids: np.ndarray, shape: tuple[int, ...] = (3, 4, 4)) -> np.ndarray:
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


def test_release_mode_stores_the_golden_list():
    g = json.loads(GOLDEN.read_text())
    steps, n_envs = len(g["rewards"]), g["n_envs"]
    dones = np.zeros((steps, n_envs), bool)
    for env, t in g["done_at"]:
        dones[t, env] = True
    mem = ReplayMemory(64, n_envs, (3, 4, 4), n_step=g["n_steps"], gamma=g["gamma"], mode="release")
    feed(mem, g["obs_ids"], g["actions"], g["rewards"], dones)
    got = stored(mem)
    assert len(mem) == len(g["stored"]) == len(got)
    for (obs, nxt, action, ret, done), want in zip(got, g["stored"]):
        assert (obs, nxt, action, done) == (want["obs"], want["next_obs"], want["action"], want["done"])
        assert ret == pytest.approx(want["reward"], rel=1e-6, abs=1e-6)
    assert mem.bootstrap_gamma == g["gamma"]


def test_textbook_nstep_targets_by_hand():
    # two envs, n=3, γ=0.5; obs id = 1 + 2t + env; env0 ends at t=3, env1 at t=1 and t=5
    steps = 7
    obs_ids = [[1 + 2 * t, 2 + 2 * t] for t in range(steps + 1)]
    actions = [[t, 10 + t] for t in range(steps)]
    rewards = [[t + 1, 10 * (t + 1)] for t in range(steps)]
    dones = np.zeros((steps, 2), bool)
    dones[3, 0] = dones[1, 1] = dones[5, 1] = True
    mem = ReplayMemory(64, 2, (3, 4, 4), n_step=3, gamma=0.5, mode="textbook")
    feed(mem, obs_ids, actions, rewards, dones)
    expected = [
        (2, 6, 10, 10 + 0.5 * 20, 1.0),  # t=1: env1's two-step episode flushed
        (4, 6, 11, 20.0, 1.0),
        (1, 7, 0, 1 + 0.5 * 2 + 0.25 * 3, 0.0),  # t=2: env0 t0 -> s3
        (3, 9, 1, 2 + 0.5 * 3 + 0.25 * 4, 1.0),  # t=3: env0's tail flushed, next = next episode's first frame
        (5, 9, 2, 3 + 0.5 * 4, 1.0),
        (7, 9, 3, 4.0, 1.0),
        (6, 12, 12, 30 + 0.5 * 40 + 0.25 * 50, 0.0),  # t=4: env1 t2 -> s5
        (8, 14, 13, 40 + 0.5 * 50 + 0.25 * 60, 1.0),  # t=5: env1's tail flushed
        (10, 14, 14, 50 + 0.5 * 60, 1.0),
        (12, 14, 15, 60.0, 1.0),
        (9, 15, 4, 5 + 0.5 * 6 + 0.25 * 7, 0.0),  # t=6: env0 t4 -> s7
    ]
    assert stored(mem) == expected
    assert mem.bootstrap_gamma == pytest.approx(0.125)
    assert len(mem) + 3 == 2 * steps  # only the 3 steps of unfinished windows are pending


def filled_memory(mode: str, priorities: np.ndarray, seed: int = 0) -> ReplayMemory:
    """A one-env 1-step memory holding one transition per priority, with those priorities set."""
    k = len(priorities)
    mem = ReplayMemory(k, 1, (1, 2, 2), n_step=1, gamma=0.9, mode=mode, seed=seed)
    feed(mem, [[t] for t in range(k + 1)], [[t] for t in range(k)], [[0.0]] * k, np.zeros((k, 1), bool), (1, 2, 2))
    mem.update_priorities(np.arange(k), priorities)
    return mem


def sample_counts(mem: ReplayMemory, batches: int = 400, batch_size: int = 64) -> np.ndarray:
    """How often each slot was drawn."""
    counts = np.zeros(mem.capacity)
    for _ in range(batches):
        idx, _ = mem.sample_indices(batch_size)
        np.add.at(counts, idx, 1)
    return counts


def chi2(counts: np.ndarray, p: np.ndarray) -> float:
    """Pearson's chi-square statistic of `counts` against probabilities proportional to `p`."""
    expected = counts.sum() * p / p.sum()
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("mode", ["release", "textbook"])
def test_prioritized_frequencies_follow_priorities_and_updates(mode):
    p = np.arange(1.0, 9.0)
    mem = filled_memory(mode, p)
    counts = sample_counts(mem)
    assert chi2(counts, p) < CHI2_DF7_P001
    assert counts[7] > 6 * counts[0]
    q = p[::-1].copy()
    mem.update_priorities(np.arange(8), q)
    counts = sample_counts(mem)
    assert chi2(counts, q) < CHI2_DF7_P001
    assert counts[0] > 6 * counts[7]


def test_importance_weights_match_the_formulas():
    p = np.array([0.5, 1.0, 2.0, 4.0, 0.25, 3.0, 1.5, 2.5])
    beta, n = 0.5, len(p)
    release = filled_memory("release", p)
    idx, w = release.sample_indices(32, beta)
    raw = (n * p[idx] / p.sum()) ** -beta
    np.testing.assert_allclose(w, raw / raw.mean(), rtol=1e-6)
    textbook = filled_memory("textbook", p)
    idx, w = textbook.sample_indices(32, beta)
    np.testing.assert_allclose(w, (n * p[idx] / p.sum()) ** -beta / (n * p.min() / p.sum()) ** -beta, rtol=1e-6)
    assert w.max() <= 1.0


def test_new_items_get_the_mode_s_max_priority():
    for mode, want in (("release", 9.0**0.5 + 1e-6), ("textbook", 9.0)):
        mem = filled_memory(mode, np.array([1.0, 9.0, 2.0, 3.0]))
        mem.add(frames_of([7], (1, 2, 2)), np.array([0]), np.array([0.0], np.float32), np.array([False]), frames_of([8], (1, 2, 2)))
        assert mem.tree.get(np.array([0]))[0] == pytest.approx(want)  # the new item overwrote slot 0


def test_priorities_losses_and_bootstrap_discount():
    td = np.array([0.5, -2.0])
    w = np.array([2.0, 0.5])
    np.testing.assert_allclose(priority_from_td(td, w, "release", 0.5, 1e-6), np.abs(td * w) ** 0.5 + 1e-6)
    np.testing.assert_allclose(priority_from_td(td, w, "textbook", 0.5, 1e-6), np.abs(td) ** 0.5 + 1e-6)
    q = torch.tensor([1.0, 2.0], requires_grad=True)
    target = torch.tensor([1.5, 0.0])
    weights = torch.tensor([2.0, 0.5])
    loss, delta, prios = dqn_loss(q, target, weights, "release")
    assert loss.item() == pytest.approx(((2.0 * 0.5) ** 2 + (0.5 * 2.0) ** 2) / 2)
    np.testing.assert_allclose(delta.numpy(), [0.5, -2.0])
    np.testing.assert_allclose(prios, [1.0 + 1e-6, 1.0 + 1e-6])
    loss.backward()
    assert q.grad is not None
    loss, _, prios = dqn_loss(q.detach(), target, weights, "textbook")
    assert loss.item() == pytest.approx((2.0 * 0.25 + 0.5 * 4.0) / 2)
    np.testing.assert_allclose(prios, np.array([0.5, 2.0]) ** 0.5 + 1e-6)
    assert gamma_for_bootstrap("release", 0.99, 3) == 0.99
    assert gamma_for_bootstrap("textbook", 0.99, 3) == pytest.approx(0.99**3)
    with pytest.raises(ValueError, match="valid: release, textbook"):
        gamma_for_bootstrap("other", 0.99, 3)


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


@pytest.mark.parametrize("mode, periods", [("textbook", (5, 7)), ("release", (3, 7))])
def test_wrap_around_keeps_the_newest_and_never_samples_overwritten_frames(mode, periods):
    traj = trajectory(80, periods)
    reference = ReplayMemory(10_000, 2, (3, 1, 1), mode=mode, gamma=0.9)
    small = ReplayMemory(10, 2, (3, 1, 1), mode=mode, gamma=0.9, seed=1)
    feed_coded(reference, *traj)
    feed_coded(small, *traj)
    ref_order = reference.ordered_indices()
    newest = reference.gather(ref_order[-10:])
    kept = small.gather(small.ordered_indices())
    assert small.size == 10 and len(small) == len(kept.indices)
    if mode == "textbook":  # one transition per frame: the ring of frames covers the whole capacity
        assert len(small) == 10
        assert stored(small) == stored(reference)[-10:]
    else:  # release skips episode tails, so its oldest transitions outlive their frames and are dropped
        assert len(small) < 10
        assert as_tuples(kept) <= as_tuples(newest)
        newest_keys = iter([t[:3] for t in stored(reference)[-10:]])
        assert all(key in newest_keys for key in [t[:3] for t in stored(small)])  # an ordered subsequence
    for _ in range(50):
        assert as_tuples(small.sample(16)) <= as_tuples(kept)


def test_discontinuous_obs_starts_a_new_frame_and_drops_pending_steps():
    mem = ReplayMemory(32, 1, (3, 4, 4), n_step=2, gamma=0.5, mode="textbook")
    feed(mem, [[1], [2], [3]], [[0], [1]], [[1.0], [2.0]], np.zeros((2, 1), bool))
    a = np.array([0])
    mem.add(frames_of([50]), a, np.array([4.0], np.float32), np.array([False]), frames_of([51]))
    mem.add(frames_of([51]), a, np.array([8.0], np.float32), np.array([False]), frames_of([52]))
    assert stored(mem) == [(1, 3, 0, 2.0, 0.0), (50, 52, 0, 8.0, 0.0)]


def test_uniform_replay_draws_valid_items_with_unit_weights():
    mem = ReplayMemory(10, 2, (3, 1, 1), mode="release", prioritized=False, gamma=0.9)
    feed_coded(mem, *trajectory(60, (3, 7)))
    kept = as_tuples(mem.gather(mem.ordered_indices()))
    idx, w = mem.sample_indices(256)
    assert mem.arrays["valid"][idx].all() and (w == 1).all()
    assert as_tuples(mem.gather(idx)) <= kept
    mem.update_priorities(idx, np.ones(256))
    assert mem.tree is None


def test_bytes_per_transition_is_one_frame_plus_small_overhead():
    mem = ReplayMemory(16_384, 4, (3, 64, 64), mode="textbook")
    assert mem.frames.shape == (4 * mem.frames_per_env, 3, 64, 64)
    assert mem.bytes_per_transition == ReplayMemory.required_bytes(16_384, (3, 64, 64), 4, mode="textbook") / 16_384
    assert 12_288 < mem.bytes_per_transition < 12_288 + 100
    release_1m = ReplayMemory.required_bytes(1_000_000, (3, 64, 64), 128) / 1_000_000
    assert 12_288 < release_1m < 12_288 + 100


def test_memory_check_raises_one_line_error():
    with pytest.raises(MemoryError) as err:
        check_memory(ReplayMemory.required_bytes(1_000_000, (3, 64, 64), 128), 2**30)
    assert "\n" not in str(err.value) and "GiB" in str(err.value)
    check_memory(1, 2)
    assert available_memory() > 0


@pytest.mark.parametrize("capacity", [5, 10_000])
def test_tree_sums_mins_and_search_after_random_updates(capacity):
    rng = np.random.default_rng(0)
    tree = PriorityTree(capacity, track_min=True)
    values = np.zeros(capacity)
    for _ in range(50):
        idx = rng.choice(capacity, size=min(capacity, 64), replace=False)
        new = rng.random(len(idx)) * (rng.random(len(idx)) > 0.2)  # some zeros: removed items
        tree.update(idx, new)
        values[idx] = new
        assert tree.total() == pytest.approx(values.sum(), rel=1e-12)
        assert tree.min() == values[values > 0].min()
    cum = np.cumsum(values)
    mass = rng.random(1000) * cum[-1]
    found = tree.find(mass.copy())
    assert (values[found] > 0).all()
    np.testing.assert_array_equal(found, np.searchsorted(cum, mass, side="right"))


def test_save_load_round_trip(tmp_path):
    obs_ids, actions, rewards, dones = trajectory(60, (4, 9))
    mem = ReplayMemory(30, 2, (3, 1, 1), mode="textbook", gamma=0.9, seed=3)
    feed_coded(mem, obs_ids[:41], actions[:40], rewards[:40], dones[:40])
    mem.update_priorities(np.arange(5), np.arange(1.0, 6.0))
    mem.save(tmp_path)
    mem.save(tmp_path)  # a second generation replaces the first
    assert json.loads((tmp_path / "meta.json").read_text())["generation"] == 1
    assert not list(tmp_path.glob("*.0.npy"))
    assert np.load(tmp_path / "frames.1.npy", mmap_mode="r").shape == mem.frames.shape
    back = ReplayMemory(30, 2, (3, 1, 1), mode="textbook", gamma=0.9, seed=99)
    back.load(tmp_path)
    assert stored(back) == stored(mem) and len(back) == len(mem)
    a, b = mem.sample(8), back.sample(8)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.weights.numpy(), b.weights.numpy())
    for m in (mem, back):  # pending n-step windows survive the round trip
        feed_coded(m, obs_ids[40:], actions[40:], rewards[40:], dones[40:])
    assert stored(back) == stored(mem)
    other = ReplayMemory(30, 2, (3, 1, 1), mode="release", gamma=0.9)
    with pytest.raises(ValueError, match="does not match"):
        other.load(tmp_path)


def test_invalid_settings_raise():
    with pytest.raises(ValueError, match="invalid replay mode"):
        ReplayMemory(10, 1, (3, 1, 1), mode="nstep")
    with pytest.raises(ValueError, match="positive integers"):
        ReplayMemory(0, 1, (3, 1, 1))
    with pytest.raises(RuntimeError, match="empty"):
        ReplayMemory(10, 1, (3, 1, 1)).sample(4)
