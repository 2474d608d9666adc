"""Whether a replay memory fits in memory: the bytes available to a new allocation, checked before allocating."""

from __future__ import annotations

import os


def available_memory() -> int:
    """Bytes of memory available to a new allocation (MemAvailable of /proc/meminfo, else free physical pages)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
