"""Run a training script that SIGKILLs itself at the n-th call of a named function: a kill at an exact point.

    python tests/support/kill_at.py MODULE:FUNCTION N before|after SCRIPT.py [script options]

`before` kills on entering the n-th call, `after` once it returns. A real SIGKILL: no `finally` runs, temporary
files stay behind.
"""

from __future__ import annotations

import importlib
import os
import runpy
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def kill_at(target: str, nth: int, when: str) -> None:
    """Replace MODULE:FUNCTION by a wrapper that SIGKILLs this process at its n-th call (`before` or `after` it)."""
    module_name, name = target.split(":")
    module = importlib.import_module(module_name)
    original, calls = getattr(module, name), []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == nth and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        if len(calls) == nth and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(module, name, wrapper)


if __name__ == "__main__":
    target, nth, when, script, *options = sys.argv[1:]
    sys.path.insert(0, str(ROOT))
    kill_at(target, int(nth), when)  # before the script runs: its `from ... import` picks up the wrapper
    sys.argv = [script, *options]
    runpy.run_path(str(ROOT / script), run_name="__main__")
