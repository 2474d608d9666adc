"""Checkpoints: atomic writes, keep-last-k rotation, and loading an agent back for evaluation."""

from __future__ import annotations

import dataclasses
import io
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from impoola.models.encoders import ModelOptions
from impoola.models.encoders import ENCODERS
from impoola.run.files import atomic_write_bytes
from impoola.run.rundir import CHECKPOINTS_DIR

CHECKPOINT_PATTERN = re.compile(r"^ckpt_(\d+)\.pt$")
FORMAT_VERSION = 1
# Args that fix the network, its state's shapes, the environments or the RNG streams a checkpoint belongs to (a
# resumed run restores those, so another value could not apply): resuming with other values is an error. Other
# changed args (except RESUME_FREE_ARGS) apply from the resume point, with a warning.
MODEL_ARGS = (*(f.name for f in dataclasses.fields(ModelOptions)), "pruning", "pruning_mode", "redo", "env_id",
              "distribution_mode", "track", "num_envs", "seed", "num_steps")
RESUME_FREE_ARGS = ("resume", "preset", "output_dir", "run_name", "progress_bar", "wandb_mode", "wandb_project",
                    "wandb_entity", "wandb_tags", "cuda", "checkpoint_every", "keep_checkpoints",
                    "checkpoint_signals", "procgen_threads", "torch_threads", "compile", "compile_mode",
                    "reuse_host_memory")


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or does not fit the model it is loaded into."""


def save_checkpoint(directory: Path, step: int, payload: dict[str, Any], keep: int = 3) -> Path:
    """Write `payload` as `directory/ckpt_<step>.pt` atomically and delete all but the newest `keep`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"ckpt_{step:012d}.pt"
    buffer = io.BytesIO()  # serialized first: torch's zip writer hides a full disk's OSError behind its own error
    torch.save({"format_version": FORMAT_VERSION, **payload}, buffer)
    atomic_write_bytes(path, lambda f: f.write(buffer.getbuffer()))
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoints in `directory`, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := CHECKPOINT_PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or the newest checkpoint of a run directory or checkpoints directory."""
    path = Path(path)
    if path.is_file():
        return path
    for candidate in (path / CHECKPOINTS_DIR, path):
        found = list_checkpoints(candidate)
        if found:
            return found[-1]
    raise CheckpointError(f"no checkpoint at {str(path)!r}; "
                          "valid: a ckpt_*.pt file or a run directory holding checkpoints/")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict; a clear CheckpointError if it is missing or unreadable."""
    path = resolve_checkpoint(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise CheckpointError(f"corrupt checkpoint {str(path)!r}: {detail[:300]}") from None
    if not isinstance(payload, dict) or "agent" not in payload or "args" not in payload:
        raise CheckpointError(f"corrupt checkpoint {str(path)!r}: missing 'agent' or 'args'")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"incompatible checkpoint {str(path)!r}: format version {version!r}; valid: {FORMAT_VERSION}"
        )
    return payload


def _comparable(value: Any) -> Any:
    return list(value) if isinstance(value, (tuple, list)) else value


# Options added after checkpoints of format 1 were first written, with the value that computes what a checkpoint
# without them ran with (the release's numerics).
ADDED_OPTIONS = {"maxpool_padding": "symmetric", "encoder_init": "torch", "adam_eps_form": "torch",
                 "reward_norm_gamma": None}


def with_resolved_defaults(args: dict[str, Any]) -> dict[str, Any]:
    """`args` with an unset pooling head replaced by the one it stands for (the encoder family's), so that a run
    started with `--pooling flatten` on Impala is the same model as one started without it, and with the options
    an older checkpoint lacks (`ADDED_OPTIONS`) at the values it ran with."""
    args = {**ADDED_OPTIONS, **args} if "encoder" in args else args
    if args.get("pooling") is None and args.get("encoder") in ENCODERS:
        return {**args, "pooling": ENCODERS[args["encoder"]].default_pooling}
    return args


def differing_args(saved: dict[str, Any], current: dict[str, Any], names) -> list[str]:
    """`name <saved> (checkpoint) vs <current> (now)` for each of `names` set on both sides with different values."""
    return [
        f"{name} {saved[name]!r} (checkpoint) vs {current[name]!r} (now)"
        for name in names
        if name in saved and name in current and _comparable(saved[name]) != _comparable(current[name])
    ]


def load_resume_checkpoint(
    run_dir: str | Path, args: dict[str, Any], agent_kind: str, prefer: Callable[[dict], bool] | None = None,
    check: Callable[[dict], None] | None = None,
) -> dict[str, Any] | None:
    """The newest checkpoint of a run to resume (None before its first one), checked against the current args."""
    # With `prefer`, the newest checkpoint it accepts, else the newest. A CheckpointError names every
    # model-defining arg (MODEL_ARGS) or agent kind that differs; other differing args (the learning rate,
    # total_timesteps, ...) resume with a one-line warning on stderr.
    paths = list_checkpoints(Path(run_dir) / CHECKPOINTS_DIR)
    if not paths:
        return None
    path, payload = paths[-1], load_checkpoint(paths[-1])
    if prefer is not None and not prefer(payload):
        for candidate in reversed(paths[:-1]):
            if prefer(earlier := load_checkpoint(candidate)):
                path, payload = candidate, earlier
                break
    saved, args = with_resolved_defaults(payload["args"]), with_resolved_defaults(args)
    differ = differing_args({"agent_kind": payload.get("agent_kind", "ppo"), **saved},
                            {"agent_kind": agent_kind, **args}, ("agent_kind", *MODEL_ARGS))
    if differ:
        raise CheckpointError(f"checkpoint {str(path)!r} belongs to another model or setup: {'; '.join(differ)}; "
                              "valid: resume with the checkpoint's values (see config.json) or start a new run")
    if check is not None:  # the caller's own refusals (a ValueError), before any warning
        check(payload)
    changed = differing_args(saved, args, [k for k in args if k not in MODEL_ARGS and k not in RESUME_FREE_ARGS])
    if changed:
        print(f"warning: resuming with changed args: {'; '.join(changed)}; the continued run differs from an "
              "uninterrupted one", file=sys.stderr)
    return payload


def model_options_from_args(args: dict[str, Any]) -> ModelOptions:
    """The ModelOptions stored in a run's args dict (unknown keys ignored)."""
    names = {f.name for f in dataclasses.fields(ModelOptions)}
    values = {k: v for k, v in args.items() if k in names}
    if values.get("cnn_filters") is not None:
        values["cnn_filters"] = tuple(values["cnn_filters"])
    return ModelOptions(**values)


def load_state_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """load_state_dict with a one-line error naming the first mismatching tensor."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        detail = (
            f"shape of {wrong[0]} is {tuple(state[wrong[0]].shape)}, expected {tuple(own[wrong[0]].shape)}"
            if wrong
            else f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        )
        raise CheckpointError(f"checkpoint does not fit this {what}: {detail}")
    module.load_state_dict(state)


def load_agent(path: str | Path, device: str | torch.device = "cpu"):
    """Load a trained agent for evaluation: returns (agent in eval mode, the run's args dict).

    `path` is a checkpoint file or a run directory (its newest checkpoint is used). A pruned agent's
    state (`*_orig` / `*_mask` tensors) gets its pruning masks re-applied.
    """
    from impoola.models.agents import build_agent
    from impoola.baselines.pruning import prepare_pruned

    payload = load_checkpoint(path)
    args = payload["args"]
    agent = build_agent(payload.get("agent_kind", "ppo"), model_options_from_args(args), payload.get("num_actions", 15))
    if any(key.endswith("_mask") for key in payload["agent"]):
        prepare_pruned(agent)
    load_state_strict(agent, payload["agent"], f"{args.get('encoder')} agent")
    return agent.to(device).eval(), args
