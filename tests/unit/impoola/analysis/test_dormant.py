"""Dormant-neuron measurement: golden release values, a hand-built network, PPO/DQN/Nature layer sets."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from impoola.analysis.dormant import dormant_batch, dormant_metrics, dormant_scores, measured_layers
from impoola.models.encoders import ModelOptions
from impoola.models.agents import build_agent
from support.paths import DATA


@pytest.fixture(scope="module")
def golden():
    return torch.load(DATA / "encoders.pt"), json.loads((DATA / "reference.json").read_text())


@pytest.mark.parametrize("name", ["impala_2", "impoola_2"])
def test_golden_dormant_fractions(golden, name):
    encoders, reference = golden
    model = encoders["models"][name]
    encoder, scale = name.split("_")
    agent = build_agent("ppo", ModelOptions(encoder=encoder, scale=int(scale)), 15)
    agent.load_state_dict(dict(zip(model["names"], model["state"])))
    metrics = dormant_metrics(agent, encoders["obs"], tau=0.025)
    expected = reference[f"dormant_{name}"]
    assert metrics["dormant_neurons/dormant_fraction"] == pytest.approx(expected["dormant_fraction"], abs=1e-4)
    assert metrics["dormant_neurons/zero_fraction"] == pytest.approx(expected["zero_fraction"], abs=1e-4)
    per_layer = {k: v for k, v in metrics.items() if not k.endswith("_fraction")}
    assert len(per_layer) == 16
    for index, (layer, value) in enumerate(expected["per_layer"].items()):
        assert per_layer[f"dormant_neurons/{index}_{layer}"] == pytest.approx(value, abs=1e-4)


class HandBuiltEncoder(nn.Module):
    """1x1 conv with 5 units and a linear layer with 4 units whose activities are set by their biases."""

    def __init__(self):
        super().__init__()
        self.network = nn.Sequential(nn.Conv2d(3, 5, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                     nn.Linear(5, 4), nn.ReLU())
        conv, linear = self.network[0], self.network[4]
        with torch.no_grad():
            conv.weight.zero_()
            conv.weight[4, 0] = -1.0  # unit 4: ReLU(-x) is zero for all non-negative inputs
            conv.bias.copy_(torch.tensor([1.0, 1.0, 0.01, 0.0, 0.0]))
            linear.weight.zero_()
            linear.bias.copy_(torch.tensor([3.0, 0.05, 0.0, -2.0]))

    def forward(self, obs):
        return self.network(obs.float() / 255.0)


class HandBuiltAgent(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = HandBuiltEncoder()
        self.actor = nn.Linear(4, 15)


def test_hand_built_network_known_dormant_units():
    agent = HandBuiltAgent()
    obs = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    scores = dormant_scores(agent, obs)
    assert list(scores) == ["encoder.network.0", "encoder.network.4"]
    # conv activities [1, 1, 0.01, 0, 0] / mean 0.402; linear [3, 0.05, 0, 0] / mean 0.7625
    assert scores["encoder.network.0"].tolist() == pytest.approx([1 / 0.402, 1 / 0.402, 0.01 / 0.402, 0, 0])
    assert scores["encoder.network.4"].tolist() == pytest.approx([3 / 0.7625, 0.05 / 0.7625, 0, 0])
    metrics = dormant_metrics(agent, obs)
    assert metrics == pytest.approx({
        "dormant_neurons/dormant_fraction": 100 * 5 / 9,  # conv units 2, 3, 4 (0.01/0.402 <= 0.025), linear 2, 3
        "dormant_neurons/zero_fraction": 100 * 4 / 9,
        "dormant_neurons/0_encoder.network.0": 60.0,
        "dormant_neurons/1_encoder.network.4": 50.0,
    })


def test_impala_layers_pre_pool_and_pre_skip():
    """Units killed in a first conv and in a block's second conv (hidden by the skip addition after it) score zero."""
    torch.manual_seed(0)
    agent = build_agent("ppo", ModelOptions(encoder="impala", scale=0.5), 15)
    with torch.no_grad():
        for conv in (agent.encoder.network[0].conv, agent.encoder.network[1].res_block0.conv1):
            conv.weight[0].zero_()
            conv.bias[0] = -1.0
    scores = dormant_scores(agent, torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8))
    assert scores["encoder.network.0.conv"][0] == 0
    assert scores["encoder.network.1.res_block0.conv1"][0] == 0
    assert all(s.mean() == pytest.approx(1.0) for s in scores.values() if s.abs().sum() > 0)


@pytest.mark.parametrize("kind,encoder,scale,num_layers", [
    ("ppo", "impala", 1, 16), ("dqn", "impoola", 1, 16), ("dqn", "nature", 1, 4), ("ppo", "nature", 2, 4),
])
def test_layer_sets_and_mode_restored(kind, encoder, scale, num_layers):
    agent = build_agent(kind, ModelOptions(encoder=encoder, scale=scale), 15)
    names = [name for name, _ in measured_layers(agent)]
    assert len(names) == num_layers and all(n.startswith("encoder.") for n in names)
    obs = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    for training in (True, False):
        agent.train(training)
        metrics = dormant_metrics(agent, obs)
        assert agent.training == training
        assert [k for k in metrics if not k.endswith("_fraction")] == [
            f"dormant_neurons/{i}_{n}" for i, n in enumerate(names)
        ]
        assert all(0.0 <= v <= 100.0 for v in metrics.values())


def test_release_batches():
    rollout = torch.arange(256 * 64).reshape(256, 64, 1, 1, 1).expand(256, 64, 3, 64, 64)
    ppo = dormant_batch("ppo", rollout)
    assert ppo.shape == (256, 3, 64, 64) and torch.equal(ppo[:, 0, 0, 0], torch.arange(256))  # first 4 steps
    start = torch.zeros(64, 3, 64, 64)
    assert dormant_batch("ppo", start).shape[0] == 64
    assert dormant_batch("dqn", torch.zeros(128, 3, 64, 64)).shape[0] == 32
    with pytest.raises(ValueError, match="valid: ppo, dqn"):
        dormant_batch("sac", start)


def test_fully_pruned_units_are_left_out_as_the_release_does():
    agent = HandBuiltAgent()
    conv = agent.encoder.network[0]
    mask = torch.ones_like(conv.weight)
    mask[0, 0] = 0  # a partly pruned row: unit 0 stays measured
    mask[3:] = 0  # units 3 and 4 fully pruned: left out
    prune.custom_from_mask(conv, "weight", mask)
    obs = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    scores = dormant_scores(agent, obs)
    # live conv activities [1, 1, 0.01] / mean 0.67: unit 2 scores 0.0149 <= 0.025
    assert scores["encoder.network.0"].tolist() == pytest.approx([1 / 0.67, 1 / 0.67, 0.01 / 0.67])
    assert dormant_metrics(agent, obs) == pytest.approx({
        "dormant_neurons/dormant_fraction": 100 * 3 / 7,  # conv unit 2, linear units 2 and 3 (5/9 if counted)
        "dormant_neurons/zero_fraction": 100 * 2 / 7,
        "dormant_neurons/0_encoder.network.0": 100 / 3,
        "dormant_neurons/1_encoder.network.4": 50.0,
    })


def test_softmoe_experts_are_scored_per_output_feature_over_batch_and_slots():
    torch.manual_seed(0)
    agent = build_agent("ppo", ModelOptions(encoder="impala", scale=0.25, pooling="softmoe"), 15)
    expert = agent.encoder.network[4].experts[9]
    captured = []
    hook = expert.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    obs = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)
    scores = dormant_scores(agent, obs)
    hook.remove()
    assert captured[0].shape == (4, 7, 256)  # batch, slots, features
    activity = torch.relu(captured[0]).mean(dim=(0, 1))
    assert torch.allclose(scores["encoder.network.4.experts.9"], activity / activity.mean())
    assert sum(name.startswith("encoder.network.4.experts.") for name in scores) == 10
    assert all(s.numel() == 256 for n, s in scores.items() if ".experts." in n)
    metrics = dormant_metrics(agent, obs)
    assert len([k for k in metrics if not k.endswith("_fraction")]) == 15 + 10
