"""The option groups the training scripts compose that configure the script as a whole (environment, run,
evaluation, logging), and the rule between two groups (`check_baseline_model`). The other groups live beside what
they configure: `ModelOptions` (impoola.models.encoders), `BaselineOptions` (impoola.baselines.options),
`PerformanceOptions` (impoola.performance). Each checks its own values when it is built (impoola.options); each
script adds its algorithm's hyperparameters flat in its own `Args`. Flag names and config.json / W&B keys are the
fields' names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from impoola.baselines.options import BaselineOptions
from impoola.envs.games import DistributionMode, Game, Track
from impoola.models.encoders import ModelOptions
from impoola.models.heads import HEADS
from impoola.options import Checked, Choice, Float, Int, Maybe
from impoola.presets import PRESETS
from impoola.run.guards import CHECKPOINT_SIGNALS, parse_signal
from impoola.run.rundir import check_name, run_name

SEED_RANGE = Int(0, 2**32, high_open=True)
WandbMode = Literal["offline", "online", "disabled"]


@dataclass(frozen=True)
class EnvOptions(Checked):
    """Environment: which Procgen game, mode and levels."""

    env_id: Game = "bigfish"
    """Procgen game (one of the 16)"""
    distribution_mode: DistributionMode = "easy"
    """Procgen distribution mode: easy or hard"""
    track: Track = "generalization"
    """generalization (train on 200/500 levels, test on all), efficiency (train on all) or finetuning (100 levels from 201/501)"""  # noqa: E501
    procgen_threads: Maybe(Int(0, 256)) = None
    """Procgen worker threads per vectorized env (default: min(4, cores); 0: step in the calling thread)"""


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
    preset: Choice(PRESETS) | None = None
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

    wandb_mode: WandbMode = "offline"
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
        for name in ("wandb_project", "wandb_entity"):
            value = getattr(self, name)
            if value is not None and (not value or len(value) > 128 or not all(
                    c.isalnum() or c in "-_." for c in value)):
                raise ValueError(f"invalid {name} {value!r}; valid: 1 to 128 letters, digits, '-', '_' or '.'")
        for tag in self.wandb_tags:
            if not tag or len(tag) > 64:
                raise ValueError(f"invalid wandb_tags value {tag!r}; valid: 1 to 64 characters")


