"""A typed column store of class-agnostic masks for one image (after segment-anything's MaskData).

Columns (N = number of masks):
    rles            list of N COCO RLEs {'size': [H, W], 'counts': str}
    boxes           (N, 4) float32, XYWH in pixels
    areas           (N,) int64, mask pixel counts
    predicted_iou   (N,) float32, the model's own quality estimate (NaN when none)
    stability_score (N,) float32 (NaN when none)
    points          (N, 2) float32, the XY prompt point that produced the mask (NaN when none)
    crop_boxes      (N, 4) int32, XYXY crop the mask came from (the whole image when uncropped)

All filtering goes through :meth:`MaskBatch.select`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from ovlabel.engine import rle as rle_utils


@dataclass(frozen=True)
class MaskBatch:
    image_size: tuple[int, int]  # (H, W)
    rles: tuple[dict[str, Any], ...]
    boxes: np.ndarray
    areas: np.ndarray
    predicted_iou: np.ndarray
    stability_score: np.ndarray
    points: np.ndarray
    crop_boxes: np.ndarray
    source: str = field(default="")

    def __post_init__(self) -> None:
        n = len(self.rles)
        for name in ("boxes", "areas", "predicted_iou", "stability_score", "points", "crop_boxes"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"MaskBatch column {name} has {len(getattr(self, name))} rows, expected {n}")

    def __len__(self) -> int:
        return len(self.rles)

    @classmethod
    def empty(cls, image_size: tuple[int, int], source: str = "") -> "MaskBatch":
        return cls.from_rles(image_size, [], source=source)

    @classmethod
    def from_rles(
        cls,
        image_size: tuple[int, int],
        rles: Sequence[dict[str, Any]],
        predicted_iou: Optional[Sequence[float]] = None,
        stability_score: Optional[Sequence[float]] = None,
        points: Optional[np.ndarray] = None,
        crop_boxes: Optional[np.ndarray] = None,
        source: str = "",
    ) -> "MaskBatch":
        """Build from RLEs; boxes and areas are computed, missing scores are NaN."""
        n = len(rles)
        h, w = image_size
        nan = np.full(n, np.nan, dtype=np.float32)
        return cls(
            image_size=(int(h), int(w)),
            rles=tuple(rles),
            boxes=np.asarray([rle_utils.bbox_xywh(r) for r in rles], dtype=np.float32).reshape(n, 4),
            areas=np.asarray([rle_utils.area(r) for r in rles], dtype=np.int64).reshape(n),
            predicted_iou=nan.copy() if predicted_iou is None else np.asarray(predicted_iou, np.float32).reshape(n),
            stability_score=nan.copy() if stability_score is None else np.asarray(stability_score, np.float32).reshape(n),
            points=np.full((n, 2), np.nan, np.float32) if points is None else np.asarray(points, np.float32).reshape(n, 2),
            crop_boxes=(np.tile(np.array([0, 0, w, h], np.int32), (n, 1)) if crop_boxes is None
                        else np.asarray(crop_boxes, np.int32).reshape(n, 4)),
            source=source,
        )

    @classmethod
    def from_masks(cls, masks: np.ndarray, **kwargs: Any) -> "MaskBatch":
        """Build from (N, H, W) bool masks."""
        h, w = masks.shape[-2:]
        return cls.from_rles((h, w), rle_utils.encode_many(masks), **kwargs)

    def select(self, keep: np.ndarray | Sequence[int] | Sequence[bool]) -> "MaskBatch":
        """The one place masks are filtered: keep rows by bool mask or index array (order kept)."""
        idx = np.asarray(keep)
        if idx.dtype == bool:
            idx = np.nonzero(idx)[0]
        idx = idx.astype(np.int64).reshape(-1)
        return MaskBatch(
            image_size=self.image_size,
            rles=tuple(self.rles[i] for i in idx),
            boxes=self.boxes[idx],
            areas=self.areas[idx],
            predicted_iou=self.predicted_iou[idx],
            stability_score=self.stability_score[idx],
            points=self.points[idx],
            crop_boxes=self.crop_boxes[idx],
            source=self.source,
        )

    @staticmethod
    def concat(batches: Sequence["MaskBatch"]) -> "MaskBatch":
        """Concatenate batches of the same image."""
        if not batches:
            raise ValueError("MaskBatch.concat needs at least one batch")
        first = batches[0]
        return MaskBatch(
            image_size=first.image_size,
            rles=tuple(r for b in batches for r in b.rles),
            boxes=np.concatenate([b.boxes for b in batches]).reshape(-1, 4),
            areas=np.concatenate([b.areas for b in batches]),
            predicted_iou=np.concatenate([b.predicted_iou for b in batches]),
            stability_score=np.concatenate([b.stability_score for b in batches]),
            points=np.concatenate([b.points for b in batches]).reshape(-1, 2),
            crop_boxes=np.concatenate([b.crop_boxes for b in batches]).reshape(-1, 4),
            source=first.source,
        )

    def decode(self, i: int) -> np.ndarray:
        """Mask ``i`` as (H, W) bool."""
        return rle_utils.decode(self.rles[i])

    def decode_all(self) -> np.ndarray:
        """All masks as (N, H, W) bool."""
        h, w = self.image_size
        if not self.rles:
            return np.zeros((0, h, w), dtype=bool)
        return np.stack([self.decode(i) for i in range(len(self))])
