"""Run-time guards of the training loops: checkpoint signals (preemption) and the once-per-iteration
non-finite check of the losses and parameters."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from impoola.run.checkpoint import list_checkpoints

EXIT_PREEMPTED = 3
EXIT_NONFINITE = 4

# SIGTERM / SIGUSR2 by default: what SLURM and submitit send before a time limit or preemption.
CHECKPOINT_SIGNALS = ("SIGTERM", "SIGUSR2")

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


class StopFlag:
    """Records the first checkpoint signal received; `close()` restores the previous handlers."""

    # The handler only sets a flag; the training loop checkpoints at its next iteration boundary and exits.

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
