"""RewardNormalizer against gym 0.26's NormalizeReward, and the Gaussian pixel noise of the robustness track."""

import gym
import numpy as np
import pytest
from gym.wrappers.normalize import NormalizeReward

from impoola.envs.games import NUM_ACTIONS
from impoola.envs.procgen import ProcgenVecEnv, make_track_env
from impoola.envs.wrappers import PixelNoise, RewardNormalizer, add_pixel_noise


class ScriptedVecEnv(gym.Env):
    """A gym vector env replaying given rewards and dones (the reference NormalizeReward wraps it)."""

    is_vector_env = True

    def __init__(self, rewards, dones):
        self.num_envs = rewards.shape[1]
        self.rewards, self.dones, self.t = rewards, dones, 0

    def step(self, action):
        reward, done = self.rewards[self.t], self.dones[self.t]
        self.t += 1
        return None, reward, done, np.zeros_like(done), {}


def reference_normalized(rewards, dones, gamma=0.99, clip=10.0):
    """Rewards through gym's NormalizeReward followed by the clip the release applied."""
    env = NormalizeReward(ScriptedVecEnv(rewards, dones), gamma=gamma)
    return np.stack([np.clip(env.step(None)[1], -clip, clip) for _ in range(len(rewards))])


def scripted(num_steps=600, num_envs=4, seed=0):
    """Sparse rewards of mixed sign, 1000x larger in the second half (so some get clipped), random episode ends."""
    rng = np.random.default_rng(seed)
    rewards = (rng.random((num_steps, num_envs)) < 0.1) * rng.choice([1.0, 10.0, -3.0], (num_steps, num_envs))
    rewards[num_steps // 2:] *= 1000.0
    return rewards.astype(np.float32), rng.random((num_steps, num_envs)) < 0.02


@pytest.mark.parametrize("gamma", [0.99, 0.9])
def test_reward_normalizer_matches_gym_reference(gamma):
    rewards, dones = scripted()
    normalizer = RewardNormalizer(4, gamma=gamma)
    ours = np.stack([normalizer(r, d) for r, d in zip(rewards, dones)])
    reference = reference_normalized(rewards, dones, gamma=gamma)
    assert ours.dtype == np.float32
    assert np.array_equal(ours, reference.astype(np.float32))
    assert (np.abs(ours) == 10.0).any() and dones.any()


def test_reward_normalizer_matches_gym_on_procgen_rewards():
    env = ProcgenVecEnv("starpilot", 4, "easy", seed=1, num_threads=1)
    env.reset()
    rng = np.random.default_rng(0)
    steps = [env.step(rng.integers(0, NUM_ACTIONS, 4))[1:3] for _ in range(300)]
    env.close()
    rewards, dones = (np.stack(x) for x in zip(*steps))
    assert dones.any() and rewards.any()
    normalizer = RewardNormalizer(4)
    ours = np.stack([normalizer(r, d) for r, d in zip(rewards, dones)])
    assert np.array_equal(ours, reference_normalized(rewards, dones).astype(np.float32))


def written_out_normalized(rewards, dones, discount, epsilon=1e-8, clip=10.0):
    """The rule written out in closed form: at step t, every env's discounted return G (reset after an episode
    ends) joins the set of all returns seen so far; the reward is divided by √(var + ε), var being that set's
    population variance merged with the prior (mean 0, var 1, weight 1e-4)."""
    prior = 1e-4
    seen, out, returns = [], [], np.zeros(rewards.shape[1])
    for reward, done in zip(rewards.astype(np.float64), dones):
        returns = returns * discount + reward
        seen.extend(returns)
        sample = np.array(seen)
        total = prior + len(sample)
        m2 = prior * 1.0 + sample.var() * len(sample) + sample.mean() ** 2 * prior * len(sample) / total
        out.append(np.clip(reward / np.sqrt(m2 / total + epsilon), -clip, clip))
        returns[done] = 0.0
    return np.stack(out)


@pytest.mark.parametrize("discount", [0.99, 0.999])
def test_normalised_reward_stream_follows_its_discount(discount):
    """train-procgen's VecNormalize discounts by 0.99 where PPO's γ is 0.999: the normaliser takes either."""
    rewards, dones = scripted(num_steps=200, num_envs=3, seed=2)
    rewards = rewards[:, :] / 1000.0 ** (np.arange(200)[:, None] >= 100)  # one scale: no clipping here
    normalizer = RewardNormalizer(3, gamma=discount)
    ours = np.stack([normalizer(r, d) for r, d in zip(rewards, dones)])
    np.testing.assert_allclose(ours, written_out_normalized(rewards, dones, discount), rtol=1e-5)
    other = RewardNormalizer(3, gamma=0.999 if discount == 0.99 else 0.99)
    assert not np.allclose(ours, np.stack([other(r, d) for r, d in zip(rewards, dones)]), rtol=1e-3)


def test_reward_normalizer_resets_return_at_episode_end():
    normalizer = RewardNormalizer(2)
    normalizer(np.array([1.0, 1.0], np.float32), np.array([True, False]))
    assert normalizer.returns[0] == 0.0 and normalizer.returns[1] == 1.0


def test_reward_normalizer_state_dict_roundtrip():
    rewards, dones = scripted(seed=1)
    a, b = RewardNormalizer(4), RewardNormalizer(4)
    for r, d in zip(rewards[:300], dones[:300]):
        a(r, d)
    b.load_state_dict(a.state_dict())
    for r, d in zip(rewards[300:], dones[300:]):
        assert np.array_equal(a(r, d), b(r, d))


def test_pixel_noise_statistics_and_clamping():
    rng = np.random.default_rng(0)
    gray = np.full((8, 3, 64, 64), 128, np.uint8)
    noisy = add_pixel_noise(gray, 15.0, rng)
    assert noisy.dtype == np.uint8 and noisy.shape == gray.shape
    diff = noisy.astype(np.float64) - 128
    assert abs(diff.mean()) < 0.2 and abs(diff.std() - 15.0) < 0.2
    zeros = add_pixel_noise(np.zeros((4, 3, 64, 64), np.uint8), 30.0, rng)
    full = add_pixel_noise(np.full((4, 3, 64, 64), 255, np.uint8), 30.0, rng)
    assert zeros.min() == 0 and 0.4 < (zeros > 0).mean() < 0.6 and zeros.max() < 200  # clamped, not wrapped
    assert full.max() == 255 and 0.4 < (full < 255).mean() < 0.6 and full.min() > 55


def test_pixel_noise_std_zero_is_identity():
    obs = np.random.default_rng(1).integers(0, 256, (2, 3, 64, 64), dtype=np.uint8)
    assert np.array_equal(add_pixel_noise(obs, 0.0, np.random.default_rng(0)), obs)
    plain = ProcgenVecEnv("bigfish", 2, seed=3, num_threads=1)
    wrapped = PixelNoise(ProcgenVecEnv("bigfish", 2, seed=3, num_threads=1), 0.0, seed=3)
    assert np.array_equal(plain.reset()[0], wrapped.reset()[0])
    for action in range(5):
        assert np.array_equal(plain.step(np.full(2, action))[0], wrapped.step(np.full(2, action))[0])
    with pytest.raises(ValueError, match="noise"):
        PixelNoise(plain, -1.0, seed=0)


def test_pixel_noise_wrapper_on_procgen():
    plain = ProcgenVecEnv("bigfish", 2, seed=3, num_threads=1)
    noisy = make_track_env("bigfish", "easy", "generalization", "train", num_envs=2, seed=3, num_threads=1,
                           noise_std=30.0)
    twin = make_track_env("bigfish", "easy", "generalization", "train", num_envs=2, seed=3, num_threads=1,
                          noise_std=30.0)
    assert isinstance(noisy, PixelNoise) and noisy.num_envs == 2 and noisy.single_action_space.n == NUM_ACTIONS
    plain.close()
    plain = make_track_env("bigfish", "easy", "generalization", "train", num_envs=2, seed=3, num_threads=1)
    assert np.array_equal(noisy.reset()[0], plain.reset()[0])  # the reset frame is not noised
    twin.reset()
    for action in range(5):
        clean, reward, *_ = plain.step(np.full(2, action))
        obs, noisy_reward, *_ = noisy.step(np.full(2, action))
        assert obs.dtype == np.uint8 and not np.array_equal(obs, clean) and np.array_equal(reward, noisy_reward)
        assert np.array_equal(obs, twin.step(np.full(2, action))[0])  # seeded noise
    assert len(noisy.get_state()) == 2
    for env in (plain, noisy, twin):
        env.close()
