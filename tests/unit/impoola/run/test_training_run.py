"""training_run: start-up checks before the run directory, a failing start-up removes what it made, a clean exit
marks the run done, a complete run is left as it is."""

from __future__ import annotations

import pytest

from impoola.run.training_run import MemoryNeed, training_run
from support.runs import tiny_ppo_args

SMALL = MemoryNeed("num_envs x num_steps", 1, "less")


def test_a_memory_need_beyond_the_machine_is_refused_before_the_run_directory(tmp_path, capsys):
    args = tiny_ppo_args(tmp_path / "runs", run_name="run")
    with pytest.raises(SystemExit) as info:
        with training_run(args, "ppo", 64, MemoryNeed("num_envs x num_steps", 2**60, "less")):
            pass
    assert info.value.code == 2 and capsys.readouterr().err.startswith("error: invalid num_envs x num_steps: it needs")
    assert not (tmp_path / "runs").exists()


def test_a_failing_start_up_removes_the_run_directory_and_a_clean_exit_marks_it_done(tmp_path):
    args = tiny_ppo_args(tmp_path, run_name="run")
    with pytest.raises(SystemExit):
        with training_run(args, "ppo", 64, SMALL) as run, run.starting():
            raise ValueError("invalid something; valid: else")
    assert not (tmp_path / "run").exists()
    with training_run(args, "ppo", 64, SMALL) as run:
        with run.starting():
            assert not run.complete
    assert (tmp_path / "run" / "done").exists()
    resumed = tiny_ppo_args(tmp_path, run_name="run", resume=True)
    with training_run(resumed, "ppo", 64, SMALL) as run:
        with run.starting():
            assert run.complete  # the same total: nothing to do
