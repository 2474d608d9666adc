"""Dormant neurons (ReDo criterion, Sokar et al. 2023), measured exactly as the release does.

A unit's score is the mean of ReLU(raw layer output) over the batch (and spatial positions), divided
by the mean score of its layer; it is dormant if its score is <= tau (0.025) and "zero" if it is <= 0.
The measured layers are every Conv2d and Linear of the agent's encoder, in module order: for the
Impala/Impoola-CNN the 15 convs and the encoder linear (16 layers), for the Nature-CNN its 3 convs and
its linear; the actor, critic and Q heads are excluded. Hooks read each layer's own output, so the
first conv of a sequence is measured before max-pooling and a residual block's second conv before the
skip addition. All layers are measured in one forward pass of the encoder.

A unit is an output channel of a Conv2d (dim 1) and an output feature of a Linear (its last dim), so a
Linear applied to a (batch, slots, features) input is scored per feature over batch and slots.
- Pruned networks (as the release): units whose weight-mask row is entirely zero (fully pruned filters or
  rows) are left out of the layer before normalising, of the per-layer percentage and of the pooled ones.
- SoftMoE agents (the release measures none): the convs and each expert's Linear(C -> 256), whose 256
  output features are scored over the batch and the expert's 7 slots (the expert's raw output, before
  its ReLU). The pooled fractions therefore include the 10 x 256 expert units.
"""

from __future__ import annotations

import torch
from torch import nn

PREFIX = "dormant_neurons"
DEFAULT_TAU = 0.025
# Rows of the flattened observation batch the release measures: PPO the first 256 rows of the rollout
# (its first 4 steps of 64 envs; the 64 first observations at the start), DQN the first 32 envs.
DORMANT_BATCH_ROWS = {"ppo": 256, "dqn": 32}


def measured_layers(agent: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every Conv2d and Linear inside `agent.encoder`, in module order, named as in the agent."""
    return [
        (f"encoder.{name}", module)
        for name, module in agent.encoder.named_modules()
        if isinstance(module, (nn.Conv2d, nn.Linear))
    ]


def dormant_batch(agent_kind: str, obs: torch.Tensor) -> torch.Tensor:
    """The release's measurement batch: the first 256 (PPO) or 32 (DQN) rows of `obs` flattened over leading dims."""
    if agent_kind not in DORMANT_BATCH_ROWS:
        raise ValueError(f"invalid agent_kind {agent_kind!r}; valid: {', '.join(DORMANT_BATCH_ROWS)}")
    return obs.reshape(-1, *obs.shape[-3:])[: DORMANT_BATCH_ROWS[agent_kind]]


def unit_activity(module: nn.Module, output: torch.Tensor) -> torch.Tensor:
    """Mean of ReLU(output) per unit (Linear: the last dim; else dim 1) over all other dims."""
    unit_dim = output.dim() - 1 if isinstance(module, nn.Linear) else 1
    dims = [d for d in range(output.dim()) if d != unit_dim]
    return torch.relu(output).mean(dim=dims)


def live_units(module: nn.Module) -> torch.Tensor | None:
    """Units with a non-zero weight-mask row (None for an unpruned layer)."""
    mask = getattr(module, "weight_mask", None)
    return None if mask is None else mask.reshape(mask.shape[0], -1).ne(0).any(1)


def layer_activity(module: nn.Module, output: torch.Tensor) -> torch.Tensor:
    """`unit_activity` of the layer's live units (all units unless it is pruned)."""
    activity = unit_activity(module, output)
    live = live_units(module)
    return activity if live is None else activity[live]


def normalize_scores(activity: torch.Tensor) -> torch.Tensor:
    """Activity divided by its layer mean (all zeros stay zero when the whole layer is silent)."""
    mean = activity.mean()
    return activity / mean if mean > 0 else torch.zeros_like(activity)


@torch.no_grad()
def dormant_scores(agent: nn.Module, obs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Normalized score per live unit of every measured layer, from one forward pass of `agent.encoder` on `obs`."""
    layers = measured_layers(agent)
    activities: dict[str, torch.Tensor] = {}
    handles = [
        module.register_forward_hook(
            lambda m, _i, out, name=name: activities.__setitem__(name, layer_activity(m, out))
        )
        for name, module in layers
    ]
    was_training = agent.training
    agent.eval()
    try:
        agent.encoder(obs)
    finally:
        agent.train(was_training)
        for handle in handles:
            handle.remove()
    return {name: normalize_scores(activities[name]) for name, _ in layers}


def dormant_metrics(agent: nn.Module, obs: torch.Tensor, tau: float = DEFAULT_TAU) -> dict[str, float]:
    """Dormant and zero percentages pooled over all measured units, plus the dormant percentage per layer.

    Keys: `dormant_neurons/dormant_fraction`, `dormant_neurons/zero_fraction` and
    `dormant_neurons/<i>_<layer>` (i = layer index, layer = module name such as encoder.network.0.conv).
    """
    scores = dormant_scores(agent, obs)
    pooled = torch.cat(list(scores.values()))
    metrics = {
        f"{PREFIX}/dormant_fraction": 100.0 * (pooled <= tau).float().mean().item(),
        f"{PREFIX}/zero_fraction": 100.0 * (pooled <= 0).float().mean().item(),
    }
    for index, (name, layer_scores) in enumerate(scores.items()):
        if layer_scores.numel():  # a layer pruned away entirely has no percentage
            metrics[f"{PREFIX}/{index}_{name}"] = 100.0 * (layer_scores <= tau).float().mean().item()
    return metrics
