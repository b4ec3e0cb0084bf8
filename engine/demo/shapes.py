"""Raster primitives and the named colour palette of the demo world.

Canvases are square with side S. Masks are (S, S) bool; points are (x, y) pixel coordinates
(floats allowed, anything outside the canvas is clipped); RGB values are floats in 0..255.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

Point = tuple[float, float]
RGB = tuple[float, float, float]

PALETTE: dict[str, RGB] = {
    "red": (200.0, 40.0, 40.0),
    "orange": (235.0, 130.0, 30.0),
    "yellow": (240.0, 210.0, 50.0),
    "green": (60.0, 150.0, 55.0),
    "blue": (50.0, 90.0, 200.0),
    "purple": (130.0, 60.0, 170.0),
    "pink": (235.0, 135.0, 175.0),
    "brown": (125.0, 78.0, 40.0),
    "black": (32.0, 32.0, 36.0),
    "white": (238.0, 238.0, 234.0),
    "grey": (128.0, 128.0, 132.0),
}
ALL_COLOURS: tuple[str, ...] = tuple(PALETTE)
SKIN_TONES: tuple[RGB, ...] = ((255.0, 219.0, 172.0), (241.0, 194.0, 125.0), (224.0, 172.0, 105.0),
                               (198.0, 134.0, 66.0), (141.0, 85.0, 36.0))
COLOUR_JITTER = 14.0


@dataclass(frozen=True)
class Colour:
    """A fill colour; ``name`` is the palette word captions may use (None: never named, e.g. skin)."""

    name: Optional[str]
    rgb: RGB


def pick_colour(rng: np.random.Generator, names: Sequence[str], avoid: Sequence[Optional[str]] = ()) -> Colour:
    """A jittered palette colour drawn from ``names``, avoiding ``avoid`` while anything else is left."""
    choices = [n for n in names if n not in avoid] or list(names)
    name = str(choices[int(rng.integers(len(choices)))])
    return Colour(name, jitter(rng, PALETTE[name]))


def skin(rng: np.random.Generator) -> Colour:
    return Colour(None, jitter(rng, SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]))


def jitter(rng: np.random.Generator, rgb: RGB, amount: float = COLOUR_JITTER) -> RGB:
    r, g, b = np.clip(np.asarray(rgb) + rng.uniform(-amount, amount, 3), 0, 255)
    return (float(r), float(g), float(b))


def shade(colour: Colour, factor: float) -> Colour:
    """Same name, brightness scaled by ``factor``."""
    r, g, b = np.clip(np.asarray(colour.rgb) * factor, 0, 255)
    return Colour(colour.name, (float(r), float(g), float(b)))


@functools.lru_cache(maxsize=8)
def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(yy, xx), each (S, S) float32 pixel-centre coordinates; cached, treat as read-only."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    yy.flags.writeable = False
    xx.flags.writeable = False
    return yy, xx


def polygon(points: Sequence[Point], size: int) -> np.ndarray:
    """(S, S) bool, the filled polygon."""
    img = Image.new("1", (size, size), 0)
    ImageDraw.Draw(img).polygon([(float(x), float(y)) for x, y in points], fill=1)
    return np.array(img, dtype=bool)


def rect(x0: float, y0: float, x1: float, y1: float, size: int) -> np.ndarray:
    """(S, S) bool, the axis-aligned box [x0, x1) x [y0, y1) after rounding (at least 1 px wide and tall)."""
    mask = np.zeros((size, size), dtype=bool)
    c0, r0 = int(round(min(x0, x1))), int(round(min(y0, y1)))
    c1, r1 = max(c0 + 1, int(round(max(x0, x1)))), max(r0 + 1, int(round(max(y0, y1))))
    mask[max(0, r0):max(0, r1), max(0, c0):max(0, c1)] = True
    return mask


def ellipse_points(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0, n: int = 36) -> list[Point]:
    """Polygon approximating an ellipse rotated by ``angle`` radians."""
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    ca, sa = math.cos(angle), math.sin(angle)
    return list(zip((cx + x * ca - y * sa).tolist(), (cy + x * sa + y * ca).tolist()))


def ellipse(cx: float, cy: float, rx: float, ry: float, size: int, angle: float = 0.0) -> np.ndarray:
    """(S, S) bool, a filled (rotated) ellipse."""
    return polygon(ellipse_points(cx, cy, max(rx, 0.75), max(ry, 0.75), angle), size)


def disc(cx: float, cy: float, r: float, size: int) -> np.ndarray:
    return ellipse(cx, cy, r, r, size)


def ring(cx: float, cy: float, rx: float, ry: float, thickness: float, size: int) -> np.ndarray:
    """(S, S) bool, an elliptic ring of the given outer radii."""
    inner = ellipse(cx, cy, rx - thickness, ry - thickness, size)
    return ellipse(cx, cy, rx, ry, size) & ~inner


def bar(p0: Point, p1: Point, width: float, size: int) -> np.ndarray:
    """(S, S) bool, a straight stroke of ``width`` pixels from ``p0`` to ``p1`` (limbs, masts, tails)."""
    (x0, y0), (x1, y1) = p0, p1
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    nx, ny = -(y1 - y0) / length * width / 2, (x1 - x0) / length * width / 2
    return polygon([(x0 + nx, y0 + ny), (x1 + nx, y1 + ny), (x1 - nx, y1 - ny), (x0 - nx, y0 - ny)], size)


def hstripes(mask: np.ndarray, period: int, phase: int = 0) -> np.ndarray:
    """The rows of ``mask`` on a horizontal line pattern (roof shingles, hull stripes)."""
    rows = (np.arange(mask.shape[0]) + phase) % max(period, 2) == 0
    return mask & rows[:, None]


def speckles(rng: np.random.Generator, mask: np.ndarray, density: float) -> np.ndarray:
    """A random ``density`` fraction of the mask's pixels (foliage, fur, sand texture)."""
    ys, xs = np.nonzero(mask)
    keep = rng.random(len(ys)) < density
    out = np.zeros_like(mask)
    out[ys[keep], xs[keep]] = True
    return out
