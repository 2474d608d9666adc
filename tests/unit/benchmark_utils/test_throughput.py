"""benchmark_utils.throughput: variant names, and interleaved medians printed for both algorithms."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from benchmark_utils.throughput import parse_variant
from impoola.performance import PerformanceOptions
from support.paths import ROOT


def test_benchmark_variants():
    assert parse_variant("fp32_nchw") == PerformanceOptions(channels_last=False)
    assert parse_variant("compile") == PerformanceOptions(compile=True)
    assert parse_variant("bf16_cl_compile") == PerformanceOptions(precision="bf16", compile=True)
    assert parse_variant("fp32_cl_reuse") == PerformanceOptions(reuse_host_memory=True)
    with pytest.raises(ValueError, match="invalid variant 'fp32_cl_reuse_compile'"):
        parse_variant("fp32_cl_reuse_compile")
    with pytest.raises(ValueError, match="invalid variant 'fp16_cl'"):
        parse_variant("fp16_cl")


@pytest.mark.parametrize("with_scripts", [True, False])
def test_runs_from_any_folder_or_refuses_in_one_line_without_the_training_scripts(tmp_path, with_scripts):
    """The packages on the path from elsewhere (not the repository's root): linked, the scripts beside them are
    found; copied without them (an install without the scripts), one line says what it needs."""
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    site.mkdir(), elsewhere.mkdir()
    (site / "impoola").symlink_to(ROOT / "impoola")
    if with_scripts:
        (site / "benchmark_utils").symlink_to(ROOT / "benchmark_utils")
    else:
        shutil.copytree(ROOT / "benchmark_utils", site / "benchmark_utils")
    run = subprocess.run([sys.executable, "-m", "benchmark_utils.throughput", "--help"], cwd=elsewhere,
                         capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(site)})
    if with_scripts:
        assert run.returncode == 0 and "--encoder" in run.stdout, run.stderr
    else:
        assert run.returncode == 2 and run.stdout == "" and run.stderr.count("\n") == 1, run.stderr
        assert run.stderr.startswith("error: cannot import dqn_training: the benchmarks need the training scripts")


@pytest.mark.parametrize("algo", ["ppo", pytest.param("dqn", marks=pytest.mark.slow)])
def test_throughput_benchmark_prints_interleaved_medians(algo, tmp_path):
    json_path = tmp_path / "results.json"
    out = subprocess.run(
        [sys.executable, "-m", "benchmark_utils.throughput", "--algo", algo, "--encoder", "impala", "--scale", "1",
         "--num_envs", "2", "--num_steps", "4", "--num_minibatches", "2", "--update_epochs", "1", "--batch_size", "8",
         "--buffer_size", "64", "--repeats", "1", "--iterations", "1", "--rounds", "2", "--variants", "fp32_cl",
         "--torch_threads", "1", "--no-cuda", "--json", str(json_path)],
        capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.count("round ") == 4 and "medians of 2 interleaved round(s)" in out.stdout
    baseline = "plain" if algo == "ppo" else "fp32_nchw"  # PPO's ratios are to the plain CleanRL-style loop
    baseline_row = next(line for line in out.stdout.splitlines() if line.startswith(f"| {baseline} |"))
    assert baseline_row.split("|")[3].strip() == "1.00"  # the ratio column is relative to the baseline
    results = json.loads(json_path.read_text())
    assert set(results) == {baseline, "fp32_cl"}
    for name, result in results.items():
        assert result["loop_s"] > 0 and result["env_s"] > 0 and result["peak_mib"] > 0
        if name != "plain":  # the plain arm is timed as a whole loop only
            assert result["update_s"] > 0 and result["overhead"] > -1


@pytest.mark.parametrize("model", [
    {}, {"extra_stage": True}, {"pooling": "avg", "pool_size": 2}, {"dropout": 0.1},
    {"positional_encoding": True, "pe_placement": "last"}, {"encoder": "impala", "pooling": "softmoe"},
    {"encoder": "nature", "cnn_filters": (8, 16, 16, 16), "extra_stage": True}, {"scale": 1.0, "pooling": "max"},
], ids=str)
def test_the_real_loop_builds_the_network_its_parts_are_timed_on(model, tmp_path):
    """Every model option reaches the training scripts' Args: loop and parts measure the same network."""
    from benchmark_utils.throughput import ThroughputOptions, dqn_args, ppo_args
    from impoola.models.encoders import ModelOptions
    from impoola.envs.games import NUM_ACTIONS
    from impoola.models.agents import build_agent

    opts = ThroughputOptions(model=ModelOptions(**model))
    perf = PerformanceOptions()
    for kind, args in (("ppo", ppo_args(opts, perf, str(tmp_path))), ("dqn", dqn_args(opts, perf))):
        assert args.model == opts.model
        parts, loop = build_agent(kind, opts.model, NUM_ACTIONS), build_agent(kind, args.model, NUM_ACTIONS)
        assert str(loop) == str(parts)
        assert {k: v.shape for k, v in loop.state_dict().items()} == {k: v.shape for k, v in parts.state_dict().items()}
