"""ReDo as a method (Sokar et al. 2023): every `every` PPO iterations, re-initialize dormant encoder units.

Measured layers (facts §6): every conv of the encoder's conv stack — for Impala/Impoola each sequence's
first conv before its max-pool and each residual block's conv0 and conv1 (conv1 before the skip sum),
15 convs for three sequences; for Nature-CNN its convs — and the encoder's Linear(-> 256). A unit's
score is the mean of ReLU(raw output) over batch and positions divided by its layer's mean score; it is
dormant when the score is <= tau. Pooling-head modules (the depthwise pooling conv) are not measured;
SoftMoE encoders (no encoder Linear) are not supported.

A reset re-initializes the unit's incoming weights with Kaiming uniform (PyTorch's default Conv2d/Linear
init, a = √5) and its bias with U(±1/√fan_in), zeroes its outgoing weights, and zeroes the Adam moments
(every optimizer-state tensor shaped like the parameter) of those incoming and outgoing entries; Adam's
per-tensor step count is kept. All incoming re-inits happen before the outgoing zeroing, so a unit whose
reader is reset too still has a zero outgoing weight.

Outgoing weights, defined on the real dataflow:
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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from impoola.models.encoders import ConvSequence

Reader = tuple[nn.Module, tuple[nn.Module, ...] | None]


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


def dormant_scores(output: torch.Tensor) -> torch.Tensor:
    """Per-unit score of a raw layer output (N, units, ...): mean ReLU activation / the layer's mean."""
    activity = torch.relu(output).transpose(0, 1).reshape(output.shape[1], -1).mean(1)
    return activity / activity.mean().clamp_min(1e-12)


def channel_columns(path: tuple[nn.Module, ...], shape: torch.Size, device: torch.device) -> torch.Tensor:
    """(channels, features) bool: which outputs of `path` depend on each input channel of a (C, H, W) map."""
    probe = torch.eye(shape[0], device=device)[:, :, None, None].expand(shape[0], *shape)
    base = torch.zeros(1, *shape, device=device)
    for module in path:
        probe, base = module(probe), module(base)
    return (probe - base) != 0


class ReDo:
    """Recycles dormant units of `agent.encoder` every `every` iterations (see the module docstring)."""

    def __init__(self, agent: nn.Module, optimizer: torch.optim.Optimizer, tau: float = 0.025, every: int = 100):
        self.agent, self.optimizer, self.tau, self.every = agent, optimizer, tau, every
        self.plan = reset_plan(agent)

    @torch.no_grad()
    def dormant(self, obs: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[nn.Module, torch.Size]]:
        """Dormant-unit masks per measured layer on `obs`, and the input shape of every reader path."""
        masks: dict[str, torch.Tensor] = {}
        shapes: dict[nn.Module, torch.Size] = {}
        hooks = [
            layer.module.register_forward_hook(
                lambda _m, _i, out, name=layer.name: masks.__setitem__(name, dormant_scores(out) <= self.tau)
            )
            for layer in self.plan
        ]
        paths = {path[0] for layer in self.plan for _, path in layer.readers if path}
        hooks += [m.register_forward_pre_hook(lambda m, i: shapes.__setitem__(m, i[0].shape[1:])) for m in paths]
        try:
            self.agent.encoder(obs)
        finally:
            for hook in hooks:
                hook.remove()
        return masks, shapes

    def maybe_reset(self, iteration: int, obs: torch.Tensor) -> int | None:
        """Reset the dormant units on `obs` when `iteration` is a multiple of `every`; the number reset, else None."""
        if iteration % self.every:
            return None
        training = self.agent.training
        self.agent.eval()
        try:
            return self.reset(obs)
        finally:
            self.agent.train(training)

    @torch.no_grad()
    def reset(self, obs: torch.Tensor) -> int:
        """Re-initialize every unit that is dormant on `obs`; returns how many."""
        masks, shapes = self.dormant(obs)
        units = {layer.name: masks[layer.name].nonzero().squeeze(1) for layer in self.plan}
        for layer in self.plan:
            self._reinit(layer.module, units[layer.name])
        for layer in self.plan:
            for reader, path in layer.readers:
                columns = units[layer.name]
                if path is not None:
                    columns = channel_columns(path, shapes[path[0]], reader.weight.device)[columns].any(0)
                self._zero(reader.weight, (slice(None), columns))
        return int(sum(u.numel() for u in units.values()))

    def _reinit(self, module: nn.Conv2d | nn.Linear, units: torch.Tensor) -> None:
        """Kaiming-uniform incoming weights and a uniform bias for `units`, with their Adam moments zeroed."""
        fresh = torch.empty_like(module.weight)
        nn.init.kaiming_uniform_(fresh, a=math.sqrt(5))
        module.weight[units] = fresh[units]
        self._clear_moments(module.weight, (units,))
        if module.bias is not None:
            bound = 1 / math.sqrt(module.weight[0].numel())
            module.bias[units] = torch.empty_like(module.bias[units]).uniform_(-bound, bound)
            self._clear_moments(module.bias, (units,))

    def _zero(self, weight: torch.Tensor, index: tuple) -> None:
        weight[index] = 0
        self._clear_moments(weight, index)

    def _clear_moments(self, param: torch.Tensor, index: tuple) -> None:
        for value in self.optimizer.state.get(param, {}).values():
            if torch.is_tensor(value) and value.shape == param.shape:
                value[index] = 0
