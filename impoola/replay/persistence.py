"""Replay snapshots on disk: written before the checkpoint that names them, restored on resume, leftovers removed.

A run saves its memory as `<run>/replay/snapshot_<generation>/` (one .npy file per array plus meta.json), then
writes the checkpoint that records the snapshot's name (`replay_snapshot`), then deletes every other snapshot. A
snapshot is written into a temporary directory and renamed into place, so it exists complete or not at all; at
each moment the newest checkpoint's snapshot exists, whatever `--keep_checkpoints` says (older checkpoints keep
their weights for evaluation, not their memory). A SIGKILL anywhere leaves at most a partial temporary directory
and one unreferenced snapshot, both deleted on resume.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from impoola.run.files import atomic_write_bytes
from impoola.cli import size_text
from impoola.replay.memory import ReplayMemory

SNAPSHOT_PATTERN = re.compile(r"^snapshot_(\d+)$")


def _fsync_dir(directory: Path) -> None:
    """Make a rename inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_snapshot(memory: ReplayMemory, directory: str | Path) -> str:
    """Write the memory's state as a new snapshot in `directory`; returns its name for the checkpoint to record."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    generations = [int(m.group(1)) for p in directory.iterdir() if (m := SNAPSHOT_PATTERN.match(p.name))]
    name = f"snapshot_{max(generations, default=-1) + 1:06d}"
    tmp = directory / f".{name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    state = memory.state_dict()
    for array_name, array in state["arrays"].items():
        atomic_write_bytes(tmp / f"{array_name}.npy", lambda f, array=array: np.save(f, array))
    meta = {"config": state["config"], "counters": state["counters"]}
    atomic_write_bytes(tmp / "meta.json", lambda f: f.write(json.dumps(meta).encode()))
    os.rename(tmp, directory / name)
    _fsync_dir(directory)
    return name


def load_snapshot(memory: ReplayMemory, snapshot: str | Path) -> None:
    """Load a snapshot directory written by save_snapshot(), reading the arrays through memory maps."""
    snapshot = Path(snapshot)
    meta = json.loads((snapshot / "meta.json").read_text())
    arrays = {name: np.load(snapshot / f"{name}.npy", mmap_mode="r") for name in memory.state_arrays()}
    memory.load_state_dict({"config": meta["config"], "counters": meta["counters"], "arrays": arrays})


def keep_only(directory: str | Path, snapshot: str | None) -> None:
    """Delete every entry of the replay directory but `snapshot`: older or unreferenced snapshots, temporaries."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    for path in directory.iterdir():
        if path.name == snapshot:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def has_snapshot(directory: str | Path) -> Callable[[dict[str, Any]], bool]:
    """Whether the snapshot a checkpoint names exists in `directory`."""
    directory = Path(directory)
    return lambda checkpoint: (name := checkpoint.get("replay_snapshot")) is not None and (directory / name).is_dir()


def restore_replay(memory: ReplayMemory, directory: str | Path, checkpoint: dict[str, Any] | None) -> bool:
    """Load the snapshot `checkpoint` names and delete everything else in `directory`; False when there is none.

    Without a checkpoint (a run starting afresh) the directory is emptied; a checkpoint without its snapshot
    (written without --save_buffer) prints a warning and the memory is refilled from scratch.
    """
    name = checkpoint.get("replay_snapshot") if checkpoint is not None else None
    keep_only(directory, name)
    if checkpoint is None:
        return False
    if has_snapshot(directory)(checkpoint):
        load_snapshot(memory, Path(directory) / name)
        return True
    print(f"warning: no replay memory saved in {str(directory)!r} belongs to the checkpoint at step "
          f"{checkpoint['global_step']}; it is refilled from scratch", file=sys.stderr)
    return False


def check_replay_disk(directory: str | Path, nbytes: int) -> None:
    """A one-line ValueError unless the disk of `directory` holds two saved replay memories of `nbytes` each."""
    # A new snapshot is written before the previous one is deleted: 2 x nbytes at the peak, counting what
    # `directory` already holds (kept or deleted on resume).
    directory = Path(directory).absolute()
    held = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) if directory.is_dir() else 0
    existing = directory
    while not existing.exists():
        existing = existing.parent
    free, required = shutil.disk_usage(existing).free, 2 * nbytes - held
    if free < required:
        raise ValueError(f"invalid --save_buffer: the replay memory needs {size_text(required)} free on "
                         f"{str(existing)!r} (2 x {size_text(nbytes)} while saving), {size_text(free)} are "
                         "free; valid: more free disk, a smaller --buffer_size, or no --save_buffer")
