"""Named sets of defaults for the training scripts (`--preset NAME`); flags given explicitly still override them.

train-procgen: what OpenAI's train-procgen PPO computed (baselines ppo2 on TF 1.x): the Impala-CNN at τ=1 (flatten
head) with TensorFlow's 'same' max-pool padding and TF 1.x initialisation (glorot_uniform, zero biases), γ=0.999,
λ=0.95, Adam 5e-4 with ε = 1e-5 in TF's epsilon-hat form and without the release's 2/τ rescaling, 64 envs x 256
steps, 8 minibatches, 3 epochs, clip 0.2 with a clipped value loss, entropy 0.01, value 0.5, gradient norm 0.5,
rewards normalised by the std of a return discounted by 0.99 (VecNormalize's default, not γ) and clipped to ±10,
easy mode on the generalization track (200 training levels), no annealing. What still differs (Procgen 0.10.7
against 0.9.2; the advantage std's ddof) is listed in docs/validation.md.

train-procgen-torch: the same hyperparameters on PyTorch's defaults, as this preset was before it was corrected
(and as CleanRL's ppo_procgen.py computes): PyTorch initialisation, padding 1 on both sides of the max-pool,
PyTorch's Adam ε, rewards normalised with γ = 0.999.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Preset:
    """The option values of a preset (flat option names) and the training script they belong to."""

    algorithm: str
    values: dict[str, Any]


TRAIN_PROCGEN_HYPERPARAMETERS: dict[str, Any] = {
    "encoder": "impala", "scale": 1.0, "pooling": "flatten", "gamma": 0.999, "gae_lambda": 0.95,
    "learning_rate": 5e-4, "scale_lr": False, "num_envs": 64, "num_steps": 256, "num_minibatches": 8,
    "update_epochs": 3, "clip_coef": 0.2, "clip_vloss": True, "ent_coef": 0.01, "vf_coef": 0.5,
    "max_grad_norm": 0.5, "normalize_reward": True, "reward_clip": 10.0, "distribution_mode": "easy",
    "track": "generalization", "anneal_lr": False,
}

PRESETS: dict[str, Preset] = {
    "train-procgen": Preset("ppo", {
        **TRAIN_PROCGEN_HYPERPARAMETERS, "maxpool_padding": "same", "encoder_init": "glorot", "adam_eps_form": "tf",
        "reward_norm_gamma": 0.99,
    }),
    "train-procgen-torch": Preset("ppo", {
        **TRAIN_PROCGEN_HYPERPARAMETERS, "maxpool_padding": "symmetric", "encoder_init": "torch",
        "adam_eps_form": "torch", "reward_norm_gamma": 0.999,
    }),
}


def preset_values(name: str, algorithm: str) -> dict[str, Any]:
    """The values of preset `name` for `algorithm` (a one-line ValueError for an unknown or foreign preset)."""
    if name not in PRESETS:
        raise ValueError(f"invalid preset {name!r}; valid: {', '.join(PRESETS)}")
    preset = PRESETS[name]
    if preset.algorithm != algorithm:
        raise ValueError(f"invalid preset {name!r} for {algorithm}; valid: presets of {algorithm}: "
                         + (", ".join(k for k, p in PRESETS.items() if p.algorithm == algorithm) or "none"))
    return {**preset.values, "preset": name}
