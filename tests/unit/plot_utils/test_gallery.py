"""The README's gallery (docs/figures/) is what `python -m plot_utils.gallery` draws: small PNGs, never stale."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from plot_utils import gallery
from support.paths import ROOT

NAMES = {f"{name}.png" for name in (*gallery.EXAMPLE_FIGURES, *gallery.PUBLISHED_FIGURES)}


def test_stored_gallery_is_small_and_shown_in_the_readme() -> None:
    stored = {path.name: path.stat().st_size for path in gallery.GALLERY_DIR.glob("*.png")}
    assert set(stored) == NAMES
    assert all(2_000 < size < 100_000 for size in stored.values()), stored
    readme = (ROOT / "README.md").read_text()
    assert "python -m plot_utils.gallery" in readme
    assert all(f"docs/figures/{name}" in readme for name in NAMES)


def test_the_command_reproduces_the_gallery(capsys: pytest.CaptureFixture) -> None:
    assert gallery.main(["--check"]) == 0, capsys.readouterr().err
    assert "up to date" in capsys.readouterr().out


def test_stale_or_missing_pictures_are_found(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    stored = gallery.GALLERY_DIR / "game_curves.png"
    assert gallery.difference(stored, stored) is None
    assert "is missing" in gallery.difference(stored, tmp_path / "game_curves.png")
    with Image.open(stored) as image:
        changed = image.convert("RGB")
    ImageDraw.Draw(changed).rectangle((100, 100, 111, 111), fill="black")  # a 12x12 mark, 0.02% of the pixels
    changed.save(tmp_path / "changed.png")
    assert "differs from the drawing" in gallery.difference(stored, tmp_path / "changed.png")
    changed.resize((changed.width // 2, changed.height // 2)).save(tmp_path / "smaller.png")
    assert "pixels, drawn" in gallery.difference(stored, tmp_path / "smaller.png")
    shutil.copy(stored, tmp_path / "old_figure.png")
    assert gallery.main(["--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'scaling.png'} is missing" in err and "old_figure.png is not drawn by the gallery" in err
