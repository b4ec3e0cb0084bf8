"""One image during matching, and the mask geometry the levels need.

Masks are a :class:`~ovlabel.engine.masks.data.MaskBatch` (RLEs with areas); (H, W) bool arrays
where decoded. Overlaps are measured on the RLEs: :func:`intersection` turns an IoU and two areas
back into pixels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy import ndimage

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.records import CaptionParse


@dataclass(frozen=True)
class ImageInput:
    """What matching needs of one image: (H, W, 3) uint8 pixels, its masks, its caption parses."""

    image: np.ndarray
    masks: MaskBatch
    parses: tuple[CaptionParse, ...]


def containment(masks: MaskBatch, rows: Sequence[int], cols: Sequence[int]) -> np.ndarray:
    """(len(rows), len(cols)): the fraction of each row mask's area that lies inside each column mask."""
    return fraction_inside([masks.rles[i] for i in rows], masks.areas[list(rows)],
                           [masks.rles[j] for j in cols], masks.areas[list(cols)])


def fraction_inside(rles: Sequence[dict], areas: np.ndarray, regions: Sequence[dict], region_areas: np.ndarray
                    ) -> np.ndarray:
    """(len(rles), len(regions)): the fraction of each mask's area (RLEs with their areas) inside each region."""
    if len(rles) == 0 or len(regions) == 0:
        return np.zeros((len(rles), len(regions)))
    iou = rle_utils.iou_matrix(list(rles), list(regions))
    a = np.asarray(areas, np.float64)[:, None]
    return intersection(iou, a, np.asarray(region_areas, np.float64)[None, :]) / np.maximum(a, 1.0)


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) bool ``mask`` grown by ``radius`` pixels (a square neighbourhood)."""
    if radius <= 0:
        return mask.copy()
    return ndimage.binary_dilation(mask, np.ones((2 * radius + 1, 2 * radius + 1), bool))


def widened_box(mask: np.ndarray, fraction: float) -> np.ndarray:
    """(H, W) bool: the bounding box of (H, W) bool ``mask`` widened by ``fraction`` of its height
    and width on each side (clipped to the image); all False for an empty mask."""
    box = np.zeros_like(mask, dtype=bool)
    ys, xs = np.nonzero(mask)
    if len(ys):
        dy, dx = fraction * (ys.max() + 1 - ys.min()), fraction * (xs.max() + 1 - xs.min())
        box[max(0, int(ys.min() - dy)):int(np.ceil(ys.max() + 1 + dy)),
            max(0, int(xs.min() - dx)):int(np.ceil(xs.max() + 1 + dx))] = True
    return box


def intersection(iou: np.ndarray | float, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """|A n B| from the IoU and the areas of A and B (IoU = I / (|A| + |B| - I)), rounded to pixels."""
    return np.rint(np.asarray(iou) * (np.asarray(a) + b) / (1.0 + np.asarray(iou)))


@dataclass
class ImageContext:
    """One image during matching: its kept masks (M), their region embeddings (M, D), the
    whole-image embedding (D,), and the batch's label embeddings."""

    item: ImageInput
    masks: MaskBatch
    regions: np.ndarray
    scene: np.ndarray
    text: Mapping[str, np.ndarray]
    _iou: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def label_matrix(self, labels: Sequence[str]) -> np.ndarray:
        """(L, D) embeddings of ``labels``."""
        return np.stack([self.text[label] for label in labels])

    def iou(self, i: int, j: int) -> float:
        """Mask IoU of masks i and j. Computed a column at a time, on first use: mask j (else i, when its
        column is there) against all M masks. Assignment only asks about the few masks already kept, so
        this is M x (masks kept) pairs, not the (M, M) matrix (36,864 pairs for 192 masks: 6.7 s of
        pycocotools on noisy masks)."""
        if j not in self._iou and i in self._iou:
            i, j = j, i  # IoU is symmetric (pycocotools computes both from the same integer counts)
        if j not in self._iou:
            self._iou[j] = rle_utils.iou_matrix(list(self.masks.rles), [self.masks.rles[j]])[:, 0]
        return float(self._iou[j][i])

    def shared(self, i: int, j: int) -> float:
        """|i n j| / min(|i|, |j|) of masks i and j: 1.0 when one lies inside the other."""
        a, b = float(self.masks.areas[i]), float(self.masks.areas[j])
        return float(intersection(self.iou(i, j), a, b)) / max(min(a, b), 1.0)


def large_enough(masks: MaskBatch, min_area_fraction: float) -> np.ndarray:
    """(M,) bool: masks of at least ``min_area_fraction`` of the image (and at least one pixel)."""
    h, w = masks.image_size
    return masks.areas >= max(1.0, min_area_fraction * h * w)


def candidate_masks(masks: MaskBatch, min_area_fraction: float) -> MaskBatch:
    """The masks :func:`large_enough` keeps."""
    return masks.select(large_enough(masks, min_area_fraction))

