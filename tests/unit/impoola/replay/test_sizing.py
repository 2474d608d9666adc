"""Replay sizing: the available memory is read, and a memory larger than it is a one-line error."""

from __future__ import annotations

import pytest

from impoola.replay import ReplayMemory, available_memory
from impoola.run.startup import check_memory_need


def test_memory_check_raises_one_line_error():
    with pytest.raises(ValueError) as err:
        check_memory_need("buffer_size", ReplayMemory.required_bytes(1_000_000, (3, 64, 64), 128), 2**30, "less")
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("invalid buffer_size: it needs 11.5 GiB of memory, 1.0 GiB are available")
    check_memory_need("buffer_size", 1, 2, "less")
    assert 2**20 < available_memory() < 2**50
