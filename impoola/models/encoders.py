"""Image encoders: Impala-CNN / Impoola-CNN (one class, a pooling-head choice) and Nature-CNN, and their registry.

`ENCODERS` maps each `--encoder` choice to its family: an `Encoder` subclass and the pooling head it uses by
default. A family's class builds itself from the model options (`from_options`), rejects the options it does not
support (`check_options`) and names its models (`name_stem`, `extra_stage_suffix`); the options' choices, the
model names parsed by `plot_utils` and the benchmark's choices all follow from `ENCODERS`. Adding an encoder
family is its class plus one entry.

Inputs are uint8 (N, 3, 64, 64) frames; the encoder divides by 255. No normalization layers.

Two choices reproduce what other implementations compute with the same architecture (the release's are the
defaults):
- `maxpool_padding` (`MAXPOOL_PADDINGS`): "symmetric" pads every conv sequence's 3x3/2 max-pool by one on each side
  (PyTorch's padding=1, the release); "same" is TensorFlow's 'same' padding (OpenAI's train-procgen): the padding
  a stride-2 window needs to give ceil(size/2) outputs, the odd pixel at the bottom/right, so on the even sizes
  here (64, 32, 16, 8) one row and column at the bottom and right only, which shifts the pooling grid by one pixel.
- `encoder_init` (`ENCODER_INITS`): "torch" keeps PyTorch's layer defaults, weights and biases from
  U(±1/√fan_in) (the release); "glorot" is TF 1.x's defaults for conv2d and dense: glorot_uniform weights,
  U(±√(6/(fan_in + fan_out))), and zero biases, applied to every Conv2d and Linear of the encoder (train-procgen).
Module names follow the release (`network.<i>.conv`, `network.<i>.res_block<j>.conv<k>`), so
per-layer metrics keep their names; the ablation options below add modules only when enabled.

Ablation options of `ImpalaEncoder` (facts §1):
- `channels=(16, 32, 32, 32)`: a 4th conv sequence, 4x4 map.
- `positional_encoding`: a fixed sinusoidal map rescaled to [0, 0.1] added at one of five placements:
  "first" (the input frame of the first conv sequence; our default, the paper's choice is unknown),
  "all" (the input of every conv sequence), "before_pool" / "after_pool" (inside every conv sequence,
  around its max-pool), "last" (the output of the last conv sequence: the final map before the final
  ReLU and the pooling). The encoding lives inside the conv sequences, so layer names do not move.
- `dropout`: Dropout(p) right before the Linear(-> 256).
Nature-CNN options: four filters give "Nature + 1 conv" (k4 s2 ×3, then k3 s1 -> 4x4 map); pooling
"avg" gives "Nature w/ GAP", whose average pooling sits *before* the final ReLU as in the release.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

import torch
from torch import nn

from impoola.models.heads import HEADS, HeadSpec, build_head
from impoola.options import Checked, Choice, Float, Int, check_choice, refuse_unused

LATENT_DIM = 256
IMPALA_CHANNELS = (16, 32, 32)
NATURE_FILTERS = {1: (32, 64, 64), 2: (48, 96, 96), 3: (64, 128, 128)}
PePlacement = Literal["first", "last", "all", "before_pool", "after_pool"]
PE_PLACEMENTS: tuple[PePlacement, ...] = get_args(PePlacement)
PE_SCALE = 0.1
MaxpoolPadding = Literal["symmetric", "same"]
MAXPOOL_PADDINGS: tuple[MaxpoolPadding, ...] = get_args(MaxpoolPadding)
NATURE_LAYOUTS = {3: ((8, 4), (4, 2), (3, 1)), 4: ((4, 2), (4, 2), (4, 2), (3, 1))}


def sinusoidal_encoding(channels: int, height: int, width: int) -> torch.Tensor:
    """A (channels, height, width) 2-D sinusoidal encoding rescaled to [0, PE_SCALE].

    The first ceil(C/2) channels encode the row, the others the column; channel pair (2i, 2i+1) holds
    sin/cos of position / 10000^(2i/d) as in the Transformer's 1-D encoding. Computed on the CPU (a
    constant; `Module.to` moves the buffer).
    """

    def encode(dim: int, length: int) -> torch.Tensor:
        index = torch.arange(dim, device="cpu")
        angle = torch.arange(length, device="cpu")[None, :] / 10000 ** (2 * (index[:, None] // 2) / max(dim, 1))
        return torch.where(index[:, None] % 2 == 0, torch.sin(angle), torch.cos(angle))

    rows = (channels + 1) // 2
    cols = channels - rows
    pe = torch.cat([
        encode(rows, height)[:, :, None].expand(rows, height, width),
        encode(cols, width)[:, None, :].expand(cols, height, width),
    ])
    return (pe - pe.min()) / (pe.max() - pe.min()) * PE_SCALE


class PositionalEncoding(nn.Module):
    """Adds a fixed sinusoidal encoding (a non-persistent buffer, no parameters) to (N, C, H, W) maps."""

    def __init__(self, channels: int, height: int, width: int):
        super().__init__()
        self.register_buffer("encoding", sinusoidal_encoding(channels, height, width)[None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.encoding


class ResidualBlock(nn.Module):
    """x + Conv3x3(ReLU(Conv3x3(ReLU(x))))."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv1(torch.relu(self.conv0(torch.relu(x))))


class SamePaddedMaxPool2d(nn.Module):
    """TensorFlow's max-pool with padding 'same': ceil(size / stride) outputs per side, the padding a window needs
    split with the odd pixel at the bottom/right, padded cells never chosen (they hold -inf)."""

    def __init__(self, kernel_size: int = 3, stride: int = 2):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def padding(self, size: int) -> tuple[int, int]:
        """(before, after) padding of one spatial side of `size` pixels."""
        outputs = -(-size // self.stride)
        total = max((outputs - 1) * self.stride + self.kernel_size - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = self.padding(x.shape[-2])
        left, right = self.padding(x.shape[-1])
        x = nn.functional.pad(x, (left, right, top, bottom), value=float("-inf"))
        return nn.functional.max_pool2d(x, self.kernel_size, self.stride)


def max_pool(padding: MaxpoolPadding) -> nn.Module:
    """The 3x3/2 max-pool of a conv sequence with `padding` "symmetric" (PyTorch's padding=1) or "same" (TF's)."""
    if check_choice("maxpool_padding", padding, MAXPOOL_PADDINGS) == "same":
        return SamePaddedMaxPool2d(kernel_size=3, stride=2)
    return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)


class ConvSequence(nn.Module):
    """Conv3x3 -> MaxPool(3, stride 2) -> 2 residual blocks; halves the spatial size (rounding up).

    `pe_where` ("input", "before_pool", "after_pool" or "output") adds a `pos_enc` module at that
    point; `size` is the input's spatial size; `pool_padding` is the max-pool's padding (`MAXPOOL_PADDINGS`).
    """

    def __init__(self, in_channels: int, out_channels: int, pe_where: str | None = None, size: int = 64,
                 pool_padding: str = "symmetric"):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.max_pool = max_pool(pool_padding)
        self.res_block0 = ResidualBlock(out_channels)
        self.res_block1 = ResidualBlock(out_channels)
        self.pe_where = pe_where
        if pe_where is not None:
            channels = in_channels if pe_where == "input" else out_channels
            side = size if pe_where in ("input", "before_pool") else (size + 1) // 2
            self.pos_enc = PositionalEncoding(channels, side, side)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pe_where == "input":
            x = self.pos_enc(x)
        x = self.conv(x)
        if self.pe_where == "before_pool":
            x = self.pos_enc(x)
        x = self.max_pool(x)
        if self.pe_where == "after_pool":
            x = self.pos_enc(x)
        x = self.res_block1(self.res_block0(x))
        return self.pos_enc(x) if self.pe_where == "output" else x


class Encoder(nn.Module):
    """Base of all encoders: uint8 frames in, `out_features` latent out via `self.network`."""

    network: nn.Sequential
    out_features: int
    autocast_dtype: torch.dtype | None = None
    """set by impoola.performance: run the network under autocast to this dtype; the latent stays float32"""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.autocast_dtype is None:
            return self.network(obs.float() / 255.0)
        with torch.autocast(obs.device.type, self.autocast_dtype):
            return self.network(obs.float() / 255.0).float()

    extra_stage_suffix: ClassVar[str] = "_4seq"
    """model-name suffix of `--extra_stage`"""

    @classmethod
    def from_options(cls, options: ModelOptions) -> Encoder:
        """The encoder the (validated) model options describe."""
        raise NotImplementedError

    @classmethod
    def check_options(cls, options: ModelOptions, pooling: str) -> None:
        """Raise a one-line ValueError for a model option this family does not support (default: none)."""

    @classmethod
    def name_stem(cls, family: str, options: ModelOptions) -> str:
        """The family-and-width start of the model name, e.g. impoola_s2."""
        return f"{family}_s{options.scale:g}"


def sequence_pe(placement: str | None, index: int, count: int) -> str | None:
    """Where conv sequence `index` of `count` adds the positional encoding for an encoder-level placement."""
    if placement == "all" or (placement == "first" and index == 0):
        return "input"
    if placement == "last":
        return "output" if index == count - 1 else None
    return placement if placement in ("before_pool", "after_pool") else None


class ImpalaEncoder(Encoder):
    """Impala-CNN (pooling="flatten") or Impoola-CNN (pooling="avg") with width scale τ, plus ablations."""

    def __init__(
        self,
        scale: float = 2,
        pooling: str = "flatten",
        pool_size: int = 1,
        channels: tuple[int, ...] = IMPALA_CHANNELS,
        in_channels: int = 3,
        image_size: int = 64,
        latent_dim: int = LATENT_DIM,
        positional_encoding: str | None = None,
        dropout: float = 0.0,
        maxpool_padding: str = "symmetric",
    ):
        super().__init__()
        if positional_encoding is not None:
            check_choice("positional_encoding", positional_encoding, PE_PLACEMENTS)
        widths = [int(round(c * scale)) for c in channels]
        layers: list[nn.Module] = []
        size, previous = image_size, in_channels
        for index, width in enumerate(widths):
            layers.append(ConvSequence(previous, width, sequence_pe(positional_encoding, index, len(widths)), size,
                                       maxpool_padding))
            previous, size = width, (size + 1) // 2
        layers.append(nn.ReLU())
        head, features = build_head(pooling, HeadSpec(previous, size, size, pool_size, latent_dim))
        layers += head
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        if HEADS[pooling].replaces_linear:
            self.out_features = features
        else:
            layers += [nn.Linear(features, latent_dim), nn.ReLU()]
            self.out_features = latent_dim
        self.network = nn.Sequential(*layers)

    @classmethod
    def from_options(cls, options: ModelOptions) -> ImpalaEncoder:
        """Channels (16, 32, 32)·τ, plus a 4th sequence of 32·τ with `extra_stage`."""
        return cls(
            options.scale,
            pooling=options.resolved_pooling(),
            pool_size=options.pool_size,
            channels=IMPALA_CHANNELS + ((IMPALA_CHANNELS[-1],) if options.extra_stage else ()),
            positional_encoding=options.pe_placement if options.positional_encoding else None,
            dropout=options.dropout,
            maxpool_padding=options.maxpool_padding,
        )

    @classmethod
    def check_options(cls, options: ModelOptions, pooling: str) -> None:
        """Every conv layer keeps at least one channel at width scale τ; explicit filters are Nature-CNN's."""
        refuse_unused(options, ("cnn_filters",), "with --encoder nature")
        narrowest = min(int(round(c * options.scale)) for c in IMPALA_CHANNELS)
        if narrowest < 1:
            raise ValueError(f"invalid scale {options.scale!r}: the narrowest conv layer would have {narrowest} "
                             f"channels; valid: scale >= {1 / (2 * min(IMPALA_CHANNELS)):g} (τ = 1..4 in the paper)")


class NatureEncoder(Encoder):
    """Nature-CNN: Conv 8x8/4, 4x4/2, 3x3/1 (no padding), flatten, Linear -> 256.

    Four filters: "Nature + 1 conv" (4x4/2 three times, then 3x3/1). pooling="avg": "Nature w/ GAP",
    global average pooling between the last conv and its ReLU (the release's order).
    """

    def __init__(
        self,
        filters: tuple[int, ...] = NATURE_FILTERS[1],
        in_channels: int = 3,
        image_size: int = 64,
        latent_dim: int = LATENT_DIM,
        pooling: str = "flatten",
        dropout: float = 0.0,
    ):
        super().__init__()
        if len(filters) not in NATURE_LAYOUTS or pooling not in ("flatten", "avg"):
            raise ValueError(
                f"invalid Nature-CNN filters {filters!r} / pooling {pooling!r}; valid: 3 or 4 filters, flatten or avg"
            )
        layers: list[nn.Module] = []
        size, previous = image_size, in_channels
        for width, (kernel, stride) in zip(filters, NATURE_LAYOUTS[len(filters)]):
            layers += [nn.Conv2d(previous, width, kernel_size=kernel, stride=stride), nn.ReLU()]
            previous, size = width, (size - kernel) // stride + 1
        if pooling == "avg":
            layers.insert(len(layers) - 1, nn.AdaptiveAvgPool2d(1))
            size = 1
        layers.append(nn.Flatten())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Linear(previous * size * size, latent_dim), nn.ReLU()]
        self.network = nn.Sequential(*layers)
        self.out_features = latent_dim

    extra_stage_suffix: ClassVar[str] = "_4conv"

    @classmethod
    def filters(cls, options: ModelOptions) -> tuple[int, ...]:
        """Explicit `--cnn_filters`, else the filters that reproduce the plotted counts for τ = 1, 2, 3.

        With `extra_stage` the default filters repeat their last width ("Nature + 1 conv").
        """
        if options.cnn_filters is not None:
            return tuple(options.cnn_filters)
        filters = NATURE_FILTERS[int(options.scale)]
        return (*filters, filters[-1]) if options.extra_stage else filters

    @classmethod
    def from_options(cls, options: ModelOptions) -> NatureEncoder:
        """Nature-CNN with `filters(options)`; pooling avg is "Nature w/ GAP"."""
        return cls(cls.filters(options), pooling=options.resolved_pooling(), dropout=options.dropout)

    @classmethod
    def check_options(cls, options: ModelOptions, pooling: str) -> None:
        """Flatten or global average pooling, no positional encoding, 3 filters (4 with extra_stage)."""
        if pooling not in ("flatten", "avg") or options.pool_size != 1:
            raise ValueError(
                f"invalid pooling {pooling!r} (k={options.pool_size}) for encoder 'nature'; valid: flatten, avg (k=1)"
            )
        if options.positional_encoding:
            raise ValueError("invalid positional_encoding for encoder 'nature'; valid: impala, impoola")
        if options.maxpool_padding != "symmetric":
            raise ValueError(f"invalid maxpool_padding {options.maxpool_padding!r} for encoder 'nature' (it has no "
                             "max-pool); valid: symmetric, or encoder impala / impoola")
        count = 4 if options.extra_stage else 3
        if options.cnn_filters is not None and len(options.cnn_filters) != count:
            raise ValueError(f"invalid cnn_filters {options.cnn_filters!r}; valid: {count} positive integers")
        if options.cnn_filters is None and options.scale not in NATURE_FILTERS:
            raise ValueError(
                f"invalid scale {options.scale!r} for encoder 'nature'; valid: 1, 2, 3 (or give --cnn_filters)"
            )

    @classmethod
    def name_stem(cls, family: str, options: ModelOptions) -> str:
        """nature_s<τ>, or nature_f<filters> with explicit filters (e.g. nature_f32-64-64)."""
        if options.cnn_filters is None:
            return super().name_stem(family, options)
        return f"{family}_f" + "-".join(str(f) for f in options.cnn_filters)


def glorot_init(encoder: nn.Module) -> None:
    """TF 1.x's defaults for conv2d and dense on every Conv2d and Linear of `encoder`: weights from
    U(±√(6/(fan_in + fan_out))) (fan = channels x kernel area), zero biases."""
    for module in encoder.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


ENCODER_INITS: dict[str, Callable[[nn.Module], None] | None] = {
    "torch": None,  # PyTorch's layer defaults, as the layers were built: nothing more to draw
    "glorot": glorot_init,
}
"""`--encoder_init` choices: the function that re-initialises a freshly built encoder (None: keep PyTorch's)."""


def initialise(encoder: Encoder, scheme: str) -> Encoder:
    """`encoder` re-initialised by `scheme` (`ENCODER_INITS`), in place."""
    init = ENCODER_INITS[check_choice("encoder_init", scheme, tuple(ENCODER_INITS))]
    if init is not None:
        init(encoder)
    return encoder


@dataclass(frozen=True)
class EncoderFamily:
    """An `--encoder` choice: the class that builds it and the pooling head it uses unless `--pooling` is given."""

    encoder_class: type[Encoder]
    default_pooling: str


ENCODERS: dict[str, EncoderFamily] = {
    "impala": EncoderFamily(ImpalaEncoder, "flatten"),
    "impoola": EncoderFamily(ImpalaEncoder, "avg"),
    "nature": EncoderFamily(NatureEncoder, "flatten"),
}

EncoderName = Choice(ENCODERS)
"""an `--encoder` choice: the registry's families"""


@dataclass(frozen=True)
class ModelOptions(Checked):
    """Which network: the encoder family, its width and the paper's ablation/comparison variants.

    `model_name` is the stable short name used in run names, W&B tags and plots: the family and width
    (`impoola_s2`, `impala_s2`, `nature_s1`; `nature_f32-64-64` with explicit filters), then one suffix
    per non-default option, in this order:
    `_<pooling>` (a head other than the family's own: `_max`, `_stacked`, `_depthwise`, `_softmoe`,
    `_avg` for Nature w/ GAP, `_flatten`), `_k<k>` (pool_size k != 1), `_4seq` / `_4conv` (extra_stage
    for Impala/Impoola / Nature), `_pe` (positional encoding, placement "first") or `_pe_<placement>`,
    `_dropout<p>`, `_samepool` (TensorFlow's max-pool padding), `_glorot` (TF 1.x initialisation). The training
    scripts append `BaselineOptions.suffix` (`_pruned`, `_redo`, ...).
    """

    encoder: EncoderName = "impoola"
    """encoder family: impala (flatten), impoola (global average pooling) or nature"""
    scale: Float(0, 16, low_open=True) = 2
    """width scale τ: the Impala/Impoola channels are (16, 32, 32)·τ; nature τ=1..3 picks the plotted filters"""
    pooling: Choice(HEADS) | None = None
    """head after the final ReLU: flatten, avg, max, stacked, depthwise, softmoe (default: the family's)"""
    pool_size: Int(1, 16) = 1
    """output size k of avg/max pooling (k=1: Impoola's global average pooling, k=2: the 2x2 ablation)"""
    cnn_filters: tuple[int, ...] | None = None
    """explicit Nature-CNN filters, e.g. 32 64 64 (default for τ=1..3: (16, 32, 32)·(τ+1)); 4 with extra_stage"""
    extra_stage: bool = False
    """impala/impoola: a 4th conv sequence, (16, 32, 32, 32)·τ; nature: "Nature + 1 conv" (k4 s2 x3, k3 s1)"""
    positional_encoding: bool = False
    """add a fixed sinusoidal positional encoding in [0, 0.1] (impala/impoola) at --pe_placement"""
    pe_placement: PePlacement = "first"
    """first: the input frame; last: the last conv sequence's output; all: every sequence's input; before/after_pool"""
    dropout: Float(0, 1, high_open=True) = 0.0
    """dropout probability right before the encoder's Linear(-> 256) (the ablation uses 0.1)"""
    maxpool_padding: MaxpoolPadding = "symmetric"
    """impala/impoola conv sequences' 3x3/2 max-pool: symmetric (padding 1 on each side, PyTorch's; the release) or
    same (TensorFlow's 'same': one row and column at the bottom/right only; OpenAI's train-procgen)"""
    encoder_init: Choice(ENCODER_INITS) = "torch"
    """encoder initialisation: torch (PyTorch's defaults, U(±1/√fan_in) weights and biases; the release) or glorot
    (TF 1.x's defaults: glorot_uniform weights, zero biases; OpenAI's train-procgen). The heads stay orthogonal"""

    def check(self) -> None:
        """Rules between the model options and the shapes they imply (the family's own: `check_options`)."""
        family = ENCODERS[self.encoder].encoder_class
        pooling = self.resolved_pooling()
        head = HEADS[pooling]
        if not self.positional_encoding:
            refuse_unused(self, ("pe_placement",), "with --positional_encoding")
        if self.pool_size != 1 and not head.sized:
            sized = " or ".join(name for name, other in HEADS.items() if other.sized)
            raise ValueError(
                f"invalid pool_size {self.pool_size!r} for pooling {pooling!r}; valid: 1 (k x k needs {sized})"
            )
        if self.cnn_filters is not None and any(f <= 0 for f in self.cnn_filters):
            raise ValueError(f"invalid cnn_filters {self.cnn_filters!r}; valid: positive integers")
        if self.dropout > 0 and head.replaces_linear:
            raise ValueError(f"invalid dropout with pooling {pooling!r}; valid: 0 (the head outputs the latent: it has "
                             "no Linear to drop into)")
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
        if self.maxpool_padding != "symmetric":
            name += f"_{self.maxpool_padding}pool"
        if self.encoder_init != "torch":
            name += f"_{self.encoder_init}"
        return name
