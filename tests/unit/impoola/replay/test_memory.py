"""Replay memory: prioritized and uniform sampling, importance weights, wrap-around, bytes, state round trip."""

from __future__ import annotations

import numpy as np
import pytest

from impoola.replay import ReplayMemory
from support.replay import as_tuples, feed_coded, filled_memory, frames_of, stored, trajectory

CHI2_DF7_P001 = 24.322  # chi-square critical value, 7 degrees of freedom, p = 0.001


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
    assert release.tree.mins is None and textbook.tree.mins is not None  # only max-normalised weights need the min


def test_new_items_get_the_mode_s_max_priority():
    for mode, want in (("release", 9.0**0.5 + 1e-6), ("textbook", 9.0)):
        mem = filled_memory(mode, np.array([1.0, 9.0, 2.0, 3.0]))
        mem.add(frames_of([7], (1, 2, 2)), np.array([0]), np.array([0.0], np.float32), np.array([False]),
                frames_of([8], (1, 2, 2)))
        assert mem.tree.get(np.array([0]))[0] == pytest.approx(want)  # the new item overwrote slot 0


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
    assert mem.frames.shape == (4 * mem.store.frames_per_env, 3, 64, 64)
    assert mem.bytes_per_transition == ReplayMemory.required_bytes(16_384, (3, 64, 64), 4, mode="textbook") / 16_384
    assert 12_288 < mem.bytes_per_transition < 12_288 + 100
    release_1m = ReplayMemory.required_bytes(1_000_000, (3, 64, 64), 128) / 1_000_000
    assert 12_288 < release_1m < 12_288 + 100
    uniform = ReplayMemory(1000, 4, (3, 4, 4), prioritized=False)
    assert uniform.nbytes == ReplayMemory.required_bytes(1000, (3, 4, 4), 4, prioritized=False)


def test_state_dict_round_trip_continues_identically():
    obs_ids, actions, rewards, dones = trajectory(60, (4, 9))
    mem = ReplayMemory(30, 2, (3, 1, 1), mode="textbook", gamma=0.9, seed=3)
    feed_coded(mem, obs_ids[:41], actions[:40], rewards[:40], dones[:40])
    mem.update_priorities(np.arange(5), np.arange(1.0, 6.0))
    back = ReplayMemory(30, 2, (3, 1, 1), mode="textbook", gamma=0.9, seed=99)
    back.load_state_dict(mem.state_dict())
    assert back.step == mem.step == 40 and stored(back) == stored(mem) and len(back) == len(mem)
    a, b = mem.sample(8), back.sample(8)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.weights.numpy(), b.weights.numpy())
    for m in (mem, back):  # pending n-step windows survive the round trip
        feed_coded(m, obs_ids[40:], actions[40:], rewards[40:], dones[40:])
    assert stored(back) == stored(mem)
    with pytest.raises(ValueError, match="does not match"):
        ReplayMemory(30, 2, (3, 1, 1), mode="release", gamma=0.9).load_state_dict(mem.state_dict())


def test_invalid_settings_raise():
    with pytest.raises(ValueError, match="invalid replay mode"):
        ReplayMemory(10, 1, (3, 1, 1), mode="nstep")
    with pytest.raises(ValueError, match="positive integers"):
        ReplayMemory(0, 1, (3, 1, 1))
    with pytest.raises(RuntimeError, match="empty"):
        ReplayMemory(10, 1, (3, 1, 1)).sample(4)
