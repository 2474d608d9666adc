"""The README's gallery: small PNGs of the published scaling figure and of the example data's figures.

    python -m plot_utils.gallery                 # draws docs/figures/*.png anew
    python -m plot_utils.gallery --check         # draws them in a temporary folder and compares: exit 1 if stale

The example data are OpenAI's published PPO runs (`plot_utils.data.load_example`); the statistics are the CLI's
defaults (10,000 bootstrap repetitions, seed 0). PNGs are drawn at `DPI` and stored with a palette of `COLORS`
colours, so that each is a few tens of KB. A drawing matches a stored PNG when both have the same size in pixels and
differ by at most `MEAN_TOLERANCE` grey levels on average, with at most `PIXEL_FRACTION` of the pixels differing by
more than `PIXEL_TOLERANCE` (room for anti-aliasing, none for a changed line, marker or label).
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from impoola.cli import run_command
from impoola.run.rundir import check_output_dir
from plot_utils import data, figures

GALLERY_DIR = Path(__file__).resolve().parents[1] / "docs" / "figures"
EXAMPLE_FIGURES = ("game_curves", "aggregate_curves", "final_intervals", "profiles", "train_test")
PUBLISHED_FIGURES = ("scaling",)
DPI = 72
COLORS = 64
MEAN_TOLERANCE = 0.25
PIXEL_TOLERANCE = 64
PIXEL_FRACTION = 5e-5


@dataclass(frozen=True)
class Args:
    """Draw the README's gallery (or check that docs/figures/ is up to date)."""

    out: str = str(GALLERY_DIR)
    """folder of the gallery's PNGs"""
    check: bool = False
    """draw in a temporary folder and compare with the PNGs in --out instead of writing them (exit 1 if they differ)"""


def compact_png(source: Path, target: Path) -> Path:
    """Write the PNG `source` to `target` (atomically) with a palette of `COLORS` colours."""
    with Image.open(source) as image:
        small = image.convert("RGB").quantize(colors=COLORS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    tmp = target.with_name(target.name + ".tmp")
    small.save(tmp, format="PNG", optimize=True)
    tmp.replace(target)
    return target


def draw(out: str | Path) -> list[Path]:
    """Draw every gallery PNG into `out` and return the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        drawn = figures.make_figures(data.load_example(), tmp, figures=EXAMPLE_FIGURES, formats=("png",), dpi=DPI)
        drawn += figures.save_figure(figures.plot_scaling(None), tmp, "scaling", ("png",), DPI)
        return [compact_png(path, out / path.name) for path in drawn]


def difference(drawn: Path, stored: Path) -> str | None:
    """Why the PNG `drawn` does not match `stored` (missing, another size, other pixels), or None if it does."""
    if not stored.is_file():
        return f"{stored} is missing"
    with Image.open(drawn) as a, Image.open(stored) as b:
        if a.size != b.size:
            return f"{stored} is {b.size[0]}x{b.size[1]} pixels, drawn {a.size[0]}x{a.size[1]}"
        grey_a, grey_b = (np.asarray(image.convert("L"), dtype=float) for image in (a, b))
    diff = np.abs(grey_a - grey_b)
    mean, fraction = float(diff.mean()), float((diff > PIXEL_TOLERANCE).mean())
    if mean > MEAN_TOLERANCE or fraction > PIXEL_FRACTION:
        return (f"{stored} differs from the drawing: mean {mean:.2f} grey levels (at most {MEAN_TOLERANCE}), "
                f"{fraction:.3%} of pixels by more than {PIXEL_TOLERANCE} (at most {PIXEL_FRACTION:.3%})")
    return None


def check(out: str | Path) -> list[str]:
    """Draw the gallery in a temporary folder; the differences from the PNGs in `out` (none: up to date)."""
    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        drawn = draw(tmp)
        problems = [difference(path, out / path.name) for path in drawn]
    expected = {path.name for path in drawn}
    extra = sorted(path.name for path in out.glob("*.png") if path.name not in expected)
    return [p for p in problems if p] + [f"{out / name} is not drawn by the gallery" for name in extra]


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: write the gallery and print its paths, or with --check print what is stale (exit 1)."""
    return run_command(Args, run, argv, description=__doc__)


def run(args: Args) -> int:
    """Write the gallery, or with --check print what is stale: the exit status."""
    check_output_dir("out", args.out)  # before anything is drawn or written
    if not args.check:
        for path in draw(args.out):
            print(f"{path} ({path.stat().st_size // 1024} KB)")
        return 0
    problems = check(args.out)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{args.out}: up to date")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
