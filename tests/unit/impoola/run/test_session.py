"""The training session: one teardown, checkpoint signals answered with a checkpoint and exit 3, and the rule for
checkpoints after evaluations."""

from __future__ import annotations

import os
import signal

import pytest

from impoola.run.guards import EXIT_PREEMPTED
from impoola.run.rundir import RunDir
from impoola.run.session import TrainingSession, checkpoint_due


class Resource:
    def __init__(self, name: str, closed: list[str]) -> None:
        self.name, self.closed = name, closed

    def close(self) -> None:
        self.closed.append(self.name)


def test_leaving_the_session_closes_each_resource_once_restores_handlers_and_releases_the_lock(tmp_path):
    handler = signal.getsignal(signal.SIGUSR1)
    closed: list[str] = []
    run_dir = RunDir(tmp_path, "run").acquire(resume=False)
    with TrainingSession(run_dir, ("SIGUSR1",)) as session:
        session.own(Resource("envs", closed))
        session.own(Resource("log", closed))
        assert signal.getsignal(signal.SIGUSR1) != handler
        session.close()
    assert closed == ["log", "envs"]  # the last owned first, and only once
    assert signal.getsignal(signal.SIGUSR1) == handler
    assert not run_dir.lock_file.exists()


def test_checkpoint_or_exit_saves_tears_down_and_exits_3_only_after_a_signal(tmp_path, capsys):
    handler = signal.getsignal(signal.SIGUSR1)
    closed, saved = [], []
    run_dir = RunDir(tmp_path, "run").acquire(resume=False)
    with pytest.raises(SystemExit) as exit_info, TrainingSession(run_dir, ("SIGUSR1",)) as session:
        session.own(Resource("log", closed))
        session.checkpoint_or_exit(lambda: saved.append(1), 8)
        assert not saved and not closed
        os.kill(os.getpid(), signal.SIGUSR1)
        session.checkpoint_or_exit(lambda: saved.append(2), 16)
    assert exit_info.value.code == EXIT_PREEMPTED
    assert saved == [2] and closed == ["log"]
    assert capsys.readouterr().out == ("received signal SIGUSR1: checkpoint written at step 16; "
                                       "continue with --resume\n")
    assert signal.getsignal(signal.SIGUSR1) == handler and not run_dir.lock_file.exists()


def test_an_exception_inside_the_session_still_tears_it_down(tmp_path):
    closed: list[str] = []
    run_dir = RunDir(tmp_path, "run").acquire(resume=False)
    with pytest.raises(RuntimeError), TrainingSession(run_dir, ()) as session:
        session.own(Resource("envs", closed))
        raise RuntimeError
    assert closed == ["envs"] and not run_dir.lock_file.exists()


def test_checkpoint_due_every_nth_row_and_after_every_evaluation_point():
    assert [checkpoint_due(i, 3, False) for i in range(1, 7)] == [False, False, True, False, False, True]
    assert checkpoint_due(1, 3, True)
