"""The option groups both training scripts compose (environment, model, baselines, run, evaluation, logging,
speed), each checking its own values when it is built (impoola.options); each script adds its algorithm's
hyperparameters flat in its own `Args`. Flag names and config.json / W&B keys are the fields' names."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Literal

from impoola.envs.games import DISTRIBUTION_MODES, GAMES, TRACKS, check_choice
from impoola.models.encoders import ENCODER_INITS, ENCODERS, MAXPOOL_PADDINGS, PE_PLACEMENTS
from impoola.models.heads import HEADS
from impoola.options import Checked, Float, Int, Maybe, refuse_unused
from impoola.presets import PRESETS
from impoola.redo import REDO_MODES
from impoola.rundir import check_name, run_name

EncoderName = Literal[tuple(ENCODERS)]  # type: ignore[valid-type]  # the registry's families, as CLI choices
PRECISIONS = ("float32", "bf16")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
WANDB_MODES = ("offline", "online", "disabled")
CHECKPOINT_SIGNALS = ("SIGTERM", "SIGUSR2")
SEED_RANGE = Int(0, 2**32, high_open=True)


@dataclass(frozen=True)
class EnvOptions(Checked):
    """Environment: which Procgen game, mode and levels."""

    env_id: str = "bigfish"
    """Procgen game (one of the 16)"""
    distribution_mode: str = "easy"
    """Procgen distribution mode: easy or hard"""
    track: str = "generalization"
    """generalization (train on 200/500 levels, test on all), efficiency (train on all) or finetuning (100 levels from 201/501)"""
    procgen_threads: Maybe(Int(0, 256)) = None
    """Procgen worker threads per vectorized env (default: min(4, cores); 0: step in the calling thread)"""

    def check(self) -> None:
        check_choice("env_id", self.env_id, GAMES)
        check_choice("distribution_mode", self.distribution_mode, DISTRIBUTION_MODES)
        check_choice("track", self.track, TRACKS)


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
    pooling: str | None = None
    """head after the final ReLU: flatten, avg, max, stacked, depthwise, softmoe (default: the family's)"""
    pool_size: Int(1, 16) = 1
    """output size k of avg/max pooling (k=1: Impoola's global average pooling, k=2: the 2x2 ablation)"""
    cnn_filters: tuple[int, ...] | None = None
    """explicit Nature-CNN filters, e.g. 32 64 64 (default for τ=1..3: (16, 32, 32)·(τ+1)); 4 with extra_stage"""
    extra_stage: bool = False
    """impala/impoola: a 4th conv sequence, (16, 32, 32, 32)·τ; nature: "Nature + 1 conv" (k4 s2 x3, k3 s1)"""
    positional_encoding: bool = False
    """add a fixed sinusoidal positional encoding in [0, 0.1] (impala/impoola) at --pe_placement"""
    pe_placement: Literal["first", "last", "all", "before_pool", "after_pool"] = "first"
    """first: the input frame; last: the last conv sequence's output; all: every sequence's input; before/after_pool"""
    dropout: Float(0, 1, high_open=True) = 0.0
    """dropout probability right before the encoder's Linear(-> 256) (the ablation uses 0.1)"""
    maxpool_padding: Literal["symmetric", "same"] = "symmetric"
    """impala/impoola conv sequences' 3x3/2 max-pool: symmetric (padding 1 on each side, PyTorch's; the release) or
    same (TensorFlow's 'same': one row and column at the bottom/right only; OpenAI's train-procgen)"""
    encoder_init: Literal["torch", "glorot"] = "torch"
    """encoder initialisation: torch (PyTorch's defaults, U(±1/√fan_in) weights and biases; the release) or glorot
    (TF 1.x's defaults: glorot_uniform weights, zero biases; OpenAI's train-procgen). The heads stay orthogonal"""

    def check(self) -> None:
        """Rules between the model options and the shapes they imply (the family's own: `check_options`)."""
        check_choice("encoder", self.encoder, tuple(ENCODERS))
        check_choice("maxpool_padding", self.maxpool_padding, MAXPOOL_PADDINGS)
        check_choice("encoder_init", self.encoder_init, tuple(ENCODER_INITS))
        family = ENCODERS[self.encoder].encoder_class
        pooling = self.resolved_pooling()
        check_choice("pooling", pooling, tuple(sorted(HEADS)))
        check_choice("pe_placement", self.pe_placement, PE_PLACEMENTS)
        if not self.positional_encoding:
            refuse_unused(self, ("pe_placement",), "with --positional_encoding")
        if self.pool_size != 1 and pooling not in ("avg", "max"):
            raise ValueError(
                f"invalid pool_size {self.pool_size!r} for pooling {pooling!r}; valid: 1 (k x k needs avg or max)"
            )
        if self.cnn_filters is not None and any(f <= 0 for f in self.cnn_filters):
            raise ValueError(f"invalid cnn_filters {self.cnn_filters!r}; valid: positive integers")
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
        if self.maxpool_padding != "symmetric":
            name += f"_{self.maxpool_padding}pool"
        if self.encoder_init != "torch":
            name += f"_{self.encoder_init}"
        return name


@dataclass(frozen=True)
class BaselineOptions(Checked):
    """The paper's training-time baselines on top of a model: gradual magnitude pruning and ReDo (facts §6)."""

    pruning: bool = False
    """gradual magnitude pruning of every encoder Conv2d/Linear (weights and biases; heads excluded)"""
    pruning_mode: Literal["layer", "global"] = "layer"
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
    redo_mode: Literal["dataflow", "release", "published"] = "dataflow"
    """dataflow: reset on the real dataflow; release: the release's reset function; published: measure, never reset
    (what produced the paper's "Impala + ReDo" curve: the release never called its reset)"""

    def check(self) -> None:
        """Rules between the baseline options."""
        check_choice("pruning_mode", self.pruning_mode, ("layer", "global"))
        if not self.pruning_start <= self.pruning_end:
            raise ValueError(
                f"invalid pruning_start/pruning_end {self.pruning_start!r}/{self.pruning_end!r}; "
                "valid: 0 <= start <= end <= 1"
            )
        check_choice("redo_mode", self.redo_mode, REDO_MODES)
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
    """Rules between a model and its baseline: ReDo must be able to map the head's inputs to the encoder's units."""
    if not baselines.redo:
        return
    pooling = model.resolved_pooling()
    if pooling == "softmoe" and baselines.redo_mode != "published":
        raise ValueError(f"invalid --redo with pooling 'softmoe' (redo_mode {baselines.redo_mode!r}: the encoder has "
                         "no Linear to reset); valid: redo_mode published, or another pooling")
    if pooling == "depthwise" and baselines.redo_mode == "release":
        raise ValueError("invalid redo_mode 'release' with pooling 'depthwise' (its head does not read the units by "
                         "the release's rule); valid: redo_mode dataflow or published, or another pooling")

# Signals a scheduler or a person sends to end a job (preemption notices, SLURM's --signal, Ctrl-C, a closed
# terminal, a CPU-time limit). Signals a healthy process receives in normal operation (SIGCHLD from an exiting W&B
# child, SIGPIPE, SIGWINCH, SIGALRM, ...) and those the interpreter or libraries use are not among them.
PREEMPTION_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGXCPU")


def parse_signal(name: str) -> signal.Signals:
    """A preemption signal (PREEMPTION_SIGNALS) from its name (SIGTERM, TERM, usr2, ...); a one-line ValueError
    otherwise."""
    key = name.strip().upper()
    key = key if key.startswith("SIG") else f"SIG{key}"
    if key not in PREEMPTION_SIGNALS:
        raise ValueError(f"invalid checkpoint_signals value {name!r}; valid: {', '.join(PREEMPTION_SIGNALS)} "
                         "(signals that end a job, not ones a running process receives in normal operation)")
    return signal.Signals[key]


@dataclass(frozen=True)
class RunOptions(Checked):
    """Run: the seed, the run directory and its checkpoints."""

    seed: SEED_RANGE = 1
    """seed of torch, numpy, python and the environments (the paper uses 1..5)"""
    exp_name: str = "ppo"
    """experiment name, part of the run name"""
    run_name: str | None = None
    """run directory name (default: {env_id}__{exp_name}__{model}__s{seed}); one path component"""
    output_dir: str = "runs"
    """parent directory of run directories"""
    resume: bool = False
    """continue the run in an existing run directory from its newest checkpoint"""
    preset: str | None = None
    """a named set of defaults (impoola/presets.py, e.g. train-procgen); explicit flags still override it"""
    torch_deterministic: bool = True
    """GPU: cuDNN picks deterministic convolution algorithms (cudnn.deterministic=True, benchmark=False); other
    CUDA kernels may still differ in the last bits run to run. CPU runs are bitwise reproducible either way"""
    cuda: bool = True
    """use CUDA when available"""
    checkpoint_every: Int(1) = 100
    """write a checkpoint every this many iterations (PPO) / logged rows (DQN), and at every evaluation and the end"""
    keep_checkpoints: Int(1) = 3
    """how many of the newest checkpoints to keep"""
    checkpoint_signals: tuple[str, ...] = CHECKPOINT_SIGNALS
    """signals that make the run checkpoint at the end of the current iteration and exit with status 3: any of
    SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGXCPU"""

    def check(self) -> None:
        check_name("exp_name", self.exp_name)
        if self.run_name is not None:
            check_name("run_name", self.run_name)
        for name in self.checkpoint_signals:
            parse_signal(name)
        if self.preset is not None:
            check_choice("preset", self.preset, tuple(PRESETS))

    def resolved_run_name(self, env_id: str, model_name: str) -> str:
        """--run_name, or the default `{env_id}__{exp_name}__{model_name}__s{seed}`."""
        return self.run_name if self.run_name is not None else run_name(env_id, self.exp_name, model_name, self.seed)


@dataclass(frozen=True)
class EvalOptions(Checked):
    """Evaluation during and at the end of training."""

    eval_every_fraction: Float(0, 1, low_open=True) = 0.1
    """evaluate each time global_step passes the previous evaluation + this fraction of total_timesteps"""
    num_eval_episodes: Int(0) = 1000
    """episodes per track at each evaluation during training (0 disables evaluation during training)"""
    num_final_eval_episodes: Int(0) = 2500
    """episodes per track in the final evaluation (0 disables it)"""
    num_eval_envs: Maybe(Int(1, 4096)) = None
    """parallel environments of evaluation (default: num_envs); more envs than episodes is fine"""
    capture_video: bool = False
    """record one episode of the first evaluated track as an MP4 in <run>/videos/ at every evaluation (final too)"""


@dataclass(frozen=True)
class LoggingOptions(Checked):
    """Logging: W&B and the progress bar (metrics.jsonl and TensorBoard are always written)."""

    wandb_mode: Literal["offline", "online", "disabled"] = "offline"
    """W&B mode: offline (default, no account needed; `wandb sync` later), online or disabled"""
    wandb_project: str = "impoola"
    """W&B project (letters, digits, - _ .)"""
    wandb_entity: str | None = None
    """W&B entity (letters, digits, - _ .)"""
    wandb_tags: tuple[str, ...] = ()
    """extra W&B tags (the model name, game and track are always added)"""
    progress_bar: bool = True
    """show a tqdm progress bar"""

    def check(self) -> None:
        check_choice("wandb_mode", self.wandb_mode, WANDB_MODES)
        for name in ("wandb_project", "wandb_entity"):
            value = getattr(self, name)
            if value is not None and (not value or len(value) > 128 or not all(
                    c.isalnum() or c in "-_." for c in value)):
                raise ValueError(f"invalid {name} {value!r}; valid: 1 to 128 letters, digits, '-', '_' or '.'")
        for tag in self.wandb_tags:
            if not tag or len(tag) > 64:
                raise ValueError(f"invalid wandb_tags value {tag!r}; valid: 1 to 64 characters")


@dataclass(frozen=True)
class PerformanceOptions(Checked):
    """Speed: numerics, compilation, memory format and threads (the defaults keep the published numerics)."""

    precision: Literal["float32", "bf16"] = "float32"
    """float32 (as published) or bf16: the encoder under bf16 autocast (CUDA, or CPUs with AVX512-BF16/AMX; CUDA also
    turns on TF32)"""
    compile: bool = False
    """torch.compile the networks' forward/backward and PPO's loss (CUDA graphs on CUDA); pays off on GPUs, not CPUs"""
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] | None = None
    """torch.compile mode (default: reduce-overhead, i.e. CUDA graphs, on CUDA; default on CPU)"""
    channels_last: bool = True
    """channels-last memory format for the encoder (float32 results equal NCHW up to rounding)"""
    torch_threads: Maybe(Int(1, 1024)) = None
    """torch intra-op threads (default: torch's own, the cores this process may use; Procgen and torch take turns)"""
    reuse_host_memory: bool = False
    """keep freed CPU memory in the process for the next step (glibc malloc: no mmap'd chunks, no trimming) instead
    of page-faulting every large tensor back in (README, "Speed": up to 1.09x PPO steps/s on a CPU, more peak memory)"""

    def check(self) -> None:
        check_choice("precision", self.precision, PRECISIONS)
        if self.compile_mode is not None:
            check_choice("compile_mode", self.compile_mode, COMPILE_MODES)
