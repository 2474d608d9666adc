"""GAE and the PPO loss against the release's golden values and hand-computed cases."""

import torch

from impoola.ppo import compute_gae, explained_variance, ppo_loss
from support.paths import DATA


def test_gae_matches_golden():
    gae = torch.load(DATA / "ppo_math.pt")["gae"]
    advantages, returns = compute_gae(gae["rewards"], gae["values"], gae["dones"], gae["next_value"],
                                      gae["next_done"], gae["gamma"], gae["lam"])
    torch.testing.assert_close(advantages, gae["advantages"], atol=1e-6, rtol=0)
    torch.testing.assert_close(returns, gae["returns"], atol=1e-6, rtol=0)


def test_gae_by_hand_with_episode_ends_inside_and_at_the_edge():
    # env 0: the episode ends after step 1 (obs 2 starts a new one) and again after the last step.
    # env 1: no episode end: bootstraps from next_value.
    rewards = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 1.0]])
    values = torch.tensor([[0.5, 0.0], [1.0, 0.0], [1.5, 0.0]])
    dones = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    advantages, returns = compute_gae(rewards, values, dones, torch.tensor([10.0, 2.0]), torch.tensor([1.0, 0.0]),
                                      gamma=0.9, gae_lambda=0.5)
    # env 0: A2 = 3 - 1.5; A1 = 2 - 1 (cut by dones[2]); A0 = (1 + 0.9*1 - 0.5) + 0.45*A1
    # env 1: A2 = 1 + 0.9*2; A1 = 0.45*A2; A0 = 0.45*A1
    expected = torch.tensor([[1.85, 0.567], [1.0, 1.26], [1.5, 2.8]])
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, expected + values)


def _golden_loss(**overrides):
    batch = torch.load(DATA / "ppo_math.pt")["ppo_loss"]
    kwargs = dict(newlogits=batch["newlogits"], newvalue=batch["newvalue"], actions=batch["actions"].long(),
                  oldlogprob=batch["oldlogprob"], oldvalues=batch["oldvalues"], returns=batch["returns"],
                  advantages=batch["advantages"], clip_coef=batch["clip"], ent_coef=batch["ent_coef"],
                  vf_coef=batch["vf_coef"])
    return batch, ppo_loss(**{**kwargs, **overrides})


def test_loss_matches_golden():
    batch, out = _golden_loss()
    for key in ("loss", "pg_loss", "v_loss", "entropy"):
        torch.testing.assert_close(getattr(out, key), batch[key], atol=1e-6, rtol=0)


def test_value_clipping_changes_the_loss_only_when_on():
    batch, plain = _golden_loss()
    far = batch["oldvalues"][:, None] + 5.0
    _, off = _golden_loss(newvalue=far)
    _, on = _golden_loss(newvalue=far, clip_vloss=True)
    assert off.v_loss != plain.v_loss
    expected_on = 0.5 * torch.max((far.flatten() - batch["returns"]) ** 2,
                                  (batch["oldvalues"] + 0.2 - batch["returns"]) ** 2).mean()
    torch.testing.assert_close(on.v_loss, expected_on)
    assert on.v_loss != off.v_loss
    near = batch["oldvalues"][:, None] + 0.1  # inside the clip range: clipping changes nothing
    _, near_off = _golden_loss(newvalue=near)
    _, near_on = _golden_loss(newvalue=near, clip_vloss=True)
    torch.testing.assert_close(near_on.v_loss, near_off.v_loss)


def test_policy_loss_by_hand():
    # Two samples, equal logits: ratio exp(logp_new - logp_old); advantages normalised to [-1/sqrt2, 1/sqrt2]*sqrt2.
    logits = torch.zeros(2, 3)
    logp = torch.log(torch.tensor(1 / 3))
    old = torch.stack([logp - 0.5, logp + 0.5])  # ratios e^0.5 (clipped to 1.2) and e^-0.5 (clipped to 0.8)
    out = ppo_loss(logits, torch.zeros(2, 1), torch.tensor([0, 1]), old, torch.zeros(2), torch.zeros(2),
                   torch.tensor([1.0, -1.0]), clip_coef=0.2, ent_coef=0.0, vf_coef=0.0)
    a = 1 / torch.tensor([1.0, -1.0]).std()  # normalised advantages are +-a
    expected = (torch.max(-a * torch.exp(torch.tensor(0.5)), -a * 1.2)
                + torch.max(a * torch.exp(torch.tensor(-0.5)), a * 0.8)) / 2
    torch.testing.assert_close(out.pg_loss, expected)
    assert out.clipfrac == 1.0


def test_explained_variance():
    returns = torch.tensor([1.0, 2.0, 3.0])
    assert explained_variance(returns, returns) == 1.0
    assert explained_variance(torch.zeros(3), returns) == 0.0
