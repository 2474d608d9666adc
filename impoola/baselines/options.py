"""The baselines' option group: which of gradual magnitude pruning and ReDo a run adds, and their settings; and the rule
between a model and its baseline (`check_baseline_model`)."""

from __future__ import annotations

from dataclasses import dataclass
from impoola.baselines.pruning import PruningMode
from impoola.baselines.redo import RedoMode
from impoola.models.encoders import ModelOptions
from impoola.models.heads import HEADS
from impoola.options import Checked, Float, Int, refuse_unused


@dataclass(frozen=True)
class BaselineOptions(Checked):
    """The paper's training-time baselines on top of a model: gradual magnitude pruning and ReDo (facts §6)."""

    pruning: bool = False
    """gradual magnitude pruning of every encoder Conv2d/Linear (weights and biases; heads excluded)"""
    pruning_mode: PruningMode = "layer"
    """layer: every tensor to the same sparsity (the release); global: one magnitude threshold over all of them"""
    pruning_target: Float(0, 1, low_open=True, high_open=True) = 0.9
    """final sparsity"""
    pruning_start: Float(0, 1) = 0.2
    """fraction of the PPO iterations where pruning starts (sparsity 0 before)"""
    pruning_end: Float(0, 1) = 0.8
    """fraction of the PPO iterations where the target sparsity is reached (cubic schedule in between)"""
    redo: bool = False
    """ReDo: periodically re-initialize dormant units of the encoder"""
    redo_every: Int(1) = 100
    """PPO iterations between ReDo resets"""
    redo_tau: Float(0, 1) = 0.025
    """dormant threshold: a unit's mean ReLU activation / its layer's mean <= tau"""
    redo_mode: RedoMode = "dataflow"
    """dataflow: reset on the real dataflow; release: the release's reset function; published: measure, never reset
    (what produced the paper's "Impala + ReDo" curve: the release never called its reset)"""

    def check(self) -> None:
        """Rules between the baseline options."""
        if not self.pruning_start <= self.pruning_end:
            raise ValueError(
                f"invalid pruning_start/pruning_end {self.pruning_start!r}/{self.pruning_end!r}; "
                "valid: 0 <= start <= end <= 1"
            )
        if self.pruning and self.redo:
            raise ValueError("invalid combination --pruning --redo; valid: one baseline per run")
        if not self.pruning:
            refuse_unused(self, ("pruning_mode", "pruning_target", "pruning_start", "pruning_end"), "with --pruning")
        if not self.redo:
            refuse_unused(self, ("redo_every", "redo_tau", "redo_mode"), "with --redo")

    @property
    def suffix(self) -> str:
        """Model-name suffix of the enabled baseline: _pruned, _pruned_global, _redo[_release|_published] or empty."""
        if self.pruning:
            return "_pruned" if self.pruning_mode == "layer" else "_pruned_global"
        if not self.redo:
            return ""
        return "_redo" if self.redo_mode == "dataflow" else f"_redo_{self.redo_mode}"


def check_baseline_model(model: ModelOptions, baselines: BaselineOptions) -> None:
    """Rules between a model and its baseline: ReDo must be able to map the head's inputs to the encoder's units
    (what each head allows: its entry in the head registry)."""
    if not baselines.redo:
        return
    pooling = model.resolved_pooling()
    head = HEADS[pooling]
    if head.replaces_linear and baselines.redo_mode != "published":
        raise ValueError(f"invalid --redo with pooling {pooling!r} (redo_mode {baselines.redo_mode!r}: the encoder "
                         "has no Linear to reset); valid: redo_mode published, or another pooling")
    if not head.release_redo and baselines.redo_mode == "release":
        raise ValueError(f"invalid redo_mode 'release' with pooling {pooling!r} (its head does not read the units by "
                         "the release's rule); valid: redo_mode dataflow or published, or another pooling")
