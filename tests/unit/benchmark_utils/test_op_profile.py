"""benchmark_utils.op_profile splits an iteration into op classes."""

import subprocess
import sys


def test_op_profile_splits_an_iteration_into_op_classes():
    out = subprocess.run(
        [sys.executable, "-m", "benchmark_utils.op_profile", "--variant", "fp32_cl", "--scale", "1", "--num_envs", "2",
         "--num_steps", "4", "--num_minibatches", "1", "--update_epochs", "1"],
        capture_output=True, text=True, check=True, timeout=300)
    shares = {line.split("|")[1].strip(): float(line.split("|")[3].strip(" %")) for line in out.stdout.splitlines()
              if line.startswith("| ") and line.rstrip().endswith("% |")}
    assert {"conv forward", "conv backward weight", "conv backward input", "pooling", "optimizer", "env"} <= set(shares)
    assert 95 <= sum(shares.values()) <= 105  # the classes and the rest make up the wall time
    assert "| backward weight |" in out.stdout and "GEMM 2048x2048" in out.stdout
