"""Helpers shared by the `impoola.analyze` and `impoola.evaluate` command lines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from impoola.models.agents import DQNAgent
from impoola.options import Checked, Int, Maybe
from impoola.performance import select_device


@dataclass(frozen=True)
class DeviceOptions(Checked):
    """Speed: the device and CPU threads."""

    cuda: bool = True
    """use the GPU when one is available"""
    num_threads: Maybe(Int(1, 1024)) = None
    """torch CPU threads and Procgen worker threads (default: torch's and min(4, CPUs))"""

    def apply(self) -> torch.device:
        """Limit torch's CPU threads when a count is given; the device to use."""
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        return select_device(self.cuda)


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
