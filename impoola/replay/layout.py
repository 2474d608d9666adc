"""Named array layouts: the replay parts declare their arrays once, to allocate them or count their bytes first."""

from __future__ import annotations

import math

import numpy as np

Layout = dict[str, tuple[tuple[int, ...], type, object]]  # name -> (shape, dtype, fill value)


def allocate(layout: Layout) -> dict[str, np.ndarray]:
    """The arrays of `layout`, each filled with its fill value."""
    return {name: np.full(shape, fill, dtype) for name, (shape, dtype, fill) in layout.items()}


def layout_nbytes(layout: Layout) -> int:
    """Bytes the arrays of `layout` will hold."""
    return sum(math.prod(shape) * np.dtype(dtype).itemsize for shape, dtype, _ in layout.values())
