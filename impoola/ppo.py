"""PPO parts: rollout storage (uint8 observations), generalized advantage estimation and the loss."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch.distributions import Categorical


class RolloutBuffer:
    """One rollout of `num_steps` x `num_envs` on `device`; observations stay uint8."""

    def __init__(self, num_steps: int, num_envs: int, obs_shape: tuple[int, ...], device: torch.device):
        shape = (num_steps, num_envs)
        self.obs = torch.zeros(shape + tuple(obs_shape), dtype=torch.uint8, device=device)
        self.actions = torch.zeros(shape, dtype=torch.long, device=device)
        self.logprobs = torch.zeros(shape, device=device)
        self.rewards = torch.zeros(shape, device=device)
        self.dones = torch.zeros(shape, device=device)
        self.values = torch.zeros(shape, device=device)

    def flat(self, advantages: torch.Tensor, returns: torch.Tensor) -> dict[str, torch.Tensor]:
        """The rollout flattened to batch rows (step-major: row = step * num_envs + env)."""
        return {
            "obs": self.obs.flatten(0, 1),
            "actions": self.actions.flatten(),
            "logprobs": self.logprobs.flatten(),
            "values": self.values.flatten(),
            "advantages": advantages.flatten(),
            "returns": returns.flatten(),
        }


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    next_value: torch.Tensor,
    next_done: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns of a (T, N) rollout.

    `dones[t]` is 1 when `obs[t]` starts a new episode (the step before it ended one), so the
    bootstrap from step t+1 into step t is cut by `1 - dones[t+1]`; `next_done`/`next_value`
    describe the observation after the last step.
    """
    num_steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    next_nonterminal = 1.0 - next_done.float()
    next_values = next_value.flatten()
    last_gae = torch.zeros_like(next_values)
    for t in reversed(range(num_steps)):
        delta = rewards[t] + gamma * next_values * next_nonterminal - values[t]
        last_gae = delta + gamma * gae_lambda * next_nonterminal * last_gae
        advantages[t] = last_gae
        next_nonterminal = 1.0 - dones[t].float()
        next_values = values[t]
    return advantages, advantages + values


@dataclass
class PPOLoss:
    """The loss to minimise and its parts (tensors; call `.item()` only when logging), each with its metric key."""

    loss: torch.Tensor = field(metadata={"key": "losses/loss"})
    pg_loss: torch.Tensor = field(metadata={"key": "losses/policy_loss"})
    v_loss: torch.Tensor = field(metadata={"key": "losses/value_loss"})
    entropy: torch.Tensor = field(metadata={"key": "losses/entropy"})
    old_approx_kl: torch.Tensor = field(metadata={"key": "losses/old_approx_kl"})
    approx_kl: torch.Tensor = field(metadata={"key": "losses/approx_kl"})
    clipfrac: torch.Tensor = field(metadata={"key": "losses/clipfrac"})
    approx_kl_baselines: torch.Tensor = field(metadata={"key": "losses/approx_kl_baselines"})
    """0.5·mean((log p_new − log p_old)²): the estimator OpenAI baselines' ppo2 logs as approxkl"""

    def parts(self) -> torch.Tensor:
        """The parts detached and stacked in `LOSS_KEYS` order, to be summed on the device and read once."""
        return torch.stack([getattr(self, part.name) for part in fields(self)]).detach()


LOSS_KEYS = tuple(part.metadata["key"] for part in fields(PPOLoss))
"""Metric keys of the PPO loss parts, in the order of `PPOLoss.parts()`."""


def ppo_loss(
    newlogits: torch.Tensor,
    newvalue: torch.Tensor,
    actions: torch.Tensor,
    oldlogprob: torch.Tensor,
    oldvalues: torch.Tensor,
    returns: torch.Tensor,
    advantages: torch.Tensor,
    *,
    clip_coef: float = 0.2,
    ent_coef: float = 0.01,
    vf_coef: float = 0.5,
    norm_adv: bool = True,
    clip_vloss: bool = False,
) -> PPOLoss:
    """Clipped-surrogate PPO loss on one minibatch.

    Advantages are normalised with this minibatch's mean and unbiased std (+1e-8). The value loss
    is the plain 0.5·MSE unless `clip_vloss`, which clips the value change to ±`clip_coef`
    around the rollout's value and takes the larger of the two errors.
    """
    dist = Categorical(logits=newlogits)
    newlogprob = dist.log_prob(actions)
    entropy = dist.entropy().mean()
    logratio = newlogprob - oldlogprob
    ratio = logratio.exp()
    with torch.no_grad():
        old_approx_kl = (-logratio).mean()
        approx_kl = ((ratio - 1) - logratio).mean()
        clipfrac = ((ratio - 1.0).abs() > clip_coef).float().mean()
        approx_kl_baselines = 0.5 * (logratio ** 2).mean()
    if norm_adv:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    pg_loss = torch.max(-advantages * ratio, -advantages * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)).mean()
    newvalue = newvalue.view(-1)
    v_loss_unclipped = (newvalue - returns) ** 2
    if clip_vloss:
        v_clipped = oldvalues + torch.clamp(newvalue - oldvalues, -clip_coef, clip_coef)
        v_loss = 0.5 * torch.max(v_loss_unclipped, (v_clipped - returns) ** 2).mean()
    else:
        v_loss = 0.5 * v_loss_unclipped.mean()
    loss = pg_loss - ent_coef * entropy + vf_coef * v_loss
    return PPOLoss(loss, pg_loss, v_loss, entropy, old_approx_kl, approx_kl, clipfrac, approx_kl_baselines)


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    """1 - Var(returns - values) / Var(returns); nan when the returns are constant."""
    var_returns = returns.var()
    return float("nan") if var_returns == 0 else float(1 - (returns - values).var() / var_returns)
