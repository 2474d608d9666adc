"""Seeding repeats the draws of python, numpy and torch, and a saved RNG state continues them exactly."""

from __future__ import annotations

import random

import numpy as np
import torch

from impoola.run.seeding import rng_state, seed_everything, set_rng_state


def draws() -> tuple:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_the_same_seed_gives_the_same_draws_and_another_seed_others():
    seed_everything(5, torch_deterministic=True)
    first = draws()
    seed_everything(5, torch_deterministic=True)
    assert draws() == first
    seed_everything(6, torch_deterministic=True)
    assert all(a != b for a, b in zip(draws(), first, strict=True))


def test_deterministic_cudnn_follows_the_flag():
    deterministic, benchmark = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    try:
        torch.backends.cudnn.benchmark = True
        seed_everything(1, torch_deterministic=True)
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        seed_everything(1, torch_deterministic=False)
        assert not torch.backends.cudnn.deterministic
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = deterministic, benchmark


def test_a_restored_state_continues_the_draws_exactly():
    seed_everything(3, torch_deterministic=False)
    draws()
    state = rng_state()
    expected = [draws() for _ in range(2)]
    seed_everything(99, torch_deterministic=False)  # other draws in between
    draws()
    set_rng_state(state)
    assert [draws() for _ in range(2)] == expected
