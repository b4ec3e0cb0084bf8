"""Plain helpers shared by tests: captions, a scene drawer, a manifest writer and a toy mask generator.

Tests reach these through the fixtures of the top conftest.py; import this module directly only
for what is needed at collection time (parametrize lists) or outside a test (``tests/engine/bad_files.py``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from pydantic import Field

from ovlabel.engine.errors import ConfigError
from ovlabel.engine.masks import GeneratorSpec, MaskBatch
from ovlabel.engine.sections import Section

CAPTIONS = [
    ["A red car parked on a street next to a tree.", "The car's wheel is black."],
    ["A dog sitting on the grass in a field.", "A brown dog with a long tail."],
    ["A house with a red roof and a blue door.", "A small house near a tree."],
    ["Two boats on the water at a beach.", "A boat with a white sail."],
    ["A man holding a frisbee in his hand.", "A person standing in a park."],
    ["A cat on a kitchen table.", "A kitchen with a white refrigerator."],
]

SceneImage = Callable[..., np.ndarray]  # what the scene_image fixture gives: draw_scene
ManifestWriter = Callable[..., Path]  # what the manifest_writer fixture gives: write_manifest


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
    """``rows`` as a JSON-lines manifest ``folder/name``."""
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


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
