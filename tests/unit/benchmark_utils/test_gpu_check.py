"""benchmark_utils.gpu_check on the CPU: no-CUDA exit, the loss tolerance, pytest counts, the table, the report."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import pytest
import torch

from benchmark_utils import gpu_check
from benchmark_utils.gpu_check import (
    COMPARED_PARTS, PAPER, TINY, compare_losses, markdown_table, run_cuda_tests, steady_sps, throughput_argv,
)
from benchmark_utils.throughput import ThroughputOptions, parse_variant
from impoola.cli import parse_cli

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmark_utils.gpu_check", *args], capture_output=True, text=True,
                          timeout=120)


@NO_CUDA
def test_without_cuda_it_says_so_in_one_line(tmp_path):
    out = check("--output_dir", str(tmp_path / "check"))
    assert out.returncode == 0 and out.stderr == ""
    assert out.stdout.startswith("no CUDA:") and out.stdout.count("\n") == 1
    assert not (tmp_path / "check").exists()  # nothing measured, nothing written
    required = check("--require_gpu")
    assert required.returncode == 2 and required.stdout == ""
    assert required.stderr.startswith("error: no CUDA:") and required.stderr.count("\n") == 1


def test_bad_budget_exits_2_before_anything():
    out = check("--budget_s", "-5")
    assert out.returncode == 2 and out.stderr == "error: invalid budget_s -5.0; valid: a number > 0\n"


def test_loss_tolerance():
    cpu = dict.fromkeys(COMPARED_PARTS, 1.0) | {"approx_kl": 0.0}
    within = cpu | {"loss": 1.0 + 1e-3, "approx_kl": 9e-5}  # |Δ| <= atol + rtol·|cpu|
    result = compare_losses(cpu, within, rtol=1e-3, atol=1e-4)
    assert result["status"] == "passed" and result["outside"] == [] and result["max_abs_diff"] == pytest.approx(1e-3)
    outside = compare_losses(cpu, cpu | {"v_loss": 1.0012, "approx_kl": 2e-4}, rtol=1e-3, atol=1e-4)
    assert outside["status"] == "failed" and outside["outside"] == ["v_loss", "approx_kl"]
    assert compare_losses(cpu, cpu | {"grad_norm": math.nan}, 1e-3, 1e-4)["outside"] == ["grad_norm"]


def test_cuda_tests_are_counted_from_pytest(tmp_path):
    (tmp_path / "test_sample.py").write_text(textwrap.dedent("""
        import pytest

        @pytest.mark.cuda
        def test_ok():
            pass

        @pytest.mark.cuda
        def test_broken():
            assert 1 == 2, "planted"

        @pytest.mark.cuda
        @pytest.mark.skip(reason="planted skip")
        def test_skipped():
            pass

        def test_not_cuda():
            raise AssertionError("deselected: not marked cuda")
    """))
    result = run_cuda_tests([str(tmp_path / "test_sample.py")], 120, tmp_path)
    assert result["status"] == "failed" and result["exit_code"] == 1
    assert (result["passed"], result["failed"], result["errors"], result["skipped"]) == (1, 1, 0, 1)
    assert "planted" in result["output_tail"]


def test_measurements_run_at_the_papers_configs(tmp_path):
    """The arguments handed to benchmark_utils.throughput parse there to the paper's PPO and DQN configs."""
    cuda = torch.device("cuda")  # a name only: nothing runs on it
    ppo = parse_cli(ThroughputOptions, throughput_argv("ppo", "impala", 2.0, "bf16_cl", PAPER, cuda, 64,
                                                       tmp_path / "r"))
    assert (ppo.algo, ppo.model.encoder, ppo.model.scale, ppo.child, ppo.cuda) == (
        "ppo", "impala", 2.0, "bf16_cl", True)
    assert (ppo.num_envs, ppo.num_steps, ppo.num_minibatches, ppo.update_epochs) == (64, 256, 8, 3)
    assert ppo.eval_episodes == 64 and ppo.iterations >= 2
    dqn = parse_cli(ThroughputOptions, throughput_argv("dqn", "impoola", 2.0, "fp32_cl", PAPER, cuda, 0,
                                                       tmp_path / "r"))
    assert (dqn.num_envs, dqn.batch_size, dqn.eval_episodes) == (128, 512, 0)
    assert dqn.buffer_size >= 16 * dqn.batch_size  # the replay memory holds many batches
    tiny = parse_cli(ThroughputOptions, throughput_argv("ppo", "impoola", 0.25, "fp32_cl", TINY, torch.device("cpu"),
                                                        1, tmp_path / "r"))
    assert not tiny.cuda and tiny.num_envs == TINY.ppo_envs
    assert [model for model, _ in PAPER.ppo_models] == ["impoola", "impala"] and set(PAPER.ppo_variants) == {
        "fp32_cl", "bf16_cl", "compile"}
    for variant in (*PAPER.ppo_variants, *PAPER.dqn_variants):
        parse_variant(variant)


def test_steady_steps_per_second_skips_the_warmup_interval(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    rows = [{"charts/total_network_params": 1}, {"charts/SPS": 10.0}, {"charts/SPS": 300.0}, {"charts/SPS": 100.0},
            {"charts/SPS": 200.0}, {"scores/final": 1.0}]
    metrics.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert steady_sps(metrics) == 200.0


def sample_report() -> dict:
    speed = dict(status="passed", env_s=0.5, inference_s=0.25, update_s=0.75, warmup_s=12.34, peak_mib=2048.4)
    return {
        "device": "NVIDIA H200 (bf16: native)", "cuda": True, "config": dict(vars(PAPER)),
        "speed": [{"algo": "ppo", "model": "Impoola τ=2", "variant": "fp32_cl", "steps_per_s": 30_000.0,
                   "eval_episodes_per_s": 12.5, **speed},
                  {"algo": "ppo", "model": "Impala τ=2", "variant": "compile", "status": "failed", "error": "boom"},
                  {"algo": "dqn", "model": "Impoola τ=2", "variant": "bf16_cl", "steps_per_s": 5_000.0, **speed}],
        "launcher": {"status": "passed", "model": "Impoola τ=2", "aggregate_steps_per_s": 50_000.0},
        "loss_agreement": {"status": "passed", "settings": {
            "tf32_off": {"status": "passed", "rtol": 1e-3, "atol": 1e-4, "max_abs_diff": 2e-6}}},
        "tests": {"status": "passed", "passed": 9, "failed": 0, "errors": 0, "skipped": 1},
    }


def test_markdown_table_for_the_readme():
    lines = markdown_table(sample_report()).splitlines()
    assert lines[0].startswith("| NVIDIA H200 (bf16: native) | steps/s | × target |") and lines[1].startswith("|---|")
    assert lines[2] == "| PPO Impoola τ=2 float32 | 30,000 | 2.00 | 0.5 / 0.25 / 0.75 | 12.3 | 2,048 | 12.5 |"
    assert lines[3] == "| PPO Impala τ=2 float32 + --compile | failed | | | | | |"
    assert lines[4].startswith("| DQN Impoola τ=2 bf16 | 5,000 | - |")  # the 15k target is PPO's
    assert lines[5] == "| 4 × PPO Impoola τ=2 float32 at once (launcher), aggregate | 50,000 | 1.25 | | | | |"
    assert all(line.count("|") == 8 for line in lines[:6])  # every row has the header's 7 columns
    notes = "\n".join(lines[7:])
    assert "64 envs × 256 steps, 8 minibatches, 3 epochs" in notes and "128 envs, batch 512" in notes
    assert "Losses, float32, TF32 off: passed (|Δ| ≤ 0.0001 + 0.001·|cpu|, largest |Δ| 2e-06)" in notes
    assert "CUDA tests: 9 passed, 0 failed, 0 errors, 1 skipped" in notes


REPORT_KEYS = {"schema", "device", "cuda", "torch", "cuda_version", "tiny", "budget_s", "config", "targets", "tests",
               "loss_agreement", "speed", "launcher", "wall_s", "status"}
SPEED_KEYS = {"algo", "model", "variant", "status", "steps_per_s", "warmup_s", "env_s", "inference_s", "update_s",
              "peak_mib", "seconds_per"}


@pytest.mark.slow
def test_tiny_check_runs_end_to_end_on_the_cpu(tmp_path, capsys):
    code = gpu_check.main(["--device", "cpu", "--tiny", "--tests", "tests/unit/impoola/analysis/test_latency_timer.py",
                           "--output_dir", str(tmp_path), "--budget_s", "1200"])
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert code == 0 and report["status"] == "passed", json.dumps(report, indent=1)
    assert set(report) == REPORT_KEYS and report["schema"] == 1 and report["tiny"] and not report["cuda"]
    assert report["tests"]["passed"] == 0 and report["tests"]["skipped"] >= 1  # CUDA tests skip on a CPU
    assert set(report["loss_agreement"]["settings"]) == {"tf32_off", "torch_defaults"}
    assert report["loss_agreement"]["settings"]["tf32_off"]["max_abs_diff"] == 0.0  # the CPU against itself
    assert [(row["algo"], row["variant"]) for row in report["speed"]] == [("ppo", "fp32_cl"), ("dqn", "fp32_cl")]
    for row in report["speed"]:
        assert SPEED_KEYS <= set(row) and row["steps_per_s"] > 0 and row["eval_episodes_per_s"] > 0
    assert report["launcher"]["runs"] == 2 and len(report["launcher"]["steps_per_s"]) == 2
    assert report["launcher"]["aggregate_steps_per_s"] == pytest.approx(sum(report["launcher"]["steps_per_s"]))
    table = (tmp_path / "gpu_check.md").read_text()
    assert table in capsys.readouterr().out and "| PPO Impoola τ=0.25 float32 |" in table


def test_stages_fit_the_budget_and_failures_do_not_stop_the_check():
    budget = gpu_check.Budget(600)
    assert gpu_check.run_stage(budget, lambda left: {"status": "passed", "left": left})["left"] > 590
    assert gpu_check.run_stage(budget, lambda left: 1 / 0) == {"status": "failed",
                                                                 "error": "ZeroDivisionError: division by zero"}
    spent = gpu_check.Budget(gpu_check.MIN_STAGE_S - 1)
    assert gpu_check.run_stage(spent, lambda left: pytest.fail("must not run"))["status"] == "skipped"
