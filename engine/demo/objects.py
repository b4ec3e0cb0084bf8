"""Object builders of the demo world: each draws one object as a body plus named parts.

A builder takes a :class:`Placement` (anchor at the bottom centre of the object, its height in
pixels) and returns a :class:`Draft` whose shapes are painted in order; a shape with ``part=None``
is the object's own body (the object minus its parts). Masks are (S, S) bool, pre-occlusion.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ovlabel.engine.demo import shapes as sh
from ovlabel.engine.demo.shapes import Colour, pick_colour, shade

GLASS = ("grey", "blue", "black", "white")
DARK_WHEELS = ("black", "grey")


@dataclass(frozen=True)
class Placement:
    """Where and how big: bottom-centre anchor (cx, base), height in pixels, canvas side, scene type."""

    cx: float
    base: float
    height: float
    size: int
    scene: str


@dataclass(frozen=True, eq=False)
class Shape:
    """One filled region: the object's body (``part`` None) or one part instance.

    ``mask`` (S, S) bool; ``details`` are (mask, colour) decorations painted inside ``mask`` without
    changing any ground truth; ``glow`` shapes ignore the scene's dimming (lit windows, the moon).
    """

    part: Optional[str]
    mask: np.ndarray = field(repr=False)
    colour: Colour
    details: tuple[tuple[np.ndarray, Colour], ...] = field(default=(), repr=False)
    glow: bool = False


@dataclass(frozen=True, eq=False)
class Draft:
    """A drawn object before occlusion: category, caption noun ('woman'), caption colour, shapes.

    ``surface`` is an (x0, x1, y) top that small objects may stand on (tables), else None.
    """

    category: str
    noun: str
    colour: Optional[str]
    shapes: tuple[Shape, ...]
    surface: Optional[tuple[float, float, float]] = None


Builder = Callable[[np.random.Generator, Placement], Draft]

# width / height of each category, used to place objects before drawing them
ASPECT: dict[str, float] = {"house": 1.1, "car": 2.5, "tree": 0.7, "person": 0.35, "boat": 1.0, "sun": 1.0,
                            "moon": 1.0, "dog": 1.4, "table": 1.7, "cup": 1.0, "refrigerator": 0.52}
# height as a fraction of the canvas side at zone scale 1
BASE_HEIGHT: dict[str, float] = {"house": 0.38, "car": 0.15, "tree": 0.42, "person": 0.3, "boat": 0.3,
                                 "sun": 0.18, "moon": 0.16, "dog": 0.14, "table": 0.2, "cup": 0.11,
                                 "refrigerator": 0.55}


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


# --- house -------------------------------------------------------------------------------------


def _roof(rng: np.random.Generator, x0: float, x1: float, wall_top: float, top: float, s: int) -> np.ndarray:
    over = (x1 - x0) * _u(rng, 0.03, 0.1)
    if rng.random() < 0.7:
        return sh.polygon([(x0 - over, wall_top), ((x0 + x1) / 2, top), (x1 + over, wall_top)], s)
    inset = (x1 - x0) * _u(rng, 0.15, 0.3)
    return sh.polygon([(x0 - over, wall_top), (x0 + inset, top), (x1 - inset, top), (x1 + over, wall_top)], s)


def _house_windows(rng: np.random.Generator, box: tuple[float, float, float, float],
                   door: tuple[float, float, float, float]) -> list[tuple[float, float, float, float]]:
    """1-4 square window boxes on a grid over the wall ``box``, none overlapping the door."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    side = min(w * _u(rng, 0.14, 0.2), h * 0.3)
    cols = int(rng.integers(2, 4))
    rows = (y0 + h * 0.3, y1 - h * 0.35)
    slots = []
    for cy in rows:
        for i in range(cols):
            cx = x0 + w * (i + 0.5) / cols
            win = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
            if not (win[2] > door[0] - 2 and win[0] < door[2] + 2 and win[3] > door[1] - 2):
                slots.append(win)
    order = rng.permutation(len(slots))[: int(rng.integers(1, 5))]
    return [slots[i] for i in sorted(order)]


def _window(box: tuple[float, float, float, float], colour: Colour, glow: bool, s: int) -> Shape:
    x0, y0, x1, y1 = box
    mask = sh.rect(x0, y0, x1, y1, s)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    bars = sh.rect(cx - 0.5, y0, cx + 0.5, y1, s) | sh.rect(x0, cy - 0.5, x1, cy + 0.5, s)
    return Shape("window", mask, colour, ((bars, Colour(None, (235.0, 235.0, 230.0))),), glow)


def build_house(rng: np.random.Generator, p: Placement) -> Draft:
    """Wall (body), roof, door with a knob, 1-4 barred windows; windows glow at night."""
    s, h = p.size, p.height
    w = h * _u(rng, 0.85, 1.35)
    x0, x1 = p.cx - w / 2, p.cx + w / 2
    wall_top = p.base - h * _u(rng, 0.5, 0.62)
    wall_c = pick_colour(rng, ("white", "yellow", "red", "blue", "green", "pink", "grey", "orange", "brown"))
    roof_c = pick_colour(rng, ("red", "brown", "grey", "black", "blue", "orange", "green"), (wall_c.name,))
    door_c = pick_colour(rng, ("brown", "red", "blue", "green", "black", "white", "yellow"), (wall_c.name,))
    night = p.scene == "night sky"
    win_c = pick_colour(rng, ("yellow",) if night else GLASS, (wall_c.name,))
    dw, dh = w * _u(rng, 0.16, 0.22), (p.base - wall_top) * _u(rng, 0.45, 0.62)
    dx = _u(rng, x0 + w * 0.1, x1 - w * 0.1 - dw)
    door = (dx, p.base - dh, dx + dw, p.base)
    roof = _roof(rng, x0, x1, wall_top, p.base - h, s)
    knob = sh.disc(dx + dw * 0.78, p.base - dh * 0.45, max(1.0, dw * 0.09), s)
    shapes = [Shape(None, sh.rect(x0, wall_top, x1, p.base, s), wall_c),
              Shape("roof", roof, roof_c, ((sh.hstripes(roof, max(3, int(h / 14))), shade(roof_c, 0.7)),)),
              Shape("door", sh.rect(*door, s), door_c, ((knob, Colour(None, (220.0, 190.0, 60.0))),))]
    windows = _house_windows(rng, (x0, wall_top, x1, p.base), door)
    shapes += [_window(b, win_c, night, s) for b in windows]
    return Draft("house", "house", wall_c.name, tuple(shapes))


# --- car ---------------------------------------------------------------------------------------


def build_car(rng: np.random.Generator, p: Placement) -> Draft:
    """Body (lower box + cabin), 1-2 side windows, two wheels with hubs, a headlight; faces left or right."""
    s, h = p.size, p.height
    length = h * _u(rng, 2.2, 2.8)
    sign = 1.0 if rng.random() < 0.5 else -1.0

    def x(u: float) -> float:
        return p.cx + sign * (u - 0.5) * length

    r = h * _u(rng, 0.2, 0.25)
    belt, roof_y, bottom = p.base - h * _u(rng, 0.48, 0.58), p.base - h, p.base - r * 0.55
    c0, c1 = _u(rng, 0.15, 0.3), _u(rng, 0.7, 0.85)
    slant = _u(rng, 0.06, 0.12)
    lower = sh.polygon([(x(0.0), belt + 2), (x(0.04), belt), (x(0.96), belt), (x(1.0), belt + 3),
                        (x(1.0), bottom), (x(0.0), bottom)], s)
    cabin = sh.polygon([(x(c0), belt), (x(c0 + slant), roof_y), (x(c1 - slant), roof_y), (x(c1), belt)], s)
    body_c = pick_colour(rng, sh.ALL_COLOURS)
    glass = pick_colour(rng, GLASS, (body_c.name,))
    wheel_c = pick_colour(rng, DARK_WHEELS, (body_c.name,))
    light = sh.ellipse(x(0.97), belt + (bottom - belt) * 0.3, max(1.5, h * 0.06), max(1.0, h * 0.04), s)
    shapes = [Shape(None, lower | cabin, body_c, ((light, Colour(None, (250.0, 235.0, 150.0))),))]
    shapes += [Shape("window", m, glass) for m in _car_windows(rng, x, c0, c1, slant, belt, roof_y, s)]
    for u in (0.2, 0.8):
        hub = sh.disc(x(u), p.base - r, r * 0.45, s)
        shapes.append(Shape("wheel", sh.disc(x(u), p.base - r, r, s), wheel_c, ((hub, Colour(None, (170.0,) * 3)),)))
    return Draft("car", "car", body_c.name, tuple(shapes))


def _car_windows(rng: np.random.Generator, x: Callable[[float], float], c0: float, c1: float, slant: float,
                 belt: float, roof_y: float, s: int) -> list[np.ndarray]:
    m = (belt - roof_y) * 0.18
    top, low = roof_y + m, belt - m * 0.6
    a, b = c0 + slant * 0.85 + 0.03, c1 - slant * 0.85 - 0.03
    if rng.random() < 0.3:
        return [sh.polygon([(x(c0 + 0.03), low), (x(a), top), (x(b), top), (x(c1 - 0.03), low)], s)]
    mid = (c0 + c1) / 2
    return [sh.polygon([(x(c0 + 0.03), low), (x(a), top), (x(mid - 0.015), top), (x(mid - 0.015), low)], s),
            sh.polygon([(x(mid + 0.015), low), (x(mid + 0.015), top), (x(b), top), (x(c1 - 0.03), low)], s)]


# --- tree --------------------------------------------------------------------------------------


def _round_crown(rng: np.random.Generator, cx: float, top: float, bottom: float, s: int) -> np.ndarray:
    ry = (bottom - top) / 2
    rx, cy = ry * _u(rng, 0.75, 1.15), top + ry
    crown = sh.ellipse(cx, cy, rx, ry, s)
    for _ in range(int(rng.integers(2, 5))):
        a = _u(rng, 0, 2 * math.pi)
        crown |= sh.disc(cx + math.cos(a) * rx * 0.6, cy + math.sin(a) * ry * 0.55, ry * _u(rng, 0.35, 0.5), s)
    return crown


def _conifer_crown(rng: np.random.Generator, cx: float, top: float, bottom: float, s: int) -> np.ndarray:
    tiers, span = int(rng.integers(2, 4)), bottom - top
    half = span * _u(rng, 0.3, 0.42)
    crown = np.zeros((s, s), dtype=bool)
    for i in range(tiers):
        t_top = top + span * i / (tiers + 1)
        t_bot = top + span * (i + 2) / (tiers + 1)
        wi = half * (i + 1.5) / (tiers + 0.5)
        crown |= sh.polygon([(cx, t_top), (cx + wi, t_bot), (cx - wi, t_bot)], s)
    return crown


def _palm_crown(rng: np.random.Generator, cx: float, cy: float, span: float, s: int) -> np.ndarray:
    crown = sh.disc(cx, cy, span * 0.1, s)
    for a in np.linspace(0, 2 * math.pi, int(rng.integers(5, 8)), endpoint=False) + _u(rng, 0, 1):
        ang = a * 0.8 + math.pi * 1.1 if math.sin(a) > 0 else a
        crown |= sh.ellipse(cx + math.cos(ang) * span * 0.26, cy + math.sin(ang) * span * 0.2,
                            span * 0.28, span * 0.07, s, angle=ang)
    return crown


def build_tree(rng: np.random.Generator, p: Placement) -> Draft:
    """Trunk and crown; palm at the beach, else round or conifer; crown speckled."""
    s, h = p.size, p.height
    style = "palm" if p.scene == "beach" else ("conifer" if rng.random() < 0.35 else "round")
    tw = h * _u(rng, 0.07, 0.12) * (0.7 if style == "palm" else 1.0)
    th = h * (_u(rng, 0.6, 0.75) if style == "palm" else _u(rng, 0.3, 0.45))
    lean = h * _u(rng, -0.12, 0.12) if style == "palm" else 0.0
    top_x = p.cx + lean
    trunk = sh.polygon([(p.cx - tw / 2, p.base), (p.cx + tw / 2, p.base), (top_x + tw * 0.3, p.base - th - h * 0.08),
                        (top_x - tw * 0.3, p.base - th - h * 0.08)], s)
    if style == "palm":
        crown = _palm_crown(rng, top_x, p.base - th - h * 0.05, h, s)
    elif style == "conifer":
        crown = _conifer_crown(rng, p.cx, p.base - h, p.base - th * 0.6, s)
    else:
        crown = _round_crown(rng, p.cx, p.base - h, p.base - th + h * 0.05, s)
    trunk_c = pick_colour(rng, ("brown", "brown", "brown", "grey", "black"))
    crown_c = pick_colour(rng, ("green",) * 5 + ("orange", "yellow", "red", "pink"))
    shapes = (Shape("trunk", trunk, trunk_c, ((sh.hstripes(trunk, 4), shade(trunk_c, 0.75)),)),
              Shape("crown", crown, crown_c, ((sh.speckles(rng, crown, 0.18), shade(crown_c, 0.7)),)))
    return Draft("tree", "tree", None, shapes)


# --- person ------------------------------------------------------------------------------------


def _limb(rng: np.random.Generator, start: tuple[float, float], length: float, width: float, side: float,
          raised: bool, s: int) -> np.ndarray:
    angle = math.radians(_u(rng, 110, 160) if raised else _u(rng, 5, 35))
    end = (start[0] + side * math.sin(angle) * length, start[1] + math.cos(angle) * length)
    return sh.bar(start, end, width, s)


def build_person(rng: np.random.Generator, p: Placement) -> Draft:
    """Man (shirt) or woman (dress): legs, torso, two arms, head with hair."""
    s, h, cx = p.size, p.height, p.cx
    noun = "man" if rng.random() < 0.5 else "woman"
    head_r = h * 0.085
    neck, sw = p.base - h + 2 * head_r + h * 0.01, h * _u(rng, 0.09, 0.12)
    hip = neck + h * 0.36
    if noun == "man":
        torso = sh.polygon([(cx - sw, neck), (cx + sw, neck), (cx + sw * 0.9, hip), (cx - sw * 0.9, hip)], s)
    else:
        hem = hip + h * 0.14
        torso = sh.polygon([(cx - sw * 0.8, neck), (cx + sw * 0.8, neck), (cx + sw * 1.5, hem),
                            (cx - sw * 1.5, hem)], s)
    skin_c = sh.skin(rng)
    torso_c = pick_colour(rng, sh.ALL_COLOURS)
    arm_c = skin_c if rng.random() < 0.5 else torso_c
    leg_c = pick_colour(rng, ("blue", "black", "brown", "grey", "white"), (torso_c.name,)) if noun == "man" else skin_c
    legs = [sh.bar((cx + side * sw * 0.45, hip - h * 0.02), (cx + side * sw * _u(rng, 0.3, 0.9), p.base),
                   h * 0.075, s) for side in (-1.0, 1.0)]
    arms = [_limb(rng, (cx + side * sw * 0.95, neck + h * 0.03), h * 0.33, h * 0.065, side, rng.random() < 0.25, s)
            for side in (-1.0, 1.0)]
    head_cy = p.base - h + head_r
    head = sh.disc(cx, head_cy, head_r, s)
    hair = head & (sh.grid(s)[0] < head_cy - head_r * (0.2 if noun == "man" else -0.1))
    hair_c = Colour(None, sh.PALETTE[("black", "brown", "yellow", "grey")[int(rng.integers(4))]])
    shapes = [Shape("leg", m, leg_c) for m in legs] + [Shape("torso", torso, torso_c)]
    shapes += [Shape("arm", m, arm_c) for m in arms] + [Shape("head", head, skin_c, ((hair, hair_c),))]
    return Draft("person", noun, None, tuple(shapes))


# --- boat --------------------------------------------------------------------------------------


def build_boat(rng: np.random.Generator, p: Placement) -> Draft:
    """Hull, mast (body) and one or two triangular sails."""
    s, h = p.size, p.height
    length, hull_h = h * _u(rng, 0.8, 1.2), h * _u(rng, 0.18, 0.26)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    deck = p.base - hull_h
    hull = sh.polygon([(p.cx - length / 2, deck), (p.cx + length / 2, deck),
                       (p.cx + sign * length * 0.3, p.base), (p.cx - sign * length * 0.42, p.base)], s)
    mx = p.cx + length * _u(rng, -0.1, 0.1)
    mast = sh.bar((mx, deck), (mx, p.base - h), max(1.5, h * 0.03), s)
    gap, sail_bottom = max(1.0, h * 0.02), deck - max(1.0, h * 0.03)
    sails = [sh.polygon([(mx + sign * gap, p.base - h * 0.97), (mx + sign * gap, sail_bottom),
                         (mx + sign * length * _u(rng, 0.3, 0.48), sail_bottom)], s)]
    if rng.random() < 0.5:
        sails.append(sh.polygon([(mx - sign * gap, p.base - h * 0.85), (mx - sign * gap, sail_bottom),
                                 (mx - sign * length * _u(rng, 0.2, 0.35), sail_bottom)], s))
    hull_c = pick_colour(rng, sh.ALL_COLOURS)
    sail_c = pick_colour(rng, ("white", "white", "red", "yellow", "blue", "orange"), (hull_c.name,))
    stripe = hull & (np.abs(sh.grid(s)[0] - (deck + hull_h * 0.3)) < max(1.0, hull_h * 0.1))
    shapes = [Shape(None, mast, Colour(None, sh.PALETTE["brown"])),
              Shape("hull", hull, hull_c, ((stripe, shade(hull_c, 0.6)),))]
    shapes += [Shape("sail", m, sail_c) for m in sails]
    return Draft("boat", "boat", hull_c.name, tuple(shapes))


# --- sun, moon ---------------------------------------------------------------------------------


def build_sun(rng: np.random.Generator, p: Placement) -> Draft:
    """A disc, with rays half of the time; no parts."""
    s, r = p.size, p.height / 2
    cy = p.base - r
    mask = sh.disc(p.cx, cy, r * 0.7, s)
    if rng.random() < 0.5:
        for a in np.linspace(0, 2 * math.pi, int(rng.integers(8, 13)), endpoint=False):
            mask |= sh.bar((p.cx + math.cos(a) * r * 0.8, cy + math.sin(a) * r * 0.8),
                           (p.cx + math.cos(a) * r, cy + math.sin(a) * r), max(1.5, r * 0.12), s)
    colour = pick_colour(rng, ("yellow", "yellow", "orange"))
    return Draft("sun", "sun", colour.name, (Shape(None, mask, colour, glow=True),))


def build_moon(rng: np.random.Generator, p: Placement) -> Draft:
    """A crescent, or a full moon with craters; no parts."""
    s, r = p.size, p.height / 2
    cy = p.base - r
    mask = sh.disc(p.cx, cy, r, s)
    colour = pick_colour(rng, ("white", "white", "yellow"))
    details: tuple[tuple[np.ndarray, Colour], ...] = ()
    if rng.random() < 0.65:
        off = r * _u(rng, 0.35, 0.6) * (1 if rng.random() < 0.5 else -1)
        mask &= ~sh.disc(p.cx + off, cy - r * 0.15, r * 0.95, s)
    else:
        craters = (sh.disc(p.cx - r * 0.3, cy - r * 0.2, r * 0.2, s)
                   | sh.disc(p.cx + r * 0.35, cy + r * 0.3, r * 0.15, s))
        details = ((craters, shade(colour, 0.8)),)
    return Draft("moon", "moon", colour.name, (Shape(None, mask, colour, details, glow=True),))


# --- dog ---------------------------------------------------------------------------------------


def build_dog(rng: np.random.Generator, p: Placement) -> Draft:
    """Body ellipse, four legs, head (with snout and ear), tail; faces left or right."""
    s, h = p.size, p.height
    sign = 1.0 if rng.random() < 0.5 else -1.0
    bl, leg_len = h * _u(rng, 1.1, 1.4), h * 0.45
    body_cy, body_ry = p.base - leg_len - h * 0.15, h * 0.2
    body = sh.ellipse(p.cx, body_cy, bl / 2, body_ry, s)
    coat = pick_colour(rng, ("brown", "black", "white", "grey", "yellow", "orange"))
    leg_w = max(2.0, h * 0.11)
    legs = [sh.bar((p.cx + sign * u * bl, body_cy), (p.cx + sign * (u * bl + _u(rng, -0.05, 0.05) * h), p.base),
                   leg_w, s) for u in (-0.36, -0.24, 0.24, 0.36)]
    hx, hy, hr = p.cx + sign * bl * 0.5, body_cy - h * 0.28, h * 0.2
    head = (sh.disc(hx, hy, hr, s) | sh.ellipse(hx + sign * hr * 0.9, hy + hr * 0.25, hr * 0.6, hr * 0.4, s)
            | sh.ellipse(hx - sign * hr * 0.35, hy - hr * 0.1, hr * 0.3, hr * 0.65, s, angle=sign * 0.3))
    eye = sh.disc(hx + sign * hr * 0.35, hy - hr * 0.25, max(1.0, hr * 0.12), s)
    tail_start = (p.cx - sign * bl * 0.45, body_cy - body_ry * 0.4)
    tail_end = (tail_start[0] - sign * h * _u(rng, 0.3, 0.45), tail_start[1] - h * _u(rng, 0.1, 0.4))
    tail = sh.bar(tail_start, tail_end, max(3.0, h * 0.12), s)
    far = shade(coat, 0.8)
    shapes = [Shape("leg", legs[0], far), Shape("leg", legs[2], far), Shape("tail", tail, coat),
              Shape(None, body, coat, ((sh.speckles(rng, body, 0.08), shade(coat, 0.85)),)),
              Shape("leg", legs[1], coat), Shape("leg", legs[3], coat),
              Shape("head", head, shade(coat, 1.08), ((eye, Colour(None, (20.0, 20.0, 20.0))),))]
    return Draft("dog", "dog", coat.name, tuple(shapes))


# --- kitchen -----------------------------------------------------------------------------------


def build_table(rng: np.random.Generator, p: Placement) -> Draft:
    """Table top (body) and two or four legs; small objects may stand on its top."""
    s, h = p.size, p.height
    w, t = h * _u(rng, 1.4, 2.0), h * _u(rng, 0.1, 0.15)
    x0, x1, top = p.cx - w / 2, p.cx + w / 2, p.base - h
    top_c = pick_colour(rng, ("brown", "brown", "white", "black", "grey", "red"))
    leg_c = top_c if rng.random() < 0.6 else pick_colour(rng, ("brown", "black", "grey", "white"), (top_c.name,))
    lw, inset = max(2.0, h * 0.08), w * _u(rng, 0.03, 0.1)
    shapes = []
    if rng.random() < 0.5:  # back legs, slightly shorter
        shapes += [Shape("leg", sh.rect(x - lw / 2, top + t, x + lw / 2, p.base - h * 0.08, s), shade(leg_c, 0.75))
                   for x in (x0 + inset + w * 0.12, x1 - inset - w * 0.12)]
    shapes += [Shape("leg", sh.rect(x - lw / 2, top + t, x + lw / 2, p.base, s), leg_c)
               for x in (x0 + inset + lw / 2, x1 - inset - lw / 2)]
    shapes.append(Shape(None, sh.rect(x0, top, x1, top + t, s), top_c))
    return Draft("table", "table", top_c.name, tuple(shapes), surface=(x0 + w * 0.1, x1 - w * 0.1, top + 1))


def build_cup(rng: np.random.Generator, p: Placement) -> Draft:
    """A tapered cup (body) with a dark rim and a ring handle on one side."""
    s, h = p.size, p.height
    w = h * _u(rng, 0.7, 1.0)
    top = p.base - h
    body = sh.polygon([(p.cx - w / 2, top), (p.cx + w / 2, top), (p.cx + w * 0.4, p.base), (p.cx - w * 0.4, p.base)], s)
    side = 1.0 if rng.random() < 0.5 else -1.0
    handle = sh.ring(p.cx + side * w * 0.45, top + h * 0.45, h * 0.28, h * 0.27, max(2.0, h * 0.12), s) & ~body
    colour = pick_colour(rng, sh.ALL_COLOURS)
    rim = body & (sh.grid(s)[0] < top + max(1.5, h * 0.1))
    shapes = (Shape(None, body, colour, ((rim, shade(colour, 0.6)),)), Shape("handle", handle, shade(colour, 0.95)))
    return Draft("cup", "cup", colour.name, shapes)


def build_refrigerator(rng: np.random.Generator, p: Placement) -> Draft:
    """Cabinet frame (body), freezer and main doors, a handle on each door."""
    s, h = p.size, p.height
    w = h * _u(rng, 0.45, 0.6)
    x0, x1, top = p.cx - w / 2, p.cx + w / 2, p.base - h
    door_c = pick_colour(rng, ("white", "white", "grey", "black", "red", "blue"))
    handle_c = pick_colour(rng, ("grey", "black", "white"), (door_c.name,))
    g = max(1.0, h * 0.012)
    split = top + h * _u(rng, 0.3, 0.4)
    hx = x0 + w * 0.12 if rng.random() < 0.5 else x1 - w * 0.12
    hw = max(2.0, w * 0.06)
    shapes = (Shape(None, sh.rect(x0, top, x1, p.base, s), shade(door_c, 0.7)),
              Shape("door", sh.rect(x0 + g, top + g, x1 - g, split - g / 2, s), door_c),
              Shape("door", sh.rect(x0 + g, split + g / 2, x1 - g, p.base - h * 0.03, s), door_c),
              Shape("handle", sh.rect(hx - hw / 2, split - h * 0.15, hx + hw / 2, split - h * 0.04, s), handle_c),
              Shape("handle", sh.rect(hx - hw / 2, split + h * 0.05, hx + hw / 2, split + h * 0.3, s), handle_c))
    return Draft("refrigerator", "refrigerator", door_c.name, shapes)


BUILDERS: dict[str, Builder] = {"house": build_house, "car": build_car, "tree": build_tree, "person": build_person,
                                "boat": build_boat, "sun": build_sun, "moon": build_moon, "dog": build_dog,
                                "table": build_table, "cup": build_cup, "refrigerator": build_refrigerator}
OBJECT_PARTS: dict[str, tuple[str, ...]] = {
    "house": ("roof", "door", "window"), "car": ("window", "wheel"), "tree": ("trunk", "crown"),
    "person": ("head", "torso", "arm", "leg"), "boat": ("hull", "sail"), "sun": (), "moon": (),
    "dog": ("head", "leg", "tail"), "table": ("leg",), "cup": ("handle",), "refrigerator": ("door", "handle"),
}
