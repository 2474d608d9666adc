"""Validate a GPU machine in one command: CUDA tests, speed at the paper's configs, shared-GPU throughput, losses.

    python -m benchmark_utils.gpu_check                      # about 8 minutes on one GPU (--budget_s)

In order, each stage within what is left of --budget_s (a stage that no longer fits is reported as skipped):
1. the tests marked `cuda` (python -m pytest -m cuda);
2. float32 losses of one PPO minibatch of real Procgen frames, on the GPU and on the CPU, agree within a stated
   tolerance (loss, its parts and the gradient norm), once with TF32 off and once with torch's defaults (cuDNN
   convolutions in TF32), as float32 training runs;
3. speed, each in a fresh process through benchmark_utils.throughput's measurement (the real training loop's
   steady steps/s after a warm-up interval, the parts alone, peak memory of the process, evaluation episodes/s):
   PPO at the paper's config (64 envs x 256 steps, 8 minibatches, 3 epochs) for Impoola τ=2 and Impala τ=2, DQN
   at its paper config (128 envs, batch 512; the replay memory is filled with a few batches before the update is
   timed, and the loop's first interval, which fills it, is not counted); float32 first, then 4 PPO runs at once
   on the GPU through the launcher (aggregate steps/s), then bf16 and --compile.
Writes OUTPUT_DIR/gpu_check.json and OUTPUT_DIR/gpu_check.md (a Markdown table for docs/speed.md).
Exit status: 0 when every stage passed, 1 when one failed or did not fit the budget, 2 on bad input or, with
--require_gpu, without CUDA. Without CUDA it prints one line and exits 0. `--device cpu --tiny` runs every stage
on the CPU at a tiny config: it exists for the tests.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from benchmark_utils.benchmark import detect_gpus
from impoola.cli import run_command
from impoola.options import Checked, Float
from impoola.ppo import PPOLoss, ppo_loss
from impoola.run.rundir import RunDir, check_output_dir

REPO = Path(__file__).resolve().parents[1]
SCHEMA_VERSION = 1
PPO_TARGET_SPS = 15_000  # one run of PPO Impoola τ=2 at the paper's config on one H100/H200-class GPU
AGGREGATE_TARGET_SPS = 40_000  # several such runs sharing that GPU
COMPARED_PARTS = (*(part.name for part in fields(PPOLoss) if part.name != "clipfrac"), "grad_norm")
"""the PPOLoss parts compared, and the gradient's global norm; not clipfrac, a count that a last-bit difference at
the clip boundary changes by 1/batch"""
TOLERANCES = {"tf32_off": (1e-3, 1e-4), "torch_defaults": (1e-2, 1e-3)}  # (rtol, atol) per setting
"""|gpu - cpu| <= atol + rtol * |cpu| for every loss part: float32 convolutions and reductions in another order
differ in the last bits (tf32_off); TF32 convolutions keep 10 mantissa bits (torch_defaults)."""
SETTING_NAMES = {"tf32_off": "float32, TF32 off", "torch_defaults": "float32, torch's defaults (cuDNN TF32)"}
MODEL_NAMES = {"impoola": "Impoola", "impala": "Impala"}
VARIANT_NAMES = {"fp32_cl": "float32", "bf16_cl": "bf16", "compile": "float32 + --compile"}
MIN_STAGE_S = 15.0  # a stage starts only with at least this much of the budget left


@dataclass(frozen=True)
class Config:
    """The sizes the check runs at: the paper's, or a tiny one for the tests."""

    ppo_envs: int
    ppo_steps: int
    ppo_minibatches: int
    ppo_epochs: int
    dqn_envs: int
    dqn_batch: int
    dqn_buffer: int
    dqn_steps: int
    """DQN vector steps per timed interval"""
    iterations: int
    """timed intervals after the warm-up one"""
    eval_episodes: int
    launcher_runs: int
    loss_batch: int
    ppo_models: tuple[tuple[str, float], ...]
    ppo_variants: tuple[str, ...]
    dqn_variants: tuple[str, ...]
    threads: int | None = None
    """torch and Procgen threads of each measuring process (default: their own)"""


PAPER = Config(ppo_envs=64, ppo_steps=256, ppo_minibatches=8, ppo_epochs=3, dqn_envs=128, dqn_batch=512,
               dqn_buffer=65_536, dqn_steps=32, iterations=2, eval_episodes=64, launcher_runs=4, loss_batch=2048,
               ppo_models=(("impoola", 2.0), ("impala", 2.0)), ppo_variants=("fp32_cl", "bf16_cl", "compile"),
               dqn_variants=("fp32_cl", "bf16_cl"))
TINY = Config(ppo_envs=2, ppo_steps=8, ppo_minibatches=2, ppo_epochs=1, dqn_envs=2, dqn_batch=8, dqn_buffer=64,
              dqn_steps=4, iterations=1, eval_episodes=1, launcher_runs=2, loss_batch=16,
              ppo_models=(("impoola", 0.25),), ppo_variants=("fp32_cl",), dqn_variants=("fp32_cl",), threads=1)


def model_label(encoder: str, scale: float) -> str:
    return f"{MODEL_NAMES[encoder]} τ={scale:g}"


def loss_parts(agent: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    """PPO's loss, its parts and the gradient's global norm on one minibatch, as float values."""
    agent.zero_grad(set_to_none=True)
    logits, value = agent(batch["obs"])
    out = ppo_loss(logits, value, batch["actions"], batch["logprobs"], batch["values"], batch["returns"],
                   batch["advantages"])
    out.loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(agent.parameters(), math.inf)
    parts = {key: getattr(out, key).item() for key in COMPARED_PARTS if key != "grad_norm"}
    return {**parts, "grad_norm": grad_norm.item()}


def compare_losses(reference: dict[str, float], other: dict[str, float], rtol: float, atol: float) -> dict:
    """Whether every part agrees, |other - reference| <= atol + rtol * |reference| (NaN never agrees)."""
    diffs = {key: abs(other[key] - reference[key]) for key in COMPARED_PARTS}
    outside = [key for key in COMPARED_PARTS if not diffs[key] <= atol + rtol * abs(reference[key])]
    return {"status": "failed" if outside else "passed", "rtol": rtol, "atol": atol, "outside": outside,
            "max_abs_diff": max(diffs.values()), "cpu": reference, "device": other}


def loss_batch(size: int, num_actions: int) -> dict[str, torch.Tensor]:
    """A minibatch of real Procgen frames (bigfish, random actions) with fixed random rollout data."""
    from impoola.envs.procgen import ProcgenVecEnv

    num_envs = min(size, 64)
    env = ProcgenVecEnv("bigfish", num_envs, num_threads=1)
    rng = np.random.default_rng(0)
    frames = [env.reset()[0]]
    try:
        while len(frames) * num_envs < size:
            frames.append(env.step(rng.integers(num_actions, size=num_envs))[0])
    finally:
        env.close()
    generator = torch.Generator().manual_seed(0)
    return {"obs": torch.from_numpy(np.concatenate(frames)[:size]),
            "actions": torch.randint(num_actions, (size,), generator=generator),
            "logprobs": -math.log(num_actions) + 0.3 * torch.randn(size, generator=generator),
            "values": torch.randn(size, generator=generator), "returns": torch.randn(size, generator=generator),
            "advantages": torch.randn(size, generator=generator)}


def check_losses(device: torch.device, config: Config) -> dict:
    """float32 losses of the first PPO model on one batch, on `device` against the CPU, per TF32 setting."""
    from impoola.models.encoders import ModelOptions
    from impoola.envs.games import NUM_ACTIONS
    from impoola.models.agents import build_agent
    from impoola.performance import PerformanceOptions, prepare_agent

    encoder, scale = config.ppo_models[0]
    torch.manual_seed(0)
    cpu_agent = prepare_agent(build_agent("ppo", ModelOptions(encoder=encoder, scale=scale), NUM_ACTIONS),
                              PerformanceOptions(), torch.device("cpu"))
    state = {key: value.clone() for key, value in cpu_agent.state_dict().items()}
    batch = loss_batch(config.loss_batch, NUM_ACTIONS)
    reference = loss_parts(cpu_agent, batch)
    device_agent = build_agent("ppo", ModelOptions(encoder=encoder, scale=scale), NUM_ACTIONS)
    device_agent.load_state_dict(state)
    device_agent = prepare_agent(device_agent, PerformanceOptions(), device)
    device_batch = {key: value.to(device) for key, value in batch.items()}
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    results = {}
    try:
        for setting, (rtol, atol) in TOLERANCES.items():
            off = setting == "tf32_off"
            torch.backends.cuda.matmul.allow_tf32 = False if off else saved[0]
            torch.backends.cudnn.allow_tf32 = False if off else saved[1]
            results[setting] = compare_losses(reference, loss_parts(device_agent, device_batch), rtol, atol)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    return {"status": "failed" if any(r["status"] == "failed" for r in results.values()) else "passed",
            "batch": config.loss_batch, "model": model_label(encoder, scale), "settings": results}


def pytest_counts(junit_xml: Path) -> dict[str, int]:
    """Passed, failed, errors and skipped tests of a pytest --junitxml report."""
    counts = {"tests": 0, "failed": 0, "errors": 0, "skipped": 0}
    for suite in ET.parse(junit_xml).getroot().iter("testsuite"):
        counts["tests"] += int(suite.get("tests", 0))
        counts["failed"] += int(suite.get("failures", 0))
        counts["errors"] += int(suite.get("errors", 0))
        counts["skipped"] += int(suite.get("skipped", 0))
    passed = counts["tests"] - counts["failed"] - counts["errors"] - counts["skipped"]
    return {"passed": passed, "failed": counts["failed"], "errors": counts["errors"], "skipped": counts["skipped"]}


def run_cuda_tests(paths: Sequence[str], timeout_s: float, workdir: Path) -> dict:
    """The tests marked `cuda` under `paths`, in a fresh pytest process."""
    junit = workdir / "cuda_tests.xml"
    command = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
               *paths]
    try:
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "error": f"timed out after {timeout_s:.0f} s"}
    result = {"exit_code": proc.returncode, **(pytest_counts(junit) if junit.exists() else {})}
    result["status"] = "passed" if proc.returncode == 0 else "failed"
    if proc.returncode != 0:
        result["output_tail"] = proc.stdout[-4000:] + proc.stderr[-2000:]
    return result


def throughput_argv(algo: str, encoder: str, scale: float, variant: str, config: Config, device: torch.device,
                    eval_episodes: int, result_path: Path) -> list[str]:
    """benchmark_utils.throughput's arguments that measure one (algorithm, model, variant) in its own process."""
    argv = ["--algo", algo, "--encoder", encoder, "--scale", f"{scale:g}", "--repeats", "1",
            "--iterations", str(config.iterations), "--eval_episodes", str(eval_episodes),
            "--child", variant, "--result", str(result_path)]
    if algo == "ppo":
        argv += ["--num_envs", str(config.ppo_envs), "--num_steps", str(config.ppo_steps),
                 "--num_minibatches", str(config.ppo_minibatches), "--update_epochs", str(config.ppo_epochs)]
    else:
        argv += ["--num_envs", str(config.dqn_envs), "--num_steps", str(config.dqn_steps),
                 "--batch_size", str(config.dqn_batch), "--buffer_size", str(config.dqn_buffer)]
    if config.threads is not None:
        argv += ["--torch_threads", str(config.threads), "--procgen_threads", str(config.threads)]
    return argv + ([] if device.type == "cuda" else ["--no-cuda"])


def measure_speed(algo: str, encoder: str, scale: float, variant: str, config: Config, device: torch.device,
                  eval_episodes: int, timeout_s: float, workdir: Path) -> dict:
    """One throughput measurement (benchmark_utils.throughput's child) as a row of the check."""
    result_path = workdir / f"{algo}_{encoder}_{scale:g}_{variant}.json"
    row = {"algo": algo, "model": model_label(encoder, scale), "variant": variant}
    command = [sys.executable, "-m", "benchmark_utils.throughput",
               *throughput_argv(algo, encoder, scale, variant, config, device, eval_episodes, result_path)]
    try:
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout_s,
                              env={**os.environ, "WANDB_SILENT": "true"})
    except subprocess.TimeoutExpired:
        return {**row, "status": "failed", "error": f"timed out after {timeout_s:.0f} s"}
    if proc.returncode != 0 or not result_path.exists():
        return {**row, "status": "failed", "error": (proc.stdout[-2000:] + proc.stderr[-4000:]).strip()}
    r = json.loads(result_path.read_text())
    row.update(status="passed", steps_per_s=r["steps_per_unit"] / r["loop_s"], warmup_s=r["loop_warmup_s"],
               env_s=r["env_s"], inference_s=r["inference_s"], update_s=r["update_s"], peak_mib=r["peak_mib"],
               seconds_per=("iteration" if algo == "ppo" else "vector step"))
    if "eval_episodes_per_s" in r:
        row["eval_episodes_per_s"] = r["eval_episodes_per_s"]
    return row


def steady_sps(metrics_jsonl: Path) -> float:
    """Median charts/SPS of a run's logged iterations after the first (the warm-up)."""
    rows = [json.loads(line) for line in metrics_jsonl.read_text().splitlines()]
    sps = [row["charts/SPS"] for row in rows if "charts/SPS" in row]
    return statistics.median(sps[1:])


def run_shared(config: Config, device: torch.device, timeout_s: float, workdir: Path) -> dict:
    """`launcher_runs` PPO runs of the first model (float32) at once through the launcher, all on the first GPU."""
    batch = config.ppo_envs * config.ppo_steps
    encoder, scale = config.ppo_models[0]
    command = [sys.executable, "ppo_training.py", "--encoder", encoder, "--scale", f"{scale:g}",
               "--num_envs", str(config.ppo_envs), "--num_steps", str(config.ppo_steps),
               "--num_minibatches", str(config.ppo_minibatches), "--update_epochs", str(config.ppo_epochs),
               "--total_timesteps", str(batch * (2 + config.iterations)),
               "--num_eval_episodes", "0", "--num_final_eval_episodes", "0", "--wandb_mode", "disabled",
               "--no-progress-bar"]
    seeds = [str(seed) for seed in range(1, config.launcher_runs + 1)]
    gpus = detect_gpus()[:1] if device.type == "cuda" else []
    output_dir = workdir / "shared_runs"
    launcher = [sys.executable, "-m", "benchmark_utils.benchmark", "--env_ids", "bigfish", "--seeds", *seeds,
                "--command", shlex.join(command), "--exp_name", "gpucheck", "--output_dir", str(output_dir),
                "--workers", str(config.launcher_runs), "--gpus", *gpus]
    start = time.perf_counter()
    try:
        proc = subprocess.run(launcher, cwd=REPO, capture_output=True, text=True, timeout=timeout_s,
                              env={**os.environ, "WANDB_SILENT": "true"})
    except subprocess.TimeoutExpired:
        return {"status": "failed", "error": f"timed out after {timeout_s:.0f} s"}
    wall_s = time.perf_counter() - start
    run_dirs = sorted(output_dir.glob("bigfish__gpucheck__*"))
    if proc.returncode != 0 or len(run_dirs) != config.launcher_runs:
        return {"status": "failed", "error": (proc.stdout[-3000:] + proc.stderr[-3000:]).strip()}
    per_run = [steady_sps(RunDir.at(run_dir).metrics) for run_dir in run_dirs]
    return {"status": "passed", "runs": config.launcher_runs, "model": model_label(encoder, scale),
            "variant": "fp32_cl", "steps_per_s": per_run, "aggregate_steps_per_s": sum(per_run),
            "wall_steps_per_s": config.launcher_runs * batch * (2 + config.iterations) / wall_s}


class Budget:
    """What is left of the check's time budget."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()


def run_stage(budget: Budget, measure: Callable[[float], dict]) -> dict:
    """`measure(seconds left)` if at least MIN_STAGE_S of the budget is left, else a skipped stage; an exception
    fails the stage (the check goes on to the next one)."""
    left = budget.left()
    if left < MIN_STAGE_S:
        return {"status": "skipped", "error": "did not fit the time budget (--budget_s)"}
    try:
        return measure(left)
    except Exception as exc:  # a broken GPU path is a finding of the check, not the end of it
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}


def fmt(value: float | None, digits: str = ",.0f") -> str:
    return "-" if value is None else format(value, digits)


def markdown_table(report: dict) -> str:
    """docs/speed.md's table: steps/s (PPO also × the target), parts alone, warm-up, peak memory, eval speed."""
    header = ("| " + report["device"] + " | steps/s | × target | env / inference / update alone (s) | warm-up s "
              "| peak MiB | eval episodes/s |")
    lines = [header, "|---|---:|---:|---|---:|---:|---:|"]
    for row in report["speed"]:
        name = f"{row['algo'].upper()} {row['model']} {VARIANT_NAMES.get(row['variant'], row['variant'])}"
        if row["status"] != "passed":
            lines.append(f"| {name} | {row['status']} | | | | | |")
            continue
        target = f"{row['steps_per_s'] / PPO_TARGET_SPS:.2f}" if row["algo"] == "ppo" else "-"
        parts = " / ".join(format(row[key], ".3g") for key in ("env_s", "inference_s", "update_s"))
        lines.append(f"| {name} | {fmt(row['steps_per_s'])} | {target} | {parts} | {row['warmup_s']:.1f} "
                     f"| {fmt(row['peak_mib'])} | {fmt(row.get('eval_episodes_per_s'), '.1f')} |")
    shared = report["launcher"]
    name = f"{report['config']['launcher_runs']} × PPO {shared.get('model', '')} float32 at once (launcher), aggregate"
    if shared["status"] == "passed":
        lines.append(f"| {name} | {fmt(shared['aggregate_steps_per_s'])} | "
                     f"{shared['aggregate_steps_per_s'] / AGGREGATE_TARGET_SPS:.2f} | | | | |")
    else:
        lines.append(f"| {name} | {shared['status']} | | | | | |")
    c = report["config"]
    notes = [f"PPO: {c['ppo_envs']} envs × {c['ppo_steps']} steps, {c['ppo_minibatches']} minibatches, "
             f"{c['ppo_epochs']} epochs (seconds per iteration); DQN: {c['dqn_envs']} envs, batch {c['dqn_batch']}, "
             f"replay {c['dqn_buffer']:,} (seconds per vector step). Targets: {PPO_TARGET_SPS:,} steps/s per PPO run, "
             f"{AGGREGATE_TARGET_SPS:,} aggregate. Peak MiB: the measuring process's peak "
             f"{'GPU memory (max_memory_allocated)' if report['cuda'] else 'resident memory'}."]
    losses = report["loss_agreement"]
    if losses["status"] in ("passed", "failed"):
        notes += [f"Losses, {SETTING_NAMES[key]}: {r['status']} (|Δ| ≤ {r['atol']:g} + {r['rtol']:g}·|cpu|, "
                  f"largest |Δ| {r['max_abs_diff']:.2g})" for key, r in losses["settings"].items()]
    else:
        notes.append(f"Losses: {losses['status']}")
    tests = report["tests"]
    notes.append("CUDA tests: " + (f"{tests['passed']} passed, {tests['failed']} failed, {tests['errors']} errors, "
                                   f"{tests['skipped']} skipped" if "passed" in tests else tests["status"]))
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {note}" for note in notes) + "\n"


@dataclass(frozen=True)
class GpuCheckOptions(Checked):
    """Where the report goes, the time budget and whether a machine without CUDA is an error."""

    output_dir: str = "runs/gpu_check"
    """where gpu_check.json and gpu_check.md go"""
    budget_s: Float(0, low_open=True) = 480.0
    """time budget in seconds (stages that no longer fit are skipped)"""
    require_gpu: bool = False
    """exit 2 instead of 0 without CUDA"""
    device: Literal["cuda", "cpu"] = "cuda"
    """internal: the device checked (cpu: every stage runs on the CPU, for this module's tests)"""
    tiny: bool = False
    """internal: tiny configs instead of the paper's (for this module's tests)"""
    tests: tuple[str, ...] = ("tests",)
    """internal: the test paths whose CUDA tests run"""

    def check(self) -> None:
        check_output_dir("output_dir", self.output_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: 0 passed (or no CUDA), 1 a stage failed, 2 bad input or no CUDA with --require_gpu."""
    return run_command(GpuCheckOptions, check_machine, argv, description=__doc__)


def check_machine(args: GpuCheckOptions) -> int:
    """Run every stage within the budget, write the report and return 0 if all passed, else 1."""
    if args.device == "cuda" and not torch.cuda.is_available():
        message = f"no CUDA: torch {torch.__version__} sees no CUDA GPU on this machine; nothing was checked"
        if args.require_gpu:
            raise ValueError(f"{message} (--require_gpu)")
        print(message)
        return 0
    from impoola.performance import describe_device

    device = torch.device(args.device)
    config = TINY if args.tiny else PAPER
    budget = Budget(args.budget_s)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report = {"schema": SCHEMA_VERSION, "device": describe_device(device), "cuda": device.type == "cuda",
              "torch": torch.__version__, "cuda_version": torch.version.cuda, "tiny": args.tiny,
              "budget_s": args.budget_s, "config": {key: value for key, value in vars(config).items()
                                                    if not key.endswith(("models", "variants"))},
              "targets": {"ppo_steps_per_s": PPO_TARGET_SPS, "aggregate_steps_per_s": AGGREGATE_TARGET_SPS}}
    print(f"gpu_check on {report['device']}, torch {torch.__version__}, budget {args.budget_s:.0f} s", flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)

        def speed(algo: str, encoder: str, scale: float, variant: str) -> dict:
            episodes = config.eval_episodes if variant == "fp32_cl" else 0
            row = run_stage(budget, lambda left: measure_speed(algo, encoder, scale, variant, config, device,
                                                               episodes, left, workdir))
            row = {"algo": algo, "model": model_label(encoder, scale), "variant": variant, **row}
            print(f"{algo} {row['model']} {variant}: {row['status']}"
                  + (f", {row['steps_per_s']:,.0f} steps/s" if "steps_per_s" in row else ""), flush=True)
            return row

        report["tests"] = run_stage(budget, lambda left: run_cuda_tests(args.tests, min(left, 240.0), workdir))
        print(f"cuda tests: {report['tests']['status']}", flush=True)
        report["loss_agreement"] = run_stage(budget, lambda left: check_losses(device, config))
        print(f"float32 losses {args.device} vs cpu: {report['loss_agreement']['status']}", flush=True)
        first, rest = config.ppo_variants[0], config.ppo_variants[1:]
        report["speed"] = [speed("ppo", encoder, scale, first) for encoder, scale in config.ppo_models]
        report["speed"] += [speed("dqn", *config.ppo_models[0], config.dqn_variants[0])]
        report["launcher"] = run_stage(budget, lambda left: run_shared(config, device, left, workdir))
        print(f"{config.launcher_runs} runs at once: {report['launcher']['status']}", flush=True)
        report["speed"] += [speed("ppo", encoder, scale, variant) for variant in rest
                            for encoder, scale in config.ppo_models]
        report["speed"] += [speed("dqn", *config.ppo_models[0], variant) for variant in config.dqn_variants[1:]]
    report["wall_s"] = time.perf_counter() - start
    stages = [report["tests"], report["loss_agreement"], report["launcher"], *report["speed"]]
    report["status"] = "passed" if all(stage["status"] == "passed" for stage in stages) else "failed"
    (output_dir / "gpu_check.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    table = markdown_table(report)
    (output_dir / "gpu_check.md").write_text(table)
    print(table)
    print(f"{report['status']} in {report['wall_s']:.0f} s; wrote {output_dir / 'gpu_check.json'} and "
          f"{output_dir / 'gpu_check.md'}")
    return 0 if report["status"] == "passed" else 1


if __name__ == "__main__":
    sys.exit(main())
