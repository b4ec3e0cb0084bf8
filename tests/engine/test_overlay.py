"""Overlays: objects filled in their class colour, parts outlined inside them, scaled for display."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ovlabel.engine.labelset import ClassIndex
from ovlabel.engine.overlay import class_colour, display_scale, outline, render_overlay
from tests.engine.label_runs import draw_image, labels_rows


def test_class_colours_differ_and_are_stable() -> None:
    colours = [class_colour(k) for k in range(1, 13)]
    assert len(set(colours)) == 12 and class_colour(3) == colours[2]
    nearest = min(sum(abs(a - b) for a, b in zip(c, d)) for i, c in enumerate(colours) for d in colours[i + 1:i + 2])
    assert nearest > 60  # neighbouring ids look different


def test_outline_is_the_border_of_a_mask() -> None:
    mask = np.zeros((10, 10), bool)
    mask[2:8, 3:9] = True
    ring = outline(mask)
    assert ring.sum() == 6 * 6 - 4 * 4 and not ring[4, 5] and ring[2, 3] and not (ring & ~mask).any()
    assert outline(mask, 2).sum() == 36 - 4


def test_display_scale() -> None:
    assert display_scale(48, 64) == 4 and display_scale(256, 256) == 2 and display_scale(600, 400) == 1
    assert display_scale(4000, 3000) == 0.256


def test_objects_are_filled_and_parts_outlined(tmp_path: Path) -> None:
    row = labels_rows(tmp_path, "3")[0]  # puppy (class dog) at x 4..30, y 8..40, its tail at x 4..12, y 30..40
    classes = ClassIndex.from_names(["dog", "grass", "tail"])
    out = np.asarray(render_overlay(draw_image(0), row["segments"], classes))
    assert out.shape == (48 * 4, 64 * 4, 3)
    image = draw_image(0).repeat(4, 0).repeat(4, 1).astype(int)
    inside, background = out[20 * 4, 20 * 4].astype(int), out[4 * 4, 50 * 4]
    expected = (0.55 * image[20 * 4, 20 * 4] + 0.45 * np.array(class_colour(classes.id_of("dog")))).astype(int)
    assert np.abs(inside - expected).max() <= 1
    assert (background == image[4 * 4, 50 * 4]).all()  # nothing drawn where there is no segment
    assert (out[39 * 4 + 3, 8 * 4] == class_colour(classes.id_of("tail"))).all()  # the tail's bottom edge
    assert (out[38 * 4, 8 * 4] != class_colour(classes.id_of("tail"))).any()  # its inside is not filled
