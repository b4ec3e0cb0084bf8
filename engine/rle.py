"""COCO run-length encoding through pycocotools.

Masks are ``np.ndarray`` (H, W) bool; RLEs are ``{'size': [H, W], 'counts': str}`` (compressed
COCO counts as text, the form stored in shards and COCO JSON).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


def as_text(rle: dict[str, Any]) -> dict[str, Any]:
    """A pycocotools RLE (bytes counts) -> ``{'size': [H, W], 'counts': str}``, the stored form."""
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def to_coco(rle: dict[str, Any]) -> dict[str, Any]:
    """A stored RLE (str or bytes counts, or uncompressed list counts) -> what pycocotools takes."""
    counts = rle["counts"]
    if isinstance(counts, list):  # uncompressed RLE (COCO crowd annotations)
        return mask_utils.frPyObjects(rle, *rle["size"])
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def encode(mask: np.ndarray) -> dict[str, Any]:
    """(H, W) bool -> COCO RLE with string counts."""
    return as_text(mask_utils.encode(np.asfortranarray(mask.astype(np.uint8))))


def encode_many(masks: np.ndarray) -> list[dict[str, Any]]:
    """(N, H, W) bool -> N COCO RLEs (one pycocotools call)."""
    if len(masks) == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    return [as_text(r) for r in rles]


def decode(rle: dict[str, Any]) -> np.ndarray:
    """COCO RLE -> (H, W) bool."""
    return mask_utils.decode(to_coco(rle)).astype(bool)


def area(rle: dict[str, Any]) -> int:
    return int(mask_utils.area(to_coco(rle)))


def bbox_xywh(rle: dict[str, Any]) -> tuple[float, float, float, float]:
    x, y, w, h = mask_utils.toBbox(to_coco(rle)).tolist()
    return (float(x), float(y), float(w), float(h))


def iou_matrix(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> np.ndarray:
    """Pairwise mask IoU, shape (len(a), len(b))."""
    if not a or not b:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    return np.asarray(mask_utils.iou([to_coco(r) for r in a], [to_coco(r) for r in b], [0] * len(b)), dtype=np.float64)
