"""The launcher's SLURM backend on a real (single-node) cluster: a job array, a preemption, a resume.

Needs a running cluster (.ci/slurm_up.sh starts one). Without one the tests skip with a warning that says
why, except under CI (CI=true), where a missing cluster is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings

import pytest

from support.paths import ROOT

SUBMITTED = re.compile(r"^submitted (\S+) as job (\S+)$")


def slurm_unavailable() -> str | None:
    """Why no SLURM cluster answers here, or None if one does."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "SLURM is not installed (no sbatch/sinfo on PATH); .ci/slurm_up.sh installs and starts one"
    nodes = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=60)
    if nodes.returncode != 0 or not re.search(r"^(idle|mix|alloc)", nodes.stdout, re.M):
        return f"no SLURM node is up (sinfo: {(nodes.stdout + nodes.stderr).strip()!r}); run .ci/slurm_up.sh"
    return None


@pytest.fixture(scope="module")
def slurm_cluster() -> None:
    reason = slurm_unavailable()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    warnings.warn(reason, stacklevel=1)
    pytest.skip(reason)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def pending_reason(job_id: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T %r"], capture_output=True, text=True)
    return out.stdout.strip()


@pytest.mark.slow
def test_slurm_array_preemption_resumes_and_finishes(slurm_cluster, tmp_path):
    """Two real runs as a job array: one planted failure; the other is preempted the submitit way (SIGTERM,
    then USR2 to the job), checkpoints, is requeued with --resume and finishes."""
    out = tmp_path / "runs"
    out.mkdir()
    (out / "bigfish__ppo__impala_s1__s2").write_text("a file where the run directory should be\n")
    command = (f"{sys.executable} ppo_training.py --encoder impala --scale 1 --num_envs 2 --num_steps 8 "
               "--total_timesteps 320 --num_minibatches 1 --update_epochs 1 --num_eval_episodes 0 "
               "--num_final_eval_episodes 0 --wandb_mode disabled --no-progress_bar")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "benchmark_utils.benchmark", "--backend", "slurm", "--env_ids", "bigfish",
         "--num_seeds", "2", "--command", command, "--output_dir", str(out), "--gpus_per_run", "0",
         "--cpus_per_run", "1", "--mem_gb", "2", "--time", "60"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(launcher.stdout), daemon=True)
    reader.start()
    jobs: dict[str, str] = {}

    def submitted() -> bool:
        jobs.update(match.groups() for match in map(SUBMITTED.match, map(str.strip, list(lines))) if match)
        return len(jobs) == 2

    try:
        wait_for(submitted, 60, "the submission")
        job = jobs["bigfish__ppo__impala_s1__s1"]
        metrics = out / "bigfish__ppo__impala_s1__s1" / "metrics.jsonl"
        # The second row is the first iteration's: the script's SIGTERM/USR2 handler is installed by then.
        wait_for(lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= 2, 240, "the first iteration")
        for sig in ("TERM", "USR2"):
            subprocess.run(["scancel", f"--signal={sig}", job], check=True)
        # SLURM holds a requeued job for ~2 minutes (BeginTime); release it early to keep the test short, but not
        # within the second of the requeue: slurmd rejects a credential as old as the revoked one (whole seconds).
        wait_for(lambda: "BeginTime" in pending_reason(job), 120, "the requeue")
        time.sleep(5)
        subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
        launcher.wait(timeout=400)
        reader.join(timeout=10)
    finally:
        if launcher.poll() is None:
            launcher.send_signal(signal.SIGINT)
            launcher.wait(timeout=30)
        for job_id in jobs.values():
            subprocess.run(["scancel", job_id], capture_output=True)
    output = "".join(lines)
    assert launcher.returncode == 1, output
    rows = {line.split()[0]: line.split()[1:3] for line in output.splitlines() if line.startswith("bigfish__")}
    assert rows == {"bigfish__ppo__impala_s1__s1": ["done", "0"], "bigfish__ppo__impala_s1__s2": ["failed", "2"]}

    run_dir = out / "bigfish__ppo__impala_s1__s1"
    assert (run_dir / "done").exists()
    log = (out / "logs" / "bigfish__ppo__impala_s1__s1.log").read_text()
    assert "received signal" in log and "checkpoint written" in log
    attempts = [line for line in log.splitlines() if line.startswith("=== ")]
    assert len(attempts) == 2 and not attempts[0].endswith("--resume") and attempts[1].endswith("--resume")
    steps = [json.loads(line)["global_step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps.count(0) == 1 and steps[-1] == 320  # resumed, not restarted
    status = json.loads((out / "logs" / "bigfish__ppo__impala_s1__s1.status.json").read_text())
    assert (status["state"], status["attempt"]) == ("done", 2)
