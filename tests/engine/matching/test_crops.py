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


def _padded_then_resized(patch: np.ndarray, size: int) -> np.ndarray:
    """The crop as it always was made: the patch padded to a full-resolution square, then resized."""
    from PIL import Image

    h, w = patch.shape[:2]
    side = max(h, w)
    canvas = np.empty((side, side, 3), np.uint8)
    canvas[:] = MEAN_COLOUR
    y, x = (side - h) // 2, (side - w) // 2
    canvas[y:y + h, x:x + w] = patch
    return np.asarray(Image.fromarray(canvas).resize((size, size), Image.BICUBIC))


@pytest.mark.parametrize("mode", sorted(CROP_MODES))
def test_crops_of_ordinary_boxes_are_unchanged(mode: str) -> None:
    rng = np.random.default_rng(7)
    image = (rng.random((320, 400, 3)) * 255).astype(np.uint8)
    for _ in range(40):
        x0, y0 = int(rng.integers(0, 300)), int(rng.integers(0, 220))
        box = (x0, y0, x0 + int(rng.integers(2, 100)), y0 + int(rng.integers(2, 100)))
        mask = box_mask(box, (320, 400))
        for size in (24, 224):
            expected = _padded_then_resized(CROP_MODES[mode](image, mask), size)
            assert np.array_equal(crop_region(image, mask, mode, size), expected), (box, size)
    assert np.array_equal(crop_image(image, 224), _padded_then_resized(image, 224))  # the demo's 256 px scenes too


@pytest.mark.parametrize("shape", [(8000, 9, 3), (9, 8000, 3), (3000, 3000, 3)])
def test_huge_or_extreme_patches_allocate_about_the_crop_size(shape: tuple[int, int, int]) -> None:
    import tracemalloc

    patch = np.full(shape, 200, np.uint8)
    tracemalloc.start()
    crop = crop_image(patch, 224)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert crop.shape == (224, 224, 3) and peak < 4_000_000, peak  # old: an 8000 x 8000 canvas, 192 MB
    assert (crop[111, 111] == 200).all()
    if shape[0] != shape[1]:  # the padding keeps CLIP's mean colour, the patch its own
        corner = crop[0, 112] if shape[0] < shape[1] else crop[112, 0]
        assert (corner == MEAN_COLOUR).all()


def test_a_wide_patch_resized_first_is_close_to_the_padded_crop() -> None:
    rng = np.random.default_rng(3)
    patch = (rng.random((300, 1500, 3)) * 255).astype(np.uint8)
    new, old = crop_image(patch, 224).astype(int), _padded_then_resized(patch, 224).astype(int)
    assert np.abs(new - old).mean() < 3


def test_alpha_crops_keep_the_context_and_give_the_mask_alongside() -> None:
    from ovlabel.engine.matching.crops import crop_with_mask, image_with_mask

    image, mask = noise_image(2), box_mask((20, 20, 30, 40))  # a 10 x 20 box in a 64 x 64 image
    crop, alpha = crop_with_mask(image, mask, "alpha", 40, 2.0)
    assert crop.shape == (40, 40, 3) and alpha.shape == (40, 40) and alpha.dtype == np.uint8
    x0, y0, x1, y1 = enlarge_box((20, 20, 30, 40), 2.0, 64, 64)  # (15, 10, 35, 50): 20 x 40, padded to 40 x 40
    np.testing.assert_array_equal(crop, crop_region(image[y0:y1, x0:x1], np.ones((y1 - y0, x1 - x0), bool), "box", 40))
    assert (alpha[:, :10] == 0).all() and (alpha[:, 30:] == 0).all()  # padding is outside the mask
    assert (alpha[10:30, 15:25] == 255).all() and not alpha[:9].any() and not alpha[:, 10:14].any()  # context around
    whole, _ = crop_with_mask(image, mask, "alpha", 40, None)
    np.testing.assert_array_equal(whole, crop_image(image, 40))
    scene, inside = image_with_mask(image[:32], "alpha", 40, 2.0)  # the whole image, not its padding
    np.testing.assert_array_equal(scene, crop_image(image[:32], 40))
    assert (inside[11:29] == 255).all() and not inside[:9].any() and not inside[31:].any()  # soft edges between


def test_mask_prompt_crops_are_the_masked_crop_and_a_hard_mask() -> None:
    from ovlabel.engine.matching.crops import crop_with_mask

    image = noise_image(3)
    mask = box_mask((10, 10, 40, 30)) & ~box_mask((10, 10, 20, 20))
    crop, inside = crop_with_mask(image, mask, "mask_prompt", 32, 2.0)
    np.testing.assert_array_equal(crop, crop_region(image, mask, "masked", 32))
    assert set(np.unique(inside)) == {0, 255}  # resized nearest, as OVSeg resizes its region masks
    assert (inside[:5] == 0).all() and (inside[6:11, :10] == 0).all() and (inside[12:26, 11:] == 255).all()
    long = np.zeros((8, 4000), bool)
    long[2:6, 10:3990] = True  # past PAD_FIRST_MAX_SIDE: resized first, then padded; the mask alike
    crop, inside = crop_with_mask(np.zeros((8, 4000, 3), np.uint8), long, "mask_prompt", 32, None)
    assert crop.shape == (32, 32, 3) and inside.shape == (32, 32) and inside[15].all() and not inside[0].any()
    with pytest.raises(ValueError, match="crop mode 'masked' takes no mask"):
        crop_with_mask(image, mask, "masked", 32, None)
