"""Translation sensitivity: synthetic bigfish images, zero shift, constant actor, a non-invariant network, outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from impoola.analysis.translation import (
    build_sprite_images, plot_heatmaps, read_matrix_csv, translation_sensitivity, write_matrix_csv,
)
from impoola.models.encoders import ModelOptions
from impoola.models.agents import build_agent


@pytest.fixture(scope="module")
def images():
    return build_sprite_images(num_sprites=3, num_backgrounds=2, seed=0)


def tiny_agent(scale_actor: float) -> nn.Module:
    torch.manual_seed(0)
    agent = build_agent("ppo", ModelOptions(encoder="impala", scale=0.25), 15)
    with torch.no_grad():
        agent.actor.weight.mul_(scale_actor)
    return agent


def test_images_paste_sprites_and_wrap(images):
    assert images.num_images == 6
    assert images.sprites.shape == (3, 3, 64, 64) and images.backgrounds.shape == (2, 3, 64, 64)
    index = torch.arange(6)
    base = images.batch(index)
    assert base.dtype == torch.uint8 and base.shape == (6, 3, 64, 64)
    masks = images.masks[index // 2]
    assert masks.sum() > 0
    assert torch.equal(base[~masks.expand_as(base)], images.backgrounds[index % 2][~masks.expand_as(base)])
    # The sprite moves dy rows down and dx columns right with wrap-around; the background stays fixed.
    assert torch.equal(images.batch(index, 64, -64), base)
    shifted = images.batch(index, 3, -5)
    moved = torch.roll(masks, (3, -5), (-2, -1)).expand_as(base)
    sprites = torch.roll(images.sprites[index // 2], (3, -5), (-2, -1))
    assert torch.equal(shifted[moved], sprites[moved])
    assert torch.equal(shifted[~moved], images.backgrounds[index % 2][~moved])


def test_zero_shift_is_exactly_zero_and_others_positive(images):
    matrix = translation_sensitivity(tiny_agent(300.0), images, max_shift=2, batch_size=4)
    assert matrix.shape == (5, 5)
    assert matrix[2, 2] == 0.0
    off_centre = np.delete(matrix.ravel(), 12)
    assert np.all(off_centre > 0) and np.all(off_centre <= 2.0)


def test_constant_actor_scores_zero_everywhere(images):
    agent = tiny_agent(0.0)
    assert np.array_equal(translation_sensitivity(agent, images, max_shift=1, batch_size=6), np.zeros((3, 3)))


def test_buggy_variant_compares_with_log_probabilities(images):
    """Release variant, comparison only: a uniform policy gives sum |1/15 - log(1/15)| = 1 + log(15)·15 ≈ 41.6."""
    matrix = translation_sensitivity(tiny_agent(0.0), images, max_shift=1, batch_size=6, buggy=True)
    assert matrix == pytest.approx(np.full((3, 3), 1 + 15 * np.log(15)), rel=1e-5)


def test_csv_and_heatmaps(tmp_path):
    matrix = np.arange(9, dtype=float).reshape(3, 3) / 4
    write_matrix_csv(matrix, tmp_path / "m.csv")
    assert (tmp_path / "m.csv").read_text().splitlines()[0] == "dy\\dx,-1,0,1"
    assert np.allclose(read_matrix_csv(tmp_path / "m.csv"), matrix)
    paths = plot_heatmaps({"impala": matrix, "impoola": matrix / 2}, tmp_path / "heat", vmax=2.0)
    assert [p.name for p in paths] == ["heat.png", "heat.pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_bad_sizes():
    with pytest.raises(ValueError, match="num_backgrounds 8; valid: 1..7"):
        build_sprite_images(num_sprites=1, num_backgrounds=8)
