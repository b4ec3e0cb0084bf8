"""Shared fixtures: small generated images, captions and manifests (no ../shared data needed).

The plain helpers behind them live in :mod:`tests.support`. The factory fixtures are session-scoped
(they hold no state) so module-scoped fixtures of slow tests can use them too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from ovlabel.engine.masks import MASK_GENERATORS, GeneratorSpec
from tests import support
from tests.support import ManifestWriter, SceneImage


@pytest.fixture(scope="session")
def captions() -> list[list[str]]:
    """Six caption lists (two captions each) naming objects and parts: ``captions[i]`` goes with scene ``i``."""
    return support.CAPTIONS


@pytest.fixture(scope="session")
def scene_image() -> SceneImage:
    """``scene_image(seed, size=(96, 128))`` -> (H, W, 3) uint8: a coloured background with rectangles and discs."""
    return support.draw_scene


@pytest.fixture(scope="session")
def manifest_writer() -> ManifestWriter:
    """``manifest_writer(folder, rows, name='manifest.jsonl')`` -> the path of a JSON-lines manifest of ``rows``."""
    return support.write_manifest


@pytest.fixture
def image_folder(tmp_path: Path, scene_image: SceneImage) -> Path:
    """tmp folder with images/img{i}.png for i in 0..5 (sizes vary)."""
    (tmp_path / "images").mkdir()
    for i in range(6):
        size = (96, 128) if i % 2 == 0 else (120, 90)
        Image.fromarray(scene_image(i, size)).save(tmp_path / "images" / f"img{i}.png")
    return tmp_path


@pytest.fixture
def good_rows(captions: list[list[str]]) -> list[dict[str, Any]]:
    return [{"image": f"images/img{i}.png", "captions": captions[i], "image_id": f"img{i}"} for i in range(6)]


@pytest.fixture
def grid_generator(monkeypatch: pytest.MonkeyPatch) -> GeneratorSpec:
    """A toy mask generator ('grid': the image cut into cells), registered for one test only: how a plug-in
    generator is added without touching ovlabel."""
    monkeypatch.setitem(MASK_GENERATORS, "grid", support.GRID)
    return support.GRID
