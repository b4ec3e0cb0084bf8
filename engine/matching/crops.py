"""Region crops for CLIP, shared by inference and by demo-model training (so both see the same pixels).

Images are (H, W, 3) uint8 RGB; masks are (H, W) bool; crops come out as (S, S, 3) uint8, the
region's box padded to a square with CLIP's mean colour and resized to S.

Modes (a registry of small functions, ``CROP_MODES``):
    masked  box crop, background filled with CLIP's mean colour (OVSeg)
    box     plain box crop, box enlarged x1.2 (Semantic-Segment-Anything)
    blend   box enlarged x1.2, background dimmed towards the mean colour, context kept
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image

from ovlabel.engine.matching.embedder import CLIP_MEAN

CLIP_MEAN_RGB = np.array(CLIP_MEAN) * 255.0
MEAN_COLOUR = np.round(CLIP_MEAN_RGB).astype(np.uint8)
BLEND_KEEP = 0.35  # fraction of the original pixel kept outside the mask in 'blend' mode
PAD_FIRST_MAX_SIDE = 1024  # a patch is padded at full resolution while its square's side is at most this


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight XYXY box (exclusive end) of a non-empty mask."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if len(ys) == 0:
        raise ValueError("empty mask has no box")
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def enlarge_box(box: tuple[int, int, int, int], factor: float, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * factor / 2, (y1 - y0) * factor / 2
    return (max(0, int(np.floor(cx - hw))), max(0, int(np.floor(cy - hh))),
            min(width, int(np.ceil(cx + hw))), min(height, int(np.ceil(cy + hh))))


def _pad(patch: np.ndarray, side: int) -> np.ndarray:
    """``patch`` centred on a (side, side, 3) canvas of CLIP's mean colour."""
    h, w = patch.shape[:2]
    canvas = np.empty((side, side, 3), dtype=np.uint8)
    canvas[:] = MEAN_COLOUR
    y, x = (side - h) // 2, (side - w) // 2
    canvas[y:y + h, x:x + w] = patch
    return canvas


def _square(patch: np.ndarray, size: int) -> np.ndarray:
    """``patch`` padded to a square and resized to (size, size). A square patch is resized as it is; a small
    one is padded at full resolution, then resized (as always: the same pixels); one whose square's side
    would exceed ``PAD_FIRST_MAX_SIDE`` (and twice the crop size) is resized first, keeping its aspect, then
    padded, so no intermediate is larger than that bound or the crop (a 60000 x 9 box would otherwise need a
    60000 x 60000 canvas, 10 GB)."""
    h, w = patch.shape[:2]
    side = max(h, w)
    if h == w:
        return np.asarray(Image.fromarray(np.ascontiguousarray(patch)).resize((size, size), Image.BICUBIC))
    if side <= max(PAD_FIRST_MAX_SIDE, 2 * size):
        return np.asarray(Image.fromarray(_pad(patch, side)).resize((size, size), Image.BICUBIC))
    scaled = (max(1, round(w * size / side)), max(1, round(h * size / side)))
    small = np.asarray(Image.fromarray(np.ascontiguousarray(patch)).resize(scaled, Image.BICUBIC))
    return _pad(small, size)


def _masked(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = mask_box(mask)
    patch = image[y0:y1, x0:x1].copy()
    patch[~mask[y0:y1, x0:x1]] = MEAN_COLOUR
    return patch


def _box(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = enlarge_box(mask_box(mask), 1.2, image.shape[1], image.shape[0])
    return image[y0:y1, x0:x1]


def _blend(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = enlarge_box(mask_box(mask), 1.2, image.shape[1], image.shape[0])
    patch = image[y0:y1, x0:x1].astype(np.float32)
    outside = ~mask[y0:y1, x0:x1]
    patch[outside] = patch[outside] * BLEND_KEEP + CLIP_MEAN_RGB * (1 - BLEND_KEEP)
    return np.clip(patch + 0.5, 0, 255).astype(np.uint8)


CROP_MODES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "masked": _masked,
    "box": _box,
    "blend": _blend,
}


def crop_region(image: np.ndarray, mask: np.ndarray, mode: str = "masked", size: int = 224) -> np.ndarray:
    """The (size, size, 3) uint8 crop of ``mask`` in ``image`` for CLIP."""
    if mode not in CROP_MODES:
        raise ValueError(f"unknown crop mode {mode!r}; choose one of {sorted(CROP_MODES)}")
    return _square(CROP_MODES[mode](image, mask), size)


def crop_image(image: np.ndarray, size: int = 224) -> np.ndarray:
    """The whole image padded to a square and resized (scene scoring)."""
    return _square(image, size)
