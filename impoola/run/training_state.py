"""What a training script's checkpoint holds, named once: the state both algorithms share (`TrainingState`, which
each script extends with its own), and the statistics of the training episodes a logged row reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from impoola.run.checkpoint import load_state_strict
from impoola.envs.options import EnvOptions
from impoola.envs.games import NUM_ACTIONS, normalized_score
from impoola.envs.procgen import ProcgenVecEnv
from impoola.options import flat_options
from impoola.run.seeding import rng_state, set_rng_state


@dataclass(eq=False, kw_only=True)
class TrainingState:
    """The networks, optimizer, environments and counters of a run: `state_dict()` is its checkpoint's payload and
    `load_state_dict()` continues the run from one (format 1; older checkpoints lack the keys read with `.get`)."""

    agent_kind: ClassVar[str]
    agent_name: ClassVar[str] = "agent"
    """what `agent` is called in the error of a checkpoint that does not fit it"""

    args: Any
    """the script's options (a Checked dataclass), recorded flat"""
    device: torch.device
    agent: torch.nn.Module
    optimizer: torch.optim.Optimizer
    learning_rate: float
    """the base learning rate: a resumed run applies this one (and records it), not the checkpoint's"""
    envs: ProcgenVecEnv
    obs: np.ndarray
    """the observations the next step acts on"""
    next_eval_step: float
    global_step: int = 0
    elapsed: float = 0.0
    """training seconds, excluding the time between a checkpoint and its resume"""
    metrics_rows: int | None = 0
    """rows of metrics.jsonl this state belongs to (None: a checkpoint that did not record them)"""

    def state_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent.state_dict(), "optimizer": self.optimizer.state_dict(),
            "args": flat_options(self.args), "agent_kind": self.agent_kind, "num_actions": NUM_ACTIONS,
            "global_step": self.global_step, "next_eval_step": self.next_eval_step, "elapsed": self.elapsed,
            "env_state": self.envs.get_state(), "next_obs": self.obs, "rng": rng_state(),
            "metrics_rows": self.metrics_rows,
        }

    def before_checkpoint(self) -> None:
        """Write what the checkpoint will name, before it is written (nothing here)."""

    def after_checkpoint(self) -> None:
        """Clean up once the checkpoint is written (nothing here)."""

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        load_state_strict(self.agent, payload["agent"], f"{self.args.model_name} {self.agent_name}")
        self.optimizer.load_state_dict(payload["optimizer"])
        self.optimizer.param_groups[0]["lr"] = self.learning_rate
        self.envs.set_state(payload["env_state"])
        self.obs = payload["next_obs"]
        self.global_step, self.next_eval_step = payload["global_step"], payload["next_eval_step"]
        self.elapsed, self.metrics_rows = payload["elapsed"], payload.get("metrics_rows")
        set_rng_state(payload["rng"])


@dataclass
class EpisodeStats:
    """The training episodes that ended since the last logged row."""

    env: EnvOptions
    returns: list[float] = field(default_factory=list)
    lengths: list[float] = field(default_factory=list)

    def add(self, info: dict[str, np.ndarray], dones: np.ndarray) -> dict[str, float]:
        """Record the episodes `dones` ended; the progress bar's postfix: their mean return, once one ended."""
        if not dones.any():
            return {}
        self.returns.extend(info["episode_return"][dones].tolist())
        self.lengths.extend(info["episode_length"][dones].tolist())
        return {"ret": float(np.mean(self.returns))}

    def metrics(self) -> dict[str, float]:
        """Their mean return (raw and normalised) and length; nothing when none ended."""
        if not self.returns:
            return {}
        mean_return = float(np.mean(self.returns))
        return {"charts/episodic_return": mean_return,
                "charts/episodic_return_normalized": normalized_score(self.env.env_id, self.env.distribution_mode,
                                                                      mean_return),
                "charts/episodic_length": float(np.mean(self.lengths))}

    def clear(self) -> None:
        self.returns, self.lengths = [], []
