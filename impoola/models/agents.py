"""PPO and DQN agents on a shared encoder, and `build_agent` from the model options."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

from impoola.models.encoders import ModelOptions
from impoola.models.encoders import ENCODERS, Encoder, initialise


def layer_init(layer: nn.Linear, std: float, bias: float = 0.0) -> nn.Linear:
    """Orthogonal weight init with gain `std`, constant bias."""
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias)
    return layer


class PPOAgent(nn.Module):
    """Actor-critic with a shared encoder: actor Linear(256, A) std 0.01, critic Linear(256, 1) std 1."""

    def __init__(self, encoder: Encoder, num_actions: int):
        super().__init__()
        self.encoder = encoder
        self.actor = layer_init(nn.Linear(encoder.out_features, num_actions), std=0.01)
        self.critic = layer_init(nn.Linear(encoder.out_features, 1), std=1.0)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Action logits and state value of uint8 observations."""
        hidden = self.encoder(obs)
        return self.actor(hidden), self.critic(hidden)

    def get_value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(self.encoder(obs))

    def get_action_and_value(
        self, obs: torch.Tensor, action: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sampled (or given) action, its log-probability, the policy entropy and the value."""
        logits, value = self(obs)
        dist = Categorical(logits=logits)
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action), dist.entropy(), value

    @torch.inference_mode()
    def act(self, obs: torch.Tensor, greedy: bool = False) -> torch.Tensor:
        """Actions for evaluation: sampled from the policy (the release's PPO evaluation) or argmax."""
        logits, _ = self(obs)
        return logits.argmax(-1) if greedy else Categorical(logits=logits).sample()


class DQNAgent(nn.Module):
    """Q network: encoder + Linear(256, A) with orthogonal init std 0.01."""

    def __init__(self, encoder: Encoder, num_actions: int):
        super().__init__()
        self.encoder = encoder
        self.q_head = layer_init(nn.Linear(encoder.out_features, num_actions), std=0.01)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.q_head(self.encoder(obs))

    @torch.inference_mode()
    def act(self, obs: torch.Tensor, greedy: bool = True, temperature: float = 1.0) -> torch.Tensor:
        """Greedy actions (DQN evaluates greedily), or actions sampled from softmax(Q / temperature)."""
        q_values = self(obs)
        if greedy:
            return q_values.argmax(-1)
        return torch.multinomial(torch.softmax(q_values / temperature, dim=-1), 1).squeeze(1)


def build_encoder(options: ModelOptions) -> Encoder:
    """The encoder described by the model options: its family's class (`ENCODERS`) built from them, initialised
    by `--encoder_init`."""
    return initialise(ENCODERS[options.encoder].encoder_class.from_options(options), options.encoder_init)


def build_agent(kind: str, options: ModelOptions, num_actions: int) -> PPOAgent | DQNAgent:
    """A `ppo` or `dqn` agent on a fresh encoder."""
    agent_class = {"ppo": PPOAgent, "dqn": DQNAgent}[kind]
    return agent_class(build_encoder(options), num_actions)


def agent_kind(agent: nn.Module) -> str:
    """"dqn" for a DQNAgent, else "ppo"."""
    return "dqn" if isinstance(agent, DQNAgent) else "ppo"


def count_parameters(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def agent_policy(agent: PPOAgent | DQNAgent, device: torch.device, greedy: bool, temperature: float = 1.0):
    """A numpy-in, numpy-out policy for evaluation: uint8 frames -> actions (a DQN agent that does not act
    greedily samples from softmax(Q / temperature))."""
    options = {"temperature": temperature} if isinstance(agent, DQNAgent) else {}

    def policy(obs: np.ndarray) -> np.ndarray:
        return agent.act(torch.from_numpy(obs).to(device), greedy=greedy, **options).cpu().numpy()

    return policy
