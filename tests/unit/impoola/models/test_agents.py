"""The agents' evaluation policies on real Procgen frames: what `evaluate.py --policy` asks for is what acts."""

from __future__ import annotations

import numpy as np
import torch

from impoola.models.encoders import ModelOptions
from impoola.envs.games import NUM_ACTIONS
from impoola.envs.procgen import ProcgenVecEnv
from impoola.models.agents import agent_policy, build_agent

CPU = torch.device("cpu")


def frames(count: int) -> np.ndarray:
    env = ProcgenVecEnv("bigfish", count, "easy", seed=0, num_threads=1)
    try:
        return env.reset()[0]
    finally:
        env.close()


def test_dqn_sampling_acts_from_softmax_q_over_t_and_greedy_from_the_argmax():
    torch.manual_seed(0)
    agent = build_agent("dqn", ModelOptions(encoder="impoola", scale=0.5), NUM_ACTIONS).eval()
    obs = frames(64)
    argmax = agent(torch.from_numpy(obs)).argmax(-1).numpy()
    greedy = agent_policy(agent, CPU, greedy=True)
    assert np.array_equal(greedy(obs), argmax) and np.array_equal(greedy(obs), argmax)
    sampled = agent_policy(agent, CPU, greedy=False, temperature=1.0)(obs)
    assert sampled.shape == argmax.shape and (sampled != argmax).sum() > 32  # Q-values near equal: near uniform
    cold = agent_policy(agent, CPU, greedy=False, temperature=1e-6)(obs)  # T -> 0: the argmax again
    assert np.array_equal(cold, argmax)
