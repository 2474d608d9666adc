"""The PPO training script's parts: the update's early stop at `target_kl`, the reward normaliser's discount."""

import torch

from impoola.ppo import LOSS_KEYS
from support.runs import tiny_ppo_args


def updated_weights(tmp_path, **overrides) -> dict[str, torch.Tensor]:
    """Weights of a fresh agent after one ppo_training.update on a fixed random batch of 16x16 frames."""
    from ppo_training import update
    from impoola.models.agents import build_agent
    from impoola.ppo import ppo_loss

    args = tiny_ppo_args(tmp_path, encoder="impoola", scale=1, num_minibatches=2, **overrides)
    torch.manual_seed(0)
    agent = build_agent("ppo", args.model, 15)
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-3, eps=1e-5)
    generator = torch.Generator().manual_seed(1)
    batch = {"obs": torch.randint(0, 256, (32, 3, 16, 16), dtype=torch.uint8, generator=generator),
             "actions": torch.randint(0, 15, (32,), generator=generator), "logprobs": torch.full((32,), -2.7),
             "values": torch.randn(32, generator=generator), "returns": torch.randn(32, generator=generator),
             "advantages": torch.randn(32, generator=generator)}
    losses = update(agent, optimizer, ppo_loss, batch, args)
    assert losses.shape == (len(LOSS_KEYS),) and torch.isfinite(losses).all()
    return {name: tensor.clone() for name, tensor in agent.state_dict().items()}


def test_update_stops_after_the_epoch_whose_approx_kl_exceeds_target_kl(tmp_path):
    one_epoch = updated_weights(tmp_path, update_epochs=1)
    stopped = updated_weights(tmp_path, update_epochs=3, target_kl=1e-9)  # approx_kl > 1e-9 once the policy moved
    three_epochs = updated_weights(tmp_path, update_epochs=3)
    assert all(torch.equal(one_epoch[name], stopped[name]) for name in one_epoch)
    assert not all(torch.equal(one_epoch[name], three_epochs[name]) for name in one_epoch)


def test_reward_normaliser_discount_defaults_to_gamma_and_follows_the_preset(tmp_path):
    from impoola.cli import parse_cli
    from ppo_training import Args, reward_discount

    assert reward_discount(tiny_ppo_args(tmp_path, gamma=0.95)) == 0.95  # the release: the normaliser uses γ
    assert reward_discount(tiny_ppo_args(tmp_path, gamma=0.95, reward_norm_gamma=0.5)) == 0.5
    preset = parse_cli(Args, ["--preset", "train-procgen"], algorithm="ppo")
    assert (preset.gamma, reward_discount(preset)) == (0.999, 0.99)  # train-procgen: VecNormalize's own 0.99
