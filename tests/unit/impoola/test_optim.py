"""Adam's two ε forms, checked against two steps written out by hand from their update rules."""

import math

import pytest
import torch

from impoola.optim import ADAM_EPS_FORMS, EpsilonHatAdam, build_adam

LR, BETA1, BETA2, EPS = 0.1, 0.9, 0.999, 1e-3  # a large ε, so that where it is added shows in the step
GRADS = ([0.5, -2.0, 1e-4], [-0.25, 1.0, 3e-4])


def hand_adam(form: str) -> list[float]:
    """Two steps from x = (1, 2, 3) with the gradients GRADS, one scalar at a time, as the two papers write them."""
    values = [1.0, 2.0, 3.0]
    for i in range(3):
        m = v = 0.0
        for t, grads in enumerate(GRADS, start=1):
            g = grads[i]
            m = BETA1 * m + (1 - BETA1) * g
            v = BETA2 * v + (1 - BETA2) * g * g
            if form == "torch":  # Kingma & Ba, Algorithm 1: bias-corrected moments, ε added to √v̂
                values[i] -= LR * (m / (1 - BETA1 ** t)) / (math.sqrt(v / (1 - BETA2 ** t)) + EPS)
            else:  # Kingma & Ba §2's "efficient" order, TF's AdamOptimizer: ε added to √v before correction
                values[i] -= LR * math.sqrt(1 - BETA2 ** t) / (1 - BETA1 ** t) * m / (math.sqrt(v) + EPS)
    return values


@pytest.mark.parametrize("form", ["torch", "tf"])
def test_two_steps_match_the_hand_computation(form):
    param = torch.nn.Parameter(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    optimizer = build_adam([param], LR, EPS, form)
    for grads in GRADS:
        param.grad = torch.tensor(grads, dtype=torch.float64)
        optimizer.step()
    assert param.detach().tolist() == pytest.approx(hand_adam(form), rel=1e-12, abs=1e-12)


def test_the_forms_differ_where_the_gradient_is_small():
    """With |g| ≪ ε TF's form barely moves (ε ≫ √v early on); with |g| ≫ ε the forms nearly agree."""
    torch_form, tf_form = hand_adam("torch"), hand_adam("tf")
    assert abs(tf_form[2] - 3.0) < 0.1 * abs(torch_form[2] - 3.0)
    assert abs(tf_form[1] - torch_form[1]) < 0.02 * abs(torch_form[1] - 2.0)


def test_tf_form_equals_torch_with_the_effective_epsilon():
    """TF's form is PyTorch's with ε / √(1 − β₂ᵗ): one step of each on the same gradient."""
    grad = torch.tensor([1e-3, -4e-3, 2e-2])
    tf_param = torch.nn.Parameter(torch.zeros(3))
    tf_param.grad = grad.clone()
    EpsilonHatAdam([tf_param], lr=LR, eps=EPS).step()
    torch_param = torch.nn.Parameter(torch.zeros(3))
    torch_param.grad = grad.clone()
    torch.optim.Adam([torch_param], lr=LR, eps=EPS / math.sqrt(1 - BETA2)).step()
    assert torch.allclose(tf_param, torch_param, rtol=1e-5, atol=0)


def test_state_is_torch_adams_and_loads_across_forms():
    """Checkpoints hold the same state either way: a TF-form optimizer loads a PyTorch one's state and goes on."""
    param = torch.nn.Parameter(torch.ones(4))
    first = torch.optim.Adam([param], lr=LR, eps=EPS)
    param.grad = torch.full((4,), 0.3)
    first.step()
    second = EpsilonHatAdam([param], lr=LR, eps=EPS)
    second.load_state_dict(first.state_dict())
    second.step()
    state = second.state[param]
    assert set(state) == {"step", "exp_avg", "exp_avg_sq"} and float(state["step"]) == 2


def test_unknown_form_is_refused():
    assert set(ADAM_EPS_FORMS) == {"torch", "tf"}
    with pytest.raises(ValueError, match="invalid adam_eps_form 'keras'; valid: torch, tf"):
        build_adam([torch.nn.Parameter(torch.ones(1))], LR, EPS, "keras")
