"""Translation sensitivity on synthetic bigfish images built from the sprites and backgrounds Procgen ships.

The release scored its agents on 512 prepared 64x64 fish canvases that it never published; this module
approximates that image set. Each of `num_sprites` sprite placements is drawn with a seeded generator:
fish tile i mod 5 of `misc_assets/fishTile_{072,074,076,078,080}.png` (the bigfish fish), a width from
SPRITE_WIDTHS pixels (height from the tile's aspect ratio), a horizontal flip with probability 1/2 (fish
face left or right) and a uniformly random position fully inside the canvas. Sprites and backgrounds are
downscaled by area averaging; a sprite pixel is pasted where its downscaled alpha is >= 0.5. Every
placement is pasted onto each of the first `num_backgrounds` of the 7 backgrounds
`water_backgrounds/{water1..4,underwater1..3}.png`, each centre-cropped to a square and resized to 64x64, giving
num_sprites x num_backgrounds images (512 x 7 = 3,584 by default, as in the release).

For a shift (dy, dx) in [-k, k]^2 the sprite layer is rolled by dy rows (down) and dx columns (right) with
wrap-around over the fixed background; the score is the mean over images of the L1 distance between the
actor's action probabilities on the shifted and the unshifted image (range [0, 2]). The unshifted outputs
are computed once and reused, so the zero shift is exactly 0; shifted batches are built lazily, one
batch at a time. `buggy=True` computes the release's variant for comparison only: the L1 distance between
the unshifted probabilities and the shifted log-probabilities (values around 40; not a distance).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SIZE = 64
FISH_TILES = ("fishTile_072", "fishTile_074", "fishTile_076", "fishTile_078", "fishTile_080")
BACKGROUNDS = ("water1", "water2", "water3", "water4", "underwater1", "underwater2", "underwater3")
SPRITE_WIDTHS = (4, 6, 8, 10, 12, 14, 16)
DEFAULT_NUM_SPRITES = 512
DEFAULT_MAX_SHIFT = 8


def procgen_assets_dir() -> Path:
    """The `data/assets` folder of the installed Procgen package."""
    with contextlib.redirect_stderr(io.StringIO()):  # procgen's gym import prints a notice
        import procgen
    return Path(procgen.__file__).parent / "data" / "assets"


def read_rgba(path: Path) -> torch.Tensor:
    """A PNG as a float (4, H, W) tensor in [0, 1] (opaque alpha added to RGB images)."""
    import imageio.v3 as iio

    image = torch.from_numpy(np.asarray(iio.imread(path))).permute(2, 0, 1).float() / 255.0
    if image.shape[0] == 3:
        image = torch.cat([image, torch.ones_like(image[:1])])
    return image


def resize_area(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Downscale a (C, H, W) float image by area averaging."""
    return F.interpolate(image[None], size=(height, width), mode="area")[0]


def square_crop(image: torch.Tensor) -> torch.Tensor:
    """The central square of a (C, H, W) image."""
    side = min(image.shape[-2:])
    top, left = (image.shape[-2] - side) // 2, (image.shape[-1] - side) // 2
    return image[:, top : top + side, left : left + side]


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """A [0, 1] float image as uint8."""
    return (image * 255.0).round().clamp(0, 255).to(torch.uint8)


@dataclass
class SpriteImages:
    """Sprite layers and backgrounds; image j is sprite j // num_backgrounds on background j % num_backgrounds."""

    sprites: torch.Tensor  # (S, 3, 64, 64) uint8 sprite colours on an empty canvas
    masks: torch.Tensor  # (S, 1, 64, 64) bool, where the sprite is pasted
    backgrounds: torch.Tensor  # (B, 3, 64, 64) uint8

    @property
    def num_images(self) -> int:
        """Number of images: sprites x backgrounds."""
        return len(self.sprites) * len(self.backgrounds)

    def to(self, device: torch.device) -> SpriteImages:
        """The same images with their tensors on `device`."""
        return SpriteImages(self.sprites.to(device), self.masks.to(device), self.backgrounds.to(device))

    def batch(self, index: torch.Tensor, dy: int = 0, dx: int = 0) -> torch.Tensor:
        """uint8 images `index` with the sprite rolled by (dy, dx) pixels (wrap-around) over the fixed background."""
        sprite_index = index // len(self.backgrounds)
        sprites, masks = self.sprites[sprite_index], self.masks[sprite_index]
        if dy or dx:
            sprites, masks = torch.roll(sprites, (dy, dx), (-2, -1)), torch.roll(masks, (dy, dx), (-2, -1))
        return torch.where(masks, sprites, self.backgrounds[index % len(self.backgrounds)])


def build_sprite_images(
    num_sprites: int = DEFAULT_NUM_SPRITES,
    num_backgrounds: int = len(BACKGROUNDS),
    seed: int = 0,
    assets_dir: Path | None = None,
) -> SpriteImages:
    """The synthetic bigfish image set described in the module docstring."""
    if num_sprites < 1:
        raise ValueError(f"invalid num_sprites {num_sprites!r}; must be >= 1")
    if not 1 <= num_backgrounds <= len(BACKGROUNDS):
        raise ValueError(f"invalid num_backgrounds {num_backgrounds!r}; valid: 1..{len(BACKGROUNDS)}")
    assets = assets_dir or procgen_assets_dir()
    tiles = [read_rgba(assets / "misc_assets" / f"{name}.png") for name in FISH_TILES]
    squares = [square_crop(read_rgba(assets / "water_backgrounds" / f"{name}.png")[:3])
               for name in BACKGROUNDS[:num_backgrounds]]
    backgrounds = torch.stack([to_uint8(resize_area(square, IMAGE_SIZE, IMAGE_SIZE)) for square in squares])
    rng = np.random.default_rng(seed)
    sprites = torch.zeros(num_sprites, 3, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8)
    masks = torch.zeros(num_sprites, 1, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.bool)
    for i in range(num_sprites):
        tile = tiles[i % len(tiles)]
        width = int(rng.choice(SPRITE_WIDTHS))
        height = max(1, round(width * tile.shape[1] / tile.shape[2]))
        flip = rng.random() < 0.5
        top, left = int(rng.integers(0, IMAGE_SIZE - height + 1)), int(rng.integers(0, IMAGE_SIZE - width + 1))
        # Average premultiplied colours so that transparent pixels do not bleed into the sprite's edge.
        small = resize_area(torch.cat([tile[:3] * tile[3:], tile[3:]]), height, width)
        if flip:
            small = small.flip(-1)
        alpha = small[3:]
        colour = small[:3] / alpha.clamp_min(1e-6)
        sprites[i, :, top : top + height, left : left + width] = to_uint8(colour)
        masks[i, :, top : top + height, left : left + width] = alpha >= 0.5
    return SpriteImages(sprites * masks, masks, backgrounds)


def action_probabilities(agent: nn.Module, obs: torch.Tensor) -> torch.Tensor:
    """The actor's softmax policy (PPO), or a softmax over Q-values for a DQN agent."""
    hidden = agent.encoder(obs)
    logits = agent.actor(hidden) if hasattr(agent, "actor") else agent.q_head(hidden)
    return torch.softmax(logits, dim=-1)


def shifts(max_shift: int) -> list[int]:
    """The shifts -k..k of one axis."""
    return list(range(-max_shift, max_shift + 1))


@torch.no_grad()
def translation_sensitivity(
    agent: nn.Module,
    images: SpriteImages,
    max_shift: int = DEFAULT_MAX_SHIFT,
    batch_size: int = 256,
    buggy: bool = False,
    progress: Callable[[], object] | None = None,
) -> np.ndarray:
    """(2k+1) x (2k+1) matrix, row dy and column dx in [-k, k]: mean L1 distance of action probabilities.

    `progress`, if given, is called once per finished shift. See the module docstring for `buggy`.
    """
    if max_shift < 0:
        raise ValueError(f"invalid max_shift {max_shift!r}; must be >= 0")
    if batch_size < 1:
        raise ValueError(f"invalid batch_size {batch_size!r}; must be >= 1")
    device = next(agent.parameters()).device
    was_training = agent.training
    agent.eval()
    images = images.to(device)
    batches = torch.arange(images.num_images, device=device).split(batch_size)
    try:
        base = [action_probabilities(agent, images.batch(index)) for index in batches]
        size = 2 * max_shift + 1
        matrix = np.zeros((size, size))
        for row, dy in enumerate(shifts(max_shift)):
            for col, dx in enumerate(shifts(max_shift)):
                total = 0.0
                for index, probs in zip(batches, base):
                    shifted = action_probabilities(agent, images.batch(index, dy, dx)) if dy or dx else probs
                    other = torch.log(shifted) if buggy else shifted
                    total += (probs - other).abs().sum(-1).double().sum().item()
                matrix[row, col] = total / images.num_images
                if progress is not None:
                    progress()
    finally:
        agent.train(was_training)
    return matrix


def write_matrix_csv(matrix: np.ndarray, path: str | Path) -> None:
    """CSV with a header row of dx values and a first column of dy values."""
    k = (len(matrix) - 1) // 2
    lines = ["dy\\dx," + ",".join(str(dx) for dx in shifts(k))]
    lines += [f"{dy}," + ",".join(f"{v:.10g}" for v in row) for dy, row in zip(shifts(k), matrix)]
    Path(path).write_text("\n".join(lines) + "\n")


def read_matrix_csv(path: str | Path) -> np.ndarray:
    """The matrix written by `write_matrix_csv`."""
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)[:, 1:]


def plot_heatmaps(
    matrices: dict[str, np.ndarray], stem: str | Path, vmin: float = 0.0, vmax: float = 2.0
) -> list[Path]:
    """One heatmap panel per matrix (title = key) with a shared colour scale; writes `<stem>.png` and `<stem>.pdf`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(matrices), figsize=(4.2 * len(matrices) + 0.8, 4), squeeze=False)
    for ax, (title, matrix) in zip(axes[0], matrices.items()):
        k = (len(matrix) - 1) // 2
        image = ax.imshow(matrix, vmin=vmin, vmax=vmax, cmap="viridis", origin="upper",
                          extent=(-k - 0.5, k + 0.5, k + 0.5, -k - 0.5))
        ax.set_title(title)
        ax.set_xlabel("dx (pixels)")
    axes[0][0].set_ylabel("dy (pixels)")
    fig.colorbar(image, ax=axes[0].tolist(), label="mean L1 distance of action probabilities")
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths
