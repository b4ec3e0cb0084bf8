"""One image during matching and mask geometry: containment, overlaps, small masks, dilation, widened boxes."""
from __future__ import annotations

import numpy as np
import pytest

from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.matching import (ImageContext, ImageInput, candidate_masks, containment, dilate, large_enough,
                                     widened_box)
from tests.engine.matching.helpers import SIZE, box_mask

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


def test_dilate_and_widened_box() -> None:
    mask = box_mask((10, 10, 20, 30))
    assert dilate(mask, 2).sum() == 14 * 24 and dilate(mask, 0).sum() == mask.sum()
    assert np.array_equal(widened_box(mask, 0.5), box_mask((5, 0, 25, 40)))
    assert np.array_equal(widened_box(box_mask((0, 0, 4, 4)), 1.0), box_mask((0, 0, 8, 8)))
    assert not widened_box(np.zeros(SIZE, bool), 1.0).any()


def test_containment_is_the_fraction_of_each_row_mask_inside_each_column_mask() -> None:
    masks = MaskBatch.from_masks(np.stack([box_mask((0, 0, 10, 10)), box_mask((5, 0, 15, 10)), box_mask((0, 0, 2, 2))]))
    np.testing.assert_allclose(containment(masks, [0, 1, 2], [0, 1]), [[1.0, 0.5], [0.5, 1.0], [1.0, 0.0]])
    assert containment(masks, [], [0]).shape == (0, 1)
    ctx = ImageContext(ImageInput(np.zeros((*SIZE, 3), np.uint8), masks, ()), masks, np.zeros((3, 2)), np.zeros(2), {})
    assert ctx.iou(0, 1) == pytest.approx(50 / 150) and ctx.shared(0, 2) == 1.0 and ctx.shared(1, 2) == 0.0


def test_candidate_masks_drop_the_small_ones() -> None:
    masks = MaskBatch.from_masks(np.stack([box_mask((0, 0, 8, 8)), box_mask((0, 0, 2, 2))]))  # 64 and 4 px of 4096
    assert large_enough(masks, 0.01).tolist() == [True, False]
    assert len(candidate_masks(masks, 0.0)) == 2 and len(candidate_masks(masks, 0.01)) == 1


def test_iou_is_computed_per_column_and_equals_the_full_matrix() -> None:
    from ovlabel.engine import rle

    rng = np.random.default_rng(0)
    masks = MaskBatch.from_masks(rng.random((6, *SIZE)) < 0.4)  # noisy masks: long RLEs
    ctx = ImageContext(ImageInput(np.zeros((*SIZE, 3), np.uint8), masks, ()), masks, np.zeros((6, 2)), np.zeros(2), {})
    assert ctx.iou(3, 0) == ctx.iou(0, 3) and ctx.iou(5, 0) > 0.0
    assert sorted(ctx._iou) == [0]  # one column asked for, one computed
    full = rle.iou_matrix(list(masks.rles), list(masks.rles))
    assert [[ctx.iou(i, j) for j in range(6)] for i in range(6)] == full.tolist()
