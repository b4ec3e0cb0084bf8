"""Region crops for CLIP, shared by inference and by demo-model training (so both see the same pixels).

Images are (H, W, 3) uint8 RGB; masks are (H, W) bool; crops come out as (S, S, 3) uint8, the
region's box padded to a square with CLIP's mean colour and resized to S.

Modes (a registry of small functions, ``CROP_MODES``):
    masked  box crop, background filled with CLIP's mean colour (OVSeg)
    box     plain box crop, box enlarged x1.2 (Semantic-Segment-Anything)
    blend   box enlarged x1.2, background dimmed towards the mean colour, context kept

Region encoders that take the mask as well (:func:`crop_with_mask`, ``MASK_INPUT_MODES``) get a crop and
an (S, S) uint8 mask (255 inside) in the same geometry, padding outside the mask:
    alpha        the box enlarged by ``context`` (None: the whole image), pixels untouched (Alpha-CLIP);
                 the mask resized bilinear, so its edges are soft as Alpha-CLIP's resized alpha maps
    mask_prompt  the ``masked`` crop (OVSeg's masked crop) and its mask resized nearest, as OVSeg does
"""
from __future__ import annotations

from typing import Callable, Optional, Union

import numpy as np
from PIL import Image

from ovlabel.engine.matching.embedder import CLIP_MEAN
from ovlabel.engine.matching.region_encoders import ALPHA_MODE, MASK_INPUT_MODES, MASK_PROMPT_MODE

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


def _pad(patch: np.ndarray, side: int, fill: Union[int, np.ndarray] = MEAN_COLOUR) -> np.ndarray:
    """``patch`` ((h, w, 3) or (h, w)) centred on a (side, side[, 3]) canvas of ``fill`` (CLIP's mean colour)."""
    h, w = patch.shape[:2]
    canvas = np.empty((side, side, *patch.shape[2:]), dtype=np.uint8)
    canvas[:] = fill
    y, x = (side - h) // 2, (side - w) // 2
    canvas[y:y + h, x:x + w] = patch
    return canvas


def _square(patch: np.ndarray, size: int, fill: Union[int, np.ndarray] = MEAN_COLOUR,
            resample: int = Image.BICUBIC) -> np.ndarray:
    """``patch`` padded to a square (with ``fill``) and resized to (size, size) with ``resample``; a mask
    ((h, w) uint8) of the same shape goes through the same geometry. A square patch is resized as it is; a small
    one is padded at full resolution, then resized (as always: the same pixels); one whose square's side
    would exceed ``PAD_FIRST_MAX_SIDE`` (and twice the crop size) is resized first, keeping its aspect, then
    padded, so no intermediate is larger than that bound or the crop (a 60000 x 9 box would otherwise need a
    60000 x 60000 canvas, 10 GB)."""
    h, w = patch.shape[:2]
    side = max(h, w)
    if h == w:
        return np.asarray(Image.fromarray(np.ascontiguousarray(patch)).resize((size, size), resample))
    if side <= max(PAD_FIRST_MAX_SIDE, 2 * size):
        return np.asarray(Image.fromarray(_pad(patch, side, fill)).resize((size, size), resample))
    scaled = (max(1, round(w * size / side)), max(1, round(h * size / side)))
    small = np.asarray(Image.fromarray(np.ascontiguousarray(patch)).resize(scaled, resample))
    return _pad(small, size, fill)


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


def crop_with_mask(image: np.ndarray, mask: np.ndarray, mode: str, size: int,
                   context: Optional[float]) -> tuple[np.ndarray, np.ndarray]:
    """((size, size, 3) uint8 crop, (size, size) uint8 mask, 255 inside) of ``mask`` in ``image`` for a
    ``MASK_INPUT_MODES`` encoder; ``context``: alpha mode's box enlargement (``matching.alpha_context``; None:
    the whole image)."""
    height, width = mask.shape
    if mode == ALPHA_MODE:
        box = (0, 0, width, height) if context is None else enlarge_box(mask_box(mask), context, width, height)
        x0, y0, x1, y1 = box
        patch, resample = image[y0:y1, x0:x1], Image.BILINEAR
    elif mode == MASK_PROMPT_MODE:
        x0, y0, x1, y1 = mask_box(mask)
        patch, resample = _masked(image, mask), Image.NEAREST
    else:
        raise ValueError(f"crop mode {mode!r} takes no mask; choose one of {MASK_INPUT_MODES}")
    inside = mask[y0:y1, x0:x1].astype(np.uint8) * np.uint8(255)
    return _square(patch, size), _square(inside, size, 0, resample)


def image_with_mask(image: np.ndarray, mode: str, size: int,
                    context: Optional[float]) -> tuple[np.ndarray, np.ndarray]:
    """The whole image as a region (scene scoring in a ``MASK_INPUT_MODES`` mode): its crop and mask, the mask
    covering the image and not the padding."""
    return crop_with_mask(image, np.ones(image.shape[:2], bool), mode, size, context)
