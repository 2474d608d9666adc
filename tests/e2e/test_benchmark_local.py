"""The benchmark launcher on this machine: names, dry runs, the local pool (failures, summary, skip, resume,
Ctrl-C)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark_utils import benchmark
from benchmark_utils.launch import default_exp_name, model_tag
from support.paths import ROOT

FAKE = ROOT / "tests" / "data" / "fake_train.py"
LAUNCH_SCRIPTS = sorted((ROOT / "benchmark_utils").glob("*.sh"))


def launcher_env() -> dict[str, str]:
    """This interpreter's directory first on PATH, so that `python` in commands and launch scripts is it."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def launch(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the launcher in a fresh process from the repository root."""
    return subprocess.run([sys.executable, "-m", "benchmark_utils.benchmark", *args], cwd=ROOT, env=launcher_env(),
                          capture_output=True, text=True, timeout=timeout)


def fake(*flags: str) -> str:
    return shlex.join([sys.executable, str(FAKE), *flags])


def states(stdout: str) -> dict[str, str]:
    """Run name -> state from the launcher's summary table (columns apart by two or more spaces)."""
    table = stdout[stdout.index("\nrun "):].splitlines()[2:-1]
    return dict(re.split(r"\s{2,}", line)[:2] for line in table)


def test_run_names_and_tags():
    assert default_exp_name(["python", "ppo_training.py"]) == "ppo"
    assert default_exp_name(["python", "dqn_training.py", "--exp_name", "dqn_hard"]) == "dqn_hard"
    assert default_exp_name(["python", "dqn_training.py", "--exp-name=x"]) == "x"
    assert model_tag(["python", "ppo_training.py"]) == "impoola_s2"
    command = ["python", "ppo_training.py", "--encoder", "impala", "--scale", "3", "--wandb_tags", "a"]
    assert model_tag(command) == "impala_s3"
    assert model_tag(["python", "ppo_training.py", "--encoder", "impala", "--pruning"]) == "impala_s2_pruned"
    command = ["python", "ppo_training.py", "--encoder", "nature", "--scale", "1", "--pooling", "avg"]
    assert model_tag(command) == "nature_s1_avg"
    with pytest.raises(ValueError, match="invalid model flags"):
        model_tag(["python", "ppo_training.py", "--scale", "big"])


def test_dry_run_prints_exact_commands_resume_and_skip(tmp_path, capsys):
    out = tmp_path / "runs"
    (out / "bigfish__ppo__impala_s2__s1").mkdir(parents=True)
    (out / "coinrun__ppo__impala_s2__s1").mkdir()
    (out / "coinrun__ppo__impala_s2__s1" / "done").touch()
    code = benchmark.main(["--env_ids", "bigfish", "coinrun", "--num_seeds", "2", "--command",
                           "python ppo_training.py --encoder impala", "--output_dir", str(out), "--workers", "2",
                           "--gpus", "0", "--threads_per_run", "3", "--dry_run"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0] == "# local: 2 workers on CUDA_VISIBLE_DEVICES 0 0; each run: OMP_NUM_THREADS=MKL_NUM_THREADS=3"
    assert lines[2:] == [
        f"python ppo_training.py --encoder impala --procgen_threads 3 --env_id bigfish --seed 1 "
        f"--run_name bigfish__ppo__impala_s2__s1 --output_dir {out} --resume",
        "# skip coinrun__ppo__impala_s2__s1: finished",
        f"python ppo_training.py --encoder impala --procgen_threads 3 --env_id bigfish --seed 2 "
        f"--run_name bigfish__ppo__impala_s2__s2 --output_dir {out}",
        f"python ppo_training.py --encoder impala --procgen_threads 3 --env_id coinrun --seed 2 "
        f"--run_name coinrun__ppo__impala_s2__s2 --output_dir {out}",
    ]


def test_dry_run_slurm_and_several_commands(tmp_path, capsys):
    code = benchmark.main(["--env_ids", "ablation", "--seeds", "3", "--backend", "slurm", "--partition", "gpu",
                           "--cpus_per_run", "6", "--command", "python ppo_training.py --procgen_threads 2",
                           "python dqn_training.py", "--tag", "a", "b", "--exp_name", "abl",
                           "--output_dir", str(tmp_path), "--dry_run"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and "'slurm_partition': 'gpu'" in lines[0] and "'cpus_per_task': 6" in lines[0]
    assert len(lines) == 2 + 2 * 10
    assert lines[2] == (f"python ppo_training.py --procgen_threads 2 --exp_name abl --env_id bigfish --seed 3 "
                        f"--run_name bigfish__abl__a__s3 --output_dir {tmp_path}")
    assert lines[12].startswith("python dqn_training.py --exp_name abl --procgen_threads 6 --env_id bigfish")


@pytest.mark.parametrize("args, message", [
    (["--env_ids", "bigfsh"], "invalid env_id 'bigfsh'"),
    (["--env_ids", "bigfish", "--command", "python x.py --seed 3"], "sets --seed"),
    (["--env_ids", "bigfish", "--tag", "a", "b"], "2 tags for 1 commands"),
    (["--env_ids", "bigfish", "--command", "python x.py --lr 1", "python x.py --lr 2"], "give them different --tag"),
    (["--env_ids", "bigfish", "--tag", "a/b"], "invalid name part 'a/b'"),
    (["--env_ids", "bigfish", "--workers", "0"], "invalid workers 0; valid: an integer in [1, 4096]"),
    (["--env_ids", "bigfish", "--max_requeues", "-1"], "invalid max_requeues -1"),
])
def test_bad_input_exits_2(args, message, capsys):
    argv = args if "--command" in args else [*args, "--command", "python x.py"]
    assert benchmark.main([*argv, "--dry_run"]) == 2
    assert message in capsys.readouterr().err


def test_pool_failure_summary_skip_and_resume(tmp_path):
    """A planted failure leaves its siblings running; the re-run skips finished runs and resumes the failed ones."""
    out = tmp_path / "runs"
    args = ["--env_ids", "bigfish", "coinrun", "--num_seeds", "2", "--command", fake("--fail_seed", "2"),
            "--exp_name", "t", "--tag", "fake", "--output_dir", str(out), "--workers", "3", "--gpus", "0", "1",
            "--threads_per_run", "2"]
    first = launch(*args)
    assert first.returncode == 1, first.stdout + first.stderr
    assert states(first.stdout) == {"bigfish__t__fake__s1": "done", "coinrun__t__fake__s1": "done",
                                    "bigfish__t__fake__s2": "failed", "coinrun__t__fake__s2": "failed"}
    assert "4 runs: " in first.stdout and "2 done" in first.stdout and "2 failed" in first.stdout
    row = next(line for line in first.stdout.splitlines() if line.startswith("bigfish__t__fake__s2"))
    assert row.split()[2] == "1" and row.split()[-1] == str(out / "logs" / "bigfish__t__fake__s2.log")
    assert "planted failure" in (out / "logs" / "bigfish__t__fake__s2.log").read_text()
    assert json.loads((out / "logs" / "bigfish__t__fake__s2.status.json").read_text())["exit_code"] == 1
    devices = set()
    for name in ("bigfish__t__fake__s1", "coinrun__t__fake__s1"):
        config = json.loads((out / name / "config.json").read_text())
        assert (config["env_id"], config["seed"], config["exp_name"], config["procgen_threads"]) == (
            name.split("__")[0], 1, "t", 2)
        assert config["environ"]["OMP_NUM_THREADS"] == "2"
        devices.add(config["environ"]["CUDA_VISIBLE_DEVICES"])
    assert devices <= {"0", "1"}

    second = launch(*args)
    assert second.returncode == 0, second.stdout + second.stderr
    assert states(second.stdout) == {"bigfish__t__fake__s1": "skipped", "coinrun__t__fake__s1": "skipped",
                                     "bigfish__t__fake__s2": "done", "coinrun__t__fake__s2": "done"}
    history = (out / "bigfish__t__fake__s2" / "history.txt").read_text().splitlines()
    assert history == ["start step=0 resume=0", "start step=1 resume=1", "done"]
    assert (out / "bigfish__t__fake__s1" / "history.txt").read_text().count("start") == 1


def test_pool_ctrl_c_checkpoints_and_rerun_resumes(tmp_path):
    """SIGINT to the launcher: the running run checkpoints, the queued one does not start; a re-run finishes both."""
    out = tmp_path / "runs"
    args = ["-m", "benchmark_utils.benchmark", "--env_ids", "bigfish", "coinrun", "--seeds", "1",
            "--command", fake("--steps", "40", "--step_time", "0.04"), "--output_dir", str(out), "--gpus"]
    launcher = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=launcher_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    metrics = out / "bigfish__fake_train__impoola_s2__s1" / "metrics.jsonl"
    deadline = time.time() + 60
    while not (metrics.exists() and metrics.read_text()) and time.time() < deadline:
        time.sleep(0.1)
    launcher.send_signal(signal.SIGINT)
    stdout, stderr = launcher.communicate(timeout=60)
    assert launcher.returncode == 1, stdout + stderr
    assert states(stdout) == {"bigfish__fake_train__impoola_s2__s1": "interrupted",
                              "coinrun__fake_train__impoola_s2__s1": "not started"}
    assert "workers on CPU (CUDA_VISIBLE_DEVICES='')" in stdout and "received SIGINT" in stderr
    history = (out / "bigfish__fake_train__impoola_s2__s1" / "history.txt").read_text().splitlines()
    assert history[1] == "signal SIGTERM" and history[2].startswith("checkpoint step=")
    config = json.loads((out / "bigfish__fake_train__impoola_s2__s1" / "config.json").read_text())
    assert config["environ"]["CUDA_VISIBLE_DEVICES"] == ""

    rerun = subprocess.run([sys.executable, *args], cwd=ROOT, env=launcher_env(), capture_output=True, text=True,
                           timeout=120)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    resumed = (out / "bigfish__fake_train__impoola_s2__s1" / "history.txt").read_text().splitlines()
    assert resumed[3] == f"start step={history[2].split('=')[1]} resume=1" and resumed[-1] == "done"


def test_busy_run_is_not_started_twice(tmp_path):
    """A run held by another launcher (its lock file) is reported busy, not run a second time."""
    out = tmp_path / "runs"
    args = ["-m", "benchmark_utils.benchmark", "--env_ids", "bigfish", "--seeds", "1", "--output_dir", str(out),
            "--command", fake("--steps", "2000", "--step_time", "0.05"), "--gpus"]  # busy until interrupted below
    first = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=launcher_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    history = out / "bigfish__fake_train__impoola_s2__s1" / "history.txt"
    deadline = time.time() + 60
    while not history.exists() and time.time() < deadline:
        time.sleep(0.1)
    second = subprocess.run([sys.executable, *args], cwd=ROOT, env=launcher_env(), capture_output=True, text=True,
                            timeout=60)
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=60)
    assert second.returncode == 1 and states(second.stdout) == {"bigfish__fake_train__impoola_s2__s1": "busy"}
    assert history.read_text().count("start") == 1


def test_pool_with_real_ppo_training(tmp_path):
    """The real training script: one tiny run finishes, a planted failure (its run dir is a file) does not."""
    out = tmp_path / "runs"
    out.mkdir()
    (out / "bigfish__ppo__impala_s1__s2").write_text("not a directory\n")
    command = (f"{sys.executable} ppo_training.py --encoder impala --scale 1 --num_envs 2 --num_steps 8 "
               "--total_timesteps 16 --num_minibatches 1 --update_epochs 1 --num_eval_episodes 0 "
               "--num_final_eval_episodes 0 --wandb_mode disabled --no-progress_bar")
    args = ["--env_ids", "bigfish", "--num_seeds", "2", "--command", command, "--output_dir", str(out),
            "--workers", "2", "--gpus", "--threads_per_run", "1"]
    result = launch(*args, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    assert states(result.stdout) == {"bigfish__ppo__impala_s1__s1": "done", "bigfish__ppo__impala_s1__s2": "failed"}
    config = json.loads((out / "bigfish__ppo__impala_s1__s1" / "config.json").read_text())
    assert (config["run_name"], config["model_name"], config["procgen_threads"]) == (
        "bigfish__ppo__impala_s1__s1", "impala_s1", 1)
    assert "--resume" in (out / "logs" / "bigfish__ppo__impala_s1__s2.log").read_text()


def dry_run_commands(script: Path, tmp_path: Path, *options: str) -> list[list[str]]:
    """The commands a launch script's dry run prints (options passed through to the launcher)."""
    result = subprocess.run(["bash", str(script), "--dry_run", "--output_dir", str(tmp_path), *options],
                            cwd=tmp_path, env=launcher_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return [shlex.split(line) for line in result.stdout.splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("script", LAUNCH_SCRIPTS, ids=lambda path: path.name)
def test_launch_script_dry_run(script, tmp_path):
    """Every launch script dry-runs: training commands with unique run names and the launcher's flags."""
    commands = dry_run_commands(script, tmp_path)
    assert commands and all(c[0] == "python" and c[1] in ("ppo_training.py", "dqn_training.py") for c in commands)
    names = [c[c.index("--run_name") + 1] for c in commands]
    assert len(set(names)) == len(names)
    assert all(c[c.index("--output_dir") + 1] == str(tmp_path) for c in commands)


def test_launch_script_passes_backend_options(tmp_path):
    commands = dry_run_commands(ROOT / "benchmark_utils" / "main_comparison.sh", tmp_path, "--backend", "slurm",
                                "--cpus_per_run", "5", "--env_ids", "bigfish", "--num_seeds", "1")
    assert [c[c.index("--run_name") + 1] for c in commands] == [
        "bigfish__ppo__impala_s2__s1", "bigfish__ppo__impala_s2_pruned__s1", "bigfish__ppo__impala_s2_softmoe__s1",
        "bigfish__ppo__impala_s2_redo_published__s1", "bigfish__ppo__impoola_s2__s1"]
    assert all(c[c.index("--procgen_threads") + 1] == "5" for c in commands)


def test_launch_script_commands_are_valid_ppo_training_flags(tmp_path):
    """Every PPO command of the launch scripts parses and validates, and its run name is the script's default one."""
    from impoola.cli import parse_cli
    from impoola.run.rundir import run_name
    from ppo_training import Args

    for script in LAUNCH_SCRIPTS:
        for command in dry_run_commands(script, tmp_path, "--env_ids", "bigfish", "--num_seeds", "1"):
            if command[1] != "ppo_training.py":
                continue
            args = parse_cli(Args, command[2:])  # the options check themselves
            assert args.run.run_name == run_name(args.env.env_id, args.run.exp_name, args.model_name,
                                                 args.run.seed), command
