"""Option groups shared by the training scripts; each script's `Args` dataclass inherits them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from impoola.models.encoders import ENCODERS, PE_PLACEMENTS
from impoola.models.heads import HEADS

EncoderName = Literal[tuple(ENCODERS)]  # type: ignore[valid-type]  # the registry's families, as CLI choices


@dataclass
class ModelOptions:
    """Which network: the encoder family, its width and the paper's ablation/comparison variants.

    `model_name` is the stable short name used in run names, W&B tags and plots: the family and width
    (`impoola_s2`, `impala_s2`, `nature_s1`; `nature_f32-64-64` with explicit filters), then one suffix
    per non-default option, in this order:
    `_<pooling>` (a head other than the family's own: `_max`, `_stacked`, `_depthwise`, `_softmoe`,
    `_avg` for Nature w/ GAP, `_flatten`), `_k<k>` (pool_size k != 1), `_4seq` / `_4conv` (extra_stage
    for Impala/Impoola / Nature), `_pe` (positional encoding, placement "first") or `_pe_<placement>`,
    `_dropout<p>`. The training scripts append `BaselineOptions.suffix` (`_pruned`, `_redo`, ...).
    """

    encoder: EncoderName = "impoola"
    """encoder family: impala (flatten), impoola (global average pooling) or nature"""
    scale: float = 2
    """width scale τ: the Impala/Impoola channels are (16, 32, 32)·τ; nature τ=1..3 picks the plotted filters"""
    pooling: str | None = None
    """head after the final ReLU: flatten, avg, max, stacked, depthwise, softmoe (default: the family's)"""
    pool_size: int = 1
    """output size k of avg/max pooling (k=1: Impoola's global average pooling, k=2: the 2x2 ablation)"""
    cnn_filters: tuple[int, ...] | None = None
    """explicit Nature-CNN filters, e.g. 32 64 64 (default for τ=1..3: (16, 32, 32)·(τ+1)); 4 with extra_stage"""
    extra_stage: bool = False
    """impala/impoola: a 4th conv sequence, (16, 32, 32, 32)·τ; nature: "Nature + 1 conv" (k4 s2 x3, k3 s1)"""
    positional_encoding: bool = False
    """add a fixed sinusoidal positional encoding in [0, 0.1] (impala/impoola) at --pe_placement"""
    pe_placement: Literal["first", "last", "all", "before_pool", "after_pool"] = "first"
    """first: the input frame; last: the last conv sequence's output; all: every sequence's input; before/after_pool"""
    dropout: float = 0.0
    """dropout probability right before the encoder's Linear(-> 256) (the ablation uses 0.1)"""

    def validate(self) -> None:
        """Raise a one-line ValueError naming the first invalid model option."""
        if self.encoder not in ENCODERS:
            raise ValueError(f"invalid encoder {self.encoder!r}; valid: {', '.join(ENCODERS)}")
        family = ENCODERS[self.encoder].encoder_class
        pooling = self.resolved_pooling()
        if not self.scale > 0:
            raise ValueError(f"invalid scale {self.scale!r}; valid: a positive number (τ = 1..4 in the paper)")
        if pooling not in HEADS:
            raise ValueError(f"invalid pooling {pooling!r}; valid: {', '.join(sorted(HEADS))}")
        if self.pool_size < 1:
            raise ValueError(f"invalid pool_size {self.pool_size!r}; valid: a positive integer")
        if self.pool_size != 1 and pooling not in ("avg", "max"):
            raise ValueError(
                f"invalid pool_size {self.pool_size!r} for pooling {pooling!r}; valid: 1 (k x k needs avg or max)"
            )
        if self.cnn_filters is not None and any(f <= 0 for f in self.cnn_filters):
            raise ValueError(f"invalid cnn_filters {self.cnn_filters!r}; valid: positive integers")
        if self.pe_placement not in PE_PLACEMENTS:
            raise ValueError(f"invalid pe_placement {self.pe_placement!r}; valid: {', '.join(PE_PLACEMENTS)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"invalid dropout {self.dropout!r}; valid: 0 <= p < 1")
        if self.dropout > 0 and pooling == "softmoe":
            raise ValueError("invalid dropout with pooling 'softmoe'; valid: 0 (SoftMoE has no Linear to drop into)")
        family.check_options(self, pooling)

    def resolved_pooling(self) -> str:
        return self.pooling if self.pooling is not None else ENCODERS[self.encoder].default_pooling

    @property
    def model_name(self) -> str:
        """Stable short name used in run names, W&B tags and plots, e.g. impoola_s2 (suffixes: class docstring)."""
        family = ENCODERS[self.encoder]
        name = family.encoder_class.name_stem(self.encoder, self)
        pooling = self.resolved_pooling()
        if pooling != family.default_pooling:
            name += f"_{pooling}"
        if self.pool_size != 1:
            name += f"_k{self.pool_size}"
        if self.extra_stage:
            name += family.encoder_class.extra_stage_suffix
        if self.positional_encoding:
            name += "_pe" if self.pe_placement == "first" else f"_pe_{self.pe_placement}"
        if self.dropout > 0:
            name += f"_dropout{self.dropout:g}"
        return name


@dataclass
class BaselineOptions:
    """The paper's training-time baselines on top of a model: gradual magnitude pruning and ReDo (facts §6)."""

    pruning: bool = False
    """gradual magnitude pruning of every encoder Conv2d/Linear (weights and biases; heads excluded)"""
    pruning_mode: Literal["layer", "global"] = "layer"
    """layer: every tensor to the same sparsity (the release); global: one magnitude threshold over all of them"""
    pruning_target: float = 0.9
    """final sparsity"""
    pruning_start: float = 0.2
    """fraction of the PPO iterations where pruning starts (sparsity 0 before)"""
    pruning_end: float = 0.8
    """fraction of the PPO iterations where the target sparsity is reached (cubic schedule in between)"""
    redo: bool = False
    """ReDo: periodically re-initialize dormant units of the encoder"""
    redo_every: int = 100
    """PPO iterations between ReDo resets"""
    redo_tau: float = 0.025
    """dormant threshold: a unit's mean ReLU activation / its layer's mean <= tau"""
    redo_mode: Literal["dataflow", "release", "published"] = "dataflow"
    """dataflow: reset on the real dataflow; release: the release's reset function; published: measure, never reset
    (what produced the paper's "Impala + ReDo" curve: the release never called its reset)"""

    def validate_baselines(self) -> None:
        """Raise a one-line ValueError naming the first invalid baseline option."""
        from impoola.redo import REDO_MODES

        if self.pruning_mode not in ("layer", "global"):
            raise ValueError(f"invalid pruning_mode {self.pruning_mode!r}; valid: layer, global")
        if not 0 < self.pruning_target < 1:
            raise ValueError(f"invalid pruning_target {self.pruning_target!r}; valid: 0 < target < 1")
        if not 0 <= self.pruning_start <= self.pruning_end <= 1:
            raise ValueError(
                f"invalid pruning_start/pruning_end {self.pruning_start!r}/{self.pruning_end!r}; "
                "valid: 0 <= start <= end <= 1"
            )
        if self.redo_every < 1:
            raise ValueError(f"invalid redo_every {self.redo_every!r}; valid: a positive integer")
        if self.redo_mode not in REDO_MODES:
            raise ValueError(f"invalid redo_mode {self.redo_mode!r}; valid: {', '.join(REDO_MODES)}")
        if self.redo_tau < 0:
            raise ValueError(f"invalid redo_tau {self.redo_tau!r}; valid: a non-negative number")
        if self.pruning and self.redo:
            raise ValueError("invalid combination --pruning --redo; valid: one baseline per run")

    @property
    def suffix(self) -> str:
        """Model-name suffix of the enabled baseline: _pruned, _pruned_global, _redo[_release|_published] or empty."""
        if self.pruning:
            return "_pruned" if self.pruning_mode == "layer" else "_pruned_global"
        if not self.redo:
            return ""
        return "_redo" if self.redo_mode == "dataflow" else f"_redo_{self.redo_mode}"
