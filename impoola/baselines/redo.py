"""ReDo (Sokar et al. 2023): every `every` PPO iterations, measure the dormant units of the encoder and recycle them.

Modes (`--redo_mode`):
- `published` reproduces the paper's "Impala + ReDo" curve: the release's PPO script never called its reset
  function, so those runs measured and logged dormant units and reset none. Every `every` iterations this
  mode measures them (`charts/redo_dormant_units`) and resets nothing (`charts/redo_reset_units` = 0).
  The main-comparison launch script uses it.
- `dataflow` (default) is ReDo as the method intends it, with outgoing weights defined on the real dataflow.
- `release` is the release's reset function exactly, had it been called.

Dormant units (all modes): a unit's score is the mean of ReLU(raw output) over batch and positions divided by
its layer's mean score (`impoola.analysis.dormant`); it is dormant when the score is <= tau. `dataflow`
measures every conv of the encoder's conv stack — for Impala/Impoola each sequence's first conv before its
max-pool and each residual block's conv0 and conv1 (conv1 before the skip sum), 15 convs for three
sequences; for Nature-CNN its convs — and the encoder's Linear(-> 256); pooling-head modules (the
depthwise pooling conv) are not measured and SoftMoE encoders (no encoder Linear) are rejected.
`release` and `published` measure every Conv2d and Linear of the encoder, as the release does.

`dataflow` resets: a dormant unit's incoming weights are re-drawn from PyTorch's default Conv2d/Linear init,
the networks' own initial distribution (Kaiming uniform with a = √5, i.e. U(±1/√fan_in)), its bias from
U(±1/√fan_in); its outgoing weights are zeroed; the Adam moments (every optimizer-state tensor shaped like
the parameter) of those incoming and outgoing entries are zeroed and Adam's per-tensor step count is kept.
The encoder Linear is reset too. All incoming re-inits happen before the outgoing zeroing, so a unit whose
reader is reset too still has a zero outgoing weight. Outgoing weights, on the real dataflow:
- a unit followed by ReLU and one layer (residual-block conv0 -> conv1, Nature conv -> next conv, encoder
  Linear -> actor/critic or Q head): that layer's input channel / column of the unit;
- a unit that writes into a residual stream — a sequence's first conv (through the channel-wise
  max-pool, which only selects positions) and every residual block's conv1 (through the skip sum) —
  writes stream channel j, so its outgoing weights are input channel j of every later reader of that
  stream: the conv0 of the sequence's following residual blocks and the stream's reader behind the
  sequence (the next sequence's first conv, or the encoder Linear);
- a unit read by the encoder Linear through the pooling head (flatten, k x k avg/max, stacked,
  depthwise, GAP before the ReLU in Nature w/ GAP): the Linear's input columns
  that depend on channel j, found by probing the head with one-hot channel maps.
A stream channel also carries the other writers' contributions, so resetting a stream writer cuts the
whole channel from its later readers: such a reset is not function-preserving. On plain dataflow (all
units of Nature-CNN, residual conv0 units, the encoder Linear) a dormant unit whose activation is zero is
removed exactly and the network function is unchanged.

`release` resets (the release's function; facts §6):
- layers in registration order (every encoder Conv2d and Linear); every layer but the last (the encoder
  Linear, never reset) re-draws its dormant units' incoming weights from U(±√(6/fan_in)) (Kaiming uniform
  with the ReLU gain √2: the release passes a = √5, which is ignored for "relu") and biases from
  U(±1/√fan_in);
- outgoing weights: the next layer in registration order, only: its input channels of the dormant units,
  or, from a conv to a Linear, its columns repeat_interleave(dormant, in_features / channels) (channel j's
  columns for flatten and global pooling; not channel j's for the stacked head). A unit that feeds a
  residual stream keeps its weights into every other reader of the stream;
- Adam: for every measured layer, dormant units or not, and the last included, the moments of its dormant
  rows (weight and bias) and of the matching columns of its next weight (the actor's or Q head's for the
  encoder Linear) are zeroed and so is `step` of those three tensors: moments of the encoder Linear and the
  head are cleared although their weights are left alone, and every measured tensor restarts Adam's bias
  correction at each reset.
Models whose next layer cannot read a layer's units by that rule (the depthwise and SoftMoE heads) are
rejected in `release` mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import nn

from impoola.analysis.dormant import layer_activity, measured_layers, normalize_scores
from impoola.models.encoders import ConvSequence
from impoola.options import check_choice

Reader = tuple[nn.Module, tuple[nn.Module, ...] | None]
RedoMode = Literal["dataflow", "release", "published"]


@dataclass
class ResetLayer:
    """A measured layer and its readers: (module, None) reads unit j as input j; (module, path) through `path`."""

    name: str
    module: nn.Conv2d | nn.Linear
    readers: list[Reader]


def reset_plan(agent: nn.Module) -> list[ResetLayer]:
    """The measured layers of `agent.encoder` with the readers of their units, in forward order."""
    network = list(agent.encoder.network)
    linears = [i for i, m in enumerate(network) if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("invalid model for ReDo: the encoder has no Linear layer (SoftMoE); valid: pooling heads")
    linear = network[linears[-1]]
    names = {module: name for name, module in agent.named_modules()}
    heads: list[Reader] = [(m, None) for n, m in agent.named_children() if n != "encoder" and isinstance(m, nn.Linear)]
    sequences = [m for m in network if isinstance(m, ConvSequence)]
    plan: list[tuple[nn.Module, list[Reader]]] = []
    if sequences:
        final: Reader = (linear, tuple(network[network.index(sequences[-1]) + 1 : linears[-1]]))
        for k, sequence in enumerate(sequences):
            after = (sequences[k + 1].conv, None) if k + 1 < len(sequences) else final
            blocks = [sequence.res_block0, sequence.res_block1]
            plan.append((sequence.conv, [(b.conv0, None) for b in blocks] + [after]))
            for j, block in enumerate(blocks):
                plan.append((block.conv0, [(block.conv1, None)]))
                plan.append((block.conv1, [(b.conv0, None) for b in blocks[j + 1 :]] + [after]))
    else:
        convs = [i for i, m in enumerate(network) if isinstance(m, nn.Conv2d)]
        plan += [(network[i], [(network[j], None)]) for i, j in zip(convs, convs[1:])]
        plan.append((network[convs[-1]], [(linear, tuple(network[convs[-1] + 1 : linears[-1]]))]))
    plan.append((linear, heads))
    return [ResetLayer(names[module], module, readers) for module, readers in plan]


def channel_columns(path: tuple[nn.Module, ...], shape: torch.Size, device: torch.device) -> torch.Tensor:
    """(channels, features) bool: which outputs of `path` depend on each input channel of a (C, H, W) map."""
    probe = torch.eye(shape[0], device=device)[:, :, None, None].expand(shape[0], *shape)
    base = torch.zeros(1, *shape, device=device)
    for module in path:
        probe, base = module(probe), module(base)
    return (probe - base) != 0


def release_columns(module: nn.Module, reader: nn.Module, dormant: torch.Tensor) -> torch.Tensor:
    """The release's outgoing rule: `reader`'s inputs of `module`'s dormant units (bool over its input dim 1)."""
    if isinstance(module, nn.Conv2d) and isinstance(reader, nn.Linear):
        return torch.repeat_interleave(dormant, reader.in_features // dormant.numel())
    return dormant


def check_release_chain(layers: list[tuple[str, nn.Module]]) -> None:
    """Reject a model whose next layer in registration order does not read a layer's units by the release's rule."""
    for (name, module), (reader_name, reader) in zip(layers, layers[1:]):
        units = module.weight.shape[0]
        if isinstance(module, nn.Conv2d) and isinstance(reader, nn.Linear):
            readable = reader.in_features % units == 0
        else:
            readable = reader.weight.shape[1] == units
        if not readable:
            raise ValueError(
                f"invalid model for redo mode 'release': {reader_name} does not read the {units} units of {name}; "
                "valid: models without a depthwise or SoftMoE head"
            )


class ReDo:
    """Measures and recycles dormant units of `agent.encoder` every `every` iterations (see the module docstring)."""

    def __init__(
        self,
        agent: nn.Module,
        optimizer: torch.optim.Optimizer,
        tau: float = 0.025,
        every: int = 100,
        mode: RedoMode = "dataflow",
    ):
        check_choice("redo_mode", mode, get_args(RedoMode))
        self.agent, self.optimizer, self.tau, self.every, self.mode = agent, optimizer, tau, every, mode
        self.plan = reset_plan(agent) if mode == "dataflow" else []
        self.layers = [(layer.name, layer.module) for layer in self.plan] if self.plan else measured_layers(agent)
        if mode == "release":
            check_release_chain(self.layers)
            self.head = next(m for n, m in agent.named_children() if n != "encoder" and isinstance(m, nn.Linear))

    @torch.no_grad()
    def dormant(self, obs: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[nn.Module, torch.Size]]:
        """Dormant-unit masks per measured layer on `obs`, and the input shape of every dataflow reader path."""
        masks: dict[str, torch.Tensor] = {}
        shapes: dict[nn.Module, torch.Size] = {}

        def measure(module: nn.Module, output: torch.Tensor, name: str) -> None:
            masks[name] = normalize_scores(layer_activity(module, output)) <= self.tau

        hooks = [
            module.register_forward_hook(lambda m, _i, out, name=name: measure(m, out, name))
            for name, module in self.layers
        ]
        paths = {path[0] for layer in self.plan for _, path in layer.readers if path}
        hooks += [m.register_forward_pre_hook(lambda m, i: shapes.__setitem__(m, i[0].shape[1:])) for m in paths]
        try:
            self.agent.encoder(obs)
        finally:
            for hook in hooks:
                hook.remove()
        return masks, shapes

    def maybe_reset(self, iteration: int, obs: torch.Tensor) -> dict[str, int]:
        """When `iteration` is a multiple of `every`: `reset(obs)` in eval mode, as metrics; else nothing."""
        if iteration % self.every:
            return {}
        training = self.agent.training
        self.agent.eval()
        try:
            dormant, reset = self.reset(obs)
        finally:
            self.agent.train(training)
        return {"charts/redo_dormant_units": dormant, "charts/redo_reset_units": reset}

    @torch.no_grad()
    def reset(self, obs: torch.Tensor) -> tuple[int, int]:
        """Measure the dormant units on `obs` and reset them as the mode says; (dormant units, units reset)."""
        masks, shapes = self.dormant(obs)
        dormant = int(sum(int(mask.sum()) for mask in masks.values()))
        if self.mode == "published":
            return dormant, 0
        if self.mode == "release":
            return dormant, self._reset_release(masks)
        return dormant, self._reset_dataflow(masks, shapes)

    def _reset_dataflow(self, masks: dict[str, torch.Tensor], shapes: dict[nn.Module, torch.Size]) -> int:
        units = {layer.name: masks[layer.name].nonzero().squeeze(1) for layer in self.plan}
        for layer in self.plan:
            self._reinit(layer.module, units[layer.name])
            for param in (layer.module.weight, layer.module.bias):
                self._clear_moments(param, (units[layer.name],))
        for layer in self.plan:
            for reader, path in layer.readers:
                columns = units[layer.name]
                if path is not None:
                    columns = channel_columns(path, shapes[path[0]], reader.weight.device)[columns].any(0)
                reader.weight[:, columns] = 0
                self._clear_moments(reader.weight, (slice(None), columns))
        return int(sum(u.numel() for u in units.values()))

    def _reset_release(self, masks: dict[str, torch.Tensor]) -> int:
        count = 0
        for (name, module), (_, reader) in zip(self.layers, self.layers[1:]):  # the last layer is never reset
            if masks[name].any():
                self._reinit(module, masks[name].nonzero().squeeze(1))
                reader.weight[:, release_columns(module, reader, masks[name])] = 0
                count += int(masks[name].sum())
        readers = [reader for _, reader in self.layers[1:]] + [self.head]
        for (name, module), reader in zip(self.layers, readers):  # every layer, dormant units or not
            for param, index in ((module.weight, (masks[name],)), (module.bias, (masks[name],)),
                                 (reader.weight, (slice(None), release_columns(module, reader, masks[name])))):
                self._clear_moments(param, index, step=True)
        return count

    def _reinit(self, module: nn.Conv2d | nn.Linear, units: torch.Tensor) -> None:
        """Fresh incoming weights (the mode's distribution) and a U(±1/√fan_in) bias for `units`."""
        fan_in = module.weight[0].numel()
        bound = math.sqrt(6 / fan_in) if self.mode == "release" else 1 / math.sqrt(fan_in)
        module.weight[units] = torch.empty_like(module.weight[units]).uniform_(-bound, bound)
        if module.bias is not None:
            module.bias[units] = torch.empty_like(module.bias[units]).uniform_(-1 / math.sqrt(fan_in),
                                                                                1 / math.sqrt(fan_in))

    def _clear_moments(self, param: torch.Tensor | None, index: tuple, step: bool = False) -> None:
        """Zero `index` of every optimizer-state tensor shaped like `param`, and its `step` count if asked."""
        state = self.optimizer.state.get(param, {}) if param is not None else {}
        for key, value in state.items():
            if torch.is_tensor(value) and value.shape == param.shape:
                value[index] = 0
        if step and "step" in state:
            if torch.is_tensor(state["step"]):
                state["step"].zero_()
            else:
                state["step"] = 0
