"""The runs of a benchmark: deterministic names, the exact command of each, one attempt of it, the local pool.

A run is one (command, game, seed). Its name is `{game}__{exp_name}__{tag}__s{seed}`, its directory
OUTPUT_DIR/NAME (written by the training script, finished once it holds the `done` marker), its log
LOG_DIR/NAME.log (appended to by every attempt) and its status file LOG_DIR/NAME.status.json (the last attempt).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import queue
import shlex
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tyro

from impoola.baselines.options import BaselineOptions
from impoola.models.encoders import ModelOptions
from impoola.run.rundir import RunDir

# Flags the launcher appends to every command; a command must not set them itself.
LAUNCHER_FLAGS = ("env_id", "seed", "run_name", "output_dir", "resume")


@dataclass(frozen=True)
class ModelFlags:
    """The flags of a training command that name its model (the rest are ignored)."""

    model: ModelOptions = field(default_factory=ModelOptions)
    baselines: BaselineOptions = field(default_factory=BaselineOptions)


def flag_values(argv: Sequence[str]) -> dict[str, list[str]]:
    """The values of each `--flag` of a command (`--a b c` or `--a=b`; dashes and underscores alike; bare flag: [])."""
    flags: dict[str, list[str]] = {}
    current = None
    for token in argv:
        if token.startswith("--"):
            name, eq, value = token[2:].partition("=")
            current = name.replace("-", "_")
            flags[current] = [value] if eq else []
            if eq:
                current = None
        elif current is not None:
            flags[current].append(token)
    return flags


def default_exp_name(argv: Sequence[str]) -> str:
    """The command's --exp_name, else its script's stem without `_training` (ppo_training.py -> ppo)."""
    given = flag_values(argv).get("exp_name")
    if given:
        return given[0]
    script = next((token for token in argv if token.endswith(".py")), argv[0])
    return Path(script).stem.removesuffix("_training")


def model_tag(argv: Sequence[str]) -> str:
    """Default tag: the model name the training scripts derive from these flags (model_name + baseline suffix)."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            flags, _ = tyro.cli(tyro.conf.OmitArgPrefixes[ModelFlags], args=list(argv), return_unknown_args=True)
    except (SystemExit, ValueError):
        raise ValueError(f"invalid model flags in command {shlex.join(argv)!r}; see the script's --help") from None
    return flags.model.model_name + flags.baselines.suffix


@dataclass(frozen=True)
class RunSpec:
    """Everything needed to (re)start one run, on this machine or in a SLURM job."""

    env_id: str
    seed: int
    name: str
    argv: tuple[str, ...]
    """the full training command without --resume (added when the run directory exists)"""
    output_dir: str
    log_dir: str
    cwd: str
    attempt: int = 1
    prior_wall_s: float = 0.0
    """wall time of the earlier attempts of a requeued SLURM run"""

    @property
    def run_dir(self) -> Path:
        return Path(self.cwd, self.output_dir, self.name)

    @property
    def finished(self) -> bool:
        return RunDir(Path(self.cwd, self.output_dir), self.name).is_done()

    @property
    def log_path(self) -> Path:
        return Path(self.cwd, self.log_dir, f"{self.name}.log")

    @property
    def status_path(self) -> Path:
        return Path(self.cwd, self.log_dir, f"{self.name}.status.json")

    @property
    def lock_path(self) -> Path:
        return Path(self.cwd, self.log_dir, f"{self.name}.lock")

    def command(self) -> list[str]:
        """The command of the next attempt: resume whatever an earlier attempt left behind."""
        return [*self.argv, "--resume"] if self.run_dir.exists() else list(self.argv)


@dataclass(frozen=True)
class RunResult:
    """A summary row; state: done, skipped, failed, interrupted, preempted, not started, busy, submitted, lost."""

    name: str
    state: str
    exit_code: int | None
    wall_s: float
    log: str

    @classmethod
    def without_attempt(cls, spec: RunSpec, state: str) -> RunResult:
        """A run that did not run now: skipped (finished before), not started, submitted, lost."""
        return cls(spec.name, state, None, spec.prior_wall_s, str(spec.log_path))


def thread_env(threads: int) -> dict[str, str]:
    """Math-library threads of one run (Procgen's come from the appended --procgen_threads)."""
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


class RunBusy(RuntimeError):
    """Another process runs this run right now (it holds the run's lock file)."""


class Child:
    """One attempt of a run as a child process in its own session, output appended to the run's log.

    The attempt holds an exclusive flock on LOG_DIR/NAME.lock, shared with the child, so that a second launcher
    cannot run the same run twice at once (RunBusy). It reaps its process itself with waitpid, so that `wait` is
    safe inside a signal handler that interrupted another `wait` (subprocess.Popen.wait holds a lock there).
    """

    def __init__(self, spec: RunSpec, env: dict[str, str]):
        self.spec = spec
        self.returncode: int | None = None
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = spec.lock_path.open("w")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.lock.close()
            raise RunBusy(f"{spec.name} is running in another process (it holds {spec.lock_path})") from None
        self.command = command = spec.command()
        with spec.log_path.open("a") as log:
            log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} attempt {spec.attempt} on {socket.gethostname()} "
                      f"{' '.join(f'{k}={v}' for k, v in env.items())}: {shlex.join(command)}\n")
            log.flush()
            self.started = time.time()
            try:
                self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=spec.cwd,
                                                env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                                                start_new_session=True, pass_fds=(self.lock.fileno(),))
            except OSError as exc:
                log.write(f"cannot start the command: {exc}\n")
                self.returncode = 127

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.process.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by a wait that a signal handler interrupted
                pid, status = self.process.pid, 255 << 8
            if pid:
                self.returncode = self.process.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        """Exit code, or None if still running after `timeout` seconds."""
        deadline = None if timeout is None else time.time() + timeout
        while self.poll() is None:
            if deadline is not None and time.time() >= deadline:
                return None
            time.sleep(0.1)
        return self.returncode

    def send(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.process.pid, signum)

    def finish(self, stopped_state: str | None = None) -> RunResult:
        """The attempt's result (done iff exit 0 and the done marker), also written to the run's status file.

        stopped_state names a run stopped on purpose (interrupted, preempted) that did not finish.
        """
        code = self.wait()
        if self.spec.finished and code == 0:
            state = "done"
        else:
            state = stopped_state or "failed"
        result = RunResult(self.spec.name, state, code, self.spec.prior_wall_s + time.time() - self.started,
                           str(self.spec.log_path))
        status = {**asdict(result), "attempt": self.spec.attempt, "host": socket.gethostname(),
                  "slurm_job_id": os.environ.get("SLURM_JOB_ID"), "command": self.command}
        tmp = self.spec.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status, indent=1) + "\n")
        tmp.replace(self.spec.status_path)
        self.lock.close()
        return result


def worker_slots(gpus: Sequence[str], workers: int | None) -> list[str]:
    """CUDA_VISIBLE_DEVICES of each local worker: the GPUs round-robin, so that workers beyond the GPUs' count
    share them (4 workers on GPUs 0 1: 0 1 0 1); '' for every worker without GPUs. Default: one worker per GPU."""
    count = workers or max(1, len(gpus))
    return [gpus[i % len(gpus)] for i in range(count)] if gpus else [""] * count


def threads_per_worker(cores: int, workers: int) -> int:
    """Math-library and Procgen threads of each of `workers` concurrent runs on `cores` cores (at least 1)."""
    return max(1, cores // workers)


def run_local(specs: Sequence[RunSpec], slots: Sequence[str], threads: int) -> list[RunResult]:
    """Run the specs on len(slots) workers; a run on worker i sees CUDA_VISIBLE_DEVICES=slots[i] ('' = no GPU).

    SIGINT/SIGTERM stop the pool: running children get SIGTERM (they checkpoint and exit), queued runs do not
    start; a second signal kills the children.
    """
    free: queue.Queue[str] = queue.Queue()
    for slot in slots:
        free.put(slot)
    stopping: list[int] = []
    running: dict[str, Child] = {}
    lock = threading.Lock()

    def work(spec: RunSpec) -> RunResult:
        device = free.get()
        try:
            with lock:
                if stopping:
                    return RunResult.without_attempt(spec, "not started")
                try:
                    child = running[spec.name] = Child(spec, {"CUDA_VISIBLE_DEVICES": device, **thread_env(threads)})
                except RunBusy:
                    return RunResult.without_attempt(spec, "busy")
            child.wait()
            with lock:
                del running[spec.name]
            return child.finish("interrupted" if stopping else None)
        finally:
            free.put(device)

    def on_signal(signum: int, frame: object) -> None:
        stopping.append(signum)
        # os.write, not print: the handler may interrupt a print of the main thread.
        os.write(2, f"received {signal.Signals(signum).name}: stopping the runs (re-run to resume them)\n".encode())
        with lock:
            for child in running.values():
                child.send(signal.SIGTERM if len(stopping) == 1 else signal.SIGKILL)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with ThreadPoolExecutor(len(slots)) as pool:
            futures = [pool.submit(work, spec) for spec in specs]
            for count, future in enumerate(as_completed(futures), 1):
                result = future.result()
                print(f"[{count}/{len(specs)}] {result.state}: {result.name} ({format_wall(result.wall_s)})",
                      flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return [future.result() for future in futures]


def format_wall(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def summary_table(results: Sequence[RunResult]) -> str:
    """The launcher's closing table: run (the pair's name), state, exit code, wall time, log path; then counts."""
    rows = [("run", "state", "exit", "wall", "log")]
    rows += [(r.name, r.state, "-" if r.exit_code is None else str(r.exit_code), format_wall(r.wall_s), r.log)
             for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join([*(cell.ljust(width) for cell, width in zip(row[:4], widths)), row[4]]) for row in rows]
    counts: dict[str, int] = {}
    for result in results:
        counts[result.state] = counts.get(result.state, 0) + 1
    lines.append(f"{len(results)} runs: " + ", ".join(f"{n} {state}" for state, n in counts.items()))
    return "\n".join(lines)
