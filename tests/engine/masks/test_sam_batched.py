"""SamBatchedGenerator against segment-anything's own SamAutomaticMaskGenerator.

Both run on the same seeded random-weight ``vit_tiny`` model, made to produce coherent masks by
``make_random_sam_coherent`` (plain random weights give speckle noise). Random weights predict
low IoU and stability, so the quality thresholds are lowered for masks to survive. Few points
per side keep the CPU cost down: segment-anything's decoder costs the same for every encoder.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from scipy.optimize import linear_sum_assignment

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.masks import MasksConfig
from ovlabel.engine.masks.settings import SamConfig
from ovlabel.engine.masks import build_mask_generator
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.masks.sam import SamReferenceGenerator
from ovlabel.engine.masks.sam_batched import (
    SamBatchedGenerator,
    SharedImageDecoder,
    encode_images,
    make_random_sam_coherent,
    remove_small_regions,
    rle_encode_torch,
    upscale_logits,
)

LOW_THRESHOLDS: dict[str, Any] = dict(
    model_type="vit_tiny", random_weights=True, seed=0, points_per_side=3, points_per_batch=5,
    pred_iou_thresh=0.01, stability_score_thresh=0.05, box_nms_thresh=0.95, encoder_batch_size=2,
)


def objects_scene(size: tuple[int, int], centres: list[tuple[int, int]], seed: int, radius: int = 16) -> np.ndarray:
    """(H, W, 3) uint8: a plain background with squares and discs at ``centres`` (XY)."""
    rng = np.random.default_rng(seed)
    h, w = size
    image = Image.new("RGB", (w, h), tuple(int(c) for c in rng.integers(150, 230, 3)))
    draw = ImageDraw.Draw(image)
    for i, (cx, cy) in enumerate(centres):
        colour = tuple(int(c) for c in rng.integers(0, 120, 3))
        (draw.ellipse if i % 2 else draw.rectangle)([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
    return np.asarray(image)


SCENES = [
    objects_scene((240, 320), [(60, 50), (250, 60), (160, 170), (60, 190)], seed=0),
    objects_scene((300, 200), [(50, 60), (150, 150), (60, 240)], seed=1, radius=24),
    objects_scene((256, 256), [(128, 128), (40, 200)], seed=2, radius=30),
]
# One object well inside each first-layer crop of a 256 x 192 image, so crop masks survive the crop-edge filter.
CROP_SCENE = objects_scene((192, 256), [(50, 40), (205, 40), (50, 150), (205, 150)], seed=0)


def _pair(cfg: SamConfig, device: str = "cpu") -> tuple[SamReferenceGenerator, SamBatchedGenerator]:
    """Reference and batched generators sharing one coherent random-weight model."""
    ref = SamReferenceGenerator(cfg, device)
    make_random_sam_coherent(ref.model)
    return ref, SamBatchedGenerator(cfg, device, model=ref.model)


def _match(a: MaskBatch, b: MaskBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one matching (rows of a, rows of b, mask IoU), preferring same prompt point and score."""
    iou = rle_utils.iou_matrix(list(a.rles), list(b.rles))
    same_point = np.all(np.abs(a.points[:, None] - b.points[None]) < 1e-3, axis=-1)
    same_score = np.abs(a.predicted_iou[:, None] - b.predicted_iou[None]) < 1e-3
    rows, cols = linear_sum_assignment(-(iou + same_point + same_score))
    return rows, cols, iou[rows, cols]


def assert_same_masks(ref: MaskBatch, ours: MaskBatch, min_iou: float = 0.99) -> None:
    assert ours.image_size == ref.image_size
    assert len(ours) == len(ref)
    if not len(ref):
        return
    rows, cols, ious = _match(ref, ours)
    assert ious.min() >= min_iou, f"mask IoUs {np.sort(ious)[:5]}"
    np.testing.assert_allclose(ours.predicted_iou[cols], ref.predicted_iou[rows], atol=1e-4)
    np.testing.assert_allclose(ours.stability_score[cols], ref.stability_score[rows], atol=2e-2)
    np.testing.assert_allclose(ours.points[cols], ref.points[rows], atol=1e-3)
    np.testing.assert_array_equal(ours.crop_boxes[cols], ref.crop_boxes[rows])


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """These tensors are small: fanning ops out over threads costs more than it gains on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pair() -> tuple[SamReferenceGenerator, SamBatchedGenerator]:
    return _pair(SamConfig(**LOW_THRESHOLDS))


def test_matches_segment_anything(pair: tuple[SamReferenceGenerator, SamBatchedGenerator]) -> None:
    ref, ours = pair
    expected = ref.generate(SCENES)
    got = ours.generate(SCENES)  # image_batch_size=2: two encoder batches
    assert [len(b) for b in expected] == [len(b) for b in got]
    assert sum(len(b) for b in expected) >= 6 and min(len(b) for b in expected) >= 2
    for e, g in zip(expected, got):
        assert_same_masks(e, g)
        assert g.source == e.source


def test_crop_layers_match_segment_anything() -> None:
    cfg = SamConfig(**{**LOW_THRESHOLDS, "crop_n_layers": 1, "points_per_side": 2, "stability_score_thresh": 0.01,
                       "encoder_batch_size": 3})  # 5 encoder inputs: batches of 3 and 2
    ref, ours = _pair(cfg)
    [expected], [got] = ref.generate([CROP_SCENE]), ours.generate([CROP_SCENE])
    whole = np.all(expected.crop_boxes == [0, 0, 256, 192], axis=1)
    assert whole.any() and (~whole).any(), "want masks from the whole image and from crops"
    assert_same_masks(expected, got)


def test_decoder_matches_segment_anything(pair: tuple[SamReferenceGenerator, SamBatchedGenerator]) -> None:
    model = pair[0].model
    rng = np.random.default_rng(0)
    with torch.inference_mode():
        embedding = torch.randn(1, 256, 64, 64, generator=torch.Generator().manual_seed(0))
        coords = torch.as_tensor(rng.uniform(0, 1024, (5, 1, 2)))
        sparse, dense = model.prompt_encoder(points=(coords, torch.ones(5, 1, dtype=torch.int)), boxes=None, masks=None)
        logits, iou = model.mask_decoder(image_embeddings=embedding, image_pe=model.prompt_encoder.get_dense_pe(),
                                         sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                         multimask_output=True)
        dec = SharedImageDecoder(model)
        queries, keys = dec.transformer(dec.image_side(embedding), dec.tokens(sparse))
        torch.testing.assert_close(dec.iou(queries), iou, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(dec.masks(queries, keys, chunk=2), logits, atol=1e-4, rtol=1e-4)


def test_encoder_matches_segment_anything(pair: tuple[SamReferenceGenerator, SamBatchedGenerator]) -> None:
    ref, ours = pair
    with torch.inference_mode():
        batch = torch.cat([ours._preprocess(image) for image in SCENES[:2]])
        expected = ref.model.image_encoder(batch)
        # The exact path does segment-anything's arithmetic (bit-identical on our CPU), chunked over heads.
        torch.testing.assert_close(encode_images(ref.model, batch, sdpa=False), expected, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(encode_images(ref.model, batch, sdpa=True), expected, atol=1e-4, rtol=1e-4)


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


def test_min_mask_region_area_cleans_output(pair: tuple[SamReferenceGenerator, SamBatchedGenerator]) -> None:
    from scipy import ndimage

    cfg = SamConfig(**{**LOW_THRESHOLDS, "min_mask_region_area": 40, "points_per_side": 2})
    [batch] = SamBatchedGenerator(cfg, model=pair[0].model).generate([SCENES[0]])
    assert len(batch)
    for mask in batch.decode_all():
        _, sizes = np.unique(ndimage.label(mask, structure=np.ones((3, 3)))[0][mask], return_counts=True)
        assert sizes.min() >= 40 or len(sizes) == 1


def test_nothing_passes_gives_empty_batches(pair: tuple[SamReferenceGenerator, SamBatchedGenerator]) -> None:
    cfg = SamConfig(**{**LOW_THRESHOLDS, "pred_iou_thresh": 0.99, "points_per_side": 2})
    batches = SamBatchedGenerator(cfg, model=pair[0].model).generate(SCENES[:2], ["a", "b"])
    assert [len(b) for b in batches] == [0, 0]
    assert [b.image_size for b in batches] == [(240, 320), (300, 200)]


def test_registry_builds_batched_generator() -> None:
    gen = build_mask_generator(MasksConfig(generator="sam", sam=SamConfig(**LOW_THRESHOLDS)))
    assert isinstance(gen, SamBatchedGenerator)
    info = gen.describe()
    assert info["generator"] == "sam-batched" and info["model_type"] == "vit_tiny"
    assert info["checkpoint_sha256"] is None and info["precision"] == "fp32" and info["attention"] == "exact"
    assert info["pred_iou_thresh"] == 0.01 and info["image_batch_size"] == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_agrees_with_fp32() -> None:
    cfg = SamConfig(**{**LOW_THRESHOLDS, "points_per_side": 8, "points_per_batch": 64})
    ref = SamReferenceGenerator(cfg, "cuda")
    make_random_sam_coherent(ref.model)
    fp32 = SamBatchedGenerator(cfg, "cuda", model=ref.model, autocast=False, sdpa=False)
    bf16 = SamBatchedGenerator(cfg, "cuda", model=ref.model)
    assert bf16.describe()["precision"] == "bf16-autocast"
    expected, exact, fast = ref.generate(SCENES), fp32.generate(SCENES), bf16.generate(SCENES)
    for e, x in zip(expected, exact):
        assert_same_masks(e, x)
    matched, total, ious = 0, 0, []
    for x, f in zip(exact, fast):
        total += len(x)
        if len(x) and len(f):
            _, _, iou = _match(x, f)
            matched += int((iou >= 0.9).sum())
            ious += iou.tolist()
    assert total and matched >= 0.8 * total
    assert np.mean(ious) >= 0.9
    assert abs(sum(len(f) for f in fast) - total) <= 0.2 * total
