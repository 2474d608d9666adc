"""Gradual magnitude pruning of the encoder (facts §6, after Obando-Ceron et al. 2024), timed as the release.

Pruned tensors: the weight and bias of every Conv2d and Linear inside `agent.encoder` (the actor,
critic and Q heads are outside it, so they are never pruned). Masks use torch.nn.utils.prune's
reparametrization: each tensor becomes `<name>_orig` (the trained parameter, the same object the
optimizer holds) times the buffer `<name>_mask`, recomputed by a forward pre-hook, so pruned entries
stay zero through optimizer steps and the masks travel in the state_dict (`load_agent` re-applies the
reparametrization via `prepare_pruned` before loading). Masks are updated in place, which keeps their
memory format (channels-last works) and their identity (torch.compile sees no new buffers).

Schedule: r(i) = target·(1 − (1 − (i − s)/(e − s))³) for PPO iteration i in [s, e], 0 before s,
target after e, with s = ⌊start·N⌋ and e = ⌊end·N⌋ for N iterations (bit-identical to the release's).

What `step(i)` does, which is what the release does (the faithful default):
- Timing: it is called at the end of iteration i, after the PPO update (and after that iteration's
  evaluation and dormant-neuron measurement, as in the release), and applies iteration i's sparsity, so
  iteration i + 1 trains at r(i). Its first call (i = 1) prunes nothing: the release's first call only
  advances its counter. r(1) is 0 unless s = 0 (with the default start 0.2: runs of under 5
  iterations); where r(1) > 0 the release stays ⌊r(1)·n⌋ entries short for the whole run, while the
  counts here follow the rule below.
- Counts ("layer" mode, the release): after iteration i >= 2 a tensor of n entries has ⌊r(i)·n⌋ masked
  entries in all (truncation, not rounding; float64 products as the release's). "global" mode (the
  option) ranks the still-unmasked entries of all pruned tensors together so that ⌊r(i)·total⌋ are
  masked, and layers end at different sparsities.
- Ranking: by |value| among the still-unmasked entries, where the value is the tensor torch's pre-hook
  last computed (orig × mask at the last forward pass), as the release ranks by `module.weight`: in the
  PPO loop that is the weight before the iteration's final optimizer step (after it at evaluation
  iterations, whose evaluation forward passes come first). A layer none of whose tensors has been pruned
  yet is ranked by its parameter's current value instead: before its first pruning the release's
  `module.weight` is still the parameter itself.
- Ties: entries with equal magnitude at the threshold are pruned in row-major (flat index) order, lowest
  index first; the release's torch.topk leaves the order of such ties unspecified.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import nn
from torch.nn.utils import prune

from impoola.options import check_choice

PruningMode = Literal["layer", "global"]


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
    """Boolean mask of exactly `count` (>= 1) smallest entries of a flat tensor (selection, not a sort).

    Entries equal to the count-th smallest value are taken lowest index first.
    """
    threshold = torch.kthvalue(score, count).values
    chosen = score < threshold
    ties = (score == threshold).nonzero().squeeze(1)
    chosen[ties[: count - int(chosen.sum())]] = True
    return chosen


class GradualPruner:
    """Prunes `agent.encoder` along the cubic schedule; call `step(iteration)` at the end of every PPO iteration."""

    def __init__(
        self,
        agent: nn.Module,
        mode: PruningMode = "layer",
        num_iterations: int = 1525,
        target: float = 0.9,
        start: float = 0.2,
        end: float = 0.8,
    ):
        check_choice("pruning_mode", mode, get_args(PruningMode))
        self.mode, self.num_iterations, self.target, self.start, self.end = mode, num_iterations, target, start, end
        self.targets = prepare_pruned(agent)

    def sparsity_at(self, iteration: int) -> float:
        return schedule(iteration, self.num_iterations, self.target, self.start, self.end)

    @torch.no_grad()
    def step(self, iteration: int) -> float:
        """Iteration `iteration`'s pruning, called at its end (module docstring); returns the overall sparsity."""
        if iteration <= 1:
            return self.sparsity()
        rate = self.sparsity_at(iteration)
        scores = [self._scores(module, name) for module, name in self.targets]
        if self.mode == "layer":
            for (module, name), score in zip(self.targets, scores):
                self._prune(module, name, score, math.floor(rate * score.numel()))
        else:
            flat = torch.cat(scores)
            count = math.floor(rate * flat.numel())
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
        """|ranking value| of the unmasked entries and -1 for masked ones, flattened (logical order)."""
        mask = getattr(module, f"{name}_mask")
        pruned = any(bool((buffer == 0).any()) for key, buffer in module.named_buffers(recurse=False)
                     if key.endswith("_mask"))
        value = getattr(module, name) if pruned else getattr(module, f"{name}_orig")
        return value.detach().abs().masked_fill(mask == 0, -1.0).reshape(-1)

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
