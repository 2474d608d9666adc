"""Replay sizing: the available memory is read, and a memory larger than it is a one-line error."""

from __future__ import annotations

import pytest

from impoola.replay import ReplayMemory, available_memory, check_memory


def test_memory_check_raises_one_line_error():
    with pytest.raises(MemoryError) as err:
        check_memory(ReplayMemory.required_bytes(1_000_000, (3, 64, 64), 128), 2**30)
    assert "\n" not in str(err.value) and str(err.value).startswith("replay memory needs 11.49 GiB but only 1.00 GiB")
    check_memory(1, 2)
    assert 2**20 < available_memory() < 2**50
