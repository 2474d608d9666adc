"""Pooling heads: what turns the encoder's final feature map into the vector read by its linear layer.

A head is registered under a short name and built from the feature map's shape; it returns the
modules to insert after the final ReLU and the number of features they produce. Adding a pooling
head is a few lines: write a builder and decorate it with `@register_head("name")`. The registry entry (`Head`)
also says which options the head allows, and the option checks read it:
- `replaces_linear=True` (SoftMoE): the head produces the latent itself: the encoder then adds no
  Linear(-> 256) + ReLU after it, and the actor/critic read its output directly; so there is no Linear for
  `--dropout` to drop into or for ReDo to reset (only `--redo_mode published`, which measures, applies).
- `sized=True` (avg, max): the head reads `--pool_size` k (a k x k output); other heads allow only k = 1.
- `release_redo=False` (depthwise): the head does not read the encoder's units by the rule ReDo's
  `--redo_mode release` assumes.

Heads (all read the map after the encoder's final ReLU):
- flatten: Impala-CNN, C·H·W features.
- avg: adaptive average pooling to k x k (k = `pool_size`; k = 1 is Impoola's global average pooling).
- max: adaptive max pooling to k x k (k = 1: global max pooling).
- stacked: 2x2 average pooling ⊕ 1x1 average pooling, 5·C features.
- depthwise: a learned spatial pooling, Conv2d(C, C, kernel = the whole map, groups = C), C features.
- softmoe: a Soft Mixture-of-Experts over the map's positions (see `SoftMoE`), 64·256 features.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from impoola.options import check_choice


@dataclass(frozen=True)
class HeadSpec:
    """The options a pooling head may read."""

    channels: int
    height: int
    width: int
    pool_size: int = 1
    latent_dim: int = 256


HeadBuilder = Callable[[HeadSpec], tuple[list[nn.Module], int]]


@dataclass(frozen=True)
class Head:
    """A `--pooling` choice: its builder and the options it allows (module docstring)."""

    build: HeadBuilder
    replaces_linear: bool = False
    sized: bool = False
    release_redo: bool = True


HEADS: dict[str, Head] = {}


def register_head(name: str, replaces_linear: bool = False, sized: bool = False,
                  release_redo: bool = True) -> Callable[[HeadBuilder], HeadBuilder]:
    """Register a head builder under `name`, with the options it allows (`Head`)."""

    def decorator(builder: HeadBuilder) -> HeadBuilder:
        HEADS[name] = Head(builder, replaces_linear, sized, release_redo)
        return builder

    return decorator


class StackedPool(nn.Module):
    """Concatenation of adaptive average poolings to several sizes (the "stacked 2x2 ⊕ 1x1" ablation)."""

    def __init__(self, sizes: tuple[int, ...] = (2, 1)):
        super().__init__()
        self.sizes = sizes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([nn.functional.adaptive_avg_pool2d(x, s).flatten(1) for s in self.sizes], dim=1)


class SoftMoE(nn.Module):
    """Soft Mixture-of-Experts over the tokens of a feature map (after Obando-Ceron et al. 2024).

    Tokens are the H·W positions of the (already ReLU'd) map, each of length C. With logits = tokens @ φ
    (one column per expert slot): dispatch weights = softmax over tokens (each slot is a convex mix of
    tokens), combine weights = softmax over all experts × slots jointly (each token's output is a convex
    mix of slot outputs). Each expert is Linear(C -> latent) + ReLU applied to its slots; the combined
    per-token outputs pass a ReLU and are flattened to tokens·latent features (64·256 = 16,384).
    Slots per expert = ceil(tokens·capacity_factor / experts) (7 for 64 tokens, 10 experts, factor 1).
    φ is drawn from Normal(0, `phi_std`), `phi_std` = √(1/10), and then clamped to ±2·`phi_std`, as in the
    release: about 4.55% of the entries sit exactly on the bounds and the std is about 0.959·`phi_std` (a
    truncated normal, which redraws instead, would have none on the bounds and std 0.880·`phi_std`).
    """

    def __init__(
        self,
        dim: int,
        num_tokens: int,
        latent_dim: int = 256,
        num_experts: int = 10,
        capacity_factor: float = 1.0,
        phi_std: float = math.sqrt(1 / 10),
    ):
        super().__init__()
        self.num_experts = num_experts
        self.slots = math.ceil(num_tokens * capacity_factor / num_experts)
        self.phi = nn.Parameter(torch.empty(dim, num_experts * self.slots))
        with torch.no_grad():
            self.phi.normal_(0.0, phi_std).clamp_(-2 * phi_std, 2 * phi_std)
        self.experts = nn.ModuleList(nn.Linear(dim, latent_dim) for _ in range(num_experts))

    def routing(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Dispatch and combine weights (batch, tokens, experts·slots) of tokens (batch, tokens, dim)."""
        logits = tokens @ self.phi
        return torch.softmax(logits, dim=1), torch.softmax(logits, dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.flatten(2).transpose(1, 2)
        dispatch, combine = self.routing(tokens)
        slots = (dispatch.transpose(1, 2) @ tokens).unflatten(1, (self.num_experts, self.slots))
        outputs = torch.cat([torch.relu(expert(slots[:, i])) for i, expert in enumerate(self.experts)], dim=1)
        return torch.relu(combine @ outputs).flatten(1)


@register_head("flatten")
def flatten_head(spec: HeadSpec) -> tuple[list[nn.Module], int]:
    """Impala-CNN: flatten the whole map."""
    return [nn.Flatten()], spec.channels * spec.height * spec.width


@register_head("avg", sized=True)
def avg_head(spec: HeadSpec) -> tuple[list[nn.Module], int]:
    """Impoola-CNN for pool_size 1 (global average pooling); k x k adaptive average pooling otherwise."""
    return [nn.AdaptiveAvgPool2d(spec.pool_size), nn.Flatten()], spec.channels * spec.pool_size**2


@register_head("max", sized=True)
def max_head(spec: HeadSpec) -> tuple[list[nn.Module], int]:
    """Global max pooling for pool_size 1; k x k adaptive max pooling otherwise."""
    return [nn.AdaptiveMaxPool2d(spec.pool_size), nn.Flatten()], spec.channels * spec.pool_size**2


@register_head("stacked")
def stacked_head(spec: HeadSpec) -> tuple[list[nn.Module], int]:
    """2x2 average pooling ⊕ global average pooling."""
    return [StackedPool((2, 1))], spec.channels * 5


@register_head("depthwise", release_redo=False)
def depthwise_head(spec: HeadSpec) -> tuple[list[nn.Module], int]:
    """Learned spatial pooling: one (H x W) filter per channel, with bias."""
    conv = nn.Conv2d(spec.channels, spec.channels, kernel_size=(spec.height, spec.width), groups=spec.channels)
    return [conv, nn.Flatten()], spec.channels


@register_head("softmoe", replaces_linear=True)
def softmoe_head(spec: HeadSpec) -> tuple[list[nn.Module], int]:
    """SoftMoE over the H·W positions; replaces the flatten + Linear(-> 256)."""
    tokens = spec.height * spec.width
    return [SoftMoE(spec.channels, tokens, spec.latent_dim)], tokens * spec.latent_dim


def build_head(name: str, spec: HeadSpec) -> tuple[list[nn.Module], int]:
    """Modules and output width of the head called `name`."""
    return HEADS[check_choice("pooling", name, sorted(HEADS))].build(spec)
