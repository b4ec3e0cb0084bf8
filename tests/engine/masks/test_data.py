"""MaskBatch: the typed column store of one image's masks; ``select`` is the one place masks are filtered."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ovlabel.engine import rle
from ovlabel.engine.masks.data import MaskBatch

H, W = 12, 16
COLUMNS = ("boxes", "areas", "predicted_iou", "stability_score", "points", "crop_boxes")


def _boxes(*boxes: tuple[int, int, int, int]) -> np.ndarray:
    """(N, H, W) bool, mask k True on its XYXY box."""
    masks = np.zeros((len(boxes), H, W), bool)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        masks[k, y0:y1, x0:x1] = True
    return masks


MASKS = _boxes((0, 0, 4, 4), (2, 3, 10, 5), (8, 6, 16, 12))


def _scored(source: str = "sam") -> MaskBatch:
    return MaskBatch.from_masks(MASKS, predicted_iou=[0.9, 0.5, 0.7], stability_score=[0.1, 0.2, 0.3],
                                points=np.array([[1, 1], [5, 4], [12, 9]]),
                                crop_boxes=np.array([[0, 0, 16, 12], [0, 0, 8, 6], [8, 6, 16, 12]]), source=source)


def _assert_same(a: MaskBatch, b: MaskBatch) -> None:
    assert a.image_size == b.image_size and a.rles == b.rles and a.source == b.source
    for name in COLUMNS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert getattr(a, name).dtype == getattr(b, name).dtype, name


def test_from_masks_computes_boxes_and_areas_and_fills_nan() -> None:
    batch = MaskBatch.from_masks(MASKS, source="grid")
    assert len(batch) == 3 and batch.image_size == (H, W) and batch.source == "grid"
    assert batch.rles == tuple(rle.encode(m) for m in MASKS)
    np.testing.assert_array_equal(batch.boxes, [[0, 0, 4, 4], [2, 3, 8, 2], [8, 6, 8, 6]])
    np.testing.assert_array_equal(batch.areas, [16, 16, 48])
    assert (batch.boxes.dtype, batch.areas.dtype) == (np.float32, np.int64)
    assert batch.predicted_iou.shape == batch.stability_score.shape == (3,) and batch.points.shape == (3, 2)
    assert np.isnan(batch.predicted_iou).all() and np.isnan(batch.stability_score).all() and np.isnan(batch.points).all()
    assert batch.predicted_iou.dtype == batch.stability_score.dtype == batch.points.dtype == np.float32
    np.testing.assert_array_equal(batch.crop_boxes, np.tile([0, 0, W, H], (3, 1)))  # uncropped: the whole image
    assert batch.crop_boxes.dtype == np.int32


def test_given_scores_points_and_crops_are_kept_typed() -> None:
    batch = _scored()
    np.testing.assert_allclose(batch.predicted_iou, [0.9, 0.5, 0.7], rtol=1e-6)
    np.testing.assert_array_equal(batch.points, [[1, 1], [5, 4], [12, 9]])
    np.testing.assert_array_equal(batch.crop_boxes[1], [0, 0, 8, 6])
    assert (batch.predicted_iou.dtype, batch.points.dtype, batch.crop_boxes.dtype) == (np.float32, np.float32, np.int32)


def test_decode_gives_the_masks_back() -> None:
    batch = MaskBatch.from_masks(MASKS)
    np.testing.assert_array_equal(batch.decode(1), MASKS[1])
    all_masks = batch.decode_all()
    assert all_masks.dtype == bool and all_masks.shape == (3, H, W)
    np.testing.assert_array_equal(all_masks, MASKS)


def test_empty_has_every_column_with_no_rows() -> None:
    batch = MaskBatch.empty((H, W), source="sam")
    assert len(batch) == 0 and batch.rles == () and batch.source == "sam" and batch.image_size == (H, W)
    assert batch.boxes.shape == (0, 4) and batch.points.shape == (0, 2) and batch.crop_boxes.shape == (0, 4)
    assert batch.areas.shape == batch.predicted_iou.shape == batch.stability_score.shape == (0,)
    assert batch.decode_all().shape == (0, H, W) and batch.decode_all().dtype == bool
    _assert_same(MaskBatch.from_masks(np.zeros((0, H, W), bool), source="sam"), batch)


def test_columns_must_have_one_row_per_mask() -> None:
    batch = MaskBatch.from_masks(MASKS)
    with pytest.raises(ValueError, match="MaskBatch column areas has 2 rows, expected 3"):
        dataclasses.replace(batch, areas=batch.areas[:2])
    with pytest.raises(dataclasses.FrozenInstanceError):
        batch.source = "other"  # type: ignore[misc]


@pytest.mark.parametrize("keep", [[True, False, True], np.array([True, False, True]), [0, 2], np.array([0, 2])],
                         ids=["bools", "bool-array", "indices", "index-array"])
def test_select_keeps_rows_by_bools_or_indices(keep: object) -> None:
    batch = _scored()
    kept = batch.select(keep)  # type: ignore[arg-type]
    assert len(kept) == 2 and kept.rles == (batch.rles[0], batch.rles[2]) and kept.source == "sam"
    for name in COLUMNS:
        np.testing.assert_array_equal(getattr(kept, name), getattr(batch, name)[[0, 2]], err_msg=name)


def test_select_keeps_the_given_order_and_may_repeat_or_drop_all() -> None:
    batch = _scored()
    reordered = batch.select([2, 0, 2])
    assert reordered.rles == (batch.rles[2], batch.rles[0], batch.rles[2])
    np.testing.assert_allclose(reordered.predicted_iou, [0.7, 0.9, 0.7], rtol=1e-6)
    for nothing in ([], np.zeros(3, bool)):
        none = batch.select(nothing)
        assert len(none) == 0 and none.boxes.shape == (0, 4) and none.image_size == (H, W)
    assert batch.select(np.array([[1]])).rles == (batch.rles[1],)  # any shape of indices is flattened
    assert len(batch) == 3  # the batch itself is unchanged


def test_concat_stacks_batches_of_one_image() -> None:
    batch = _scored()
    joined = MaskBatch.concat([batch.select([0]), MaskBatch.empty((H, W), source="other"), batch.select([1, 2])])
    _assert_same(joined, batch)  # the first batch's source wins
    _assert_same(MaskBatch.concat([batch]), batch)
    empty = MaskBatch.concat([MaskBatch.empty((H, W)), MaskBatch.empty((H, W))])
    assert len(empty) == 0 and empty.boxes.shape == (0, 4) and empty.points.shape == (0, 2)


def test_concat_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one batch"):
        MaskBatch.concat([])
