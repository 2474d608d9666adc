"""benchmark_utils.validate end to end at a tiny budget: seeds run, then compared."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from benchmark_utils import validate
from impoola.cli import parse_cli
from support.paths import ROOT


# One torch thread: more threads spin-wait in OpenMP barriers on a busy 2-core host (3x the CPU time).
TINY = ["--env_id", "bossfight", "--total_timesteps", "128", "--num_seeds", "2", "--precision", "bf16",
        "--torch_threads", "1", "--test_episodes", "1", "--no-progress_bar",
        "--train_flags=--num_envs 2 --num_steps 32 --num_minibatches 2 --update_epochs 1 --procgen_threads 1"]


def test_command_runs_seeds_then_compares_end_to_end(tmp_path, capsys):
    """Two tiny runs in sequence with bf16, compared; a second call resumes them, --compare_only prints the same."""
    command = [sys.executable, "-m", "benchmark_utils.validate", *TINY, "--output_dir", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    for seed in (1, 2):
        run_dir = tmp_path / f"bossfight__train_procgen__impala_s1_samepool_glorot__s{seed}"
        config = json.loads((run_dir / "config.json").read_text())
        assert (run_dir / "done").exists() and config["precision"] == "bf16" and config["seed"] == seed
        assert config["gamma"] == 0.999 and config["num_envs"] == 2  # published settings, then --train_flags
        assert (config["encoder_init"], config["adam_eps_form"], config["reward_norm_gamma"]) == ("glorot", "tf", 0.99)
    out = first.stdout
    assert out.count("--precision bf16") == 2 and out.count("--torch_threads 1") == 2
    assert out.count("device cpu: precision bf16") == 2 and out.count("torch_threads 1,") == 2
    assert "--resume" not in out and "num_envs=2 (published 64)" in out  # the tiny budget is a reported deviation
    assert "bossfight__train_procgen__impala_s1_samepool_glorot__s2: final test return" in out
    assert "diagnostics: not compared" in out  # 64-step updates are not the published 16,384
    assert (tmp_path / "validation_bossfight.png").read_bytes()[:4] == b"\x89PNG"
    args = parse_cli(validate.Args, [*TINY, "--output_dir", str(tmp_path)])
    assert validate.training_command(args, 2)[-1] == "--resume"  # a second call continues (or skips) the runs
    runs = [str(tmp_path / f"bossfight__train_procgen__impala_s1_samepool_glorot__s{seed}") for seed in (1, 2)]
    again = validate.main(parse_cli(validate.Args, ["--compare_only", *runs, "--figure", str(tmp_path / "f.png")]))
    assert again.replace(str(tmp_path / "f.png"), "") == out[out.index("bossfight: training return"):].replace(
        str(tmp_path / "validation_bossfight.png"), "").rstrip("\n")
