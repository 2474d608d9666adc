"""ReDo: the dormant criterion, exact resets of hand-made dormant units, outgoing weights, Adam moments."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import DATA
from impoola.config import ModelOptions
from impoola.models.agents import PPOAgent, build_agent
from impoola.models.encoders import NatureEncoder
from impoola.redo import ReDo, channel_columns

OBS = torch.randint(0, 256, (16, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
DEAD = {  # Nature-CNN layers (3 convs, the Linear) -> units made dead
    "encoder.network.0": [2, 5], "encoder.network.2": [1], "encoder.network.4": [0, 7], "encoder.network.7": [3, 100],
}


def kill(module: torch.nn.Module, units: list[int]) -> None:
    """Make units output -1 whatever the input: ReLU(output) = 0, so they are dormant."""
    with torch.no_grad():
        module.weight[units] = 0
        module.bias[units] = -1


def plain_agent() -> tuple[PPOAgent, torch.optim.Adam]:
    """A Nature-CNN agent whose live units are all active (non-negative weights on non-negative inputs, positive
    biases) and whose DEAD units are dead."""
    torch.manual_seed(0)
    agent = PPOAgent(NatureEncoder((8, 16, 16)), 15)
    modules = dict(agent.named_modules())
    with torch.no_grad():
        for name in DEAD:
            modules[name].weight.abs_()
            modules[name].bias.fill_(0.05)
    for name, units in DEAD.items():
        kill(modules[name], units)
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-3)
    for param in agent.parameters():  # non-zero Adam moments everywhere
        optimizer.state[param] = {
            "step": torch.tensor(1.0), "exp_avg": torch.ones_like(param), "exp_avg_sq": torch.ones_like(param),
        }
    return agent, optimizer


def activations(agent: PPOAgent) -> dict[str, torch.Tensor]:
    modules = dict(agent.named_modules())
    captured: dict[str, torch.Tensor] = {}
    hooks = [
        modules[n].register_forward_hook(lambda m, i, o, n=n: captured.__setitem__(n, o.detach().clone())) for n in DEAD
    ]
    logits, value = agent(OBS)
    for hook in hooks:
        hook.remove()
    return {**captured, "logits": logits.detach(), "value": value.detach()}


def test_criterion_reproduces_the_release_measurement():
    golden = torch.load(DATA / "encoders.pt")
    reference = json.loads((DATA / "reference.json").read_text())
    for name in ("impala_2", "impoola_2"):
        agent = build_agent("ppo", ModelOptions(encoder=name.split("_")[0], scale=2), 15)
        agent.load_state_dict(dict(zip(agent.state_dict(), golden["models"][name]["state"])))
        masks, _ = ReDo(agent, torch.optim.Adam(agent.parameters())).dormant(golden["obs"])
        for layer, percent in reference[f"dormant_{name}"]["per_layer"].items():
            assert 100 * float(masks[layer].float().mean()) == pytest.approx(percent, abs=1e-3), layer


def test_resets_exactly_the_dormant_units_and_keeps_the_function():
    agent, optimizer = plain_agent()
    redo = ReDo(agent, optimizer, tau=0.025, every=10)
    masks, _ = redo.dormant(OBS)
    assert {name: mask.nonzero().flatten().tolist() for name, mask in masks.items()} == DEAD
    before = activations(agent)
    weights = {n: p.detach().clone() for n, p in agent.named_parameters()}
    assert redo.maybe_reset(5, OBS) is None
    assert redo.maybe_reset(10, OBS) == sum(len(u) for u in DEAD.values())
    after = activations(agent)
    assert torch.equal(before["logits"], after["logits"]) and torch.equal(before["value"], after["value"])
    modules, names = dict(agent.named_modules()), list(DEAD)
    readers = {names[0]: [names[1]], names[1]: [names[2]], names[3]: ["actor", "critic"]}
    dead_columns = [c * 16 + p for c in DEAD[names[2]] for p in range(16)]  # the last conv's channels, 4x4 map
    moments = {name: torch.ones_like(modules[name].weight) for name in DEAD}
    for name, columns in ((names[1], DEAD[names[0]]), (names[2], DEAD[names[1]]), (names[3], dead_columns)):
        weights[f"{name}.weight"][:, columns] = 0
        moments[name][:, columns] = 0
    for name, units in DEAD.items():
        live = [u for u in range(modules[name].out_channels if name != names[3] else 256) if u not in units]
        assert torch.equal(before[name][:, live], after[name][:, live])  # live units compute the same
        weight, bias = modules[name].weight, modules[name].bias
        bound = 1 / weight[0].numel() ** 0.5
        assert torch.all(weight[units].abs().flatten(1).amax(1) > 0) and weight[units].abs().max() <= bound
        assert torch.all(bias[units] != -1) and bias[units].abs().max() <= bound
        assert torch.equal(weight[live], weights[f"{name}.weight"][live])  # only the dead units' outgoing columns
        for param, expected in ((weight, moments[name]), (bias, torch.ones_like(bias))):
            for key in ("exp_avg", "exp_avg_sq"):
                assert torch.all(optimizer.state[param][key][units] == 0)
                assert torch.equal(optimizer.state[param][key][live], expected[live])
        for reader in readers.get(name, []):
            assert torch.all(modules[reader].weight[:, units] == 0)
            assert torch.all(optimizer.state[modules[reader].weight]["exp_avg"][:, units] == 0)
    flat = modules[names[3]].weight
    assert torch.all(flat[:, dead_columns] == 0)
    assert int((flat == 0).all(0).sum()) == len(dead_columns)


def test_residual_units_zero_their_readers_on_the_stream():
    torch.manual_seed(0)
    agent = build_agent("ppo", ModelOptions(encoder="impala", scale=0.25), 15)
    last = agent.encoder.network[2]
    kill(last.res_block0.conv0, [1])  # conv0 -> ReLU -> conv1
    kill(last.res_block0.conv1, [3])  # writes stream channel 3 of the last sequence
    redo = ReDo(agent, torch.optim.Adam(agent.parameters()), every=1)
    masks, _ = redo.dormant(OBS)
    assert masks["encoder.network.2.res_block0.conv0"][1] and masks["encoder.network.2.res_block0.conv1"][3]
    assert redo.maybe_reset(1, OBS) == sum(int(m.sum()) for m in masks.values())
    assert torch.all(last.res_block0.conv1.weight[:, 1] == 0)
    assert torch.all(last.res_block1.conv0.weight[:, 3] == 0)  # a later reader of the stream
    linear = agent.encoder.network[5]
    assert torch.all(linear.weight[:, 3 * 64 : 4 * 64] == 0)  # flatten: channel 3 -> columns 192..255
    assert torch.all(agent.actor.weight[:, masks["encoder.network.5"]] == 0)


@pytest.mark.parametrize("pooling", ["avg", "max", "stacked", "depthwise"])
def test_pooling_heads_map_channels_to_linear_columns(pooling):
    torch.manual_seed(0)
    agent = build_agent("ppo", ModelOptions(encoder="impoola", scale=0.25, pooling=pooling), 15)
    plan = ReDo(agent, torch.optim.Adam(agent.parameters())).plan
    layer = next(layer for layer in plan if layer.name == "encoder.network.2.res_block1.conv1")
    path = layer.readers[-1][1]
    columns = channel_columns(path, torch.Size((8, 8, 8)), torch.device("cpu"))
    expected = {"avg": [2], "max": [2], "stacked": [8, 9, 10, 11, 34], "depthwise": [2]}[pooling]
    assert columns[2].nonzero().flatten().tolist() == expected


def test_softmoe_is_rejected():
    agent = build_agent("ppo", ModelOptions(encoder="impala", scale=0.25, pooling="softmoe"), 15)
    with pytest.raises(ValueError, match="SoftMoE"):
        ReDo(agent, torch.optim.Adam(agent.parameters()))
