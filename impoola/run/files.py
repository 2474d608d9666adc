"""Files a run writes whole or not at all: atomic byte writes and JSON documents."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO


def atomic_write_bytes(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call `write(file)` on a temporary file next to `path`, fsync it, then rename it over `path`.

    On a file-system error (no space, read-only, ...) the old `path` is untouched, the temporary file is removed
    and the OSError names `path`.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")  # a killed writer's leftover: rundir.TEMP_PATTERN
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    finally:
        if tmp.exists():
            tmp.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_json(path: Path, data: Any) -> None:
    """`data` as indented JSON (other types as their str), written atomically."""
    atomic_write_bytes(path, lambda f: f.write(json.dumps(data, indent=2, default=str).encode()))
