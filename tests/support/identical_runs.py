"""Tiny PPO runs that exercise every piece of resumable state, and bitwise comparisons of two runs (the
determinism and resume tests)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from impoola.run.checkpoint import list_checkpoints, load_checkpoint
from ppo_training import main
from support.runs import tiny_ppo_args

# 4 iterations of 2 envs x 16 steps, an evaluation after iteration 2, pruning from iteration 1 to 3, a checkpoint
# after every iteration: every piece of state a resume has to restore changes along the run. Bossfight's
# episodes (about 20 steps) keep evaluations short and cross iteration boundaries.
CONFIG = {"env_id": "bossfight", "total_timesteps": 128, "checkpoint_every": 1, "pruning": True,
          "pruning_start": 0.25, "pruning_end": 0.75, "cuda": False}
WALL_CLOCK_KEYS = ("charts/SPS", "charts/elapsed_train_time")


def is_wall_clock(key: str) -> bool:
    """Metrics that measure time (steps/s, episodes/s, elapsed time, latency) differ between identical runs."""
    return key in WALL_CLOCK_KEYS or "latency" in key or "per_second" in key


def metric_rows(run_dir: Path) -> list[dict]:
    """metrics.jsonl without its wall-clock metrics."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if not is_wall_clock(k)} for row in rows]


def final_state(run_dir: Path) -> dict:
    """The newest checkpoint's weights, optimizer state and RNG states."""
    payload = load_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])
    return {"agent": payload["agent"], "optimizer": payload["optimizer"]["state"], "rng": payload["rng"]["torch"],
            "global_step": payload["global_step"]}


def assert_same_state(a: dict, b: dict) -> None:
    """Bitwise equality of two final_state() results."""
    assert a["global_step"] == b["global_step"]
    assert a["agent"].keys() == b["agent"].keys()
    for name, tensor in a["agent"].items():
        assert torch.equal(tensor, b["agent"][name]), name
    assert a["optimizer"].keys() == b["optimizer"].keys()
    for index, state in a["optimizer"].items():
        for key, value in state.items():
            assert torch.equal(value, b["optimizer"][index][key]), (index, key)
    assert torch.equal(a["rng"], b["rng"])


def run(output_dir: Path, run_name: str, **overrides) -> Path:
    """One tiny CONFIG run in this process; its run directory."""
    main(tiny_ppo_args(output_dir, run_name=run_name, **{**CONFIG, **overrides}))
    return output_dir / run_name
