"""Frame store: per-env rings, owners reported on overwrite, streams continued by identity or by bytes."""

from __future__ import annotations

import numpy as np
import pytest

from impoola.replay.frames import FrameStore
from support.replay import frames_of


def test_rings_wrap_per_env_and_report_the_owners_they_overwrite():
    store = FrameStore(num_envs=2, frames_per_env=3, obs_shape=(1, 2, 2))
    envs = np.arange(2)
    slots = [store.write(envs, frames_of([10 * t, 10 * t + 1], (1, 2, 2)))[0] for t in range(3)]
    assert np.concatenate(slots).tolist() == [0, 3, 1, 4, 2, 5]
    store.set_owners(np.array([0, 4]), np.array([7, 8]))
    slots, owners, owned_slots = store.write(envs, frames_of([30, 31], (1, 2, 2)))
    assert slots.tolist() == [0, 3] and owners.tolist() == [7] and owned_slots.tolist() == [0]
    assert store.arrays["frame_owner"][[0, 4]].tolist() == [-1, 8]
    assert store.frames[[0, 3], 0, 0, 0].tolist() == [30, 31] and store.arrays["frame_count"].tolist() == [4, 4]
    _, owners, _ = store.write(np.array([1]), frames_of([41], (1, 2, 2)))  # env 1 alone: its slot 4
    assert owners.tolist() == [8]


def test_streams_continue_by_identity_or_equal_bytes():
    store = FrameStore(num_envs=2, frames_per_env=4, obs_shape=(1, 2, 2))
    first = frames_of([1, 2], (1, 2, 2))
    slots, fresh = store.stream_slots(first)
    assert fresh.all()  # nothing stored yet
    next_slots, _, _ = store.write(np.arange(2), first)
    store.continue_streams(next_slots, first)
    slots, fresh = store.stream_slots(first)
    assert slots.tolist() == next_slots.tolist() and not fresh.any()
    copy = first.copy()
    copy[1] += 1  # env 1 jumped to another frame: a new stream
    slots, fresh = store.stream_slots(copy)
    assert slots.tolist() == next_slots.tolist() and fresh.tolist() == [False, True]
    store.forget_latest_obs()
    assert store.stream_slots(first)[1].tolist() == [False, False]  # same bytes


def test_size_and_index_limits():
    assert FrameStore.frames_per_env_for(1000, 128, 3) == 8 + 2 * 3 + 2
    store = FrameStore(2, 5, (3, 4, 4))
    assert sum(a.nbytes for a in store.arrays.values()) == FrameStore.nbytes_for(2, 5, (3, 4, 4))
    with pytest.raises(ValueError, match="int32"):
        FrameStore.layout(2**16, 2**15)
