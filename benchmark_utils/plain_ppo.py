"""The `plain` arm of the throughput benchmark: PPO in the plainest loop, the reference that keeps ours honest.

The same network and hyperparameters as ppo_training.py, written the way CleanRL writes it: float32 NCHW
observations stored as they come, a torch Categorical distribution for acting and for the loss, a numpy
permutation per epoch, the losses read after every iteration. No channels-last, no bf16, no compile, no
checkpoints, guards or progress bar.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.distributions import Categorical

from impoola.envs.procgen import ProcgenVecEnv
from impoola.envs.wrappers import RewardNormalizer


def plain_ppo_seconds(agent: torch.nn.Module, envs: ProcgenVecEnv, num_steps: int, num_iterations: int,
                      num_minibatches: int = 8, update_epochs: int = 3, learning_rate: float = 3.5e-4,
                      gamma: float = 0.99, gae_lambda: float = 0.95, clip_coef: float = 0.2, ent_coef: float = 0.01,
                      vf_coef: float = 0.5, max_grad_norm: float = 0.5) -> list[float]:
    """Train `agent` (obs -> (logits, value)) for `num_iterations` PPO iterations; seconds of each iteration."""
    device = next(agent.parameters()).device
    num_envs = envs.num_envs
    batch_size = num_envs * num_steps
    minibatch_size = batch_size // num_minibatches
    optimizer = torch.optim.Adam(agent.parameters(), lr=learning_rate, eps=1e-5)
    reward_normalizer = RewardNormalizer(num_envs, gamma)

    obs = torch.zeros((num_steps, num_envs) + envs.single_observation_space.shape, device=device)
    actions = torch.zeros((num_steps, num_envs), dtype=torch.long, device=device)
    logprobs = torch.zeros((num_steps, num_envs), device=device)
    rewards = torch.zeros((num_steps, num_envs), device=device)
    dones = torch.zeros((num_steps, num_envs), device=device)
    values = torch.zeros((num_steps, num_envs), device=device)

    next_obs_np, _ = envs.reset()
    next_obs = torch.Tensor(next_obs_np).to(device)
    next_done = torch.zeros(num_envs, device=device)
    seconds = []
    for _ in range(num_iterations):
        start = time.perf_counter()
        for step in range(num_steps):
            obs[step] = next_obs
            dones[step] = next_done
            with torch.no_grad():
                logits, value = agent(next_obs)
                dist = Categorical(logits=logits)
                action = dist.sample()
            values[step] = value.flatten()
            actions[step] = action
            logprobs[step] = dist.log_prob(action)
            next_obs_np, reward, terminated, truncated, _ = envs.step(action.cpu().numpy())
            done = terminated | truncated
            rewards[step] = torch.tensor(reward_normalizer(reward, done)).to(device).view(-1)
            next_obs, next_done = torch.Tensor(next_obs_np).to(device), torch.Tensor(done).to(device)

        with torch.no_grad():
            next_value = agent(next_obs)[1].reshape(1, -1)
            advantages = torch.zeros_like(rewards)
            lastgaelam = 0
            for t in reversed(range(num_steps)):
                if t == num_steps - 1:
                    nextnonterminal = 1.0 - next_done
                    nextvalues = next_value
                else:
                    nextnonterminal = 1.0 - dones[t + 1]
                    nextvalues = values[t + 1]
                delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
                advantages[t] = lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
            returns = advantages + values

        b_obs = obs.reshape((-1,) + envs.single_observation_space.shape)
        b_logprobs = logprobs.reshape(-1)
        b_actions = actions.reshape(-1)
        b_advantages = advantages.reshape(-1)
        b_returns = returns.reshape(-1)
        b_inds = np.arange(batch_size)
        for _ in range(update_epochs):
            np.random.shuffle(b_inds)
            for begin in range(0, batch_size, minibatch_size):
                mb_inds = b_inds[begin:begin + minibatch_size]
                newlogits, newvalue = agent(b_obs[mb_inds])
                dist = Categorical(logits=newlogits)
                newlogprob = dist.log_prob(b_actions[mb_inds])
                entropy = dist.entropy()
                logratio = newlogprob - b_logprobs[mb_inds]
                ratio = logratio.exp()
                with torch.no_grad():
                    approx_kl = ((ratio - 1) - logratio).mean()
                    clipfrac = ((ratio - 1.0).abs() > clip_coef).float().mean()
                mb_advantages = b_advantages[mb_inds]
                mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
                pg_loss1 = -mb_advantages * ratio
                pg_loss2 = -mb_advantages * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
                pg_loss = torch.max(pg_loss1, pg_loss2).mean()
                v_loss = 0.5 * ((newvalue.view(-1) - b_returns[mb_inds]) ** 2).mean()
                entropy_loss = entropy.mean()
                loss = pg_loss - ent_coef * entropy_loss + v_loss * vf_coef
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(agent.parameters(), max_grad_norm)
                optimizer.step()
        # CleanRL logs every iteration: each of these is a device sync.
        _ = (loss.item(), pg_loss.item(), v_loss.item(), entropy_loss.item(), approx_kl.item(), clipfrac.item())
        seconds.append(time.perf_counter() - start)
    return seconds
