"""benchmark_utils.throughput: variant names, and interleaved medians printed for both algorithms."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from benchmark_utils.throughput import parse_variant, warmup_and_steady
from impoola.performance import PerformanceOptions
from support.paths import ROOT


def test_benchmark_variants():
    assert parse_variant("fp32_nchw") == PerformanceOptions(channels_last=False)
    assert parse_variant("compile") == PerformanceOptions(compile=True)
    assert parse_variant("bf16_cl_compile") == PerformanceOptions(precision="bf16", compile=True)
    assert parse_variant("fp32_cl_noreuse") == PerformanceOptions(reuse_host_memory=False)
    assert PerformanceOptions().reuse_host_memory  # the default: a variant without _noreuse is the scripts' default
    for invalid in ("fp32_cl_reuse", "fp32_cl_noreuse_compile"):
        with pytest.raises(ValueError, match=f"invalid variant '{invalid}'"):
            parse_variant(invalid)
    with pytest.raises(ValueError, match="invalid variant 'fp16_cl'"):
        parse_variant("fp16_cl")


def test_a_warmup_is_the_first_intervals_excess_over_the_steady_median_never_negative():
    assert warmup_and_steady([5.0, 2.0, 1.0, 3.0]) == (3.0, 2.0)
    assert warmup_and_steady([1.0, 2.0, 3.0, 2.5]) == (0.0, 2.5)  # a first interval faster than the steady median


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
    assert out.stdout.count("\nround ") == 4 and "medians of 2 interleaved round(s)" in out.stdout
    baseline = "plain" if algo == "ppo" else "fp32_nchw"  # PPO's ratios are to the plain CleanRL-style loop
    baseline_rows = [line for line in out.stdout.splitlines() if line.startswith(f"| {baseline} |")]
    assert baseline_rows[0].split("|")[3].strip() == "1.00"  # the ratio column is relative to the baseline
    assert [cell.strip() for cell in baseline_rows[1].split("|")[2:4]] == ["1.00", "1.00"]  # per-round ratios
    load_row = next(line for line in out.stdout.splitlines() if line.startswith("| load average before → after |"))
    assert load_row.count("→") == 3  # the header's and one per round
    arms = {line.split(" ")[0]: line for line in out.stdout.splitlines() if " torch threads, OMP_WAIT_POLICY=" in line}
    assert set(arms) == {baseline, "fp32_cl"} and "1 torch threads" in arms["fp32_cl"]
    if algo == "ppo":  # the anchor runs on torch's defaults: no OpenMP variable of ours
        assert "the anchor, torch's and the OS's defaults" in arms["plain"]
    results = json.loads(json_path.read_text())
    assert set(results) == {baseline, "fp32_cl"}
    for name, result in results.items():
        assert result["loop_s"] > 0 and result["env_s"] > 0 and result["peak_mib"] > 0
        assert result["loop_warmup_s"] >= 0
        if name != "plain":  # the plain arm is timed as a whole loop only
            assert result["update_s"] > 0 and result["overhead"] > -1


def test_loops_alone_are_timed_without_their_parts(tmp_path):
    json_path = tmp_path / "results.json"
    subprocess.run(
        [sys.executable, "-m", "benchmark_utils.throughput", "--encoder", "impala", "--scale", "1", "--num_envs", "2",
         "--num_steps", "4", "--num_minibatches", "2", "--update_epochs", "1", "--iterations", "1", "--rounds", "1",
         "--variants", "fp32_nchw", "--torch_threads", "1", "--no-cuda", "--no-parts", "--json", str(json_path)],
        capture_output=True, text=True, check=True, timeout=300)
    results = json.loads(json_path.read_text())
    assert set(results) == {"plain", "fp32_nchw"}
    for result in results.values():
        assert result["loop_s"] > 0 and "update_s" not in result and "env_s" not in result


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
