"""SLURM backend: the runs as one submitit job array whose tasks checkpoint and requeue on preemption.

submitit's job process catches USR2 (sent by SLURM `signal_delay_s` before the time limit, or by
`scancel --signal=USR2`), calls `SlurmRun.checkpoint` and requeues the task with what it returns. SlurmRun
forwards the signal to the training process, waits for its checkpoint and returns itself with the next
attempt, which runs the same command with --resume (its run directory exists by then).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import submitit

from benchmark_utils.launch import Child, RunResult, RunSpec, thread_env

# A preemption's USR2 can follow its SIGTERM: after a SIGTERM'd child exits, wait this long for it.
USR2_GRACE_S = 10.0
POLL_S = 2.0
# A task that has left squeue without a result file for this long died outside Python (killed, node failure).
LOST_AFTER_S = 60.0


class SlurmRun(submitit.helpers.Checkpointable):
    """One run as a SLURM array task: the training command as a child process, checkpointed on preemption."""

    def __init__(self, spec: RunSpec, checkpoint_timeout_s: float):
        self.spec = spec
        self.checkpoint_timeout_s = checkpoint_timeout_s
        self._child: Child | None = None

    def __call__(self) -> RunResult:
        """Run (or resume) the training command; raise if it ends without its done marker."""
        if self.spec.finished:
            return RunResult.without_attempt(self.spec, "skipped")
        terminated: list[int] = []
        bypass = signal.getsignal(signal.SIGTERM)

        def forward_sigterm(signum: int, frame: Any) -> None:
            terminated.append(signum)
            if self._child is not None:
                self._child.send(signum)
            if callable(bypass):
                bypass(signum, frame)

        signal.signal(signal.SIGTERM, forward_sigterm)
        self._child = Child(self.spec, thread_env(int(os.environ.get("SLURM_CPUS_PER_TASK", "1"))))
        self._child.wait()
        if terminated and not self.spec.finished:
            time.sleep(USR2_GRACE_S)
        result = self._child.finish("interrupted" if terminated else None)
        if result.state != "done":
            raise RuntimeError(f"{self.spec.name}: {result.state} with exit code {result.exit_code}; "
                               f"log: {self.spec.log_path}")
        return result

    def checkpoint(self) -> submitit.helpers.DelayedSubmission:
        """Forward the preemption signal, wait for the child's checkpoint, resubmit the run to resume."""
        wall = 0.0
        if self._child is not None:
            self._child.send(signal.SIGUSR2)
            if self._child.wait(self.checkpoint_timeout_s) is None:
                self._child.send(signal.SIGKILL)
            wall = self._child.finish("preempted").wall_s - self.spec.prior_wall_s
        following = replace(self.spec, attempt=self.spec.attempt + 1, prior_wall_s=self.spec.prior_wall_s + wall)
        return submitit.helpers.DelayedSubmission(SlurmRun(following, self.checkpoint_timeout_s))


def submit(specs: Sequence[RunSpec], folder: Path, parameters: dict[str, Any], max_requeues: int,
           checkpoint_timeout_s: float) -> list[submitit.Job]:
    """Submit the runs as one job array (one task each) with submitit's AutoExecutor parameters."""
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster="slurm", slurm_max_num_timeout=max_requeues)
    executor.update_parameters(**parameters)
    with executor.batch():
        jobs = [executor.submit(SlurmRun(spec, checkpoint_timeout_s)) for spec in specs]
    return jobs


def queued_job_ids() -> set[str] | None:
    """This user's queued or running SLURM jobs (array tasks as ARRAY_TASK), or None if squeue failed."""
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%i", "-u", str(os.getuid())], capture_output=True, text=True)
    return set(out.stdout.split()) if out.returncode == 0 else None


def collect(spec: RunSpec, job: submitit.Job) -> RunResult:
    """A finished task's result; a task that raised is failed (its status file says how)."""
    try:
        return job.result()
    except Exception:  # the training failed or the task died: the run's status file has the details
        status = RunResult.without_attempt(spec, "failed")
        if spec.status_path.exists():
            recorded = json.loads(spec.status_path.read_text())
            status = replace(status, exit_code=recorded["exit_code"], wall_s=recorded["wall_s"])
        return status


def wait(specs: Sequence[RunSpec], jobs: Sequence[submitit.Job]) -> list[RunResult]:
    """Wait for every task (result files, and squeue for tasks that died without one); Ctrl-C stops waiting."""
    results: dict[int, RunResult] = {}
    pending = dict(enumerate(jobs))
    missing_since: dict[int, float] = {}
    last_check = 0.0
    try:
        while pending:
            for index, job in list(pending.items()):
                if job.paths.result_pickle.exists():
                    results[index] = collect(specs[index], pending.pop(index))
                    print(f"[{len(results)}/{len(jobs)}] {results[index].state}: {specs[index].name} "
                          f"(job {job.job_id})", flush=True)
            now = time.time()
            if pending and now - last_check > 10 * POLL_S:
                last_check, queued = now, queued_job_ids()
                for index, job in list(pending.items()):
                    if queued is None or job.job_id in queued:
                        missing_since.pop(index, None)
                    elif now - missing_since.setdefault(index, now) > LOST_AFTER_S:
                        results[index] = RunResult.without_attempt(specs[index], "lost")
                        print(f"[{len(results)}/{len(jobs)}] lost: {specs[index].name} "
                              f"(job {pending.pop(index).job_id})", flush=True)
            time.sleep(POLL_S if pending else 0)
    except KeyboardInterrupt:
        print("stopped waiting; the jobs go on (re-run the same command later: finished runs are skipped)")
    return [results.get(i, RunResult.without_attempt(spec, "submitted")) for i, spec in enumerate(specs)]
