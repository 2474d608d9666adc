"""Synthetic run directories with known scores, written as the training scripts write them (plot_utils' tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from impoola.envs.games import NORMALIZATION

REPS = 100
GAMES = ("bigfish", "coinrun", "starpilot")
SEEDS = (1, 2, 3)
MODELS = {"impoola_s1": ("impoola", 1, 0.5), "impala_s1": ("impala", 1, 0.3)}  # name: encoder, scale, final base
TOTAL = 1000
EVAL_STEPS = [100 * k for k in range(1, 11)]
PARAMS = {"impoola_s1": 110_160, "impala_s1": 626_256}


def known_score(model: str, game: str, seed: int, step: int) -> float:
    """Known normalized test score: rises linearly in the step to base + 0.1·game index + 0.01·seed."""
    final = MODELS[model][2] + 0.1 * GAMES.index(game) + 0.01 * seed
    return final * step / TOTAL


def raw_return(game: str, normalized: float) -> float:
    """The raw return with this normalized score in easy mode (package constants)."""
    r_min, r_max = NORMALIZATION["easy"][game]
    return r_min + normalized * (r_max - r_min)


def write_run(root: Path, model: str, game: str, seed: int, log_normalized: bool = True,
              steps: list[int] = EVAL_STEPS, name: str | None = None) -> Path:
    """A run directory as the training scripts write it: config.json, metrics.jsonl (dense train rows, sparse evals)."""
    encoder, scale, _ = MODELS[model]
    name = name or f"{game}__ppo__{model}__s{seed}"
    run_dir = root / name
    run_dir.mkdir(parents=True)
    config = {"env_id": game, "distribution_mode": "easy", "track": "generalization", "seed": seed,
              "exp_name": "ppo", "encoder": encoder, "scale": scale, "model_name": model, "wandb_tags": ["synthetic"]}
    (run_dir / "config.json").write_text(json.dumps(config))
    records = [{"global_step": 0, "charts/total_network_params": PARAMS[model],
                "dormant_neurons/dormant_fraction": 1.0}]
    for step in range(50, steps[-1] + 1, 50):
        records.append({"global_step": step, "charts/episodic_return": 1.0, "losses/value_loss": 0.5})
        if step in steps:
            score = known_score(model, game, seed, step)
            record = {"global_step": step, "scores/eval_avg_return_test": raw_return(game, score),
                      "scores/eval_avg_return_train": raw_return(game, score + 0.1),
                      "dormant_neurons/dormant_fraction": 1.0 + step / TOTAL}
            if log_normalized:
                record |= {"scores/normalized_score_test": score, "scores/normalized_score_train": score + 0.1}
            records.append(record)
    text = "\n".join(json.dumps(r) for r in records) + '\n{"global_step": 99'  # torn last line
    (run_dir / "metrics.jsonl").write_text(text)
    (run_dir / "done").touch()
    return run_dir


def known_matrix(model: str, step: int = TOTAL) -> np.ndarray:
    """runs x games matrix of the known scores at `step`."""
    return np.array([[known_score(model, g, s, step) for g in GAMES] for s in SEEDS])
