"""Where a PPO iteration's time goes, per op class, and what this machine's matrix units allow.

    python -m benchmark_utils.op_profile --variant fp32_cl      # fp32_nchw, bf16_cl, ... (benchmark variants)

Runs ppo_training.main for 1 + --iterations iterations (no evaluation, W&B off) under the torch profiler and
oneDNN's verbose log, and prints the main thread's time per op class: conv forward, conv backward (split into its
weight and input gradients by oneDNN's own timings), pooling, elementwise, optimizer (Adam, gradient clipping),
copies, env (Procgen's step), the rest (Python, logging). Then the convolutions' achieved GFLOP/s per pass and a
large GEMM's GFLOP/s in float32 and bf16 on the same threads: the ceiling the matrix units allow. The first
iteration (warm-up) is included, so read the shares, not the absolute times.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from impoola.openmp import choose_wait_policy

choose_wait_policy()  # before torch loads OpenMP, as the training scripts do

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile, record_function  # noqa: E402

from benchmark_utils import training_script  # noqa: E402
from benchmark_utils.throughput import parse_variant  # noqa: E402
from impoola.cli import run_command  # noqa: E402
from impoola.models.encoders import EncoderName  # noqa: E402
from impoola.envs.games import Game  # noqa: E402
from impoola.envs.procgen import ProcgenVecEnv  # noqa: E402
from impoola.options import Checked, Float, Int, from_flat  # noqa: E402

ppo_training = training_script("ppo_training")
CONV_SHAPE = re.compile(r"mb(\d+)_ic(\d+)oc(\d+)_ih\d+oh(\d+)kh(\d+).*_iw\d+ow(\d+)kw(\d+)")
PASSES = {"forward_training": "forward", "forward_inference": "forward", "backward_data": "backward input",
          "backward_weights": "backward weight"}


class TimedEnv(ProcgenVecEnv):
    """ProcgenVecEnv whose step shows in the profile as `env.step`."""

    def step(self, actions):
        with record_function("env.step"):
            return super().step(actions)


def op_class(name: str, ancestors: list[str]) -> str:
    """The class of an aten op by its name and the ranges around it."""
    if any(a.startswith("Optimizer.") for a in ancestors) or "_foreach" in name:
        return "optimizer"
    if "convolution_backward" in name:
        return "conv backward"
    if "conv" in name:
        return "conv forward"
    if "pool" in name:
        return "pooling"
    if name in ("aten::copy_", "aten::_to_copy", "aten::clone", "aten::index", "aten::contiguous", "aten::cat",
                "aten::stack", "aten::fill_", "aten::zero_"):
        return "copies"
    if any(k in name for k in ("relu", "threshold", "clamp", "add", "mul", "div", "sub", "exp", "log", "softmax")):
        return "elementwise"
    return "other ops"


def onednn_passes(log: str) -> dict[str, tuple[float, float]]:
    """(milliseconds, GFLOP) per convolution pass from oneDNN verbose lines."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for line in log.splitlines():
        fields = line.split(",")
        if len(fields) < 10 or fields[3] != "exec" or fields[5] != "convolution":
            continue
        shape = CONV_SHAPE.search(line)
        if shape is None:
            continue
        mb, ic, oc, oh, kh, ow, kw = map(int, shape.groups())
        totals[PASSES.get(fields[7], fields[7])][0] += float(fields[-1])
        totals[PASSES.get(fields[7], fields[7])][1] += 2 * mb * ic * oc * oh * ow * kh * kw / 1e9
    return {key: (ms, gflop) for key, (ms, gflop) in totals.items()}


def gemm_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a size x size matmul in `dtype` (median of `repeats`)."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / sorted(times)[repeats // 2] / 1e9


@dataclass(frozen=True)
class OpProfileOptions(Checked):
    """Which PPO iteration to profile: the speed variant, the model and the sizes."""

    variant: str = "fp32_cl"
    """a benchmark variant: <fp32|bf16>_<nchw|cl>[_compile]"""
    encoder: EncoderName = "impoola"
    """encoder family"""
    scale: Float(0, 64, low_open=True) = 2
    """width scale τ"""
    env_id: Game = "bigfish"
    """Procgen game"""
    num_envs: Int(1, 4096) = 16
    """parallel environments"""
    num_steps: Int(1, 2**20) = 32
    """steps per rollout"""
    num_minibatches: Int(1) = 4
    """minibatches per epoch (must divide num_envs x num_steps)"""
    update_epochs: Int(1, 1000) = 3
    """epochs per rollout"""
    iterations: Int(1, 10**4) = 1
    """profiled iterations after the warm-up one"""

    def check(self) -> None:
        parse_variant(self.variant)
        if (self.num_envs * self.num_steps) % self.num_minibatches:
            raise ValueError(f"invalid num_minibatches {self.num_minibatches}: it must divide the batch "
                             f"num_envs*num_steps = {self.num_envs * self.num_steps}")


def main(opts: OpProfileOptions) -> None:
    perf = parse_variant(opts.variant)
    ppo_training.ProcgenVecEnv = TimedEnv
    batch = opts.num_envs * opts.num_steps
    with tempfile.TemporaryDirectory() as tmp:
        args = from_flat(
            ppo_training.Args, env_id=opts.env_id, num_envs=opts.num_envs, num_steps=opts.num_steps,
            num_minibatches=opts.num_minibatches, update_epochs=opts.update_epochs,
            total_timesteps=batch * (1 + opts.iterations), num_eval_episodes=0, num_final_eval_episodes=0,
            eval_every_fraction=1.0, wandb_mode="disabled", progress_bar=False, output_dir=tmp, run_name="profile",
            encoder=opts.encoder, scale=opts.scale, precision=perf.precision, channels_last=perf.channels_last,
            compile=perf.compile)
        log_path = Path(tmp) / "onednn.log"
        stdout = os.dup(1)
        verbose = torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON)
        with open(log_path, "w") as log, verbose, profile(activities=[ProfilerActivity.CPU]) as prof:
            os.dup2(log.fileno(), 1)  # oneDNN writes its verbose lines to the process's stdout
            start = time.perf_counter()
            try:
                ppo_training.main(args)
            finally:
                wall = time.perf_counter() - start
                os.dup2(stdout, 1)
        passes = onednn_passes(log_path.read_text())
    seconds: dict[str, float] = defaultdict(float)
    for event in prof.events():
        if event.name == "env.step":
            seconds["env"] += event.cpu_time_total / 1e6
            continue
        if not event.name.startswith("aten::"):
            continue
        ancestors, parent = [], event.cpu_parent
        while parent is not None:
            ancestors.append(parent.name)
            parent = parent.cpu_parent
        if any(a.startswith("aten::") for a in ancestors):  # nested op: its time is in its parent's self time
            continue
        seconds[op_class(event.name, ancestors)] += event.cpu_time_total / 1e6
    backward = seconds.pop("conv backward", 0.0)
    data, weight = passes.get("backward input", (0.0, 0.0))[0], passes.get("backward weight", (0.0, 0.0))[0]
    if data + weight > 0:
        seconds["conv backward weight"] = backward * weight / (data + weight)
        seconds["conv backward input"] = backward * data / (data + weight)
    else:
        seconds["conv backward (not oneDNN)"] = backward
    seconds["rest (Python, logging, start-up)"] = wall - sum(seconds.values())
    print(f"{opts.variant}: {1 + opts.iterations} iterations of {batch} steps, {wall:.1f} s, "
          f"{torch.get_num_threads()} torch threads")
    print("| op class | s | share |\n|---|---:|---:|")
    for name, value in sorted(seconds.items(), key=lambda item: -item[1]):
        print(f"| {name} | {value:.2f} | {value / wall:.0%} |")
    print("| conv pass (oneDNN) | ms | GFLOP/s |\n|---|---:|---:|")
    for name, (ms, gflop) in sorted(passes.items()):
        print(f"| {name} | {ms:,.0f} | {gflop / ms * 1e3:,.0f} |")
    print(f"GEMM 2048x2048 on {torch.get_num_threads()} threads: float32 {gemm_gflops(torch.float32):,.0f} GFLOP/s, "
          f"bf16 {gemm_gflops(torch.bfloat16):,.0f} GFLOP/s")


if __name__ == "__main__":
    sys.exit(run_command(OpProfileOptions, main, description=__doc__))
