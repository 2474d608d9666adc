"""The evaluation registry: truthful keys, full coverage of every algorithm and track, the release's protocol, and
what the scripts' evaluation layer logs on real Procgen."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from impoola.envs.options import EnvOptions
from impoola.models.encoders import ModelOptions
from impoola.envs.games import DISTRIBUTION_MODES, SPLITS, TRACKS, level_range
from impoola.evaluation import episodes
from impoola.evaluation.episodes import evaluate_scores
from impoola.evaluation.registry import (
    ALGORITHMS, EVAL_CONDITIONS, PHASES, TRAINING_SPLITS, EvalSpec, condition_specs,
    training_evaluations,
)
from impoola.models.agents import build_agent


COMBINATIONS = [(algo, track) for algo in ALGORITHMS for track in TRACKS]


@pytest.mark.parametrize("algo,track", COMBINATIONS)
@pytest.mark.parametrize("mode", DISTRIBUTION_MODES)
def test_training_keys_are_truthful_and_complete(algo, track, mode):
    for phase in PHASES:
        evaluations = training_evaluations(algo, phase, track, mode)
        levels = [e.spec.levels(mode) for e in evaluations]
        assert len(set(levels)) == len(levels), "a level set is evaluated twice"
        keys = [key for e in evaluations for key in e.keys]
        assert sorted(keys) == sorted(set(keys)), "a key is logged twice"
        for evaluation in evaluations:
            assert evaluation.spec.track == track and evaluation.spec.noise_std == 0
            for key in evaluation.keys:  # a result is only logged under a split that plays the same levels
                assert level_range(track, mode, key) == evaluation.spec.levels(mode)
        assert set(keys) == set(TRAINING_SPLITS[algo][phase])
    final_keys = {key for e in training_evaluations(algo, "final", track, mode) for key in e.keys}
    assert final_keys == set(SPLITS)


def test_release_protocol():
    """Facts §4: separate train and test evaluations only on the generalization track; PPO samples, DQN is greedy."""
    for algo in ALGORITHMS:
        for phase in PHASES:
            general = training_evaluations(algo, phase, "generalization", "easy")
            assert [(e.spec.split, e.keys) for e in general] == [("train", ("train",)), ("test", ("test",))]
            for track in ("efficiency", "finetuning"):
                assert [e.keys for e in training_evaluations(algo, phase, track, "hard")] == [("train", "test")]


@pytest.mark.parametrize(("algo", "greedy"), [("ppo", False), ("dqn", True)])
def test_training_evaluations_sample_for_ppo_and_act_greedily_for_dqn(algo, greedy, monkeypatch):
    """Facts §4, through what a training run calls: the policy its evaluations play (not the table restated)."""
    policies = []
    monkeypatch.setattr(episodes, "agent_policy", lambda agent, device, is_greedy: policies.append(is_greedy))
    monkeypatch.setattr(episodes, "evaluate_spec", lambda *args, **kwargs: episodes.EvalResult(
        1.0, np.ones(2), np.ones(2), 2, 1.0))
    agent = build_agent(algo, ModelOptions(encoder="impoola", scale=0.25), 15)
    evaluate_scores(agent, EnvOptions(env_id="dodgeball"), 1, 2, torch.device("cpu"), algo, "final", 2)
    assert policies == [greedy]


def test_eval_conditions_levels_and_noise():
    specs = condition_specs(list(EVAL_CONDITIONS), "generalization", (5.0, 30.0))
    assert [s.name for s in specs] == ["train", "test", "finetuning", "noise_5", "noise_30"]
    assert [s.levels("easy") for s in specs] == [(0, 200), (0, 0), (201, 100), (0, 0), (0, 0)]
    assert [s.noise_std for s in specs] == [0, 0, 0, 5.0, 30.0]
    assert [s.levels("hard") for s in condition_specs(["train", "test"], "efficiency", ())] == [(0, 0), (0, 0)]
    with pytest.raises(ValueError, match="invalid noise_stds value 0"):
        condition_specs(["noise"], "generalization", (0.0,))
    with pytest.raises(ValueError, match="invalid condition 'noise' with no noise_stds"):
        condition_specs(["train", "noise"], "generalization", ())
    with pytest.raises(ValueError, match="invalid condition 'blur'; valid: train, test, finetuning, noise"):
        condition_specs(["blur"], "generalization", ())
    with pytest.raises(ValueError, match="invalid noise_std -1"):
        EvalSpec("x", "efficiency", "test", -1.0)


@pytest.mark.parametrize("algo,track", COMBINATIONS)
def test_final_evaluation_logs_train_and_test_scores(algo, track):
    """The evaluation layer the scripts call, with a tiny agent on real Procgen: both keys for every track."""
    torch.manual_seed(0)
    agent = build_agent(algo, ModelOptions(encoder="impoola", scale=0.25), 15)
    env = EnvOptions(env_id="dodgeball", distribution_mode="easy", track=track, procgen_threads=1)
    scores = evaluate_scores(agent, env, 1, 2, torch.device("cpu"), algo, "final", 2)
    for split in SPLITS:
        for key in ("scores/eval_avg_return_", "scores/normalized_score_", "charts/eval_episodes_per_second_"):
            assert key + split in scores
    if track != "generalization":  # one evaluation of the shared levels, logged under both keys
        assert scores["scores/normalized_score_train"] == scores["scores/normalized_score_test"]
    assert agent.training
