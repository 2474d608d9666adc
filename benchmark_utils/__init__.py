"""Benchmark tooling: the seeds x games launcher (local GPU pool or SLURM), launch scripts, throughput checks."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from impoola.cli import fail

REPO = Path(__file__).resolve().parents[1]
"""The source checkout holding this package and the training scripts (ppo_training.py, dqn_training.py)."""


def training_script(name: str) -> ModuleType:
    """The training script `name` (ppo_training, dqn_training) of the checkout holding this package, from any
    working directory; one `error:` line and exit 2 where the package was installed without the scripts."""
    if not (REPO / f"{name}.py").is_file():
        fail(f"cannot import {name}: the benchmarks need the training scripts of a source checkout, and "
             f"{str(REPO)!r} has no {name}.py; valid: run it from a clone of the repository (`pip install -e .` "
             "there, or `python -m benchmark_utils...` in its root)")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module(name)
