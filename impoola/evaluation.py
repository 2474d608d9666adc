"""Policy evaluation on vectorized Procgen envs with episodes allocated equally to the envs up front."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from impoola.config import EnvOptions
from impoola.envs.games import normalized_score
from impoola.envs.procgen import make_track_env

Policy = Callable[[np.ndarray], np.ndarray]


@dataclass
class EvalResult:
    """Raw (un-normalized) returns and lengths of the evaluated episodes."""

    mean_return: float
    returns: np.ndarray
    lengths: np.ndarray
    num_episodes: int
    episodes_per_second: float


def episode_quotas(num_episodes: int, num_envs: int) -> np.ndarray:
    """Episodes per env: num_episodes // num_envs each, one more for the first num_episodes % num_envs envs."""
    quotas = np.full(num_envs, num_episodes // num_envs, np.int64)
    quotas[: num_episodes % num_envs] += 1
    return quotas


def evaluate(policy: Policy, env: Any, num_episodes: int) -> EvalResult:
    """Run `policy` (uint8 obs batch -> actions) from a reset until every env finished its episode quota."""
    # Env i contributes exactly its first quota[i] episodes; an env done with its quota keeps stepping but its
    # episodes are ignored, so envs that happen to draw short episodes are not over-represented.
    if num_episodes < 1:
        raise ValueError(f"invalid num_episodes {num_episodes!r}; must be >= 1")
    quotas = episode_quotas(num_episodes, env.num_envs)
    counts = np.zeros(env.num_envs, np.int64)
    returns, lengths = [], []
    start = time.perf_counter()
    obs, _ = env.reset()
    while np.any(counts < quotas):
        obs, _, terminated, truncated, info = env.step(np.asarray(policy(obs)))
        done = np.logical_or(terminated, truncated)
        keep = done & (counts < quotas)
        returns.append(info["episode_return"][keep])
        lengths.append(info["episode_length"][keep])
        counts += done
    elapsed = time.perf_counter() - start
    returns_arr = np.concatenate(returns).astype(np.float64)
    return EvalResult(
        mean_return=float(returns_arr.mean()),
        returns=returns_arr,
        lengths=np.concatenate(lengths).astype(np.int64),
        num_episodes=num_episodes,
        episodes_per_second=num_episodes / max(elapsed, 1e-9),
    )


def evaluate_track(
    policy: Policy,
    env_id: str,
    distribution_mode: str,
    track: str,
    split: str,
    num_episodes: int,
    num_envs: int,
    seed: int,
    noise_std: float = 0.0,
    num_threads: int | None = None,
) -> EvalResult:
    """Evaluate `policy` on a fresh env of the track's split (seeded with `seed`), then close the env."""
    env = make_track_env(env_id, distribution_mode, track, split, num_envs, seed, num_threads, noise_std)
    try:
        return evaluate(policy, env, num_episodes)
    finally:
        env.close()


def evaluate_scores(
    agent: torch.nn.Module,
    env: EnvOptions,
    seed: int,
    num_envs: int,
    device: torch.device,
    num_episodes: int,
    splits: tuple[str, ...],
    greedy: bool,
    video_path: Path | None = None,
) -> dict[str, float]:
    """Mean return, normalized score and episodes/s of a training script's agent on its track's splits.

    Returns are raw (no reward scaling); the agent runs with the run's speed options (channels-last, bf16).
    `env` is the run's environment options; `num_envs` the parallel evaluation envs. PPO samples from its policy
    (greedy=False), DQN acts greedily. The efficiency track trains
    on the full distribution, so its result is logged under both the train and the test keys. With
    `video_path`, one more episode of the first split is recorded there as an MP4.
    """
    from impoola.analysis.video import record_episodes
    from impoola.models.agents import agent_policy

    was_training = agent.training
    agent.eval()
    policy = agent_policy(agent, device, greedy)
    scores = {}
    for split in splits:
        result = evaluate_track(policy, env.env_id, env.distribution_mode, env.track, split, num_episodes,
                                num_envs, seed, num_threads=env.procgen_threads)
        scores[f"charts/eval_episodes_per_second_{split}"] = result.episodes_per_second
        for key in (("train", "test") if env.track == "efficiency" else (split,)):
            scores[f"scores/eval_avg_return_{key}"] = result.mean_return
            scores[f"scores/normalized_score_{key}"] = normalized_score(
                env.env_id, env.distribution_mode, result.mean_return)
    if video_path is not None:
        record_episodes(policy, env.env_id, video_path, 1, env.distribution_mode, env.track, splits[0], seed)
    agent.train(was_training)
    return scores
