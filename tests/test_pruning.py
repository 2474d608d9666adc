"""Gradual magnitude pruning: the cubic schedule per tensor, persistent masks, checkpoints, global mode."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from impoola.checkpoint import load_agent, save_checkpoint
from impoola.config import ModelOptions
from impoola.models.agents import build_agent
from impoola.pruning import GradualPruner, schedule

OPTIONS = ModelOptions(encoder="impala", scale=0.5)
OBS = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def pruned_agent(mode: str = "layer", num_iterations: int = 20):
    torch.manual_seed(0)
    agent = build_agent("ppo", OPTIONS, 15)
    return agent, GradualPruner(agent, mode, num_iterations)


def masks(pruner: GradualPruner) -> list[torch.Tensor]:
    return [getattr(module, f"{name}_mask").clone() for module, name in pruner.targets]


def adam_steps(agent, optimizer, steps: int = 3) -> None:
    for _ in range(steps):
        logits, value = agent(OBS)
        optimizer.zero_grad()
        (logits.pow(2).sum() + value.pow(2).sum()).backward()
        optimizer.step()


def test_schedule_is_cubic_between_20_and_80_percent():
    assert schedule(0, 100, 0.9, 0.2, 0.8) == 0 and schedule(20, 100, 0.9, 0.2, 0.8) == 0
    assert schedule(50, 100, 0.9, 0.2, 0.8) == pytest.approx(0.9 * (1 - 0.5**3))
    assert schedule(80, 100, 0.9, 0.2, 0.8) == 0.9 and schedule(1000, 100, 0.9, 0.2, 0.8) == 0.9
    assert schedule(1, 1, 0.9, 0.2, 0.8) == 0.9  # s = e = 0: no division by zero


def test_targets_are_encoder_weights_and_biases_only():
    agent, pruner = pruned_agent()
    assert len(pruner.targets) == 2 * 16  # 15 convs + the encoder Linear, weight and bias each
    assert not hasattr(agent.actor, "weight_mask") and not hasattr(agent.critic, "weight_mask")
    assert any(p is pruner.targets[0][0].weight_orig for p in agent.parameters())


def test_layer_mode_reaches_the_scheduled_sparsity_per_tensor():
    agent, pruner = pruned_agent(num_iterations=20)
    previous = masks(pruner)
    for iteration in range(1, 21):
        scores = [getattr(m, f"{n}_orig").detach().abs().clone() for m, n in pruner.targets]
        overall = pruner.step(iteration)
        rate = schedule(iteration, 20, 0.9, 0.2, 0.8)
        current = masks(pruner)
        for (module, name), mask, old, score in zip(pruner.targets, current, previous, scores):
            assert int((mask == 0).sum()) == round(rate * mask.numel()), (iteration, name)
            assert torch.all(mask <= old)  # masks only grow
            new = (mask == 0) & (old == 1)
            if new.any() and (mask == 1).any():  # the smallest of the still-unmasked entries go
                assert score[new].max() <= score[mask == 1].min()
        total = sum(m.numel() for m in current)
        assert overall == pytest.approx(sum(round(rate * m.numel()) for m in current) / total)
        previous = current
    assert overall == pytest.approx(0.9, abs=0.01)


def test_masks_survive_optimizer_steps_and_checkpoints(tmp_path):
    agent, pruner = pruned_agent()
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-2)
    pruner.step(20)
    adam_steps(agent, optimizer)
    for module, name in pruner.targets:
        mask = getattr(module, f"{name}_mask")
        assert torch.all(getattr(module, name)[mask == 0] == 0)
    state = agent.state_dict()
    assert any(k.endswith("weight_orig") for k in state) and any(k.endswith("weight_mask") for k in state)
    payload = {"agent": state, "args": dataclasses.asdict(OPTIONS), "agent_kind": "ppo", "num_actions": 15}
    save_checkpoint(tmp_path, 1, payload)
    loaded, _ = load_agent(tmp_path)
    agent.eval()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, state[key]), key
    logits, value = agent(OBS)
    loaded_logits, loaded_value = loaded(OBS)
    assert torch.allclose(logits, loaded_logits) and torch.allclose(value, loaded_value)
    assert float((loaded.encoder.network[0].conv.weight == 0).float().mean()) == pytest.approx(0.9, abs=0.01)


def test_global_mode_prunes_overall_with_different_layer_sparsities():
    agent, pruner = pruned_agent("global", num_iterations=10)
    overall = pruner.step(10)
    current = masks(pruner)
    total = sum(m.numel() for m in current)
    assert sum(int((m == 0).sum()) for m in current) == round(0.9 * total)
    assert overall == pytest.approx(0.9, abs=1e-6)
    per_layer = {round(float((m == 0).float().mean()), 3) for m in current}
    assert len(per_layer) > 5 and min(per_layer) < 0.8 and max(per_layer) > 0.9


def test_channels_last_agent_prunes_and_trains():
    agent, pruner = pruned_agent()
    agent = agent.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-2)
    assert pruner.step(12) > 0
    adam_steps(agent, optimizer, steps=1)
    conv = agent.encoder.network[1].res_block0.conv0
    assert conv.weight_mask.is_contiguous(memory_format=torch.channels_last)
    assert torch.all(conv.weight[conv.weight_mask == 0] == 0)
