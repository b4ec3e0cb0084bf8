"""COCO run-length encoding: the stored text form, round trips, areas, boxes and pairwise IoU."""
from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from ovlabel.engine import rle


def _box(h: int, w: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """(h, w) bool, True on rows y0:y1 and columns x0:x1."""
    mask = np.zeros((h, w), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _random_masks(n: int, h: int = 13, w: int = 17, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, h, w)) < 0.4


def test_encode_gives_the_stored_text_form() -> None:
    encoded = rle.encode(_box(5, 7, 1, 2, 4, 5))
    assert set(encoded) == {"size", "counts"}
    assert encoded["size"] == [5, 7] and all(type(v) is int for v in encoded["size"])
    assert isinstance(encoded["counts"], str)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_decode_undoes_encode(seed: int) -> None:
    for mask in _random_masks(4, seed=seed):
        decoded = rle.decode(rle.encode(mask))
        assert decoded.dtype == bool and decoded.shape == mask.shape
        np.testing.assert_array_equal(decoded, mask)


def test_encode_takes_any_dtype_and_layout() -> None:
    mask = _random_masks(1)[0]
    expected = rle.encode(mask)
    assert rle.encode(mask.astype(np.uint8)) == expected
    assert rle.encode(np.ascontiguousarray(mask.T).T) == expected  # a Fortran-ordered view


def test_encode_many_is_encode_of_each_mask() -> None:
    masks = _random_masks(5)
    assert rle.encode_many(masks) == [rle.encode(m) for m in masks]
    assert rle.encode_many(np.zeros((0, 4, 6), bool)) == []


def test_area_and_box() -> None:
    mask = _box(20, 30, 4, 6, 14, 9)  # 10 wide, 3 high at (4, 6)
    encoded = rle.encode(mask)
    assert rle.area(encoded) == int(mask.sum()) == 30 and type(rle.area(encoded)) is int
    box = rle.bbox_xywh(encoded)
    assert box == (4.0, 6.0, 10.0, 3.0) and all(type(v) is float for v in box)
    assert rle.area(rle.encode(np.zeros((4, 4), bool))) == 0


def test_as_text_turns_pycocotools_bytes_into_text() -> None:
    raw = mask_utils.encode(np.asfortranarray(_box(6, 8, 0, 0, 3, 3).astype(np.uint8)))
    assert isinstance(raw["counts"], bytes)
    text = rle.as_text(raw)
    assert text == {"size": [6, 8], "counts": raw["counts"].decode("ascii")}


def test_to_coco_takes_text_bytes_or_uncompressed_counts() -> None:
    mask = _box(4, 3, 1, 1, 3, 3)
    encoded = rle.encode(mask)
    as_bytes = rle.to_coco(encoded)
    assert as_bytes == {"size": [4, 3], "counts": encoded["counts"].encode("ascii")}
    assert rle.to_coco(as_bytes) == as_bytes
    # column-major pixels 0000 0110 0110: runs of 5 zeros, 2 ones, 2 zeros, 2 ones, 1 zero (COCO crowd form)
    uncompressed = {"size": [4, 3], "counts": [5, 2, 2, 2, 1]}
    np.testing.assert_array_equal(rle.decode(uncompressed), mask)
    assert rle.area(uncompressed) == 4 and rle.bbox_xywh(uncompressed) == (1.0, 1.0, 2.0, 2.0)


def test_iou_matrix_is_pairwise_mask_iou() -> None:
    big, left, far = _box(10, 10, 0, 0, 8, 8), _box(10, 10, 0, 0, 4, 8), _box(10, 10, 9, 9, 10, 10)
    a = [rle.encode(big), rle.encode(left)]
    b = [rle.encode(left), rle.encode(far), rle.encode(big)]
    ious = rle.iou_matrix(a, b)
    assert ious.shape == (2, 3) and ious.dtype == np.float64
    np.testing.assert_allclose(ious, [[0.5, 0.0, 1.0], [1.0, 0.0, 0.5]])  # no crowd: a mask inside is not IoU 1


def test_iou_matrix_of_nothing_is_empty() -> None:
    one = [rle.encode(_box(4, 4, 0, 0, 2, 2))]
    for a, b, shape in (([], one, (0, 1)), (one, [], (1, 0)), ([], [], (0, 0))):
        ious = rle.iou_matrix(a, b)
        assert ious.shape == shape and ious.dtype == np.float64
