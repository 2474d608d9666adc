"""What both training scripts share on the command line: option groups, parsing, user errors, seeding."""

from __future__ import annotations

import contextlib
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
import torch

from impoola.envs.games import DISTRIBUTION_MODES, GAMES, TRACKS, check_choice

EXIT_USAGE = 2
EXIT_PREEMPTED = 3
T = TypeVar("T")


@dataclass
class EnvOptions:
    env_id: str = "bigfish"
    """Procgen game (one of the 16)"""
    distribution_mode: str = "easy"
    """Procgen distribution mode: easy or hard"""
    track: str = "generalization"
    """generalization (train on 200/500 levels, test on all), efficiency (train on all) or finetuning (100 levels from 201/501)"""
    procgen_threads: int | None = None
    """Procgen worker threads per vectorized env (default: min(4, cores))"""

    def validate_env(self) -> None:
        check_choice("env_id", self.env_id, GAMES)
        check_choice("distribution_mode", self.distribution_mode, DISTRIBUTION_MODES)
        check_choice("track", self.track, TRACKS)


@dataclass
class RunOptions:
    seed: int = 1
    """seed of torch, numpy, python and the environments (the paper uses 1..5)"""
    run_name: str | None = None
    """run directory name (default: {env_id}__{exp_name}__{model}__s{seed})"""
    output_dir: str = "runs"
    """parent directory of run directories"""
    resume: bool = False
    """continue the run in an existing run directory from its newest checkpoint"""
    torch_deterministic: bool = True
    """torch.backends.cudnn.deterministic"""
    cuda: bool = True
    """use CUDA when available"""
    wandb_mode: Literal["offline", "online", "disabled"] = "offline"
    """W&B mode: offline (default, no account needed; `wandb sync` later), online or disabled"""
    wandb_project: str = "impoola"
    wandb_entity: str | None = None
    wandb_tags: tuple[str, ...] = ()
    """extra W&B tags (the model name, game and track are always added)"""
    checkpoint_every: int = 100
    """write a checkpoint every this many iterations (also at every evaluation and at the end)"""
    keep_checkpoints: int = 3
    """how many of the newest checkpoints to keep"""
    eval_every_fraction: float = 0.1
    """evaluate each time global_step passes the previous evaluation + this fraction of total_timesteps"""
    num_eval_episodes: int = 1000
    """episodes per track at each evaluation during training (0 disables evaluation during training)"""
    num_final_eval_episodes: int = 2500
    """episodes per track in the final evaluation (0 disables it)"""
    num_eval_envs: int | None = None
    """parallel environments of evaluation (default: num_envs)"""
    progress_bar: bool = True
    """show a tqdm progress bar"""

    def validate_run(self) -> None:
        for name in ("checkpoint_every", "keep_checkpoints"):
            require_positive(name, getattr(self, name))
        for name in ("num_eval_episodes", "num_final_eval_episodes"):
            if getattr(self, name) < 0:
                raise ValueError(f"invalid {name} {getattr(self, name)!r}; valid: a non-negative integer")
        if self.num_eval_envs is not None:
            require_positive("num_eval_envs", self.num_eval_envs)
        if not 0 < self.eval_every_fraction <= 1:
            raise ValueError(f"invalid eval_every_fraction {self.eval_every_fraction!r}; valid: a number in (0, 1]")


def require_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"invalid {name} {value!r}; valid: a positive number")


def default_run_name(env_id: str, exp_name: str, model_name: str, seed: int) -> str:
    """Deterministic run name, so a re-run finds its directory."""
    return f"{env_id}__{exp_name}__{model_name}__s{seed}"


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a ValueError (bad input) into a one-line `error: ...` on stderr and exit status 2."""
    try:
        yield
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def select_device(use_cuda: bool) -> torch.device:
    return torch.device("cuda" if use_cuda and torch.cuda.is_available() else "cpu")


def seed_everything(seed: int, torch_deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = torch_deterministic


def rng_state() -> dict:
    """Python, numpy and torch RNG states (CUDA too when present), for exact resume."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
