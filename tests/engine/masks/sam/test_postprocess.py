"""Mask post-processing against segment-anything's and pycocotools' own."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.masks.sam import SamBatchedGenerator, SamReferenceGenerator
from ovlabel.engine.masks.sam.postprocess import (
    CropFrame,
    MaskColumns,
    merge_crops,
    remove_small_regions,
    rle_encode_torch,
    upscale_logits,
)


@pytest.mark.parametrize("size", [(240, 320), (300, 200), (161, 129), (1024, 1024), (77, 500)])
def test_upscale_logits_matches_postprocess_masks(pair: tuple[SamReferenceGenerator, SamBatchedGenerator],
                                                  size: tuple[int, int]) -> None:
    model, transform = pair[0].model, pair[1].transform
    low_res = torch.randn(2, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    input_size = transform.get_preprocess_shape(size[0], size[1], 1024)
    expected = model.postprocess_masks(low_res, input_size, size).flatten(0, 1)
    got = upscale_logits(low_res.flatten(0, 1), input_size, size, 1024)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)  # bit-identical with 2 threads, 1 ulp with 1


def test_rle_encoding_matches_pycocotools() -> None:
    rng = np.random.default_rng(0)
    masks = rng.random((4, 37, 23)) > 0.6
    masks[1] = False
    masks[2] = True
    masks[3, 0, 0] = True
    expected = [rle_utils.encode(m) for m in masks]
    assert rle_encode_torch(torch.as_tensor(masks)) == expected
    assert rle_encode_torch(torch.zeros((0, 5, 5), dtype=torch.bool)) == []


def test_remove_small_regions_fills_holes_and_drops_islands() -> None:
    mask = np.zeros((40, 40), bool)
    mask[5:30, 5:30] = True
    mask[10:12, 10:12] = False        # 4-pixel hole
    mask[35:37, 35:37] = True         # 4-pixel island
    filled, changed = remove_small_regions(mask, 10, "holes")
    assert changed and filled[10:12, 10:12].all() and filled[35:37, 35:37].all()
    cleaned, changed = remove_small_regions(filled, 10, "islands")
    assert changed and not cleaned[35:37, 35:37].any() and cleaned[5:30, 5:30].all()
    assert remove_small_regions(cleaned, 10, "islands")[1] is False


def test_crop_frame_sizes_match_resize_longest_side() -> None:
    frame = CropFrame((10, 20, 110, 70), (192, 256), 1024)
    assert frame.size == (50, 100)
    assert frame.input_size == (512, 1024)


def _columns(masks: np.ndarray, iou: list[float], crop_box: tuple[int, int, int, int]) -> MaskColumns:
    n = len(masks)
    return MaskColumns(torch.as_tensor(masks), torch.tensor(iou), torch.tensor(iou),
                       np.arange(2 * n, dtype=float).reshape(n, 2), torch.tensor([[0, 0, 1, 1]] * n),
                       torch.tensor([crop_box] * n))


def test_mask_columns_select_concat_and_merge_crops() -> None:
    whole = _columns(np.ones((2, 4, 6), bool), [0.5, 0.7], (0, 0, 6, 4))
    crop = _columns(np.ones((1, 2, 3), bool), [0.9], (3, 2, 6, 4))
    picked = whole.select(torch.tensor([1]))
    assert picked.iou.tolist() == [pytest.approx(0.7)] and picked.points.tolist() == [[2.0, 3.0]]
    assert len(MaskColumns.concat([whole, picked]).iou) == 3
    assert MaskColumns.empty((4, 6), torch.device("cpu")).masks.shape == (0, 4, 6)
    assert merge_crops([], (4, 6), torch.device("cpu"), 0.7).masks.shape == (0, 4, 6)
    merged = merge_crops([((0, 0, 6, 4), whole), ((3, 2, 6, 4), crop)], (4, 6), torch.device("cpu"), 1.0)
    assert merged.masks.shape[1:] == (4, 6)
    padded = merged.masks[merged.crop_boxes[:, 0] == 3][0]
    assert padded[2:, 3:].all() and not padded[:2].any() and not padded[:, :3].any()
