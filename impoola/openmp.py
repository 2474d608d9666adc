"""How idle torch threads wait, decided before torch loads its OpenMP runtime (libgomp on Linux).

An idle OpenMP thread of libgomp spins for about 3 ms (OpenMP's default) before it sleeps. On cores of its own that
is what makes the network fast: the next parallel region of a forward or backward pass finds the thread awake
(rollout inference of 16 frames took 1.1-1.5 s per 64 steps with spinning threads, 1.7-2.7 s with sleeping ones,
channels-last; docs/speed.md). On cores that other processes use, a spinning thread burns the time slice that the
thread it waits for needs, and every parallel region after it waits: with two busy processes beside it, the update
took 2x as long with spinning threads (44 s against 23 s) and a 16x15 Categorical sample 65 ms against 0.8 ms.

So the policy follows the load at start-up: when the 1-minute load average exceeds the cores this process may not
use (other processes may then be running on ours), idle threads sleep at once (OMP_WAIT_POLICY=PASSIVE); otherwise
OpenMP's default stays. A value the user set for OMP_WAIT_POLICY or GOMP_SPINCOUNT is kept, and so is the user's
choice to decide it themselves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

OPENMP_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")
"""The OpenMP variables a benchmark reports; the first two decide how idle threads wait."""
USER_OPENMP_ENV = {name: os.environ.get(name) for name in OPENMP_VARIABLES}
"""The values the process started with (None: unset), before `choose_wait_policy` filled any in."""
SLACK_CORES = 0.5
"""Load beyond the cores this process may not use that still counts as quiet (the issue's 'below 0.5')."""


@dataclass(frozen=True)
class WaitPolicy:
    """How idle OpenMP threads wait in a process, why, and the variables to set before torch loads."""

    passive: bool
    reason: str
    env: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return f"idle OpenMP threads {'sleep' if self.passive else 'spin'} ({self.reason})"


def cores_shared(load_average: float, usable_cores: int, online_cores: int) -> bool:
    """Whether other processes may run on this process's cores: the load exceeds the cores it may not use."""
    return load_average > online_cores - usable_cores + SLACK_CORES


def wait_policy(user_env: Mapping[str, str | None], load_average: float, usable_cores: int,
                online_cores: int) -> WaitPolicy:
    """The policy for a process started with `user_env` (see the module docstring): the user's OMP_WAIT_POLICY or
    GOMP_SPINCOUNT as it is, else PASSIVE on shared cores and OpenMP's default on cores of its own."""
    user = {name: user_env[name] for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if user_env.get(name)}
    if user:
        passive = user.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE" or user.get("GOMP_SPINCOUNT") == "0"
        return WaitPolicy(passive, "set by the user: " + ", ".join(f"{k}={v}" for k, v in user.items()))
    where = f"1-minute load {load_average:.2f} at start, {usable_cores} of {online_cores} cores usable"
    if cores_shared(load_average, usable_cores, online_cores):
        return WaitPolicy(True, where, {"OMP_WAIT_POLICY": "PASSIVE"})
    return WaitPolicy(False, where)


def current_wait_policy() -> WaitPolicy:
    """The policy for a process starting now, from the user's variables and the load on the cores."""
    return wait_policy(USER_OPENMP_ENV, os.getloadavg()[0], len(os.sched_getaffinity(0)), os.cpu_count() or 1)


def choose_wait_policy() -> WaitPolicy:
    """Decide the policy and put its variables into the environment; call it before `import torch`."""
    policy = current_wait_policy()
    os.environ.update(policy.env)
    return policy
