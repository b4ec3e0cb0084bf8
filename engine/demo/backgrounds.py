"""Scene backgrounds of the demo world and where objects may stand in them.

A painter returns a :class:`Layout`: the (S, S, 3) float32 RGB background and named zones, each a
range of y values for an object's base (its bottom edge) with the object scale at the far and near
end of that range. Backgrounds carry no ground truth.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ovlabel.engine.demo import shapes as sh
from ovlabel.engine.demo.shapes import RGB


@dataclass(frozen=True)
class Zone:
    """Object bases lie in [y_far, y_near]; scale goes from ``scale_far`` to ``scale_near`` along it."""

    y_far: float
    y_near: float
    scale_far: float = 1.0
    scale_near: float = 1.0

    def scale_at(self, y: float) -> float:
        t = 0.0 if self.y_near <= self.y_far else (y - self.y_far) / (self.y_near - self.y_far)
        return self.scale_far + (self.scale_near - self.scale_far) * min(max(t, 0.0), 1.0)


@dataclass(frozen=True, eq=False)
class Layout:
    image: np.ndarray = field(repr=False)  # (S, S, 3) float32
    zones: dict[str, Zone]
    dim: float = 1.0  # object colours are multiplied by this (night)


Painter = Callable[[np.random.Generator, int], Layout]


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _jit(rng: np.random.Generator, rgb: RGB, amount: float = 12.0) -> np.ndarray:
    return np.clip(np.asarray(rgb, dtype=np.float32) + rng.uniform(-amount, amount, 3), 0, 255).astype(np.float32)


def _band(img: np.ndarray, y0: float, y1: float, top: np.ndarray, bottom: np.ndarray) -> None:
    """Fill rows [y0, y1) with a vertical gradient from ``top`` to ``bottom`` (in place)."""
    r0, r1 = max(0, int(round(y0))), min(img.shape[0], int(round(y1)))
    if r1 <= r0:
        return
    t = np.linspace(0.0, 1.0, r1 - r0, dtype=np.float32)[:, None, None]
    img[r0:r1] = top * (1 - t) + bottom * t


def _paint(img: np.ndarray, mask: np.ndarray, rgb: np.ndarray, alpha: float = 1.0) -> None:
    img[mask] = img[mask] * (1 - alpha) + rgb * alpha


def _sky(rng: np.random.Generator, img: np.ndarray, y1: float) -> None:
    _band(img, 0, y1, _jit(rng, (95, 150, 225)), _jit(rng, (185, 215, 245)))


def beach(rng: np.random.Generator, s: int) -> Layout:
    """Sky band, sea band with wave dashes, wavy shoreline with foam, speckled sand."""
    img = np.zeros((s, s, 3), np.float32)
    horizon = s * _u(rng, 0.28, 0.42)
    shore = horizon + s * _u(rng, 0.15, 0.25)
    _sky(rng, img, horizon)
    _band(img, horizon, s, _jit(rng, (30, 90, 160)), _jit(rng, (40, 150, 180)))
    yy, xx = sh.grid(s)
    waves = (np.sin(xx * 0.35 + yy * 1.7 + _u(rng, 0, 6)) > 0.93) & (yy > horizon + 2)
    _paint(img, waves, np.array([200, 230, 245], np.float32), 0.5)
    edge = shore + s * 0.012 * np.sin(xx / s * _u(rng, 8, 16) + _u(rng, 0, 6))
    sand = yy > edge
    _band_mask(img, sand, shore, s, _jit(rng, (225, 205, 160)), _jit(rng, (210, 185, 135)))
    _paint(img, sand & (yy < edge + max(2.0, s * 0.01)), np.array([245, 245, 240], np.float32), 0.8)
    _paint(img, sh.speckles(rng, sand, 0.08), np.array([170, 145, 100], np.float32), 0.5)
    zones = {"sky": Zone(s * 0.1, horizon - s * 0.12), "sea": Zone(horizon + s * 0.04, shore, 0.6, 1.1),
             "ground": Zone(shore + s * 0.06, s * 1.02, 0.8, 1.3)}
    return Layout(img, zones)


def _band_mask(img: np.ndarray, mask: np.ndarray, y0: float, y1: float, top: np.ndarray, bottom: np.ndarray) -> None:
    """Gradient fill restricted to ``mask`` (in place)."""
    rows = np.clip((np.arange(img.shape[0], dtype=np.float32) - y0) / max(y1 - y0, 1.0), 0, 1)[:, None, None]
    grad = np.broadcast_to(top * (1 - rows) + bottom * rows, img.shape)
    img[mask] = grad[mask]


def street(rng: np.random.Generator, s: int) -> Layout:
    """Sky, a row of building blocks, a light sidewalk and a dark road with dashed lane marks."""
    img = np.zeros((s, s, 3), np.float32)
    walk = s * _u(rng, 0.5, 0.6)
    road = walk + s * _u(rng, 0.07, 0.1)
    _sky(rng, img, walk)
    x = 0.0
    while x < s:
        bw, top = s * _u(rng, 0.12, 0.3), s * _u(rng, 0.18, walk / s - 0.12)
        tone = _jit(rng, ((150, 150, 155), (170, 120, 95), (190, 180, 160), (120, 125, 140))[int(rng.integers(4))])
        img[int(top):int(walk), int(x):int(x + bw)] = tone * 0.9
        x += bw
    _band(img, walk, road, _jit(rng, (190, 188, 182)), _jit(rng, (170, 168, 162)))
    _band(img, road, s, _jit(rng, (70, 70, 75)), _jit(rng, (95, 95, 100)))
    yy, xx = sh.grid(s)
    lane = (np.abs(yy - (road + s) / 2) < max(1.0, s * 0.008)) & ((xx // max(4, s // 12)) % 2 == 0)
    _paint(img, lane, np.array([235, 235, 225], np.float32))
    zones = {"sky": Zone(s * 0.08, s * 0.14), "sidewalk": Zone(walk + s * 0.01, road, 0.8, 1.0),
             "road": Zone(road + s * 0.06, s * 1.0, 0.9, 1.3)}
    return Layout(img, zones)


def field_(rng: np.random.Generator, s: int) -> Layout:
    """Sky, distant hills, green grass with darker blades."""
    img = np.zeros((s, s, 3), np.float32)
    horizon = s * _u(rng, 0.3, 0.5)
    _sky(rng, img, horizon)
    yy, xx = sh.grid(s)
    hills = yy > horizon - s * 0.06 * (1 + np.sin(xx / s * _u(rng, 3, 7) + _u(rng, 0, 6))) / 2
    img[hills] = _jit(rng, (80, 130, 80))
    grass = yy > horizon
    _band_mask(img, grass, horizon, s, _jit(rng, (100, 170, 70), 20), _jit(rng, (70, 140, 50), 20))
    _paint(img, sh.speckles(rng, grass, 0.12), np.array([40, 100, 35], np.float32), 0.6)
    zones = {"sky": Zone(s * 0.08, horizon - s * 0.12), "ground": Zone(horizon + s * 0.04, s * 1.02, 0.55, 1.2)}
    return Layout(img, zones)


def kitchen(rng: np.random.Generator, s: int) -> Layout:
    """Pastel wall, countertop band over cabinet fronts, chequered floor tiles."""
    img = np.zeros((s, s, 3), np.float32)
    counter, top_t = s * _u(rng, 0.42, 0.52), s * 0.035
    floor = counter + top_t + s * _u(rng, 0.14, 0.2)
    wall = ((235, 225, 200), (200, 225, 235), (225, 235, 205), (240, 215, 215))[int(rng.integers(4))]
    _band(img, 0, counter, _jit(rng, wall), _jit(rng, wall) * 0.95)
    _band(img, counter, counter + top_t, _jit(rng, (150, 110, 75), 25), _jit(rng, (130, 95, 65), 25))
    _band(img, counter + top_t, floor, _jit(rng, (205, 200, 190), 30), _jit(rng, (185, 180, 170), 30))
    yy, xx = sh.grid(s)
    panels = (yy > counter + top_t) & (yy < floor) & ((xx % max(8, s // 6)) < 1)
    _paint(img, panels, np.array([120, 115, 110], np.float32), 0.5)
    tile = max(6, int(s * _u(rng, 0.06, 0.1)))
    check = ((xx // tile + yy // tile) % 2 == 0) & (yy >= floor)
    _band(img, floor, s, _jit(rng, (200, 195, 185), 25), _jit(rng, (200, 195, 185), 25))
    _paint(img, check, _jit(rng, (110, 100, 95), 30))
    zones = {"counter": Zone(counter + top_t * 0.6, counter + top_t * 0.9),
             "wall_base": Zone(floor + 1, floor + s * 0.05),
             "floor": Zone(floor + s * 0.1, s * 1.02, 1.3, 1.8)}
    return Layout(img, zones)


def night_sky(rng: np.random.Generator, s: int) -> Layout:
    """Dark blue gradient with stars of varying brightness, a dark ground with a hill line; objects dimmed."""
    img = np.zeros((s, s, 3), np.float32)
    ground = s * _u(rng, 0.62, 0.78)
    _band(img, 0, ground, _jit(rng, (8, 12, 40), 6), _jit(rng, (25, 35, 80), 10))
    n = int(s * s * _u(rng, 0.0008, 0.002))
    ys, xs = rng.integers(0, int(ground), n), rng.integers(0, s, n)
    img[ys, xs] = (rng.uniform(150, 255, n)[:, None] * np.array([1.0, 1.0, 0.95])).astype(np.float32)
    yy, xx = sh.grid(s)
    land = yy > ground - s * 0.04 * (1 + np.sin(xx / s * _u(rng, 2, 6) + _u(rng, 0, 6))) / 2
    img[land] = _jit(rng, (20, 35, 30), 8)
    _paint(img, sh.speckles(rng, land, 0.1), np.array([35, 55, 45], np.float32), 0.7)
    zones = {"sky": Zone(s * 0.12, max(s * 0.14, ground - s * 0.3)),
             "ground": Zone(ground + s * 0.03, s * 1.02, 0.6, 1.2)}
    return Layout(img, zones, dim=0.6)


PAINTERS: dict[str, Painter] = {"beach": beach, "street": street, "field": field_, "kitchen": kitchen,
                                "night sky": night_sky}
