"""N-step accumulator: the release's storage against its golden list, the textbook's targets by hand, stream breaks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from impoola.replay import ReplayMemory
from impoola.replay.nstep import NStepAccumulator
from support.paths import DATA
from support.replay import feed, frames_of, stored

GOLDEN = DATA / "nstep_release.json"


def test_release_mode_stores_the_golden_list():
    g = json.loads(GOLDEN.read_text())
    steps, n_envs = len(g["rewards"]), g["n_envs"]
    dones = np.zeros((steps, n_envs), bool)
    for env, t in g["done_at"]:
        dones[t, env] = True
    mem = ReplayMemory(64, n_envs, (3, 4, 4), n_step=g["n_steps"], gamma=g["gamma"], mode="release")
    feed(mem, g["obs_ids"], g["actions"], g["rewards"], dones)
    got = stored(mem)
    assert len(mem) == len(g["stored"]) == len(got)
    for (obs, nxt, action, ret, done), want in zip(got, g["stored"]):
        assert (obs, nxt, action, done) == (want["obs"], want["next_obs"], want["action"], want["done"])
        assert ret == pytest.approx(want["reward"], rel=1e-6, abs=1e-6)
    assert mem.bootstrap_gamma == g["gamma"]


def test_textbook_nstep_targets_by_hand():
    # two envs, n=3, γ=0.5; obs id = 1 + 2t + env; env0 ends at t=3, env1 at t=1 and t=5
    steps = 7
    obs_ids = [[1 + 2 * t, 2 + 2 * t] for t in range(steps + 1)]
    actions = [[t, 10 + t] for t in range(steps)]
    rewards = [[t + 1, 10 * (t + 1)] for t in range(steps)]
    dones = np.zeros((steps, 2), bool)
    dones[3, 0] = dones[1, 1] = dones[5, 1] = True
    mem = ReplayMemory(64, 2, (3, 4, 4), n_step=3, gamma=0.5, mode="textbook")
    feed(mem, obs_ids, actions, rewards, dones)
    expected = [
        (2, 6, 10, 10 + 0.5 * 20, 1.0),  # t=1: env1's two-step episode flushed
        (4, 6, 11, 20.0, 1.0),
        (1, 7, 0, 1 + 0.5 * 2 + 0.25 * 3, 0.0),  # t=2: env0 t0 -> s3
        (3, 9, 1, 2 + 0.5 * 3 + 0.25 * 4, 1.0),  # t=3: env0's tail flushed, next = next episode's first frame
        (5, 9, 2, 3 + 0.5 * 4, 1.0),
        (7, 9, 3, 4.0, 1.0),
        (6, 12, 12, 30 + 0.5 * 40 + 0.25 * 50, 0.0),  # t=4: env1 t2 -> s5
        (8, 14, 13, 40 + 0.5 * 50 + 0.25 * 60, 1.0),  # t=5: env1's tail flushed
        (10, 14, 14, 50 + 0.5 * 60, 1.0),
        (12, 14, 15, 60.0, 1.0),
        (9, 15, 4, 5 + 0.5 * 6 + 0.25 * 7, 0.0),  # t=6: env0 t4 -> s7
    ]
    assert stored(mem) == expected
    assert mem.bootstrap_gamma == pytest.approx(0.125)
    assert len(mem) + 3 == 2 * steps  # only the 3 steps of unfinished windows are pending


@pytest.mark.parametrize("flush", [False, True])
def test_accumulator_emits_by_the_rule_and_drops_pending_steps(flush):
    acc = NStepAccumulator(num_envs=1, n_step=2, gamma=0.5, flush_episode_tails=flush)
    one = np.ones(1, np.int32)

    def push(obs: int, reward: float, done: bool):
        return acc.push(np.array([obs]), np.array([obs + 1]), one, np.array([reward], np.float32), np.array([done]))

    assert len(push(0, 1.0, False).obs_frame) == 0  # one step pending of two
    full = push(1, 2.0, False)  # window full: the oldest step's 2-step return
    assert full.obs_frame.tolist() == [0] and full.returns.tolist() == [1.0 + 0.5 * 2.0]
    assert full.next_frame.tolist() == ([2] if flush else [1])  # s_{t+n} (textbook) or s_{t+1} (release)
    end = push(2, 4.0, True)
    if flush:  # both pending steps, done=1, next = the last next frame
        assert end.obs_frame.tolist() == [1, 2] and end.returns.tolist() == [2.0 + 0.5 * 4.0, 4.0]
        assert end.next_frame.tolist() == [3, 3] and end.dones.tolist() == [True, True]
    else:  # one transition from the oldest pending step, the tail is dropped
        assert end.obs_frame.tolist() == [1] and end.next_frame.tolist() == [2] and end.dones.tolist() == [True]
    assert acc.arrays["pend_len"].tolist() == [0] and acc.step == 3
    push(5, 1.0, False)
    acc.drop(np.array([True]))
    assert len(push(6, 1.0, False).obs_frame) == 0  # the dropped step does not complete a window


def test_discontinuous_obs_starts_a_new_frame_and_drops_pending_steps():
    mem = ReplayMemory(32, 1, (3, 4, 4), n_step=2, gamma=0.5, mode="textbook")
    feed(mem, [[1], [2], [3]], [[0], [1]], [[1.0], [2.0]], np.zeros((2, 1), bool))
    a = np.array([0])
    mem.add(frames_of([50]), a, np.array([4.0], np.float32), np.array([False]), frames_of([51]))
    mem.add(frames_of([51]), a, np.array([8.0], np.float32), np.array([False]), frames_of([52]))
    assert stored(mem) == [(1, 3, 0, 2.0, 0.0), (50, 52, 0, 8.0, 0.0)]
