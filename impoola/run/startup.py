"""Checks the training scripts run after parsing and before anything touches disk, environments or the network:
what only building things reveals (the network's shapes, memory needs, W&B credentials) and whether a run can
resume with the options given."""

from __future__ import annotations

from typing import Any

import torch

from impoola.cli import size_text
from impoola.models.encoders import ModelOptions
from impoola.run.runlog import LoggingOptions, wandb_base_url, wandb_credentials


def check_buildable(kind: str, model: ModelOptions, num_actions: int) -> None:
    """Build the agent on the meta device (no memory, no RNG draws): a one-line ValueError if it cannot be built."""
    from impoola.models.agents import build_agent

    try:
        with torch.device("meta"):
            build_agent(kind, model, num_actions)
    except (RuntimeError, ZeroDivisionError) as exc:
        raise ValueError(f"invalid model options ({model.model_name}): the network cannot be built: "
                         f"{' '.join(str(exc).split())[:200]}") from None


def check_memory_need(what: str, required: int, available: int, advice: str) -> None:
    """A one-line ValueError when `what` needs more bytes than are available."""
    if required > available:
        raise ValueError(f"invalid {what}: it needs {size_text(required)} of memory, "
                         f"{size_text(available)} are available; valid: {advice}")


def check_wandb(logging: LoggingOptions) -> None:
    """W&B online needs a valid WANDB_BASE_URL and credentials that need no prompt (the server itself is tried
    with a timeout later)."""
    if logging.wandb_mode == "online" and wandb_base_url() and not wandb_credentials():
        raise ValueError("invalid wandb_mode 'online': no W&B credentials (WANDB_API_KEY or `wandb login`); "
                         "valid: offline, disabled, or log in first")


def check_resume(checkpoint: dict[str, Any], total_steps: int, total_timesteps: int) -> None:
    """A run resumed at the checkpoint's step must have steps left, unless it is the same run's final checkpoint."""
    step = checkpoint["global_step"]
    if step > total_steps or (step == total_steps and checkpoint["args"].get("total_timesteps") != total_timesteps):
        raise ValueError(f"invalid total_timesteps for --resume: the checkpoint is at step {step}, this run would "
                         f"end at step {total_steps}; valid: more than {step} steps")
