"""OMP_WAIT_POLICY is filled in before torch loads, and a value the user set is kept."""

from __future__ import annotations

import os
import subprocess
import sys

from impoola import openmp
from support.paths import ROOT


def test_passive_is_filled_in_and_a_user_value_kept(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    openmp.sleep_idle_threads()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    openmp.sleep_idle_threads()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_the_users_values_are_the_ones_the_process_started_with():
    # A fresh process: USER_OPENMP_ENV is read at import, before sleep_idle_threads fills the environment in.
    code = ("from impoola import openmp; openmp.sleep_idle_threads(); import os; "
            "print(openmp.USER_OPENMP_ENV['OMP_WAIT_POLICY'], os.environ['OMP_WAIT_POLICY'])")
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    unset = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert unset.stdout.split() == ["None", "PASSIVE"]
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    user = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert user.stdout.split() == ["ACTIVE", "ACTIVE"]
