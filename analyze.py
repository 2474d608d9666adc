"""Analyses of saved agents: network statistics, dormant neurons and translation sensitivity.

    python analyze.py runs/bigfish__ppo__impoola_s2__s1 --what dormant,translation,stats --out analysis/
    python analyze.py RUN_A RUN_B --what translation --out compare/   # side-by-side heatmaps

Per checkpoint (in --out, or --out/<run> when several are given):
  stats        stats.json: parameters, MACs (millions), parameter bytes; latency at batch 256 and 1 (--latency)
  dormant      dormant.json: dormant and zero percentages (tau --tau and 0) pooled over the measured layers and
               per layer, on observations of the run's training levels: --dormant_envs envs (default 64 for PPO,
               32 for DQN) stepped --dormant_steps times (default 4 / 1) with the agent's own policy; the batch is
               the release's (first 256 rows of the step-major rollout for PPO, the first 32 for DQN)
  translation  translation.csv (rows dy, columns dx), translation.png/.pdf heatmap, translation.json; with
               several checkpoints also translation_compare.png/.pdf. A full run (512 sprites x 7 backgrounds,
               k=8) is ~1M forward passes per agent; --num_sprites/--num_backgrounds/--max_shift shrink it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import tyro
from tqdm import tqdm

from impoola.analysis.dormant import DEFAULT_TAU, dormant_batch, dormant_metrics
from impoola.analysis.stats import measure_latency, network_stats
from impoola.analysis.translation import (
    BACKGROUNDS, DEFAULT_MAX_SHIFT, DEFAULT_NUM_SPRITES, build_sprite_images, plot_heatmaps,
    translation_sensitivity, write_matrix_csv,
)
from impoola.run.checkpoint import load_agent, resolve_checkpoint
from impoola.cli import parse_choices, run_command
from impoola.envs.procgen import ProcgenVecEnv, make_track_env
from impoola.evaluation.registry import GREEDY, Policy
from impoola.models.agents import agent_kind, agent_policy
from impoola.options import Checked, Float, Int, Maybe
from impoola.performance import DeviceOptions
from impoola.run.rundir import check_output_dir, default_out_dir, run_label
from impoola.run.files import write_json

ANALYSES = ("dormant", "translation", "stats")
DORMANT_ENVS = {"ppo": 64, "dqn": 32}
DORMANT_STEPS = {"ppo": 4, "dqn": 1}


def collect_observations(policy: Policy, env: ProcgenVecEnv, num_steps: int) -> np.ndarray:
    """(num_steps, num_envs, 3, 64, 64) observations the policy acted on, from a reset."""
    obs, _ = env.reset()
    frames = [obs]
    for _ in range(num_steps - 1):
        obs, *_ = env.step(np.asarray(policy(obs)))
        frames.append(obs)
    return np.stack(frames)


def rollout_dormant_metrics(
    agent: torch.nn.Module,
    args: dict,
    device: torch.device,
    tau: float = DEFAULT_TAU,
    num_envs: int | None = None,
    num_steps: int | None = None,
    num_threads: int | None = None,
) -> dict[str, float]:
    """Dormant metrics on the release's batch from a short rollout on the run's training levels."""
    kind = agent_kind(agent)
    num_envs = DORMANT_ENVS[kind] if num_envs is None else num_envs
    num_steps = DORMANT_STEPS[kind] if num_steps is None else num_steps
    if num_envs < 1 or num_steps < 1:
        raise ValueError(f"invalid dormant_envs {num_envs!r} / dormant_steps {num_steps!r}; valid: integers >= 1")
    seed = int(args.get("seed", 1))
    env = make_track_env(args["env_id"], args["distribution_mode"], args.get("track", "generalization"), "train",
                         num_envs, seed, num_threads=num_threads)
    torch.manual_seed(seed)
    try:
        obs = collect_observations(agent_policy(agent, device, greedy=GREEDY[kind]), env, num_steps)
    finally:
        env.close()
    return dormant_metrics(agent, dormant_batch(kind, torch.from_numpy(obs).to(device)), tau)


def analyze_checkpoint(
    checkpoint: str | Path,
    what: tuple[str, ...] = ANALYSES,
    out: str | Path | None = None,
    device: str | torch.device = "cpu",
    latency: bool = True,
    latency_repeats: int = 20,
    tau: float = DEFAULT_TAU,
    dormant_envs: int | None = None,
    dormant_steps: int | None = None,
    num_sprites: int = DEFAULT_NUM_SPRITES,
    num_backgrounds: int = len(BACKGROUNDS),
    max_shift: int = DEFAULT_MAX_SHIFT,
    batch_size: int = 256,
    image_seed: int = 0,
    buggy_log_probs: bool = False,
    vmax: float = 2.0,
    num_threads: int | None = None,
) -> dict:
    """Run the chosen analyses on one checkpoint (file or run directory), write their files to `out`, return them."""
    what = tuple(parse_choices("analysis", ",".join(what), ANALYSES))
    path = resolve_checkpoint(checkpoint)
    device = torch.device(device)
    agent, args = load_agent(path, device)
    out = check_output_dir("out", out if out is not None else default_out_dir(path, "analysis"))
    out.mkdir(parents=True, exist_ok=True)
    label = run_label(path)
    results: dict = {"checkpoint": str(path), "run": label}
    if "stats" in what:
        stats = network_stats(agent, device)
        if latency:
            stats |= measure_latency(agent, device, repeats=latency_repeats)
        write_json(out / "stats.json", {**results, "device": str(device), **stats})
        results["stats"] = stats
    if "dormant" in what:
        dormant = rollout_dormant_metrics(agent, args, device, tau, dormant_envs, dormant_steps, num_threads)
        write_json(out / "dormant.json", {**results, "tau": tau, **dormant})
        results["dormant"] = dormant
    if "translation" in what:
        images = build_sprite_images(num_sprites, num_backgrounds, image_seed)
        size = 2 * max_shift + 1
        with tqdm(total=size * size, desc=f"translation {label}", leave=False) as bar:
            matrix = translation_sensitivity(agent, images, max_shift, batch_size, buggy_log_probs, bar.update)
        write_matrix_csv(matrix, out / "translation.csv")
        scale = vmax if not buggy_log_probs else max(vmax, float(matrix.max()))
        plot_heatmaps({label: matrix}, out / "translation", vmax=scale)
        summary = {
            "mean_nonzero_shift": float((matrix.sum() - matrix[max_shift, max_shift]) / max(size * size - 1, 1)),
            "max": float(matrix.max()), "buggy_log_probs": buggy_log_probs, "num_images": images.num_images,
            "num_sprites": num_sprites, "num_backgrounds": num_backgrounds, "max_shift": max_shift,
            "image_seed": image_seed, "env_id": args["env_id"],
        }
        write_json(out / "translation.json", {**results, **summary})
        results["translation"] = {**summary, "matrix": matrix.tolist()}
    return results


@dataclass(frozen=True)
class AnalyzeOptions(Checked):
    checkpoints: tyro.conf.Positional[tuple[str, ...]]
    """ckpt_*.pt files or run directories (their newest checkpoint)"""
    what: str = ",".join(ANALYSES)
    """comma-separated: dormant, translation, stats"""
    out: str | None = None
    """output directory (default: <run>/analysis, or analysis_<ckpt> beside a loose checkpoint)"""
    latency: bool = True
    """measure inference latency (stats)"""
    latency_repeats: Int(1, 10**6) = 20
    """timed forward passes per batch size"""
    tau: Float(0, 1) = DEFAULT_TAU
    """dormant threshold"""
    dormant_envs: Maybe(Int(1, 4096)) = None
    """rollout envs (default 64 PPO, 32 DQN)"""
    dormant_steps: Maybe(Int(1, 10**5)) = None
    """rollout steps (default 4 PPO, 1 DQN)"""
    num_sprites: Int(1, 10**6) = DEFAULT_NUM_SPRITES
    """sprite placements"""
    num_backgrounds: Int(1, len(BACKGROUNDS)) = len(BACKGROUNDS)
    """backgrounds"""
    max_shift: Int(0, 31) = DEFAULT_MAX_SHIFT
    """k: shifts in [-k, k]^2"""
    batch_size: Int(1, 2**16) = 256
    """images per forward pass"""
    image_seed: Int(0, 2**32, high_open=True) = 0
    """seed of the sprite placements"""
    buggy_log_probs: bool = False
    """the release's buggy score (probabilities vs log-probabilities), for comparison only"""
    vmax: Float(0, low_open=True) = 2.0
    """upper end of the heatmap colour scale"""
    device: DeviceOptions = field(default_factory=DeviceOptions)

    def check(self) -> None:
        parse_choices("analysis", self.what, ANALYSES)
        if len(self.checkpoints) > 1 and self.out is None:
            raise ValueError("missing --out; valid: an output directory when several checkpoints are given")
        if self.out is not None:
            check_output_dir("out", self.out)


def analyze_command(options: AnalyzeOptions) -> None:
    """Run the analyses the command line asked for."""
    what = tuple(parse_choices("analysis", options.what, ANALYSES))
    device = options.device.apply()
    paths = [resolve_checkpoint(p) for p in options.checkpoints]
    several = len(paths) > 1
    out_root = Path(options.out) if options.out is not None else None
    matrices = {}
    for path in paths:
        out = out_root / run_label(path) if several else out_root
        results = analyze_checkpoint(
            path, what, out, device, options.latency, options.latency_repeats, options.tau, options.dormant_envs,
            options.dormant_steps, options.num_sprites, options.num_backgrounds, options.max_shift,
            options.batch_size, options.image_seed, options.buggy_log_probs, options.vmax, options.device.num_threads,
        )
        print(format_summary(results))
        if "translation" in results:
            matrices[results["run"]] = np.array(results["translation"]["matrix"])
    if several and matrices:
        vmax = options.vmax if not options.buggy_log_probs else max(
            options.vmax, max(m.max() for m in matrices.values()))
        plot_heatmaps(matrices, out_root / "translation_compare", vmax=vmax)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: the exit status (0, or 2 after a one-line error)."""
    return run_command(AnalyzeOptions, analyze_command, argv, description=__doc__)


def format_summary(results: dict) -> str:
    """A few lines naming the headline numbers of each analysis."""
    lines = [f"{results['run']} ({results['checkpoint']})"]
    if "stats" in results:
        lines.append("  stats: " + ", ".join(f"{k.split('/')[-1]}={v:.6g}" for k, v in results["stats"].items()))
    if "dormant" in results:
        d = results["dormant"]
        lines.append(f"  dormant: {d['dormant_neurons/dormant_fraction']:.2f}% dormant, "
                     f"{d['dormant_neurons/zero_fraction']:.2f}% zero")
    if "translation" in results:
        t = results["translation"]
        lines.append(f"  translation: mean {t['mean_nonzero_shift']:.4g} over non-zero shifts, max {t['max']:.4g}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
