"""Idle torch threads spin on cores of their own and sleep on shared ones; a value the user set is kept."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from impoola import openmp
from support.paths import ROOT

UNSET = {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": None}


@pytest.mark.parametrize(("others", "usable", "online", "passive"), [
    (0, 2, 2, False),   # quiet
    (2, 2, 2, True),    # two busy processes beside it
    (1, 2, 2, True),
    (60, 2, 64, False),  # a busy node, but the others fit on the 62 cores this process may not use
    (63, 2, 64, True),
])
def test_the_policy_follows_the_load_on_the_cores_this_process_may_use(others, usable, online, passive):
    policy = openmp.wait_policy(UNSET, others, usable, online)
    assert policy.passive is passive
    assert policy.env == ({"OMP_WAIT_POLICY": "PASSIVE"} if passive else {})
    assert f"{usable} of {online} cores" in policy.describe()


@pytest.mark.parametrize(("user", "passive"), [
    ({"OMP_WAIT_POLICY": "ACTIVE"}, False), ({"OMP_WAIT_POLICY": "passive"}, True), ({"GOMP_SPINCOUNT": "0"}, True),
    ({"GOMP_SPINCOUNT": "1000"}, False),
])
def test_a_users_setting_is_kept_whatever_the_load(user, passive):
    for others in (0, 5):
        policy = openmp.wait_policy({**UNSET, **user}, others, 2, 2)
        assert (policy.passive, policy.env) == (passive, {})
        assert "set by the user" in policy.describe()


def test_busy_processes_count_as_runnable_and_this_one_does_not():
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        time.sleep(0.5)
        assert openmp.other_runnable_tasks() >= 1  # on 2 cores at least one of them runs at each look
    finally:
        for process in busy:
            process.kill()
            process.wait()


def run_choice(env: dict[str, str]) -> list[str]:
    """In a fresh process: the user's OMP_WAIT_POLICY as read at import, the environment's after the choice."""
    code = ("from impoola import openmp; p = openmp.choose_wait_policy(); import os; "
            "print(openmp.USER_OPENMP_ENV['OMP_WAIT_POLICY'], os.environ.get('OMP_WAIT_POLICY'), p.passive)")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True).stdout.split()


def test_the_choice_reaches_the_environment_and_the_users_values_are_the_ones_the_process_started_with():
    env = {key: value for key, value in os.environ.items() if key not in openmp.OPENMP_VARIABLES}
    user, chosen, passive = run_choice(env)
    assert user == "None" and chosen == ("PASSIVE" if passive == "True" else "None")
    assert run_choice({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == ["ACTIVE", "ACTIVE", "False"]
