"""Sum tree: totals, minimum and proportional search after random updates, at a size below and above its flat top."""

from __future__ import annotations

import numpy as np
import pytest

from impoola.replay.sum_tree import TOP_LEVEL, PriorityTree


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
        np.testing.assert_array_equal(tree.get(idx), new)
    cum = np.cumsum(values)
    mass = rng.random(1000) * cum[-1]
    found = tree.find(mass.copy())
    assert (values[found] > 0).all()
    np.testing.assert_array_equal(found, np.searchsorted(cum, mass, side="right"))


def test_sizes_and_arrays():
    assert PriorityTree(10_000).depth > TOP_LEVEL  # the larger test case descends below the flat top level
    assert PriorityTree.nbytes_for(1000, False) == 2 * 1024 * 8
    assert PriorityTree.nbytes_for(1000, True) == 2 * PriorityTree.nbytes_for(1000, False)
    assert set(PriorityTree(8).arrays()) == {"tree_sums"}
    tree = PriorityTree(8, track_min=True)
    assert set(tree.arrays()) == {"tree_sums", "tree_mins"} and tree.arrays()["tree_sums"] is tree.sums
    assert sum(a.nbytes for a in tree.arrays().values()) == PriorityTree.nbytes_for(8, True)
