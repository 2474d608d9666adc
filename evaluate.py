"""Evaluate a saved agent under the train, test, fine-tuning and noise-robustness conditions.

    python evaluate.py runs/bigfish__ppo__impoola_s2__s1 --conditions train,test,finetuning,noise \\
        --num_episodes 2500 --num_envs 64 --noise_stds 5 15 30 --capture_video --out eval/

Conditions, on the levels of the run's own track (its training level split; generalization by default):
  train       the run's training levels ([0, 200) easy / [0, 500) hard on the generalization track)
  test        the run's test levels (the full distribution on the generalization and efficiency tracks)
  finetuning  the fine-tuning levels (100 levels from 201 easy / 501 hard)
  noise       the full distribution with Gaussian pixel noise of each --noise_stds value (rounded, added,
              clamped to [0, 255]; the reset frame is not noised), one result `noise_<std>` per value
Writes results.json and results.csv (raw mean return and normalized score per condition) to --out, and with
--capture_video one MP4 per condition (`videos/<condition>.mp4`, --video_episodes episodes of one env).
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import tyro

from impoola.run.checkpoint import load_agent, resolve_checkpoint
from impoola.cli import parse_choices, run_command
from impoola.envs.games import normalized_score
from impoola.evaluation.episodes import evaluate_spec
from impoola.evaluation.registry import EVAL_CONDITIONS, GREEDY, condition_specs
from impoola.evaluation.video import record_episodes
from impoola.models.agents import agent_kind, agent_policy
from impoola.options import Checked, Float, Int, Maybe
from impoola.performance import DeviceOptions
from impoola.run.rundir import check_output_dir, default_out_dir, run_label
from impoola.run.files import write_json

DEFAULT_NOISE_STDS = (5.0, 15.0, 30.0)
POLICY_GREEDY = {"release": None, "greedy": True, "sample": False}  # --policy -> evaluate_checkpoint's greedy
CSV_FIELDS = ("condition", "mean_return", "normalized_score", "std_return", "mean_length", "num_episodes",
              "start_level", "num_levels", "noise_std", "video")


def evaluate_checkpoint(
    checkpoint: str | Path,
    conditions: tuple[str, ...] = ("train", "test"),
    num_episodes: int = 100,
    num_envs: int = 16,
    noise_stds: tuple[float, ...] = DEFAULT_NOISE_STDS,
    seed: int | None = None,
    greedy: bool | None = None,
    capture_video: bool = False,
    video_episodes: int = 1,
    out: str | Path | None = None,
    device: str | torch.device = "cpu",
    num_threads: int | None = None,
) -> dict:
    """Evaluate a checkpoint (file or run directory) and write results.json/results.csv (and videos) to `out`.

    The envs are seeded with the run's seed unless `seed` is given; PPO samples its actions and DQN acts
    greedily (the release's evaluation) unless `greedy` is given. DQN with greedy=False samples from
    softmax(Q / T), T the run's --softmax_temperature (1 by default), recorded as `temperature`. Returns the
    content of results.json.
    """
    conditions = tuple(parse_choices("condition", ",".join(conditions), tuple(EVAL_CONDITIONS)))
    for name, value in (("num_episodes", num_episodes), ("num_envs", num_envs), ("video_episodes", video_episodes)):
        if value < 1:
            raise ValueError(f"invalid {name} {value!r}; valid: an integer >= 1")
    path = resolve_checkpoint(checkpoint)
    agent, args = load_agent(path, device)
    kind = agent_kind(agent)
    env_id, mode = args["env_id"], args["distribution_mode"]
    run_track = args.get("track", "generalization")
    seed = int(args.get("seed", 1)) if seed is None else seed
    greedy = GREEDY[kind] if greedy is None else greedy
    temperature = float(args.get("softmax_temperature", 1.0)) if kind == "dqn" and not greedy else None
    specs = condition_specs(list(conditions), run_track, tuple(noise_stds))
    out = check_output_dir("out", out if out is not None else default_out_dir(path, "eval"))
    torch.manual_seed(seed)
    policy = agent_policy(agent, torch.device(device), greedy, temperature or 1.0)
    results = {}
    for spec in specs:
        result = evaluate_spec(policy, env_id, mode, spec, num_episodes=num_episodes, num_envs=num_envs, seed=seed,
                                num_threads=num_threads)
        start_level, num_levels = spec.levels(mode)
        row = {
            "condition": spec.name,
            "mean_return": result.mean_return,
            "normalized_score": normalized_score(env_id, mode, result.mean_return),
            "std_return": float(np.std(result.returns)),
            "mean_length": float(np.mean(result.lengths)),
            "num_episodes": result.num_episodes,
            "start_level": start_level,
            "num_levels": num_levels,
            "noise_std": spec.noise_std,
            "video": None,
        }
        if capture_video:
            video = record_episodes(policy, env_id, out / "videos" / f"{spec.name}.mp4", video_episodes,
                                    distribution_mode=mode, spec=spec, seed=seed)
            row["video"] = str(video.path)
        results[spec.name] = row
        print(f"{spec.name}: mean return {row['mean_return']:.3f}, normalized score {row['normalized_score']:.3f} "
              f"({num_episodes} episodes)")
    summary = {
        "checkpoint": str(path), "run": run_label(path), "env_id": env_id, "distribution_mode": mode,
        "run_track": run_track, "agent_kind": kind, "encoder": args.get("encoder"), "scale": args.get("scale"),
        "seed": seed, "greedy": greedy, "temperature": temperature, "num_envs": num_envs, "conditions": results,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", summary)
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(results.values())
    return summary


@dataclass(frozen=True)
class EvaluateOptions(Checked):
    checkpoint: tyro.conf.Positional[str]
    """a ckpt_*.pt file or a run directory (its newest checkpoint)"""
    conditions: str = "train,test"
    """comma-separated conditions: train, test, finetuning, noise"""
    num_episodes: Int(1, 10**6) = 100
    """episodes per condition"""
    num_envs: Int(1, 4096) = 16
    """parallel envs (episodes split equally; more envs than episodes is fine)"""
    noise_stds: tuple[Float(0, 255, low_open=True), ...] = DEFAULT_NOISE_STDS
    """pixel-noise standard deviations of the noise condition"""
    seed: Maybe(Int(0, 2**32, high_open=True)) = None
    """env seed (default: the run's seed)"""
    policy: Literal["release", "greedy", "sample"] = "release"
    """how the agent acts: release (PPO samples, DQN takes the argmax, as the release evaluates), greedy (argmax),
    sample (PPO from its policy; DQN from softmax(Q / T), T the run's --softmax_temperature, 1 by default)"""
    capture_video: bool = False
    """write videos/<condition>.mp4 per condition"""
    video_episodes: Int(1, 100) = 1
    """episodes per video"""
    out: str | None = None
    """output directory (default: <run>/eval, or eval_<ckpt> beside a loose checkpoint)"""
    device: DeviceOptions = field(default_factory=DeviceOptions)

    def check(self) -> None:
        parse_choices("condition", self.conditions, tuple(EVAL_CONDITIONS))
        if self.out is not None:
            check_output_dir("out", self.out)


def evaluate_command(options: EvaluateOptions) -> None:
    """Run the evaluation the command line asked for."""
    evaluate_checkpoint(
        options.checkpoint, tuple(parse_choices("condition", options.conditions, tuple(EVAL_CONDITIONS))),
        options.num_episodes, options.num_envs, options.noise_stds, options.seed, POLICY_GREEDY[options.policy],
        options.capture_video, options.video_episodes, options.out, options.device.apply(), options.device.num_threads,
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: the exit status (0, or 2 after a one-line error)."""
    return run_command(EvaluateOptions, evaluate_command, argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
