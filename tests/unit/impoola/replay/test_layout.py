"""Array layouts: allocation with fill values, and byte counts that match what is allocated."""

from __future__ import annotations

import numpy as np

from impoola.replay.layout import allocate, layout_nbytes


def test_allocation_fills_and_byte_count_matches():
    layout = {"owner": ((5,), np.int32, -1), "done": ((2, 3), np.bool_, False), "ret": ((4,), np.float32, 0.5)}
    arrays = allocate(layout)
    assert arrays["owner"].tolist() == [-1] * 5 and arrays["owner"].dtype == np.int32
    assert arrays["done"].shape == (2, 3) and not arrays["done"].any()
    assert arrays["ret"].tolist() == [0.5] * 4
    assert layout_nbytes(layout) == sum(a.nbytes for a in arrays.values()) == 5 * 4 + 6 + 4 * 4
