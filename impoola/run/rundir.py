"""A run directory: its layout, its path-safe name, the exclusive lock of the process writing it, and cleanup.

    <output_dir>/<run_name>/
        config.json  metrics.jsonl  checkpoints/  replay/  videos/  tb/  wandb/  wandb_id  done  .lock

`run_name` (and the `exp_name` inside default run names) is one path component: it cannot leave `output_dir`.
A writer holds `.lock` (a POSIX record lock, which NFS honours too) for its life: a second writer process,
resuming or not, gets one line naming the holder's PID and host; the kernel releases the lock of a process that
died, so the next writer takes it over. The lock belongs to the process: a run restarted inside the same process
after an exception (as the tests simulate kills) takes it again. A run that
fails during start-up removes the directories it created, so the corrected command is not refused.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

NAME_MAX = 255
TEMP_PATTERN = re.compile(r"^\..+\.tmp\d+$")  # what atomic_write_bytes writes before its rename


class RunDirectoryError(ValueError):
    """The run directory is taken, locked, exists without --resume, or its name is not a safe path component."""


def check_name(option: str, name: str) -> str:
    """`name` if it is one safe path component; a one-line RunDirectoryError otherwise."""
    problem = (
        "it is empty" if not name.strip() else
        "it is '.' or '..'" if name in (".", "..") else
        "it contains a path separator" if "/" in name or "\\" in name or (os.altsep and os.altsep in name) else
        "it contains '..'" if ".." in name else
        "it contains a control character" if any(ord(c) < 32 for c in name) else
        f"it is {len(name.encode())} bytes long" if len(name.encode()) > NAME_MAX else ""
    )
    if problem:
        raise RunDirectoryError(f"invalid {option} {name!r}: {problem}; valid: one directory name of 1 to "
                                f"{NAME_MAX} bytes without '/', '\\' or '..'")
    return name


def run_name(env_id: str, exp_name: str, model_name: str, seed: int) -> str:
    """The default run name `{env_id}__{exp_name}__{model_name}__s{seed}` (deterministic: a re-run finds it)."""
    check_name("exp_name", exp_name)
    return check_name("run_name", f"{env_id}__{exp_name}__{model_name}__s{seed}")


METRICS_FILE = "metrics.jsonl"  # the one file every run directory has from its first logged row
CHECKPOINTS_DIR = "checkpoints"


class RunDir:
    """The layout of one run directory; `acquire()` makes this process its one writer."""

    def __init__(self, output_dir: str | Path, name: str) -> None:
        self.name = check_name("run_name", name)
        self.path = Path(output_dir) / self.name
        self._lock_fd: int | None = None
        self._created: list[Path] = []
        self._continuing = False

    @classmethod
    def at(cls, path: str | Path) -> RunDir:
        """The run directory at `path` (to read an existing run's files)."""
        path = Path(path).resolve()
        return cls(path.parent, path.name)

    # The layout.
    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    @property
    def replay(self) -> Path:
        return self.path / "replay"

    @property
    def videos(self) -> Path:
        return self.path / "videos"

    @property
    def tb(self) -> Path:
        return self.path / "tb"

    @property
    def wandb(self) -> Path:
        """W&B's own directory (wandb.init(dir=run_dir) writes it)."""
        return self.path / "wandb"

    @property
    def wandb_id(self) -> Path:
        return self.path / "wandb_id"

    @property
    def done_marker(self) -> Path:
        return self.path / "done"

    @property
    def lock_file(self) -> Path:
        return self.path / ".lock"

    def video(self, global_step: int) -> Path:
        """The video of the evaluation at `global_step`."""
        return self.videos / f"step_{global_step:012d}.mp4"

    def is_done(self) -> bool:
        """Whether the run completed (it wrote its done marker)."""
        return self.done_marker.exists()

    def release_if_done(self, total_timesteps: int) -> bool:
        """True when the run already completed `total_timesteps` steps: the lock is given up and a line says there
        is nothing to do. A completed run asked for more steps than its config.json records is continued: its done
        marker goes once the start-up succeeds (the resume's own checks first)."""
        if not self.is_done():
            return False
        finished = self.finished_total()
        if finished is not None and total_timesteps > finished:
            print(f"run {self.name} completed {finished:,} steps; continuing it to {total_timesteps:,}")
            self._continuing = True
            return False
        self.release()
        print(f"run {self.name} is already complete ({self.done_marker} exists); nothing to do")
        return True

    def read_config(self) -> dict[str, Any]:
        """The run's config.json; a one-line ValueError naming the file where it is not a JSON object."""
        try:
            config = json.loads(self.config.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"invalid config {str(self.config)!r}: {exc}; "
                             "valid: the JSON object a run writes") from None
        if not isinstance(config, dict):
            raise ValueError(f"invalid config {str(self.config)!r}: a JSON {type(config).__name__}; valid: the JSON "
                             "object a run writes")
        return config

    def finished_total(self) -> int | None:
        """The total_timesteps in config.json (None without one)."""
        try:
            return int(self.read_config()["total_timesteps"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def mark_done(self) -> None:
        self.done_marker.write_text("done\n")

    # The writer.
    def acquire(self, resume: bool) -> RunDir:
        """Create the directory (unless resuming one; --resume on a new name says it starts it) and take its lock;
        a one-line RunDirectoryError otherwise."""
        existed = self.path.exists()
        if existed and not self.path.is_dir():
            raise RunDirectoryError(f"run directory {str(self.path)!r} is a file; valid: a directory")
        if not existed:
            if resume:  # right for launchers that requeue with --resume; a misspelled name should not pass unseen
                print(f"no run named {self.name} under {str(self.path.parent)!r}: starting it")
            self._make_dirs()
        self._lock()
        if existed and not resume:
            self.release()
            raise RunDirectoryError(f"run directory {str(self.path)!r} already exists; valid: pass --resume to "
                                    "continue it, or choose another --run_name / --output_dir")
        self.remove_stale_temps()
        return self

    def _make_dirs(self) -> None:
        missing = [p for p in (self.path, *self.path.parents) if not p.exists()]
        try:
            self.path.mkdir(parents=True)
        except OSError:
            self._created = [p for p in missing if p.exists()]
            self.abandon()
            raise
        self._created = missing  # innermost first: removed in this order on a failed start-up

    def _lock(self) -> None:
        while True:
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN):
                    os.close(fd)
                    raise
                holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise RunDirectoryError(f"run directory {str(self.path)!r} is in use by {holder}; valid: wait for "
                                        "it to end, or choose another --run_name / --output_dir") from None
            try:  # the holder before us may have removed the file we opened: lock the one on disk
                same = os.stat(self.lock_file).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"PID {os.getpid()} on host {socket.gethostname()}\n".encode())
        self._lock_fd = fd

    def release(self) -> None:
        """Give the lock up (and remove the lock file): the directory is left as it was."""
        if self._lock_fd is not None:
            self.lock_file.unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None

    def abandon(self) -> None:
        """After a failed start-up: release the lock and remove the directories this process created."""
        self.release()
        for path in self._created:
            if path == self.path:
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.rmdir()  # only when empty
        self._created = []

    @contextlib.contextmanager
    def starting(self) -> Iterator[RunDir]:
        """The start-up of a run: any exception abandons the directory; afterwards nothing is removed any more."""
        try:
            yield self
        except BaseException:
            self.abandon()
            raise
        self._created = []
        if self._continuing:
            self.done_marker.unlink(missing_ok=True)

    def remove_stale_temps(self) -> None:
        """Delete temporary files a writer killed mid-write left anywhere in the run (replay/ included)."""
        for root, dirs, files in os.walk(self.path):
            for name in files:
                if TEMP_PATTERN.match(name):
                    Path(root, name).unlink(missing_ok=True)
            for name in [d for d in dirs if TEMP_PATTERN.match(d)]:
                shutil.rmtree(Path(root, name), ignore_errors=True)
                dirs.remove(name)


def run_label(checkpoint: Path) -> str:
    """The run's name for a checkpoint in `<run>/checkpoints/`, else the checkpoint's file stem."""
    return checkpoint.parent.parent.name if checkpoint.parent.name == CHECKPOINTS_DIR else checkpoint.stem


def default_out_dir(checkpoint: Path, name: str) -> Path:
    """`<run>/<name>` for a checkpoint in `<run>/checkpoints/`, else `<name>_<stem>` beside the file."""
    if checkpoint.parent.name == CHECKPOINTS_DIR:
        return checkpoint.parent.parent / name
    return checkpoint.parent / f"{name}_{checkpoint.stem}"


def check_output_dir(option: str, path: str | Path) -> Path:
    """`path` if it is, or can be created as, a writable directory; a one-line ValueError naming it otherwise.

    Nothing is left behind (a probe directory is made and removed): commands make their output directory only
    when they write their results.
    """
    path = Path(path)
    _check_writable(option, path, path)
    return path


def check_output_file(option: str, path: str | Path) -> Path:
    """`path` if a file can be written there (its directory is or can be created writable); a one-line ValueError."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"invalid {option} {str(path)!r}: it is a directory; valid: a file path")
    _check_writable(option, path, path.parent)
    return path


def _check_writable(option: str, given: Path, directory: Path) -> None:
    for part in given.parts:
        if len(part.encode()) > NAME_MAX:
            raise ValueError(f"invalid {option} {str(given)!r}: a component is {len(part.encode())} bytes long; "
                             f"valid: names of at most {NAME_MAX} bytes")
    existing = directory
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"invalid {option} {str(given)!r}: {str(existing)!r} is a file; valid: a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"invalid {option} {str(given)!r}: {str(existing)!r} is not writable; "
                         "valid: a directory you can write")
    try:  # what access() cannot tell (root, read-only or pseudo file systems): a directory made and removed at once
        os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=existing))
    except OSError as exc:
        raise ValueError(f"invalid {option} {str(given)!r}: nothing can be created in {str(existing)!r} "
                         f"({exc.strerror}); valid: a directory you can write") from None
