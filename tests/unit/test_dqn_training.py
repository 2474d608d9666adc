"""The DQN training script's parts: acting, the gradient step, the target update, the schedules."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from dqn_training import Args, act, gradient_steps, linear_schedule, train_step, update_target
from impoola.models.agents import DQNAgent
from impoola.replay import ReplayMemory


CPU = torch.device("cpu")


class FlatEncoder(nn.Module):
    """A linear-probe encoder on 3x4x4 frames, enough to drive a DQNAgent in unit tests."""

    out_features = 48

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.float().flatten(1) / 255.0


def q_network_preferring(action: int) -> DQNAgent:
    """A Q network whose Q values ignore the frame: 1 for `action`, 0 elsewhere."""
    agent = DQNAgent(FlatEncoder(), 15)
    with torch.no_grad():
        agent.q_head.weight.zero_()
        agent.q_head.bias.zero_()
        agent.q_head.bias[action] = 1.0
    return agent


def test_linear_schedule_and_gradient_steps():
    assert linear_schedule(1.0, 0.025, 100, 0) == 1.0
    assert linear_schedule(1.0, 0.025, 100, 50) == pytest.approx(0.5125)
    assert linear_schedule(1.0, 0.025, 100, 1000) == 0.025
    assert [gradient_steps(k, 1.0) for k in range(1, 6)] == [1] * 5
    assert [gradient_steps(k, 2.0) for k in range(1, 6)] == [2] * 5  # two gradient steps per vector step
    assert [gradient_steps(k, 0.5) for k in range(1, 7)] == [0, 1, 0, 1, 0, 1]  # one every other vector step
    assert sum(gradient_steps(k, 1 / 3) for k in range(1, 10)) == 3


def test_release_flips_one_coin_per_vector_step_textbook_one_per_env():
    np.random.seed(0)
    q_network, obs = q_network_preferring(3), np.zeros((64, 3, 4, 4), np.uint8)
    args = Args(replay_mode="release")
    greedy_counts = [int((act(q_network, obs, 0.5, args, CPU) == 3).sum()) for _ in range(200)]
    all_greedy = [count == 64 for count in greedy_counts]
    assert 0.35 < np.mean(all_greedy) < 0.65  # all envs greedy or (almost) none: one coin for the step
    assert max(count for count, g in zip(greedy_counts, all_greedy) if not g) < 16
    args = Args(replay_mode="textbook")
    greedy_counts = np.array([(act(q_network, obs, 0.5, args, CPU) == 3).sum() for _ in range(200)])
    assert np.all((greedy_counts > 10) & (greedy_counts < 60))  # every step mixes greedy and random envs
    assert greedy_counts.mean() / 64 == pytest.approx(0.5 + 0.5 / 15, abs=0.03)
    assert np.all(act(q_network, obs, 0.0, args, CPU) == 3)


def test_fully_random_steps_skip_the_network():
    class Unusable(nn.Module):
        def forward(self, obs):
            raise AssertionError("the Q network must not run when every action is random")

    actions = act(Unusable(), np.zeros((8, 3, 4, 4), np.uint8), 1.0, Args(), CPU)
    assert actions.shape == (8,) and actions.min() >= 0 and actions.max() < 15


def test_softmax_exploration_samples_from_q_over_temperature():
    torch.manual_seed(0)
    q_network, obs = q_network_preferring(5), np.zeros((4000, 3, 4, 4), np.uint8)
    sharp = act(q_network, obs, 0.0, Args(exploration="softmax", softmax_temperature=0.05), CPU)
    assert (sharp == 5).mean() > 0.99
    soft = act(q_network, obs, 0.0, Args(exploration="softmax", softmax_temperature=1.0), CPU)
    assert (soft == 5).mean() == pytest.approx(np.e / (np.e + 14), abs=0.03)


@pytest.mark.parametrize("mode", ["release", "textbook"])
def test_train_step_uses_the_double_dqn_target(mode):
    torch.manual_seed(0)
    q_network = q_network_preferring(3)  # online network: argmax is action 3 everywhere
    target_network = copy.deepcopy(q_network)
    with torch.no_grad():
        target_network.q_head.bias.copy_(torch.arange(15.0))  # target's own argmax would be action 14
    rb = ReplayMemory(8, 1, (3, 4, 4), n_step=1, gamma=0.9, mode=mode, prioritized=False)
    frames = np.zeros((3, 1, 3, 4, 4), np.uint8)
    rb.add(frames[0], np.array([7]), np.array([2.0], np.float32), np.array([False]), frames[1])
    optimizer = torch.optim.SGD(q_network.parameters(), lr=0.0)
    loss, q_taken = train_step(q_network, target_network, optimizer, rb, Args(batch_size=4, replay_mode=mode)).tolist()
    # Q(s, 7) = 0; target = r + γ · Q_target(s', argmax_a Q_online(s', a)) = 2 + 0.9 · 3
    assert q_taken == 0.0
    assert loss == pytest.approx((2 + 0.9 * 3) ** 2)


def test_target_update_hard_copy_and_polyak():
    online, target = q_network_preferring(3), q_network_preferring(4)
    update_target(target, online, 0.25)
    torch.testing.assert_close(target.q_head.bias[3:5], torch.tensor([0.25, 0.75]))
    update_target(target, online, 1.0)
    for a, b in zip(target.parameters(), online.parameters()):
        assert torch.equal(a, b)
