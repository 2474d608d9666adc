"""OpenMP settings that take effect only when in the environment before torch loads its OpenMP runtime.

Torch's intra-op threads and Procgen's worker threads take turns on the same cores within every env step. By
default an idle OpenMP thread spins for a while before it sleeps, on a core that Procgen's threads (or, on a shared
machine, other processes) need, and a thread that has lost its core holds up every parallel region after it: on
this project's 2-core host under load, a 16x15 Categorical sample took 65 ms with spinning threads and 0.8 ms with
sleeping ones (docs/speed.md). PASSIVE makes idle threads sleep at once. A value the user set is kept.
"""

from __future__ import annotations

import os

OPENMP_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
USER_OPENMP_ENV = {name: os.environ.get(name) for name in OPENMP_ENV}
"""The values the process started with (None: unset), before `sleep_idle_threads` filled them in."""


def sleep_idle_threads() -> None:
    """Put OPENMP_ENV into the environment (keeping values already there); call it before `import torch`."""
    for name, value in OPENMP_ENV.items():
        os.environ.setdefault(name, value)
