"""One image's labels drawn over it (PIL only): objects filled in their class colour and labelled with their
score, parts outlined (white, then their class colour) inside their objects and labelled smaller. :mod:`ovlabel.engine.gallery` puts these in a page.
"""
from __future__ import annotations

import colorsys
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.labelset import ClassIndex, segment_class

GOLDEN = 0.618033988749895
FILL_ALPHA = 0.45
TARGET_SIDE = 512  # small images are scaled up to about this (labels stay legible), big ones down to 2x it


def class_colour(class_id: int) -> tuple[int, int, int]:
    """A bright colour per class id, far from its neighbours' (golden-ratio hues)."""
    hue = (class_id * GOLDEN) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def hex_colour(class_id: int) -> str:
    return "#{:02x}{:02x}{:02x}".format(*class_colour(class_id))


def display_scale(height: int, width: int) -> float:
    side = max(height, width)
    if side < TARGET_SIDE:
        return float(min(4, max(1, TARGET_SIDE // side)))
    return min(1.0, 2 * TARGET_SIDE / side)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def outline(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """The pixels of ``mask`` within ``width`` of its border."""
    inner = mask.copy()
    for _ in range(width):
        shrunk = inner.copy()
        shrunk[1:] &= inner[:-1]
        shrunk[:-1] &= inner[1:]
        shrunk[:, 1:] &= inner[:, :-1]
        shrunk[:, :-1] &= inner[:, 1:]
        shrunk[[0, -1], :] = False
        shrunk[:, [0, -1]] = False
        inner = shrunk
    return mask & ~inner


def _resized(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``pixels`` (H, W[, 3]) at ``size``: whole-number enlargements repeat pixels (crisp, and small PNGs)."""
    h, w = pixels.shape[:2]
    if (h, w) == size:
        return pixels
    if size[0] % h == 0 and size[1] % w == 0 and size[0] // h == size[1] // w:
        k = size[0] // h
        return pixels.repeat(k, axis=0).repeat(k, axis=1)
    if pixels.dtype == bool:
        return np.asarray(Image.fromarray(pixels.astype(np.uint8) * 255).resize(size[::-1], Image.NEAREST)) > 127
    return np.asarray(Image.fromarray(pixels).resize(size[::-1], Image.BOX))


def _paint(canvas: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], alpha: float) -> None:
    canvas[mask] = (1 - alpha) * canvas[mask] + alpha * np.asarray(colour, np.float32)


def _tag(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, colour: tuple[int, int, int],
         font: Any) -> None:
    x0, y0, x1, y1 = draw.textbbox(xy, text, font=font)
    draw.rectangle((x0 - 2, y0 - 1, x1 + 2, y1 + 1), fill=colour)
    dark = sum(colour) > 400
    draw.text(xy, text, fill=(0, 0, 0) if dark else (255, 255, 255), font=font)


def render_overlay(image: np.ndarray, segments: Sequence[Mapping[str, Any]], classes: ClassIndex) -> Image.Image:
    """``image`` (H, W, 3) uint8 with its object and part segments drawn over it, scaled for display."""
    h, w = image.shape[:2]
    scale = display_scale(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    canvas = _resized(image, size).astype(np.float32)
    drawn = [(s, class_colour(classes.id_of(segment_class(s))), _resized(rle_utils.decode(s["mask"]), size))
             for s in segments if s["level"] in ("object", "part")]
    border = max(1, round(scale))
    for s, colour, mask in drawn:
        if s["level"] == "object":
            _paint(canvas, mask, colour, FILL_ALPHA)
            _paint(canvas, outline(mask, border), colour, 1.0)
    for s, colour, mask in drawn:
        if s["level"] == "part":
            _paint(canvas, outline(mask, border + 1), (255, 255, 255), 1.0)
            _paint(canvas, outline(mask, border), colour, 1.0)
    out = Image.fromarray(canvas.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(out)
    for s, colour, _ in drawn:
        x, y = s["bbox_xywh"][0] * scale, s["bbox_xywh"][1] * scale
        big = s["level"] == "object"
        text = f"{segment_class(s)} {float(s['score']):.2f}" if big else segment_class(s)  # parts: scores in the tree
        _tag(draw, (x + 2, y + (2 if big else 14)), text, colour, _font(13 if big else 11))
    return out


__all__ = ["class_colour", "display_scale", "hex_colour", "outline", "render_overlay"]
