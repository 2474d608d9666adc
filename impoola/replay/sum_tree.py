"""Sum tree (with an optional min tree) over transition priorities: proportional sampling in O(log n)."""

from __future__ import annotations

import math

import numpy as np

TOP_LEVEL = 12  # trees are kept up to the level of 2**12 nodes; sampling searches that level's cumulative sum


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

    def arrays(self) -> dict[str, np.ndarray]:
        """The tree's arrays by name (the arrays themselves), for saving and restoring."""
        return {"tree_sums": self.sums} if self.mins is None else {"tree_sums": self.sums, "tree_mins": self.mins}
