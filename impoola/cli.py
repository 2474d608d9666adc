"""What both training scripts share on the command line: option groups, parsing, user errors, seeding,
checkpoint signals and the once-per-iteration non-finite guard."""

from __future__ import annotations

import contextlib
import io
import netrc
import os
import random
import signal
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlparse

import numpy as np
import torch
import tyro

from impoola.checkpoint import list_checkpoints
from impoola.envs.games import DISTRIBUTION_MODES, GAMES, TRACKS, check_choice

EXIT_USAGE = 2
EXIT_PREEMPTED = 3
EXIT_NONFINITE = 4
CHECKPOINT_SIGNALS = ("SIGTERM", "SIGUSR2")
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
    """GPU: cuDNN picks deterministic convolution algorithms (cudnn.deterministic=True, benchmark=False); other
    CUDA kernels may still differ in the last bits run to run. CPU runs are bitwise reproducible either way"""
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
    capture_video: bool = False
    """record one episode of the first evaluated track as an MP4 in <run>/videos/ at every evaluation (final too)"""
    progress_bar: bool = True
    """show a tqdm progress bar"""
    checkpoint_signals: tuple[str, ...] = CHECKPOINT_SIGNALS
    """signals that make the run checkpoint at the end of the current iteration and exit with status 3"""

    def validate_run(self) -> None:
        for name in self.checkpoint_signals:
            parse_signal(name)
        if self.wandb_mode == "online" and not wandb_credentials():
            raise ValueError("invalid wandb_mode 'online': no W&B credentials (WANDB_API_KEY or `wandb login`); "
                             "valid: offline, disabled, or log in first")
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


def one_line(text: str) -> str:
    """`text` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a ValueError (bad input) into a one-line `error: ...` on stderr and exit status 2."""
    try:
        yield
    except ValueError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def parse_cli(cls: type[T], argv: Sequence[str] | None = None) -> T:
    """tyro.cli(cls) whose parse errors are one line `error: ...` on stderr (exit status 2); --help unchanged."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            args = tyro.cli(cls, args=argv)
    except SystemExit as exc:
        if exc.code not in (0, None):
            print(f"error: {tyro_message(captured.getvalue())}", file=sys.stderr)
            raise SystemExit(EXIT_USAGE) from None
        sys.stderr.write(captured.getvalue())
        raise
    sys.stderr.write(captured.getvalue())  # warnings, if any
    return args


def tyro_message(text: str) -> str:
    """The message in tyro's error box (after its title, up to the next rule), as one line."""
    lines = [line.strip(" │╭╮╰╯") for line in text.splitlines()][1:]  # the title line (or top border) goes
    is_rule = [not set(line) - set("-─ ") for line in lines]
    start = is_rule.index(False) if False in is_rule else len(lines)
    end = is_rule.index(True, start) if True in is_rule[start:] else len(lines)
    return one_line(" ".join(lines[start:end])) or "invalid command line"


def wandb_credentials() -> bool:
    """Whether W&B can log in without a prompt: WANDB_API_KEY, or a netrc entry for the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    paths = [Path(os.environ["NETRC"]).expanduser()] if os.environ.get("NETRC") else [
        Path.home() / ".netrc", Path.home() / "_netrc"]
    for path in paths:
        try:
            if path.is_file() and netrc.netrc(path).authenticators(host):
                return True
        except (OSError, netrc.NetrcParseError):
            continue
    return False


def parse_signal(name: str) -> signal.Signals:
    """A catchable signal from its name (SIGTERM, TERM, usr2, ...); a one-line ValueError otherwise."""
    key = name.strip().upper()
    key = key if key.startswith("SIG") else f"SIG{key}"
    found = getattr(signal.Signals, key, None) if key.isidentifier() else None
    if found is None or found in (signal.SIGKILL, signal.SIGSTOP):
        raise ValueError(f"invalid checkpoint_signals value {name!r}; valid: catchable signal names such as "
                         "SIGTERM, SIGUSR1, SIGUSR2, SIGINT (not SIGKILL or SIGSTOP)")
    return found


class StopFlag:
    """Records the first checkpoint signal received; `close()` restores the previous handlers."""

    # SIGTERM / SIGUSR2 by default: what SLURM and submitit send before a time limit or preemption. The
    # handler only sets a flag; the training loop checkpoints at its next iteration boundary and exits.

    def __init__(self, signals: Iterable[str] = CHECKPOINT_SIGNALS) -> None:
        self.signal: int | None = None
        self._previous = {}
        for sig in dict.fromkeys(parse_signal(name) for name in signals):
            self._previous[sig] = signal.signal(sig, self._handler)

    def _handler(self, signum, frame) -> None:
        self.signal = self.signal if self.signal is not None else signum

    @property
    def name(self) -> str:
        """The received signal's name, e.g. SIGTERM (empty before one arrived)."""
        return signal.Signals(self.signal).name if self.signal is not None else ""

    def close(self) -> None:
        """Put back the handlers that were installed before."""
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}


class FiniteGuard:
    """Once per iteration, in the one host sync that reads the losses: are they and all parameters finite?"""

    # On a NaN/inf, `read` runs `cleanup`, prints one line naming the non-finite losses and parameters and the
    # last good checkpoint (nothing newer is written, so it stays the newest), and exits with status 4.

    def __init__(self, module: torch.nn.Module, names: Sequence[str], checkpoints: Path,
                 cleanup: Sequence[Callable[[], object]] = ()) -> None:
        self.module, self.names, self.checkpoints, self.cleanup = module, tuple(names), Path(checkpoints), cleanup

    def read(self, losses: torch.Tensor, iteration: int, global_step: int) -> list[float]:
        """`losses` as floats, after one fused check of them and of every parameter's norm."""
        params = [p.detach() for p in self.module.parameters()]
        norm = torch.stack(torch._foreach_norm(params)).sum().reshape(1).to(losses.device, losses.dtype)
        values = torch.cat([losses.detach().flatten(), norm]).tolist()
        if all(np.isfinite(values)):
            return values[:-1]
        bad = [f"{name}={value}" for name, value in zip(self.names, values) if not np.isfinite(value)]
        params = [name for name, p in self.module.named_parameters() if not bool(torch.isfinite(p).all())]
        if params:
            more = f" (+{len(params) - 3} more)" if len(params) > 3 else ""
            bad.append(f"parameters {', '.join(params[:3])}{more}")
        elif not np.isfinite(values[-1]):
            bad.append("the sum of parameter norms overflowed")
        kept = list_checkpoints(self.checkpoints)
        last = f"the last good checkpoint {str(kept[-1])!r} is kept" if kept else "no checkpoint was written yet"
        for close in self.cleanup:
            close()
        print(f"error: non-finite training state at iteration {iteration} (global step {global_step}): "
              f"{'; '.join(bad)}; stopped, {last}", file=sys.stderr)
        raise SystemExit(EXIT_NONFINITE)


def select_device(use_cuda: bool) -> torch.device:
    return torch.device("cuda" if use_cuda and torch.cuda.is_available() else "cpu")


def seed_everything(seed: int, torch_deterministic: bool) -> None:
    """Seed python, numpy and torch; with `torch_deterministic`, deterministic cuDNN algorithms (no autotuning)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = torch_deterministic
    if torch_deterministic:
        torch.backends.cudnn.benchmark = False


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
