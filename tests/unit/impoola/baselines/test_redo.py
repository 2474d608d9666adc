"""ReDo: the dormant criterion, exact resets of hand-made dormant units, outgoing weights, Adam moments."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from impoola.models.encoders import ModelOptions
from impoola.models.agents import PPOAgent, build_agent
from impoola.models.encoders import NatureEncoder
from impoola.baselines.redo import ReDo, channel_columns
from support.paths import DATA

OBS = torch.randint(0, 256, (16, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
DEAD = {  # Nature-CNN layers (3 convs, the Linear) -> units made dead
    "encoder.network.0": [2, 5], "encoder.network.2": [1], "encoder.network.4": [0, 7], "encoder.network.7": [3, 100],
}


def kill(module: torch.nn.Module, units: list[int]) -> None:
    """Make units output -1 whatever the input: ReLU(output) = 0, so they are dormant."""
    with torch.no_grad():
        module.weight[units] = 0
        module.bias[units] = -1


def moments_of_ones(agent: torch.nn.Module) -> torch.optim.Adam:
    """Adam over the agent with step 1 and moments of ones everywhere."""
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-3)
    for param in agent.parameters():
        optimizer.state[param] = {
            "step": torch.tensor(1.0), "exp_avg": torch.ones_like(param), "exp_avg_sq": torch.ones_like(param),
        }
    return optimizer


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
    return agent, moments_of_ones(agent)


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
    assert redo.maybe_reset(5, OBS) == {}
    count = sum(len(u) for u in DEAD.values())
    assert redo.maybe_reset(10, OBS) == {"charts/redo_dormant_units": count, "charts/redo_reset_units": count}
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
    assert all(float(state["step"]) == 1 for state in optimizer.state.values())  # Adam's step counts are kept


def test_residual_units_zero_their_readers_on_the_stream():
    torch.manual_seed(0)
    agent = build_agent("ppo", ModelOptions(encoder="impala", scale=0.25), 15)
    last = agent.encoder.network[2]
    kill(last.res_block0.conv0, [1])  # conv0 -> ReLU -> conv1
    kill(last.res_block0.conv1, [3])  # writes stream channel 3 of the last sequence
    redo = ReDo(agent, torch.optim.Adam(agent.parameters()), every=1)
    masks, _ = redo.dormant(OBS)
    assert masks["encoder.network.2.res_block0.conv0"][1] and masks["encoder.network.2.res_block0.conv1"][3]
    assert redo.maybe_reset(1, OBS)["charts/redo_reset_units"] == sum(int(m.sum()) for m in masks.values())
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


IMPALA_LAYERS = [  # registration order of an Impala encoder's Conv2d/Linear layers, written out
    f"encoder.network.{k}.{conv}" for k in range(3)
    for conv in ("conv", "res_block0.conv0", "res_block0.conv1", "res_block1.conv0", "res_block1.conv1")
] + ["encoder.network.5"]


def killed_impala() -> tuple[PPOAgent, dict[str, torch.nn.Module]]:
    """Impala τ=0.25 with dead units in a stream writer, the last conv and the encoder Linear."""
    torch.manual_seed(0)
    agent = build_agent("ppo", ModelOptions(encoder="impala", scale=0.25), 15)
    modules = dict(agent.named_modules())
    for name, units in (("encoder.network.0.conv", [1]), ("encoder.network.2.res_block1.conv1", [3]),
                        ("encoder.network.5", [7, 100])):
        kill(modules[name], units)
    return agent, modules


def test_release_mode_is_the_release_reset_function():
    agent, modules = killed_impala()
    optimizer = moments_of_ones(agent)
    redo = ReDo(agent, optimizer, every=1, mode="release")
    masks, _ = redo.dormant(OBS)
    assert list(masks) == IMPALA_LAYERS
    assert masks["encoder.network.0.conv"][1] and masks["encoder.network.5"][[7, 100]].all()
    # so only the release rule spares network.1.conv's input 1
    assert not masks["encoder.network.0.res_block1.conv1"][1]
    before = {name: param.detach().clone() for name, param in agent.named_parameters()}
    metrics = redo.maybe_reset(1, OBS)
    dormant = sum(int(m.sum()) for m in masks.values())
    assert metrics == {"charts/redo_dormant_units": dormant,
                       "charts/redo_reset_units": dormant - int(masks["encoder.network.5"].sum())}
    params = dict(agent.named_parameters())
    # The rule written out: layer i's dormant rows re-drawn from U(±√(6/fan_in)) unless i is the last layer; the next
    # layer in registration order (the actor after the Linear) loses the matching input columns, the conv -> Linear
    # step repeating each channel in_features / channels times; Adam: rows and columns zeroed, step zeroed for
    # every layer's weight and bias and its next weight, dormant units or not.
    expected = {name: before[name].clone() for name in before}
    moments = {name: torch.ones_like(before[name]) for name in before}
    columns = {}
    for name, reader in zip(IMPALA_LAYERS, IMPALA_LAYERS[1:] + ["actor"]):
        mask = masks[name]
        columns[name] = mask.repeat_interleave(64) if name == "encoder.network.2.res_block1.conv1" else mask
        if name != "encoder.network.5":
            expected[f"{reader}.weight"][:, columns[name]] = 0
        for key in (f"{name}.weight", f"{name}.bias"):
            moments[key][mask] = 0
        moments[f"{reader}.weight"][:, columns[name]] = 0
    assert int(columns["encoder.network.2.res_block1.conv1"].sum()) == 64 * int(masks[IMPALA_LAYERS[14]].sum())
    for name in IMPALA_LAYERS:
        weight, bias, mask = params[f"{name}.weight"], params[f"{name}.bias"], masks[name]
        reset = mask if name != "encoder.network.5" else torch.zeros_like(mask)
        assert torch.equal(weight[~reset], expected[f"{name}.weight"][~reset]), name
        assert torch.equal(bias[~reset], before[f"{name}.bias"][~reset]), name
        if reset.any():
            fan_in = weight[0].numel()
            drawn = weight[reset]
            assert drawn.abs().max() <= (6 / fan_in) ** 0.5 and drawn.abs().max() > 1.2 / fan_in**0.5, name
            assert bias[reset].abs().max() <= 1 / fan_in**0.5 and torch.all(bias[reset] != -1)
    assert torch.equal(params["actor.weight"], before["actor.weight"])  # the last encoder layer is never reset
    assert torch.equal(params["encoder.network.5.weight"][[7, 100]], before["encoder.network.5.weight"][[7, 100]])
    assert modules["encoder.network.1.conv"].weight[:, 1].abs().sum() > 0  # the dataflow rule would zero it
    for name, param in params.items():
        state = optimizer.state[param]
        zeroed = name.startswith("encoder.") or name == "actor.weight"
        assert float(state["step"]) == (0.0 if zeroed else 1.0), name
        if zeroed:
            for key in ("exp_avg", "exp_avg_sq"):
                assert torch.equal(state[key], moments[name]), (name, key)


def test_release_mode_reinit_range_on_many_units():
    agent, optimizer = plain_agent()
    redo = ReDo(agent, optimizer, every=1, mode="release")
    redo.maybe_reset(1, OBS)
    weight = agent.encoder.network[0].weight.detach()[DEAD["encoder.network.0"]]
    bound = (6 / weight[0].numel()) ** 0.5  # 192 inputs: √(6/192) ≈ 0.177 vs PyTorch's default 1/√192 ≈ 0.072
    assert weight.abs().max() <= bound and weight.abs().max() > 0.9 * bound
    assert abs(float(weight.std()) - bound / 3**0.5) < 0.1 * bound  # uniform on ±bound


def test_dataflow_reinit_is_the_default_init_range():
    agent, optimizer = plain_agent()
    ReDo(agent, optimizer, every=1).maybe_reset(1, OBS)
    weight = agent.encoder.network[0].weight.detach()[DEAD["encoder.network.0"]]
    bound = 1 / weight[0].numel() ** 0.5
    assert weight.abs().max() <= bound and weight.abs().max() > 0.9 * bound


def test_published_mode_measures_and_never_resets():
    agent, modules = killed_impala()
    optimizer = moments_of_ones(agent)
    redo = ReDo(agent, optimizer, every=3, mode="published")
    masks, _ = redo.dormant(OBS)
    before = copy.deepcopy(agent.state_dict())
    state = copy.deepcopy(optimizer.state_dict())
    assert redo.maybe_reset(2, OBS) == {}
    assert redo.maybe_reset(3, OBS) == {"charts/redo_dormant_units": sum(int(m.sum()) for m in masks.values()),
                                        "charts/redo_reset_units": 0}
    assert sum(int(m.sum()) for m in masks.values()) >= 4
    for key, value in agent.state_dict().items():
        assert torch.equal(value, before[key]), key
    for index, values in optimizer.state_dict()["state"].items():
        for key, value in values.items():
            assert torch.equal(value, state["state"][index][key]), (index, key)


def test_modes_are_checked():
    agent = build_agent("ppo", ModelOptions(encoder="impoola", scale=0.25, pooling="depthwise"), 15)
    with pytest.raises(ValueError, match="redo mode 'release'.*depthwise"):
        ReDo(agent, torch.optim.Adam(agent.parameters()), mode="release")
    with pytest.raises(ValueError, match="valid: dataflow, release, published"):
        ReDo(agent, torch.optim.Adam(agent.parameters()), mode="textbook")
