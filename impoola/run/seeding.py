"""Seeding and the RNG states a checkpoint keeps for an exact resume."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int, torch_deterministic: bool) -> None:
    """Seed python, numpy and torch; with `torch_deterministic`, deterministic cuDNN algorithms (no autotuning)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = torch_deterministic
    if torch_deterministic:
        torch.backends.cudnn.benchmark = False


def rng_state() -> dict:
    """Python, numpy and torch RNG states (CUDA too when present), for exact resume."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
