"""Adam in the two forms of its ε: PyTorch's (ε added to the bias-corrected √v̂) and TensorFlow's "epsilon hat".

torch.optim.Adam steps by   lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).
TF 1.x's AdamOptimizer (OpenAI's train-procgen) steps by   lr · √(1 − β₂ᵗ) / (1 − β₁ᵗ) · m / (√v + ε),
which is PyTorch's form with an effective ε of ε / √(1 − β₂ᵗ): with ε = 1e-5 and β₂ = 0.999 that is 6.5e-5 after 24
steps and 1.1e-5 after 1,500 (t counts optimizer steps). `ADAM_EPS_FORMS` maps each `--adam_eps_form` to its class.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class EpsilonHatAdam(torch.optim.Adam):
    """Adam with ε added to the uncorrected √v (TF's form). Its state (step, exp_avg, exp_avg_sq per parameter) is
    torch.optim.Adam's, so checkpoints, ReDo's moment resets and `load_state_dict` treat both alike. No weight
    decay, AMSGrad or maximize."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        super().__init__(params, lr=lr, betas=betas, eps=eps, foreach=False)

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 - torch.optim.Optimizer's signature
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["step"] += 1
                step = float(state["step"])
                grad = param.grad
                state["exp_avg"].lerp_(grad, 1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step_size = group["lr"] * (1 - beta2 ** step) ** 0.5 / (1 - beta1 ** step)
                param.addcdiv_(state["exp_avg"], state["exp_avg_sq"].sqrt().add_(group["eps"]), value=-step_size)
        return loss


ADAM_EPS_FORMS: dict[str, type[torch.optim.Adam]] = {"torch": torch.optim.Adam, "tf": EpsilonHatAdam}
"""`--adam_eps_form` choices: torch (PyTorch's Adam; the release) or tf (TF's epsilon hat; train-procgen)."""


def build_adam(params: Iterable[torch.Tensor], lr: float, eps: float, form: str) -> torch.optim.Adam:
    """Adam over `params` with ε in `form` (`ADAM_EPS_FORMS`)."""
    if form not in ADAM_EPS_FORMS:
        raise ValueError(f"invalid adam_eps_form {form!r}; valid: {', '.join(ADAM_EPS_FORMS)}")
    return ADAM_EPS_FORMS[form](params, lr=lr, eps=eps)
