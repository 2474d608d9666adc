"""Guards of a training run: the checkpoint-signal flag and the non-finite guard."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from impoola.run.checkpoint import save_checkpoint
from impoola.run.guards import EXIT_NONFINITE, FiniteGuard, StopFlag, parse_signal
from ppo_training import LOSS_KEYS


def test_stop_flag_uses_the_configured_signals_and_restores_handlers():
    before = signal.getsignal(signal.SIGUSR1)
    flag = StopFlag(("usr1", "SIGUSR1"))
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        assert flag.signal == signal.SIGUSR1 and flag.name == "SIGUSR1"
    finally:
        flag.close()
    assert signal.getsignal(signal.SIGUSR1) == before


@pytest.mark.parametrize("name", ["SIGKILL", "STOP", "SIGFOO", "9", "", "SIGCHLD", "pipe", "SIGWINCH", "SIGURG",
                                  "SIGCONT", "SIGALRM", "SIGPROF", "SIGVTALRM", "SIGIO", "SIGPOLL", "SIGSEGV"])
def test_signals_other_than_preemption_notices_are_rejected(name):
    with pytest.raises(ValueError, match=f"invalid checkpoint_signals value {name!r}"):
        parse_signal(name)


@pytest.mark.parametrize("name", ["SIGTERM", "int", "hup", "SIGQUIT", "usr1", "SIGUSR2", "SIGXCPU"])
def test_preemption_signals_are_accepted(name):
    assert parse_signal(name).name.endswith(name.upper().removeprefix("SIG"))


def test_finite_guard_passes_finite_values_and_stops_on_nan(tmp_path, capsys):
    module = torch.nn.Linear(3, 2)
    closed = []
    guard = FiniteGuard(module, LOSS_KEYS, tmp_path, (lambda: closed.append(1),))
    losses = torch.arange(7, dtype=torch.float32)
    assert guard.read(losses, 1, 32) == losses.tolist() and not closed
    save_checkpoint(tmp_path, 32, {"agent": {"w": torch.ones(2)}})
    with pytest.raises(SystemExit) as info:
        guard.read(losses.index_fill(0, torch.tensor([2]), float("nan")), 2, 64)
    assert info.value.code == EXIT_NONFINITE and closed == [1]
    err = capsys.readouterr().err
    assert err.startswith("error: non-finite training state at iteration 2 (global step 64): losses/value_loss=nan")
    assert "ckpt_000000000032.pt' is kept" in err and err.count("\n") == 1
    with torch.no_grad():
        module.bias[0] = float("inf")
    with pytest.raises(SystemExit):
        guard.read(losses, 3, 96)
    assert "parameters bias;" in capsys.readouterr().err
