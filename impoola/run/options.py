"""The run's option group: the seed, the run directory, presets and checkpoints (`RunOptions`)."""

from __future__ import annotations

from dataclasses import dataclass

from impoola.options import Checked, Choice, Int
from impoola.presets import PRESETS
from impoola.run.guards import CHECKPOINT_SIGNALS, parse_signal
from impoola.run.rundir import check_name, run_name

SEED_RANGE = Int(0, 2**32, high_open=True)


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
