"""How idle torch threads wait, decided before torch loads its OpenMP runtime (libgomp on Linux).

An idle OpenMP thread of libgomp spins for about 3 ms (OpenMP's default) before it sleeps. On cores of its own that
is what makes the network fast: the next parallel region of a forward or backward pass finds the thread awake
(rollout inference of 16 frames took 1.1-1.6 s per 64 steps with spinning threads, 1.5-2.7 s with sleeping ones,
channels-last; docs/speed.md). On cores that other processes use, a spinning thread burns the time slice that the
thread it waits for needs, and every parallel region after it waits: with two busy processes beside it, the
update took about 2x as long with spinning threads (38-51 s against 22-23 s) and a 16x15 Categorical sample 65 ms
against 0.8 ms.

So the policy follows the load at start-up: when more other tasks are runnable than there are cores this process may
not use (other processes may then be running on ours), idle threads sleep at once (OMP_WAIT_POLICY=PASSIVE);
otherwise OpenMP's default stays. The runnable tasks are counted now, not averaged over the last minute: a run that
starts right after another one on the same cores finds them quiet. Busy processes are runnable at every look, so
the count is the fewest seen in 10 looks over 0.1 s. A value the user set for OMP_WAIT_POLICY or GOMP_SPINCOUNT
is kept.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

OPENMP_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")
"""The OpenMP variables a benchmark reports; the first two decide how idle threads wait."""
USER_OPENMP_ENV = {name: os.environ.get(name) for name in OPENMP_VARIABLES}
"""The values the process started with (None: unset), before `choose_wait_policy` filled any in."""
LOOKS, LOOK_INTERVAL_S = 10, 0.01


@dataclass(frozen=True)
class WaitPolicy:
    """How idle OpenMP threads wait in a process, why, and the variables to set before torch loads."""

    passive: bool
    reason: str
    env: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return f"idle OpenMP threads {'sleep' if self.passive else 'spin'} ({self.reason})"


def cores_shared(other_runnable: int, usable_cores: int, online_cores: int) -> bool:
    """Whether other processes may run on this process's cores: more are runnable than the cores it may not use."""
    return other_runnable > online_cores - usable_cores


def other_runnable_tasks() -> int:
    """Runnable tasks other than this one (/proc/loadavg's running count), the fewest of LOOKS looks; where there is
    no /proc, the 1-minute load average rounded."""
    try:
        counts = []
        for look in range(LOOKS):
            counts.append(int(Path("/proc/loadavg").read_text().split()[3].split("/")[0]) - 1)
            if look + 1 < LOOKS:
                time.sleep(LOOK_INTERVAL_S)
        return max(0, min(counts))
    except (OSError, IndexError, ValueError):
        return round(os.getloadavg()[0])


def wait_policy(user_env: Mapping[str, str | None], other_runnable: int, usable_cores: int,
                online_cores: int) -> WaitPolicy:
    """The policy for a process started with `user_env` (see the module docstring): the user's OMP_WAIT_POLICY or
    GOMP_SPINCOUNT as it is, else PASSIVE on shared cores and OpenMP's default on cores of its own."""
    user = {name: user_env[name] for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if user_env.get(name)}
    if user:
        passive = user.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE" or user.get("GOMP_SPINCOUNT") == "0"
        return WaitPolicy(passive, "set by the user: " + ", ".join(f"{k}={v}" for k, v in user.items()))
    where = f"{other_runnable} other runnable tasks at start, {usable_cores} of {online_cores} cores usable"
    if cores_shared(other_runnable, usable_cores, online_cores):
        return WaitPolicy(True, where, {"OMP_WAIT_POLICY": "PASSIVE"})
    return WaitPolicy(False, where)


def current_wait_policy() -> WaitPolicy:
    """The policy for a process starting now, from the user's variables and the load on the cores."""
    return wait_policy(USER_OPENMP_ENV, other_runnable_tasks(), len(os.sched_getaffinity(0)), os.cpu_count() or 1)


def choose_wait_policy() -> WaitPolicy:
    """Decide the policy and put its variables into the environment; call it before `import torch`."""
    policy = current_wait_policy()
    os.environ.update(policy.env)
    return policy
