"""The CUDA paths end to end (skipped without a CUDA GPU; python -m benchmark_utils.gpu_check runs them)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import numpy as np
import pytest
import torch

import dqn_training
import ppo_training
from benchmark_utils.gpu_check import TINY, check_losses
from impoola.models.encoders import ModelOptions
from impoola.models.agents import build_agent
from impoola.performance import PerformanceOptions, compile_agent, prepare_agent
from support.paths import ROOT
from support.runs import tiny_dqn_args, tiny_ppo_args

pytestmark = pytest.mark.cuda
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def restore_tf32():
    """bf16 runs turn TF32 on for the process; the other tests see torch's own settings."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def logged(run_dir, key: str) -> list[float]:
    return [row[key] for row in map(json.loads, (run_dir / "metrics.jsonl").open()) if key in row]


@pytest.mark.parametrize("overrides", [dict(), dict(precision="bf16"), dict(compile=True, num_eval_episodes=0)],
                         ids=["float32", "bf16", "compile"])
def test_ppo_trains_on_cuda(tmp_path, overrides):
    """Every GPU run's first steps: the packed pinned copy, bf16 with TF32, CUDA graphs (reduce-overhead)."""
    args = tiny_ppo_args(tmp_path, run_name="run", num_envs=8, cuda=True, num_final_eval_episodes=0, **overrides)
    ppo_training.main(args)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["device"] == "cuda" and (tmp_path / "run" / "done").exists()
    assert np.isfinite(logged(tmp_path / "run", "losses/loss")).all()
    if overrides.get("precision") == "bf16":
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32


def test_dqn_trains_on_cuda(tmp_path):
    args = tiny_dqn_args(tmp_path, run_name="run", cuda=True, num_final_eval_episodes=0)
    dqn_training.main(args)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["device"] == "cuda"
    assert np.isfinite(logged(tmp_path / "run", "losses/td_loss")).all()


def test_cuda_graphs_match_eager():
    options = PerformanceOptions(compile=True)
    torch.manual_seed(0)
    eager = prepare_agent(build_agent("ppo", ModelOptions(encoder="impoola", scale=1), 15), PerformanceOptions(), CUDA)
    fast = build_agent("ppo", ModelOptions(encoder="impoola", scale=1), 15)
    fast.load_state_dict(eager.state_dict())
    fast = prepare_agent(fast, options, CUDA)
    compile_agent(fast, options, CUDA)
    obs = torch.randint(0, 256, (16, 3, 64, 64), dtype=torch.uint8, device=CUDA)
    with torch.inference_mode():
        for _ in range(3):  # recording, then replays of the CUDA graph
            for a, b in zip(eager(obs), fast(obs)):
                torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-3)


def test_float32_losses_on_cuda_equal_the_cpu():
    result = check_losses(CUDA, TINY)
    assert result["status"] == "passed", result


def test_two_runs_share_one_gpu_through_the_launcher(tmp_path):
    command = shlex.join([sys.executable, "ppo_training.py", "--num_envs", "4", "--num_steps", "16",
                          "--total_timesteps", "128", "--num_eval_episodes", "0", "--num_final_eval_episodes", "0",
                          "--scale", "1", "--wandb_mode", "disabled", "--no-progress-bar"])
    out = subprocess.run([sys.executable, "-m", "benchmark_utils.benchmark", "--env_ids", "bigfish", "--seeds", "1",
                          "2", "--command", command, "--output_dir", str(tmp_path), "--workers", "2", "--gpus", "0"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 workers on CUDA_VISIBLE_DEVICES 0 0" in out.stdout
    for seed in (1, 2):
        config = json.loads((tmp_path / f"bigfish__ppo__impoola_s1__s{seed}" / "config.json").read_text())
        assert config["device"] == "cuda"
