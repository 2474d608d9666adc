"""Training throughput per speed option: the real PPO / DQN loop, its parts alone, their overhead, memory, evaluation.

    python -m benchmark_utils.throughput --algo ppo --encoder impoola --scale 2 --num_envs 16 --num_steps 64 \\
        --num_minibatches 8 --update_epochs 3 --variants fp32_nchw,fp32_cl,bf16_cl,compile

A variant is `<fp32|bf16>_<nchw|cl>[_compile][_noreuse]` (`compile` alone means fp32_cl_compile; `noreuse` turns
off --reuse_host_memory). The baseline every ratio is stated against is measured first, in the same run: for PPO the
`plain` arm (benchmark_utils/plain_ppo.py: the same network and hyperparameters in the plainest CleanRL-style loop,
NCHW float32, timed as a whole loop), for DQN our own NCHW float32 loop (fp32_nchw). Every variant is measured
--rounds times, interleaved (baseline, A, B, baseline, A, B, ...) so that a shared machine's drift hits all alike;
the table shows each figure's median over the rounds, a second table each round's ratios to that round's baseline
with the 1-minute load average before and after the round. The plain arm runs as a user's script runs: torch's and
the OS's defaults, no OpenMP variable set by this project (the user's own are kept); what each arm ran with is
printed. Each measurement runs in a fresh process that
1. times the parts alone (the median of --repeats runs after one warm-up run): env stepping with random actions,
   rollout inference on fixed observations (PPO: num_steps policy calls; DQN: one greedy act per vector step),
   the update on a fixed batch (PPO: ppo_training.update; DQN: dqn_training.train_step and the replay
   memory's add), and
2. runs the real training script's main() (no evaluation, W&B off) for 1 + --iterations logged intervals and
   reads charts/SPS from its metrics.jsonl: the median of the intervals after the first is the steady-state
   steps/s; the warm-up is how much longer the first interval took (compilation, first calls), 0 when it was not
   slower.
Overhead = loop time / (sum of the parts' times) - 1, per PPO iteration or per DQN vector step. DQN's first
interval also holds the steps before the replay memory holds a batch (no updates), so it can be the fastest.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from benchmark_utils import training_script
from benchmark_utils.plain_ppo import plain_ppo_seconds
from impoola.cli import run_command
from impoola.envs.games import NUM_ACTIONS, Game
from impoola.envs.procgen import OBS_SHAPE, ProcgenVecEnv
from impoola.evaluation.episodes import evaluate_spec
from impoola.evaluation.registry import GREEDY, EvalSpec
from impoola.models.agents import agent_policy, build_agent
from impoola.models.encoders import ModelOptions
from impoola.openmp import OPENMP_VARIABLES, USER_OPENMP_ENV, current_wait_policy
from impoola.options import Checked, Int, Maybe, flat_options, from_flat, refuse_unused, replace_flat
from impoola.performance import (
    PerformanceOptions, compile_agent, compiled, configure_torch, cpu_features, describe_device, prepare_agent,
)
from impoola.ppo import ppo_loss
from impoola.replay import ReplayMemory
from impoola.run.rundir import RunDir, check_output_file

dqn_training = training_script("dqn_training")
ppo_training = training_script("ppo_training")
PLAIN = "plain"
BASELINES = {"ppo": PLAIN, "dqn": "fp32_nchw"}  # DQN has no plain arm: its ratios are to our NCHW float32 loop
ALIASES = {"compile": "fp32_cl_compile"}
PRECISION_TOKENS = {"fp32": "float32", "bf16": "bf16"}
BENCHMARK_EVAL = EvalSpec("test", "generalization", "test")  # evaluation episodes/s: the full distribution


def parse_variant(name: str) -> PerformanceOptions:
    """PerformanceOptions of a variant name such as fp32_nchw, bf16_cl, bf16_cl_compile or fp32_cl_reuse."""
    parts = ALIASES.get(name, name).split("_")
    flags = parts[2:]
    if len(parts) < 2 or parts[0] not in PRECISION_TOKENS or parts[1] not in ("nchw", "cl") or flags not in (
            [], ["compile"], ["noreuse"], ["compile", "noreuse"]):
        raise ValueError(f"invalid variant {name!r}; valid: <fp32|bf16>_<nchw|cl>[_compile][_noreuse] or compile")
    return PerformanceOptions(precision=PRECISION_TOKENS[parts[0]], channels_last=parts[1] == "cl",
                              compile="compile" in flags, reuse_host_memory="noreuse" not in flags)


@dataclass(frozen=True)
class ThroughputOptions(Checked):
    """What to measure: the algorithm, the model, the sizes and the speed variants."""

    algo: Literal["ppo", "dqn"] = "ppo"
    """training script to measure"""
    model: ModelOptions = field(default_factory=ModelOptions)
    env_id: Game = "bigfish"
    """Procgen game"""
    num_envs: Int(1, 4096) = 16
    """parallel environments"""
    num_steps: Int(1, 2**20) = 64
    """PPO: steps per rollout; DQN: vector steps per logged interval"""
    num_minibatches: Int(1) = 8
    """PPO minibatches per epoch (must divide num_envs x num_steps)"""
    update_epochs: Int(1, 1000) = 3
    """PPO epochs per rollout"""
    batch_size: Int(1, 2**20) = 512
    """DQN batch"""
    buffer_size: Int(1) = 16_384
    """DQN replay capacity"""
    variants: str = "fp32_nchw,fp32_cl,bf16_cl,compile"
    """comma-separated <fp32|bf16>_<nchw|cl>[_compile][_noreuse] or compile; the baseline (PPO: plain, DQN:
    fp32_nchw) always runs first"""
    repeats: Int(1, 10**5) = 3
    """timed runs of each part (after one warm-up run)"""
    iterations: Int(1, 10**5) = 3
    """logged loop intervals after the warm-up one"""
    rounds: Int(1, 1000) = 3
    """measure every variant this many times, interleaved"""
    parts: bool = True
    """also time the parts alone (env stepping, inference, update; DQN: replay add); --no-parts times the loops only"""
    eval_episodes: Int(0, 10**6) = 0
    """also time evaluation on this many episodes"""
    torch_threads: Maybe(Int(1, 1024)) = None
    """torch intra-op threads"""
    procgen_threads: Maybe(Int(0, 256)) = None
    """Procgen worker threads"""
    cuda: bool = True
    """use CUDA when available"""
    json: str | None = None
    """also write all results to this JSON file"""
    child: str | None = None
    """internal: measure this one variant in this process (the parent starts one child process per measurement)"""
    result: str | None = None
    """internal: the JSON file a child writes its measurement to"""

    def check(self) -> None:
        for name in self.variants.split(","):
            if name and not (name == PLAIN and self.algo == "ppo"):
                parse_variant(name)
        if self.algo == "ppo" and (self.num_envs * self.num_steps) % self.num_minibatches:
            raise ValueError(f"invalid num_minibatches {self.num_minibatches}: it must divide the batch "
                             f"num_envs*num_steps = {self.num_envs * self.num_steps}")
        if self.algo == "dqn" and self.buffer_size < self.batch_size:
            raise ValueError(f"invalid buffer_size {self.buffer_size}; valid: at least batch_size ({self.batch_size})")
        if not self.parts:
            refuse_unused(self, ("eval_episodes",), "with --parts")
            if self.algo == "dqn":
                refuse_unused(self, ("parts",), "with --algo ppo")
        if self.json is not None:
            check_output_file("json", self.json)


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(seconds of a first, warm-up call; median seconds of `repeats` further calls); `fn` ends in a host sync."""
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times[0], statistics.median(times[1:])


def env_seconds(opts: ThroughputOptions, steps: int) -> float:
    """Median seconds of `steps` vector steps of the training env with random actions."""
    env = ProcgenVecEnv(opts.env_id, opts.num_envs, num_threads=opts.procgen_threads)
    env.reset()
    rng = np.random.default_rng(0)

    def run() -> None:
        for _ in range(steps):
            env.step(rng.integers(NUM_ACTIONS, size=opts.num_envs))

    try:
        return timed(run, opts.repeats)[1]
    finally:
        env.close()


def perf_fields(perf: PerformanceOptions, opts: ThroughputOptions) -> dict:
    """The speed flags and every model option of a training script's Args: the real loop builds the network its
    parts are timed on."""
    return dict(precision=perf.precision, channels_last=perf.channels_last, compile=perf.compile,
                torch_threads=opts.torch_threads, **flat_options(opts.model))


def warmup_and_steady(seconds: list[float]) -> tuple[float, float]:
    """(how much longer the first interval took than the steady ones, 0 if it was not slower; the median of the
    others): a first interval faster than the steady median is noise, not a negative warm-up."""
    steady = statistics.median(seconds[1:])
    return max(0.0, seconds[0] - steady), steady


def loop_times(run_dir: Path, steps_per_row: int) -> tuple[float, float]:
    """(warm-up seconds, median steady seconds per interval) of a run's logged intervals."""
    rows = [json.loads(line) for line in RunDir.at(run_dir).metrics.read_text().splitlines()]
    return warmup_and_steady([steps_per_row / row["charts/SPS"] for row in rows if "charts/SPS" in row])


def ppo_args(opts: ThroughputOptions, perf: PerformanceOptions, output_dir: str) -> ppo_training.Args:
    """ppo_training's Args for the benchmark's shape: 1 + --iterations iterations, no evaluation, W&B off."""
    batch_size = opts.num_envs * opts.num_steps
    return from_flat(ppo_training.Args, env_id=opts.env_id, num_envs=opts.num_envs, num_steps=opts.num_steps,
                     num_minibatches=opts.num_minibatches, update_epochs=opts.update_epochs,
                     total_timesteps=batch_size * (1 + opts.iterations), num_eval_episodes=0,
                     num_final_eval_episodes=0, eval_every_fraction=1.0, wandb_mode="disabled", progress_bar=False,
                     output_dir=output_dir, run_name="bench", procgen_threads=opts.procgen_threads, cuda=opts.cuda,
                     **perf_fields(perf, opts))


def ppo_loop(opts: ThroughputOptions, perf: PerformanceOptions, output_dir: str) -> dict:
    """Warm-up and steady seconds per iteration of ppo_training.main at the benchmark's shape."""
    ppo_training.main(ppo_args(opts, perf, output_dir))
    warmup, steady = loop_times(Path(output_dir) / "bench", opts.num_envs * opts.num_steps)
    return {"loop_warmup_s": warmup, "loop_s": steady}


def run_ppo(opts: ThroughputOptions, perf: PerformanceOptions, device: torch.device) -> dict:
    """Parts alone and the real loop of PPO; times in seconds per iteration (num_envs x num_steps env steps)."""
    batch_size = opts.num_envs * opts.num_steps
    if not opts.parts:
        with tempfile.TemporaryDirectory() as output_dir:
            return {"steps_per_unit": batch_size, **ppo_loop(opts, perf, output_dir)}
    result = {"steps_per_unit": batch_size, "env_s": env_seconds(opts, opts.num_steps)}
    torch.manual_seed(0)
    agent = prepare_agent(build_agent("ppo", opts.model, NUM_ACTIONS), perf, device)
    compile_agent(agent, perf, device)
    loss_fn = compiled(ppo_loss, perf, device)
    obs = torch.randint(0, 256, (opts.num_envs, *OBS_SHAPE), dtype=torch.uint8, device=device)

    def rollout() -> None:
        for _ in range(opts.num_steps):
            with torch.inference_mode():
                action = agent.get_action_and_value(obs)[0]
            action.cpu().numpy()

    result["inference_warmup_s"], result["inference_s"] = timed(rollout, opts.repeats)
    generator = torch.Generator(device="cpu").manual_seed(0)
    batch = {
        "obs": torch.randint(0, 256, (batch_size, *OBS_SHAPE), dtype=torch.uint8, generator=generator),
        "actions": torch.randint(0, NUM_ACTIONS, (batch_size,), generator=generator),
        "logprobs": -math.log(NUM_ACTIONS) + 0.01 * torch.randn(batch_size, generator=generator),
        "values": torch.randn(batch_size, generator=generator),
        "returns": torch.randn(batch_size, generator=generator),
        "advantages": torch.randn(batch_size, generator=generator),
    }
    batch = {key: value.to(device) for key, value in batch.items()}
    with tempfile.TemporaryDirectory() as output_dir:
        args = ppo_args(opts, perf, output_dir)
        optimizer = torch.optim.Adam(agent.parameters(), lr=ppo_training.base_learning_rate(args), eps=1e-5)
        result["update_warmup_s"], result["update_s"] = timed(
            lambda: ppo_training.update(agent, optimizer, loss_fn, batch, args).tolist(), opts.repeats)
        if opts.eval_episodes:
            evaluation = evaluate_spec(agent_policy(agent, device, GREEDY["ppo"]), opts.env_id, "easy",
                                        BENCHMARK_EVAL, num_episodes=opts.eval_episodes, num_envs=opts.num_envs,
                                        seed=1, num_threads=opts.procgen_threads)
            result["eval_episodes_per_s"] = evaluation.episodes_per_second
        result.update(ppo_loop(opts, perf, output_dir))
    return result


def run_plain(opts: ThroughputOptions, device: torch.device) -> dict:
    """The plain PPO loop (benchmark_utils.plain_ppo) on the same network, NCHW float32: seconds per iteration."""
    args = ppo_args(opts, PerformanceOptions(channels_last=False), output_dir=".")
    result = {"steps_per_unit": opts.num_envs * opts.num_steps}
    if opts.parts:
        result["env_s"] = env_seconds(opts, opts.num_steps)
    torch.manual_seed(0)
    agent = build_agent("ppo", opts.model, NUM_ACTIONS).to(device)
    envs = ProcgenVecEnv(opts.env_id, opts.num_envs, num_threads=opts.procgen_threads)
    try:
        seconds = plain_ppo_seconds(agent, envs, opts.num_steps, 1 + opts.iterations, args.num_minibatches,
                                    args.update_epochs, ppo_training.base_learning_rate(args), args.gamma,
                                    args.gae_lambda, args.clip_coef, args.ent_coef, args.vf_coef, args.max_grad_norm)
    finally:
        envs.close()
    result["loop_warmup_s"], result["loop_s"] = warmup_and_steady(seconds)
    return result


def dqn_args(opts: ThroughputOptions, perf: PerformanceOptions) -> dqn_training.Args:
    """dqn_training's Args for the benchmark's shape: 1 + --iterations logged rows, greedy from the start."""
    return from_flat(dqn_training.Args, env_id=opts.env_id, num_envs=opts.num_envs, batch_size=opts.batch_size,
                     buffer_size=opts.buffer_size, learning_starts=0, start_e=0.0, end_e=0.0,
                     log_every=opts.num_steps, wandb_mode="disabled", progress_bar=False, num_eval_episodes=0,
                     num_final_eval_episodes=0, eval_every_fraction=1.0, procgen_threads=opts.procgen_threads,
                     cuda=opts.cuda, total_timesteps=opts.num_envs * opts.num_steps * (1 + opts.iterations),
                     **perf_fields(perf, opts))


def run_dqn(opts: ThroughputOptions, perf: PerformanceOptions, device: torch.device) -> dict:
    """Parts alone and the real loop of DQN; times in seconds per vector step (num_envs env steps)."""
    args = dqn_args(opts, perf)
    result = {"steps_per_unit": opts.num_envs, "env_s": env_seconds(opts, opts.num_steps) / opts.num_steps}
    torch.manual_seed(0)
    q_network = prepare_agent(build_agent("dqn", opts.model, NUM_ACTIONS), perf, device)
    target_network = copy.deepcopy(q_network).requires_grad_(False)
    compile_agent(q_network, perf, device)
    compile_agent(target_network, perf, device)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (8, opts.num_envs, *OBS_SHAPE), dtype=np.uint8)
    memory = ReplayMemory(opts.buffer_size, opts.num_envs, OBS_SHAPE, args.n_step, args.gamma, args.replay_mode,
                          args.prioritized, args.alpha, args.beta, device=device, seed=0)
    step = 0

    def add() -> None:
        nonlocal step
        memory.add(frames[step % 8], rng.integers(NUM_ACTIONS, size=opts.num_envs),
                   rng.normal(size=opts.num_envs).astype(np.float32), rng.random(opts.num_envs) < 0.01,
                   frames[(step + 1) % 8])
        step += 1

    while len(memory) < min(opts.buffer_size, 4 * opts.batch_size):
        add()
    result["add_s"] = timed(add, opts.repeats * 8)[1]
    result["inference_warmup_s"], result["inference_s"] = timed(
        lambda: dqn_training.act(q_network, frames[0], 0.0, args, device), opts.repeats * 8)
    optimizer = torch.optim.Adam(q_network.parameters(), lr=1e-4, eps=1e-5)
    result["update_warmup_s"], result["update_s"] = timed(
        lambda: dqn_training.train_step(q_network, target_network, optimizer, memory, args).tolist(), opts.repeats * 4)
    result["update_s"] *= args.train_frequency
    if opts.eval_episodes:
        evaluation = evaluate_spec(agent_policy(q_network, device, GREEDY["dqn"]), opts.env_id, "easy", BENCHMARK_EVAL,
                                    num_episodes=opts.eval_episodes, num_envs=opts.num_envs, seed=1,
                                    num_threads=opts.procgen_threads)
        result["eval_episodes_per_s"] = evaluation.episodes_per_second
    with tempfile.TemporaryDirectory() as output_dir:
        dqn_training.main(replace_flat(args, output_dir=output_dir, run_name="bench"))
        warmup, interval = loop_times(Path(output_dir) / "bench", opts.num_envs * opts.num_steps)
        result["loop_warmup_s"], result["loop_s"] = warmup, interval / opts.num_steps
    return result


def run_child(opts: ThroughputOptions) -> None:
    """Measure one variant in this process and write its results as JSON to --result."""
    device = torch.device("cuda" if opts.cuda and torch.cuda.is_available() else "cpu")
    if opts.child == PLAIN:  # torch as it comes: only the thread count is set
        if opts.torch_threads is not None:
            torch.set_num_threads(opts.torch_threads)
        result = run_plain(opts, device)
    else:
        perf = dataclasses.replace(parse_variant(opts.child), torch_threads=opts.torch_threads)
        configure_torch(perf, device)
        result = (run_ppo if opts.algo == "ppo" else run_dqn)(opts, perf, device)
    result["peak_mib"] = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
                          else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    result["torch_threads"] = torch.get_num_threads()
    result["openmp"] = {name: USER_OPENMP_ENV[name] or "unset" for name in OPENMP_VARIABLES}  # as torch loaded them
    Path(opts.result).write_text(json.dumps(result))


def parts_seconds(r: dict) -> float:
    return r["env_s"] + r["inference_s"] + r["update_s"] + r.get("add_s", 0.0)


def median_result(rounds: list[dict]) -> dict:
    """Each figure's median over the rounds of one variant; the overhead is the median of the rounds' overheads."""
    result = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]
              if isinstance(rounds[0][key], (int, float))}
    if "update_s" in result:  # the plain arm is timed as a whole loop only
        result["overhead"] = statistics.median(r["loop_s"] / parts_seconds(r) - 1 for r in rounds)
    return result


def round_table(runs: dict[str, list[dict]], loads: list[tuple[float, float]], baseline: str) -> str:
    """Markdown table of each round's steps/s ratio to the same round's baseline and the load around the round."""
    lines = ["| variant | " + " | ".join(f"round {i + 1}" for i in range(len(loads))) + " |",
             "|" + "---|" * (len(loads) + 1),
             "| load average before → after | " + " | ".join(f"{a:.2f} → {b:.2f}" for a, b in loads) + " |"]
    for name, rounds in runs.items():
        ratios = [base["loop_s"] / r["loop_s"] for r, base in zip(rounds, runs[baseline])]
        lines.append(f"| {name} | " + " | ".join(f"{ratio:.2f}" for ratio in ratios) + " |")
    return "\n".join(lines)


def describe_arm(result: dict) -> str:
    """What an arm ran with: torch threads and the OpenMP variables of its process."""
    return f"{result['torch_threads']} torch threads, " + ", ".join(f"{k}={v}" for k, v in result["openmp"].items())


def table(results: dict[str, dict], algo: str) -> str:
    """Markdown table of steps/s, the ratio to the baseline, the breakdown, overhead, warm-up and memory."""
    unit = "iteration" if algo == "ppo" else "vector step"
    baseline = BASELINES[algo]
    header = ["variant", "loop steps/s", f"× {baseline}", "env s", "inference s", "update s"]
    header += ["add s"] if algo == "dqn" else []
    header += ["parts steps/s", "overhead", "warm-up s", "peak MiB", "eval episodes/s"]
    lines = [f"seconds per {unit}; steps/s = env steps per second", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    base = results[baseline]["steps_per_unit"] / results[baseline]["loop_s"]

    def figure(r: dict, key: str, spec: str) -> str:
        return format(r[key], spec) if key in r else "-"

    for name, r in results.items():
        sps = r["steps_per_unit"] / r["loop_s"]
        parts = "update_s" in r
        row = [name, f"{sps:,.1f}", f"{sps / base:.2f}", figure(r, "env_s", ".3g"), figure(r, "inference_s", ".3g"),
               figure(r, "update_s", ".3g")]
        row += [figure(r, "add_s", ".3g")] if algo == "dqn" else []
        row += [f"{r['steps_per_unit'] / parts_seconds(r):,.1f}" if parts else "-", figure(r, "overhead", "+.1%"),
                f"{r['loop_warmup_s']:.1f}", f"{r['peak_mib']:,.0f}", figure(r, "eval_episodes_per_s", ".2f")]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: the exit status (0, or 2 after a one-line error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_command(ThroughputOptions, lambda opts: run_child(opts) if opts.child else measure(opts, argv), argv,
                       description=__doc__)


def child_env(name: str) -> dict[str, str]:
    """The environment of a variant's process: the user's OpenMP variables (importing ppo_training may have set
    some in this process), plus, except for the plain arm, what the training scripts would set on starting now."""
    env = {key: value for key, value in os.environ.items() if key not in OPENMP_VARIABLES}
    env.update({key: value for key, value in USER_OPENMP_ENV.items() if value is not None})
    if name != PLAIN:
        env.update(current_wait_policy().env)
    return {**env, "WANDB_SILENT": "true"}


def measure(opts: ThroughputOptions, argv: list[str]) -> dict[str, dict]:
    """Measure every variant in fresh processes, interleaved over the rounds; print and return the medians."""
    baseline = BASELINES[opts.algo]
    variants = [baseline] + [v for v in opts.variants.split(",") if v and v != baseline]
    device = torch.device("cuda" if opts.cuda and torch.cuda.is_available() else "cpu")
    if opts.torch_threads is not None:
        torch.set_num_threads(opts.torch_threads)
    print(f"device: {describe_device(device)}; torch {torch.__version__}")
    if device.type == "cpu" and not cpu_features()["amx"]:
        print(f"this CPU has no AMX: the bf16 target (>= 2.9x {baseline}) assumes its matrix units (docs/speed.md)")
    print(f"command: python -m benchmark_utils.throughput {' '.join(argv)}")
    runs: dict[str, list[dict]] = {ALIASES.get(name, name): [] for name in variants}
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(opts.rounds):  # interleaved, so that a machine's drift hits every variant alike
            load_before = os.getloadavg()[0]
            for name in variants:
                result_path = Path(tmp) / f"{name}.json"
                child_argv = [*argv, "--child", name, "--result", str(result_path)]
                proc = subprocess.run([sys.executable, "-m", "benchmark_utils.throughput", *child_argv],
                                      env=child_env(name))
                if proc.returncode != 0:
                    raise SystemExit(f"variant {name} failed with exit status {proc.returncode}")
                result = json.loads(result_path.read_text())
                runs[ALIASES.get(name, name)].append(result)
                print(f"round {round_index + 1} {name}: {json.dumps(result)}", flush=True)
            loads.append((load_before, os.getloadavg()[0]))
    for name, rounds in runs.items():
        arm = "the anchor, torch's and the OS's defaults" if name == PLAIN else "as the training scripts run"
        print(f"{name} ({arm}): {describe_arm(rounds[0])}")
    results = {name: median_result(rounds) for name, rounds in runs.items()}
    print(f"medians of {opts.rounds} interleaved round(s)")
    print(table(results, opts.algo))
    print(f"per round: steps/s as a multiple of the same round's {baseline}; 1-minute load average")
    print(round_table(runs, loads, baseline))
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    sys.exit(main())
