"""Shared test material: scenes, low-threshold settings, a reference/batched generator pair, mask matching.

Both generators run on the same seeded random-weight ``vit_tiny`` model, made to produce coherent
masks by ``make_random_sam_coherent`` (plain random weights give speckle noise). Random weights
predict low IoU and stability, so the quality thresholds are lowered for masks to survive. Few
points per side keep the CPU cost down: segment-anything's decoder costs the same for every encoder.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from scipy.optimize import linear_sum_assignment

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.masks.settings import SamConfig
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.masks.sam import (
    SamBatchedGenerator,
    SamReferenceGenerator,
    batched_generator,
    make_random_sam_coherent,
    reference_generator,
)

LOW_THRESHOLDS: dict[str, Any] = dict(
    model_type="vit_tiny", checkpoint="random:0", points_per_side=3, points_per_batch=5,
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


def make_pair(cfg: SamConfig, device: str = "cpu") -> tuple[SamReferenceGenerator, SamBatchedGenerator]:
    """Reference and batched generators sharing one coherent random-weight model."""
    ref = reference_generator(cfg, device)
    make_random_sam_coherent(ref.model)
    return ref, batched_generator(cfg, device, model=ref.model)


def match(a: MaskBatch, b: MaskBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    rows, cols, ious = match(ref, ours)
    assert ious.min() >= min_iou, f"mask IoUs {np.sort(ious)[:5]}"
    np.testing.assert_allclose(ours.predicted_iou[cols], ref.predicted_iou[rows], atol=1e-4)
    np.testing.assert_allclose(ours.stability_score[cols], ref.stability_score[rows], atol=2e-2)
    np.testing.assert_allclose(ours.points[cols], ref.points[rows], atol=1e-3)
    np.testing.assert_array_equal(ours.crop_boxes[cols], ref.crop_boxes[rows])
