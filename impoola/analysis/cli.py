"""Helpers shared by the `impoola.analyze` and `impoola.evaluate` command lines."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from impoola.checkpoint import CheckpointError
from impoola.models.agents import DQNAgent


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks and appends defaults that are set (not None or False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        unset = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if not unset and "%(default)" not in help_text:
            help_text += " (default: %(default)s)"
        return help_text


def flag(*names: str) -> list[str]:
    """`--snake_name` plus its `--dash-name` spelling."""
    spellings = []
    for name in names:
        spellings += [name] if "_" not in name else [name, name.replace("_", "-")]
    return spellings


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Device and thread options both command lines take."""
    parser.add_argument(*flag("--cuda"), action=argparse.BooleanOptionalAction, default=True,
                        help="use the GPU when one is available")
    parser.add_argument(*flag("--num_threads"), type=int, default=None,
                        help="torch CPU threads and Procgen worker threads (default: torch's and min(4, CPUs))")


def set_num_threads(num_threads: int | None) -> None:
    """Limit torch's CPU threads when a count is given."""
    if num_threads is not None:
        if num_threads < 1:
            raise ValueError(f"invalid num_threads {num_threads!r}; valid: an integer >= 1")
        torch.set_num_threads(num_threads)


def select_device(cuda: bool) -> torch.device:
    """CUDA when asked for and available, else the CPU."""
    return torch.device("cuda" if cuda and torch.cuda.is_available() else "cpu")


def parse_choices(name: str, value: str, valid: Sequence[str]) -> list[str]:
    """Comma-separated choices (order kept, duplicates dropped); a one-line ValueError names a bad one."""
    chosen = list(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    for item in chosen:
        if item not in valid:
            raise ValueError(f"invalid {name} {item!r}; valid: {', '.join(valid)}")
    if not chosen:
        raise ValueError(f"invalid {name} {value!r}; valid: a comma-separated list of {', '.join(valid)}")
    return chosen


def agent_kind(agent: torch.nn.Module) -> str:
    """"dqn" for a DQNAgent, else "ppo"."""
    return "dqn" if isinstance(agent, DQNAgent) else "ppo"


def run_label(checkpoint: Path) -> str:
    """The run's name for a checkpoint in `<run>/checkpoints/`, else the checkpoint's file stem."""
    return checkpoint.parent.parent.name if checkpoint.parent.name == "checkpoints" else checkpoint.stem


def default_out_dir(checkpoint: Path, name: str) -> Path:
    """`<run>/<name>` for a checkpoint in `<run>/checkpoints/`, else `<name>_<stem>` beside the file."""
    if checkpoint.parent.name == "checkpoints":
        return checkpoint.parent.parent / name
    return checkpoint.parent / f"{name}_{checkpoint.stem}"


def run_main(main: Callable[[list[str] | None], None], argv: list[str] | None) -> None:
    """Run a CLI main; bad input (CheckpointError, ValueError) becomes `error: ...` on stderr and exit status 2."""
    try:
        main(argv)
    except (CheckpointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
