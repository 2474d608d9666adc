"""Policy evaluation on vectorized Procgen envs with episodes allocated equally to the envs up front.

What is evaluated, when and under which keys is decided in `impoola.evaluation.registry`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from impoola.envs.options import EnvOptions
from impoola.envs.games import normalized_score
from impoola.evaluation.registry import GREEDY, METRIC_KEYS, EvalSpec, Policy, training_evaluations
from impoola.evaluation.video import record_episodes
from impoola.models.agents import DQNAgent, PPOAgent, agent_policy


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


def evaluate_spec(
    policy: Policy,
    env_id: str,
    distribution_mode: str,
    spec: EvalSpec,
    *,
    num_episodes: int,
    num_envs: int,
    seed: int,
    num_threads: int | None = None,
) -> EvalResult:
    """Evaluate `policy` on a fresh env of `spec` (seeded with `seed`), then close the env."""
    env = spec.make_env(env_id, distribution_mode, num_envs=num_envs, seed=seed, num_threads=num_threads)
    try:
        return evaluate(policy, env, num_episodes)
    finally:
        env.close()


def evaluate_scores(
    agent: PPOAgent | DQNAgent,
    env: EnvOptions,
    seed: int,
    num_envs: int,
    device: torch.device,
    algo: str,
    phase: str,
    num_episodes: int,
    video_path: Path | None = None,
) -> dict[str, float]:
    """Mean return, normalized score and episodes/s of a training run's agent: the registry's `phase` evaluations.

    Returns are raw (no reward scaling); the agent runs with the run's speed options (channels-last, bf16) and
    the registry's policy for `algo` (PPO samples, DQN is greedy). `env` is the run's environment options, `seed`
    its seed and `num_envs` the parallel evaluation envs. Each result is logged under the keys of every split with
    the same levels (see `impoola.evaluation.registry`). With `video_path`, one more episode of the first evaluation's
    levels is recorded there as an MP4.
    """
    was_training = agent.training
    agent.eval()
    policy = agent_policy(agent, device, GREEDY[algo])
    evaluations = training_evaluations(algo, phase, env.track, env.distribution_mode)
    scores = {}
    for evaluation in evaluations:
        result = evaluate_spec(policy, env.env_id, env.distribution_mode, evaluation.spec,
                                num_episodes=num_episodes, num_envs=num_envs,
                                seed=seed, num_threads=env.procgen_threads)
        values = (result.mean_return, normalized_score(env.env_id, env.distribution_mode, result.mean_return),
                  result.episodes_per_second)
        for split in evaluation.keys:
            scores.update({key.format(split=split): value for key, value in zip(METRIC_KEYS, values)})
    if video_path is not None:
        record_episodes(policy, env.env_id, video_path, distribution_mode=env.distribution_mode,
                        spec=evaluations[0].spec, seed=seed)
    agent.train(was_training)
    return scores
