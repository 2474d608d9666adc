"""A training session: the bookkeeping a training script holds around its algorithm, torn down exactly once.

    with TrainingSession(run_dir, run.checkpoint_signals) as session:
        envs = session.own(ProcgenVecEnv(...))
        log = session.own(RunLog(...))
        guard = session.guard(agent, LOSS_KEYS)
        for iteration in ...:
            ...
            session.checkpoint_or_exit(lambda: save(iteration), global_step)

The session holds the run directory's lock (taken with `RunDir.acquire` before it starts), the checkpoint-signal
flag (installed for the whole session, so a signal is honoured in every phase, the final evaluation included),
and the log and environments it was given. Leaving it, normally or by any exception, closes the log and the
environments, restores the signal handlers and gives the lock up, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

import torch

from impoola.run.guards import CHECKPOINT_SIGNALS, EXIT_PREEMPTED, FiniteGuard, StopFlag
from impoola.run.rundir import RunDir


class Closable(Protocol):
    def close(self) -> object: ...


C = TypeVar("C", bound=Closable)


def checkpoint_due(index: int, every: int, evaluated: bool) -> bool:
    """Whether a checkpoint follows the row of iteration (or logged step) `index`: every `every`-th one, and every
    row of an evaluation point, with or without evaluation episodes (a resume never redoes an evaluation)."""
    return index % every == 0 or evaluated


class TrainingSession:
    """Owns a run's lock, signal flag, log and environments; `checkpoint_or_exit` answers a checkpoint signal."""

    def __init__(self, run_dir: RunDir, signals: Iterable[str] = CHECKPOINT_SIGNALS) -> None:
        self.run_dir = run_dir
        self.signals = tuple(signals)
        self.stop: StopFlag | None = None
        self._owned: list[Closable] = []
        self._closed = False

    def __enter__(self) -> TrainingSession:
        self.stop = StopFlag(self.signals)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def own(self, resource: C) -> C:
        """`resource`, closed when the session ends (the last owned first)."""
        self._owned.append(resource)
        return resource

    def guard(self, module: torch.nn.Module, names: Sequence[str]) -> FiniteGuard:
        """The non-finite guard of `module`'s losses `names`: on a NaN/inf it ends the session, then exits 4."""
        return FiniteGuard(module, names, self.run_dir.checkpoints, (self.close,))

    def checkpoint_or_exit(self, save: Callable[[], object], global_step: int) -> None:
        """If a checkpoint signal arrived: `save()`, end the session, say so in one line and exit 3."""
        if self.stop is None or self.stop.signal is None:
            return
        name = self.stop.name
        save()
        self.close()
        print(f"received signal {name}: checkpoint written at step {global_step}; continue with --resume")
        raise SystemExit(EXIT_PREEMPTED)

    def close(self) -> None:
        """Close what the session owns, restore the signal handlers, give the lock up: once."""
        if self._closed:
            return
        self._closed = True
        for resource in reversed(self._owned):
            resource.close()
        if self.stop is not None:
            self.stop.close()
        self.run_dir.release()
