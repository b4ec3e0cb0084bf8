"""Region crops: square, filled with CLIP's mean colour, one function per mode."""
from __future__ import annotations

import numpy as np
import pytest

from ovlabel.engine.matching.crops import CROP_MODES, MEAN_COLOUR, crop_image, crop_region, enlarge_box, mask_box
from ovlabel.engine.matching.embedder import CLIP_MEAN
from tests.engine.matching.helpers import box_mask, noise_image


def test_mean_colour_is_clips_pixel_mean() -> None:
    assert MEAN_COLOUR.tolist() == [round(c * 255.0) for c in CLIP_MEAN] == [123, 117, 104]


@pytest.mark.parametrize("mode", sorted(CROP_MODES))
def test_every_mode_gives_a_square_uint8_crop(mode: str) -> None:
    crop = crop_region(noise_image(1), box_mask((10, 20, 30, 30)), mode, 24)
    assert crop.shape == (24, 24, 3) and crop.dtype == np.uint8


def test_masked_crop_fills_outside_the_mask_and_the_padding_with_the_mean_colour() -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    mask = np.zeros((8, 8), bool)
    mask[0:4, 0:2] = True
    mask[0, 2:4] = True  # box 4 x 4, an L shape
    crop = crop_region(image, mask, "masked", 4)
    assert (crop[1:, 3] == MEAN_COLOUR).all() and (crop[:, 1] == 0).all()
    assert (crop_image(np.zeros((2, 4, 3), np.uint8), 4)[0] == MEAN_COLOUR).all()  # padded to a square


def test_boxes_and_errors() -> None:
    assert mask_box(box_mask((3, 5, 9, 7))) == (3, 5, 9, 7)
    assert enlarge_box((10, 10, 20, 20), 1.2, 64, 64) == (9, 9, 21, 21)
    assert enlarge_box((0, 0, 10, 10), 1.2, 10, 10) == (0, 0, 10, 10)
    with pytest.raises(ValueError, match="empty mask has no box"):
        mask_box(np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="unknown crop mode 'nope'"):
        crop_region(noise_image(), box_mask((0, 0, 4, 4)), "nope")
