"""evaluate(): equal up-front episode allocation (on a fake env) and evaluate_spec() on real Procgen."""

import numpy as np
import pytest

from impoola.envs.games import NUM_ACTIONS
from impoola.evaluation.episodes import EvalResult, episode_quotas, evaluate, evaluate_spec
from impoola.evaluation.registry import EvalSpec


class FakeVecEnv:
    """Env i's episodes last lengths[i] steps; episode k of env i has return 1000*i + k."""

    def __init__(self, lengths):
        self.lengths = np.asarray(lengths)
        self.num_envs = len(lengths)
        self.closed = False
        self.seen_obs = []

    def _obs(self):
        return np.zeros((self.num_envs, 3, 64, 64), np.uint8)

    def reset(self):
        self.t = np.zeros(self.num_envs, np.int64)
        self.episode = np.zeros(self.num_envs, np.int64)
        return self._obs(), {}

    def step(self, actions):
        assert actions.shape == (self.num_envs,)
        self.t += 1
        done = self.t == self.lengths
        info = {
            "episode_return": np.where(done, 1000.0 * np.arange(self.num_envs) + self.episode, 0.0),
            "episode_length": np.where(done, self.t, 0),
        }
        self.episode += done
        self.t[done] = 0
        reward = np.full(self.num_envs, 123.0, np.float32)  # large raw rewards: evaluation must not touch them
        return self._obs(), reward, done, np.zeros(self.num_envs, bool), info

    def close(self):
        self.closed = True


def zero_policy(obs):
    """Always action 0."""
    assert obs.dtype == np.uint8 and obs.shape[1:] == (3, 64, 64)
    return np.zeros(len(obs), np.int64)


def by_env(result):
    """Episode ordinals per env decoded from the fake returns."""
    envs, ordinals = np.divmod(result.returns.astype(int), 1000)
    return {i: sorted(ordinals[envs == i].tolist()) for i in np.unique(envs)}


def test_quotas():
    assert episode_quotas(11, 3).tolist() == [4, 4, 3]
    assert episode_quotas(2, 4).tolist() == [1, 1, 0, 0]
    assert episode_quotas(8, 2).tolist() == [4, 4]


def test_short_episodes_are_not_over_represented():
    result = evaluate(zero_policy, FakeVecEnv([2, 50]), num_episodes=10)
    assert isinstance(result, EvalResult) and result.num_episodes == 10 and len(result.returns) == 10
    assert by_env(result) == {0: [0, 1, 2, 3, 4], 1: [0, 1, 2, 3, 4]}  # the first 5 episodes of each env
    assert sorted(result.lengths.tolist()) == [2] * 5 + [50] * 5
    assert result.mean_return == pytest.approx(result.returns.mean()) and result.episodes_per_second > 0


def test_uneven_split_and_more_envs_than_episodes():
    result = evaluate(zero_policy, FakeVecEnv([3, 1, 7]), num_episodes=11)
    assert by_env(result) == {0: [0, 1, 2, 3], 1: [0, 1, 2, 3], 2: [0, 1, 2]}
    result = evaluate(zero_policy, FakeVecEnv([5, 1, 2, 1]), num_episodes=2)
    assert by_env(result) == {0: [0], 1: [0]}


def test_invalid_num_episodes():
    with pytest.raises(ValueError, match="num_episodes"):
        evaluate(zero_policy, FakeVecEnv([1, 1]), num_episodes=0)


def test_evaluate_spec_closes_env(monkeypatch):
    made = []

    def fake_make(spec, *args, **kwargs):
        made.append((spec, args, kwargs, FakeVecEnv([1, 2])))
        return made[-1][-1]

    monkeypatch.setattr(EvalSpec, "make_env", fake_make)
    spec = EvalSpec("noise_5", "efficiency", "test", noise_std=5.0)
    result = evaluate_spec(zero_policy, "bigfish", "easy", spec, num_episodes=4, num_envs=2, seed=7)
    made_spec, args, kwargs, env = made[0]
    assert env.closed and result.num_episodes == 4
    assert made_spec == spec and args == ("bigfish", "easy")
    assert kwargs == {"num_envs": 2, "seed": 7, "num_threads": None}


def test_evaluate_spec_on_procgen_is_deterministic():
    def random_policy(seed):
        rng = np.random.default_rng(seed)
        return lambda obs: rng.integers(0, NUM_ACTIONS, len(obs))

    results = [
        evaluate_spec(random_policy(0), "bigfish", "easy", EvalSpec("train", "generalization", "train"),
                       num_episodes=5, num_envs=2, seed=3, num_threads=1)
        for _ in range(2)
    ]
    a, b = results
    assert a.num_episodes == len(a.returns) == len(a.lengths) == 5
    assert np.array_equal(a.returns, b.returns) and np.array_equal(a.lengths, b.lengths)
    assert (a.lengths > 0).all() and a.mean_return == pytest.approx(a.returns.mean())
    noisy = evaluate_spec(random_policy(0), "bigfish", "easy", EvalSpec("noisy", "generalization", "train", 15.0),
                           num_episodes=5, num_envs=2, seed=3, num_threads=1)
    assert noisy.num_episodes == 5
