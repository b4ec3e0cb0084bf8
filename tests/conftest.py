"""Shared fixtures: small generated images, captions and manifests (no ../shared data needed)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest
from PIL import Image
from pydantic import Field

from ovlabel.engine.errors import ConfigError
from ovlabel.engine.masks import MASK_GENERATORS, GeneratorSpec, MaskBatch
from ovlabel.engine.sections import Section

CAPTIONS = [
    ["A red car parked on a street next to a tree.", "The car's wheel is black."],
    ["A dog sitting on the grass in a field.", "A brown dog with a long tail."],
    ["A house with a red roof and a blue door.", "A small house near a tree."],
    ["Two boats on the water at a beach.", "A boat with a white sail."],
    ["A man holding a frisbee in his hand.", "A person standing in a park."],
    ["A cat on a kitchen table.", "A kitchen with a white refrigerator."],
]


def draw_scene(seed: int, size: tuple[int, int] = (96, 128)) -> np.ndarray:
    """(H, W, 3) uint8: a coloured background with a few rectangles and discs."""
    rng = np.random.default_rng(seed)
    h, w = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = rng.integers(0, 255, 3)
    yy, xx = np.mgrid[:h, :w]
    for _ in range(3):
        colour = rng.integers(0, 255, 3)
        if rng.random() < 0.5:
            y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
            img[y0:y0 + h // 3, x0:x0 + w // 3] = colour
        else:
            cy, cx, r = rng.integers(h // 4, 3 * h // 4), rng.integers(w // 4, 3 * w // 4), rng.integers(8, h // 3)
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = colour
    return img


def write_manifest(folder: Path, rows: list[dict[str, Any]], name: str = "manifest.jsonl") -> Path:
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """tmp folder with images/img{i}.png for i in 0..5 (sizes vary)."""
    (tmp_path / "images").mkdir()
    for i in range(6):
        size = (96, 128) if i % 2 == 0 else (120, 90)
        Image.fromarray(draw_scene(i, size)).save(tmp_path / "images" / f"img{i}.png")
    return tmp_path


@pytest.fixture
def good_rows() -> list[dict[str, Any]]:
    return [{"image": f"images/img{i}.png", "captions": CAPTIONS[i], "image_id": f"img{i}"} for i in range(6)]


class GridSettings(Section):
    """A toy generator's settings: the image cut into ``cells`` x ``cells`` rectangles."""

    cells: int = Field(2, ge=1)


class GridGenerator:
    """A toy :class:`MaskGenerator`: one mask per grid cell."""

    name = "grid"

    def __init__(self, settings: GridSettings) -> None:
        self.cells = settings.cells

    def generate(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[MaskBatch]:
        return [self._grid(image.shape[:2]) for image in images]

    def _grid(self, size: tuple[int, int]) -> MaskBatch:
        h, w = size
        ys, xs = np.linspace(0, h, self.cells + 1).astype(int), np.linspace(0, w, self.cells + 1).astype(int)
        masks = np.zeros((self.cells * self.cells, h, w), bool)
        for k in range(self.cells * self.cells):
            i, j = divmod(k, self.cells)
            masks[k, ys[i]:ys[i + 1], xs[j]:xs[j + 1]] = True
        return MaskBatch.from_masks(masks, source=f"grid:{self.cells}")

    def describe(self) -> dict[str, object]:
        return {"generator": self.name, "cells": self.cells}


def _check(settings: GridSettings) -> None:
    if settings.cells > 8:
        raise ConfigError("masks.grid.cells over 8 makes masks too small to label; lower it")


GRID = GeneratorSpec("grid", GridSettings, build=lambda settings, device: GridGenerator(settings), check=_check,
                     source=lambda settings: f"grid:{settings.cells}",
                     models=lambda settings: {"grid": {"cells": settings.cells}})


@pytest.fixture
def grid_generator(monkeypatch: pytest.MonkeyPatch) -> GeneratorSpec:
    """A toy mask generator ('grid': the image cut into cells), registered for one test only: how a plug-in
    generator is added without touching ovlabel."""
    monkeypatch.setitem(MASK_GENERATORS, "grid", GRID)
    return GRID
