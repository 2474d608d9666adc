"""Gradual magnitude pruning of the encoder (facts §6, after Obando-Ceron et al. 2024).

Pruned tensors: the weight and bias of every Conv2d and Linear inside `agent.encoder` (the actor,
critic and Q heads are outside it, so they are never pruned). Masks use torch.nn.utils.prune's
reparametrization: each tensor becomes `<name>_orig` (the trained parameter, the same object the
optimizer holds) times the buffer `<name>_mask`, recomputed by a forward pre-hook, so pruned entries
stay zero through optimizer steps and the masks travel in the state_dict (`load_agent` re-applies the
reparametrization via `prepare_pruned` before loading). Masks are updated in place, which keeps their
memory format (channels-last works) and their identity (torch.compile sees no new buffers).

Schedule: r(i) = target·(1 − (1 − (i − s)/(e − s))³) for PPO iteration i in [s, e], 0 before s,
target after e, with s = ⌊start·N⌋ and e = ⌊end·N⌋ for N iterations.
Modes: "layer" (the release, the default) prunes every tensor to round(r·size) zeros by |value|
among its still-unmasked entries; "global" ranks the still-unmasked entries of all pruned tensors
together and prunes round(r·total) of them, so layers end at different sparsities.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import prune

PRUNING_MODES = ("layer", "global")


def pruning_targets(agent: nn.Module) -> list[tuple[nn.Module, str]]:
    """(module, tensor name) of every weight and bias of the encoder's Conv2d and Linear layers."""
    return [
        (module, name)
        for module in agent.encoder.modules()
        if isinstance(module, (nn.Conv2d, nn.Linear))
        for name in ("weight", "bias")
        if getattr(module, name, None) is not None
    ]


def prepare_pruned(agent: nn.Module) -> list[tuple[nn.Module, str]]:
    """Give every pruning target a mask of ones (torch's prune.identity) unless it has one; return the targets."""
    targets = pruning_targets(agent)
    for module, name in targets:
        if not hasattr(module, f"{name}_mask"):
            prune.identity(module, name)
    return targets


def schedule(iteration: int, num_iterations: int, target: float, start: float, end: float) -> float:
    """The cubic sparsity schedule r(i)."""
    first, last = math.floor(start * num_iterations), math.floor(end * num_iterations)
    if iteration < first:
        return 0.0
    if iteration >= last:
        return target
    return target * (1 - (1 - (iteration - first) / (last - first)) ** 3)


def smallest(score: torch.Tensor, count: int) -> torch.Tensor:
    """Boolean mask of exactly `count` (>= 1) smallest entries of a flat tensor (selection, not a sort)."""
    threshold = torch.kthvalue(score, count).values
    chosen = score < threshold
    ties = (score == threshold).nonzero().squeeze(1)
    chosen[ties[: count - int(chosen.sum())]] = True
    return chosen


class GradualPruner:
    """Prunes `agent.encoder` along the cubic schedule; call `step(iteration)` once per PPO iteration."""

    def __init__(
        self,
        agent: nn.Module,
        mode: str = "layer",
        num_iterations: int = 1525,
        target: float = 0.9,
        start: float = 0.2,
        end: float = 0.8,
    ):
        if mode not in PRUNING_MODES:
            raise ValueError(f"invalid pruning mode {mode!r}; valid: {', '.join(PRUNING_MODES)}")
        self.mode, self.num_iterations, self.target, self.start, self.end = mode, num_iterations, target, start, end
        self.targets = prepare_pruned(agent)

    def sparsity_at(self, iteration: int) -> float:
        return schedule(iteration, self.num_iterations, self.target, self.start, self.end)

    @torch.no_grad()
    def step(self, iteration: int) -> float:
        """Prune to the scheduled sparsity of `iteration`; returns the overall sparsity of the pruned tensors."""
        rate = self.sparsity_at(iteration)
        scores = [self._scores(module, name) for module, name in self.targets]
        if self.mode == "layer":
            for (module, name), score in zip(self.targets, scores):
                self._prune(module, name, score, round(rate * score.numel()))
        else:
            flat = torch.cat(scores)
            count = round(rate * flat.numel())
            if count > int((flat < 0).sum()):
                kept = torch.split(~smallest(flat, count), [score.numel() for score in scores])
                for (module, name), keep in zip(self.targets, kept):
                    self._apply(module, name, keep)
        return self.sparsity()

    def sparsity(self) -> float:
        """Fraction of masked entries over all pruned tensors."""
        masks = [getattr(module, f"{name}_mask") for module, name in self.targets]
        return float(sum(int((m == 0).sum()) for m in masks) / sum(m.numel() for m in masks))

    @staticmethod
    def _scores(module: nn.Module, name: str) -> torch.Tensor:
        """|value| of the unmasked entries and -1 for masked ones, flattened (logical order)."""
        orig, mask = getattr(module, f"{name}_orig"), getattr(module, f"{name}_mask")
        return orig.abs().masked_fill(mask == 0, -1.0).reshape(-1)

    def _prune(self, module: nn.Module, name: str, score: torch.Tensor, count: int) -> None:
        """Mask the `count` smallest scores of one tensor (masked entries come first) if that adds any."""
        if count > int((score < 0).sum()):
            self._apply(module, name, ~smallest(score, count))

    @staticmethod
    def _apply(module: nn.Module, name: str, keep: torch.Tensor) -> None:
        """Multiply the mask in place by a flat keep-vector and refresh the masked tensor."""
        mask = getattr(module, f"{name}_mask")
        mask.mul_(keep.view(mask.shape).to(mask.dtype))
        setattr(module, name, getattr(module, f"{name}_orig") * mask)
