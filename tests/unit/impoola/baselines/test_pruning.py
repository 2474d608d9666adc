"""Gradual magnitude pruning: the cubic schedule per tensor, persistent masks, checkpoints, global mode."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from impoola.run.checkpoint import load_agent, save_checkpoint
from impoola.models.encoders import ModelOptions
from impoola.models.agents import build_agent
from impoola.baselines.pruning import GradualPruner, schedule

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


def release_cumulative_counts(n: int, num_iterations: int) -> list[int]:
    """The release's rule written out: per-step amounts = diff of floor(r(k)·n) over k = 0..N (prepend 0); a counter
    starts at 0; the call at the end of iteration 1 only advances it, the call at the end of iteration i >= 2 sets it
    to i and prunes amount[i]. Returns the cumulative count after each iteration 1..N."""
    rates = [0.0] * math.floor(0.2 * num_iterations)
    first, last = math.floor(0.2 * num_iterations), math.floor(0.8 * num_iterations)
    rates += [0.9 * (1 - (1 - (k - first) / (last - first)) ** 3) for k in range(first, last + 1)]
    rates += [0.9] * (num_iterations - last)
    targets = [int(rate * n) for rate in rates]
    amounts = [b - a for a, b in zip([0, *targets], targets)]
    counter, pruned, cumulative = 0, 0, []
    for _ in range(1, num_iterations + 1):
        if counter == 0:
            counter = 1
        else:
            counter += 1
            pruned += amounts[counter]
        cumulative.append(pruned)
    return cumulative


def test_counts_follow_the_release_floor_rule_at_the_end_of_each_iteration():
    agent, pruner = pruned_agent(num_iterations=20)
    previous, rounding_differs = masks(pruner), False
    for iteration in range(1, 21):
        scores = [getattr(m, f"{n}_orig").detach().abs().clone() for m, n in pruner.targets]  # no forward pass ran
        overall = pruner.step(iteration)
        current = masks(pruner)
        for (module, name), mask, old, score in zip(pruner.targets, current, previous, scores):
            count = release_cumulative_counts(mask.numel(), 20)[iteration - 1]
            assert int((mask == 0).sum()) == count, (iteration, name)
            rounding_differs |= count != round(schedule(iteration, 20, 0.9, 0.2, 0.8) * mask.numel())
            assert torch.all(mask <= old)  # masks only grow
            new = (mask == 0) & (old == 1)
            if new.any() and (mask == 1).any():  # the smallest of the still-unmasked entries go
                assert score[new].max() <= score[mask == 1].min()
        total = sum(m.numel() for m in current)
        assert overall == pytest.approx(sum(int((m == 0).sum()) for m in current) / total)
        previous = current
    assert rounding_differs  # round(r·n) would fail this test
    assert overall == pytest.approx(0.9, abs=0.01)


def test_first_call_prunes_nothing_and_short_runs_reach_the_floor_counts():
    agent, pruner = pruned_agent(num_iterations=3)  # s = 0: r(1) > 0, yet iteration 1 prunes nothing
    assert schedule(1, 3, 0.9, 0.2, 0.8) > 0
    assert pruner.step(1) == 0.0 and all(torch.all(m == 1) for m in masks(pruner))
    pruner.step(2)
    for mask in masks(pruner):
        assert int((mask == 0).sum()) == math.floor(0.9 * mask.numel())  # r(2) = 0.9: e = 2


def training_iteration(agent, optimizer, minibatches: int = 2) -> list[torch.Tensor]:
    """Minibatch steps as in a PPO update; returns each pruned tensor's parameter just before the final step."""
    for index in range(minibatches):
        logits, value = agent(OBS)
        optimizer.zero_grad()
        (logits.pow(2).sum() - value.sum()).backward()
        if index == minibatches - 1:
            before_final = [p.detach().clone() for p in optimizer.param_groups[0]["params"]]
        optimizer.step()
    return before_final


def expected_new_masks(pruner, values: list[torch.Tensor], iteration: int) -> list[torch.Tensor]:
    """By hand: each tensor's floor(r·n) smallest |values| among its unmasked entries (masked ones first)."""
    rate, expected = schedule(iteration, 20, 0.9, 0.2, 0.8), []
    for (module, name), value in zip(pruner.targets, values):
        mask = getattr(module, f"{name}_mask").reshape(-1)
        order = value.reshape(-1).abs().masked_fill(mask == 0, -1.0).argsort(stable=True)
        keep = torch.ones_like(mask)
        keep[order[: math.floor(rate * mask.numel())]] = 0
        expected.append(keep)
    return expected


def originals(agent, pruner) -> list[torch.Tensor]:
    params = {id(p): i for i, p in enumerate(agent.parameters())}
    return [params[id(getattr(m, f"{n}_orig"))] for m, n in pruner.targets]


def test_ranking_uses_the_masked_weight_before_the_final_optimizer_step():
    agent, pruner = pruned_agent(num_iterations=20)
    pruner.step(8)  # every layer has pruned entries now
    optimizer = torch.optim.Adam(agent.parameters(), lr=3e-2)
    index = originals(agent, pruner)
    before_final = training_iteration(agent, optimizer)
    before = expected_new_masks(pruner, [before_final[i] for i in index], 9)
    after = expected_new_masks(pruner, [getattr(m, f"{n}_orig").detach() for m, n in pruner.targets], 9)
    pruner.step(9)
    for mask, keep in zip(masks(pruner), before):
        assert torch.equal(mask.reshape(-1), keep)
    assert any(not torch.equal(a, b) for a, b in zip(after, before))  # ranking after the step would differ


def test_a_layer_pruned_for_the_first_time_is_ranked_by_its_current_parameter():
    agent, pruner = pruned_agent(num_iterations=20)
    optimizer = torch.optim.Adam(agent.parameters(), lr=3e-2)
    index = originals(agent, pruner)
    before_final = training_iteration(agent, optimizer)
    current = expected_new_masks(pruner, [getattr(m, f"{n}_orig").detach() for m, n in pruner.targets], 6)
    before = expected_new_masks(pruner, [before_final[i] for i in index], 6)
    pruner.step(6)
    for mask, keep in zip(masks(pruner), current):
        assert torch.equal(mask.reshape(-1), keep)
    assert any(not torch.equal(a, b) for a, b in zip(current, before))


def test_magnitude_ties_are_pruned_lowest_index_first():
    agent, pruner = pruned_agent(num_iterations=20)
    conv = agent.encoder.network[0].conv
    with torch.no_grad():
        halves = torch.tensor([0.5, -0.5]).repeat(conv.weight_orig.numel() // 2)
        conv.weight_orig.copy_(halves.view_as(conv.weight_orig))
    pruner.step(20)
    count = math.floor(0.9 * conv.weight_mask.numel())
    flat = conv.weight_mask.reshape(-1)
    assert torch.all(flat[:count] == 0) and torch.all(flat[count:] == 1)


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
    assert sum(int((m == 0).sum()) for m in current) == math.floor(0.9 * total)
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
