"""ProcgenVecEnv on real Procgen games: layout, reset-inside-step semantics, bookkeeping, determinism, state."""

import os

import numpy as np
import pytest
from procgen import ProcgenGym3Env

from impoola.envs.games import NUM_ACTIONS
from impoola.envs.procgen import ProcgenVecEnv, default_num_threads, make_track_env


def rollout(env, num_steps, seed=0):
    """Step `env` with seeded random actions; stacked obs, rewards, dones and episode infos."""
    rng = np.random.default_rng(seed)
    keys = ("obs", "reward", "done", "episode_return", "episode_length", "level_seed", "prev_level_seed")
    out = {key: [] for key in keys}
    for _ in range(num_steps):
        obs, reward, terminated, truncated, info = env.step(rng.integers(0, NUM_ACTIONS, env.num_envs))
        assert not truncated.any()
        for key, value in zip(keys[:3], (obs, reward, terminated)):
            out[key].append(value)
        for key in keys[3:]:
            out[key].append(info[key])
    return {key: np.stack(value) for key, value in out.items()}


def test_layout_matches_raw_procgen():
    env = ProcgenVecEnv("bigfish", 3, "easy", seed=3, num_threads=1)
    raw = ProcgenGym3Env(num=3, env_name="bigfish", distribution_mode="easy", rand_seed=3, num_threads=1)
    assert env.single_observation_space.shape == (3, 64, 64) and env.single_observation_space.dtype == np.uint8
    assert env.single_action_space.n == NUM_ACTIONS and env.num_envs == 3
    obs, info = env.reset()
    assert obs.shape == (3, 3, 64, 64) and obs.dtype == np.uint8 and obs.flags["C_CONTIGUOUS"]
    assert np.array_equal(obs, raw.observe()[1]["rgb"].transpose(0, 3, 1, 2))
    assert info["level_seed"].shape == (3,)
    actions = np.array([1, 4, 7])
    obs, reward, terminated, truncated, info = env.step(actions)
    raw.act(actions)
    raw_reward, raw_obs, raw_first = raw.observe()
    assert obs.flags["C_CONTIGUOUS"] and np.array_equal(obs, raw_obs["rgb"].transpose(0, 3, 1, 2))
    assert reward.dtype == np.float32 and np.array_equal(reward, raw_reward)
    assert terminated.dtype == bool and np.array_equal(terminated, raw_first)
    assert truncated.dtype == bool and not truncated.any()
    assert info["episode_return"].dtype == np.float64 and info["episode_length"].dtype == np.int64
    env.close()


def test_done_step_returns_next_episodes_first_frame():
    env = ProcgenVecEnv("bigfish", 2, "easy", start_level=7, num_levels=1, seed=0, num_threads=1)
    first_frames, _ = env.reset()
    data = rollout(env, 300)
    steps, envs = np.nonzero(data["done"])
    assert len(steps) >= 2
    for step, i in zip(steps, envs):  # a single level: every episode starts with the same frame
        assert np.array_equal(data["obs"][step, i], first_frames[i])
    assert (data["level_seed"] == 7).all()
    env.close()


def test_level_seed_changes_exactly_at_dones():
    env = ProcgenVecEnv("bigfish", 3, "easy", seed=5, num_threads=1)
    _, info = env.reset()
    data = rollout(env, 300)
    previous = np.concatenate([info["level_seed"][None], data["level_seed"][:-1]])
    done = data["done"]
    assert done.sum() >= 3
    assert np.array_equal(data["prev_level_seed"][done], previous[done])
    assert np.array_equal(data["level_seed"][~done], previous[~done])
    assert (data["level_seed"][done] != previous[done]).all()
    env.close()


def test_episode_return_and_length_bookkeeping():
    env = ProcgenVecEnv("chaser", 4, "easy", seed=2, num_threads=1)
    env.reset()
    data = rollout(env, 400)
    assert data["done"].sum() >= 4
    for i in range(env.num_envs):
        start, total = 0, 0.0
        for step in range(400):
            total += float(data["reward"][step, i])
            if data["done"][step, i]:
                assert data["episode_return"][step, i] == total
                assert data["episode_length"][step, i] == step + 1 - start
                start, total = step + 1, 0.0
            else:
                assert data["episode_return"][step, i] == 0.0 and data["episode_length"][step, i] == 0


def test_same_seed_is_deterministic_and_reset_restarts():
    runs = []
    for seed in (4, 4, 5):
        env = ProcgenVecEnv("starpilot", 2, "easy", seed=seed, num_threads=1)
        first, _ = env.reset()
        runs.append((first, rollout(env, 100)))
        again, _ = env.reset()
        assert np.array_equal(again, first)
        env.close()
    (first_a, a), (first_b, b), (first_c, c) = runs
    assert np.array_equal(first_a, first_b) and not np.array_equal(first_a, first_c)
    for key in a:
        assert np.array_equal(a[key], b[key])
    assert not np.array_equal(a["obs"], c["obs"])


def test_get_state_set_state_reproduces_steps_bit_for_bit():
    env = ProcgenVecEnv("dodgeball", 2, "easy", seed=1, num_threads=1)
    env.reset()
    rollout(env, 37, seed=1)
    states = env.get_state()
    assert len(states) == 2 and all(isinstance(state, bytes) for state in states)
    expected = rollout(env, 150, seed=2)
    other = ProcgenVecEnv("dodgeball", 2, "easy", seed=99, num_threads=1)
    other.reset()
    other.set_state(states)
    replay = rollout(other, 150, seed=2)
    assert expected["done"].any()
    for key in expected:
        assert np.array_equal(expected[key], replay[key]), key
    with pytest.raises(ValueError):
        other.set_state(states[:1])
    env.close()
    other.close()


@pytest.mark.parametrize(
    ("kwargs", "valid"),
    [({"env_id": "pong"}, "bigfish, bossfight"), ({"distribution_mode": "extreme"}, "easy, hard")],
)
def test_bad_choices_raise_one_line_value_error(kwargs, valid):
    with pytest.raises(ValueError) as err:
        ProcgenVecEnv(**{"env_id": "bigfish", "num_envs": 2, **kwargs})
    message = str(err.value)
    assert "\n" not in message and valid in message and repr(next(iter(kwargs.values()))) in message


@pytest.mark.parametrize("num_envs", [0, -1, 2.5])
def test_bad_num_envs_raises(num_envs):
    with pytest.raises(ValueError, match="num_envs"):
        ProcgenVecEnv("bigfish", num_envs)


@pytest.mark.parametrize(
    ("mode", "track", "split", "low", "high"),
    [
        ("easy", "generalization", "train", 0, 200),
        ("hard", "generalization", "train", 0, 500),
        ("easy", "finetuning", "train", 201, 301),
        ("hard", "finetuning", "test", 501, 601),
    ],
)
def test_track_level_ranges(mode, track, split, low, high):
    env = make_track_env("leaper", mode, track, split, num_envs=8, seed=1, num_threads=1)
    _, info = env.reset()
    seeds = [info["level_seed"], rollout(env, 100)["level_seed"].ravel()]
    seeds = np.concatenate(seeds)
    assert seeds.min() >= low and seeds.max() < high
    assert len(np.unique(seeds)) > 4
    env.close()


def test_full_distribution_levels_are_unbounded():
    env = make_track_env("leaper", "easy", "generalization", "test", num_envs=8, seed=1, num_threads=1)
    _, info = env.reset()
    assert (env.start_level, env.num_levels) == (0, 0) and info["level_seed"].max() > 1000
    env.close()


def test_render_rgb_array():
    env = ProcgenVecEnv("bigfish", 2, "easy", seed=1, num_threads=1, render_mode="rgb_array")
    env.reset()
    frames = env.render()
    assert frames.shape == (2, 512, 512, 3) and frames.dtype == np.uint8 and frames.any()
    env.step(np.zeros(2, int))
    assert not np.array_equal(env.render(), frames)
    env.close()
    plain = ProcgenVecEnv("bigfish", 2, seed=1, num_threads=1)
    with pytest.raises(ValueError, match="render_mode"):
        plain.render()
    with pytest.raises(ValueError, match="render_mode"):
        ProcgenVecEnv("bigfish", 2, render_mode="human")


def test_default_num_threads_follow_the_cores_this_process_may_use():
    env = ProcgenVecEnv("bigfish", 2)
    assert env.num_threads == default_num_threads() and 1 <= env.num_threads <= 4
    env.close()
    cores = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(cores)})  # e.g. a SLURM job granted one core of a larger machine
        assert default_num_threads() == 1
    finally:
        os.sched_setaffinity(0, cores)
