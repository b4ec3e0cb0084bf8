"""Building the scene -> object -> part tree of :class:`Segment` records for one image.

The tree is a flat tuple: the scene root first (id 0, ``parent_id`` None, the whole image), then
the object segments (parent 0), then the part segments (parent = their object's id), in the order
of the matches; ids are 0, 1, 2, ... in that order. Matching guarantees the rest (a part lies
inside its object, one label per mask per level); see :mod:`ovlabel.engine.matching`.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.records import ImageMatches, Match, Noun, Segment

ROOT_ID = 0
UNLABELLED_SCENE = "scene"  # the root's label (and class) when no scene noun names the image


def root_segment(image_size: tuple[int, int], label: str, score: float = 1.0, similarity: Optional[float] = None,
                 noun: Optional[Noun] = None, caption_index: Optional[int] = None) -> Segment:
    """The scene root: the whole image."""
    h, w = image_size
    return Segment(segment_id=ROOT_ID, parent_id=None, level="scene", label=label, score=float(score),
                   source="image" if noun is None else "caption",
                   mask=rle_utils.encode(np.ones((h, w), dtype=bool)), bbox_xywh=(0.0, 0.0, float(w), float(h)),
                   area=int(h * w), phrase=noun.phrase if noun else None, caption_index=caption_index,
                   char_span=noun.char_span if noun else None, clip_similarity=similarity)


def _segment(seg_id: int, parent_id: int, match: Match, masks: MaskBatch) -> Segment:
    i = match.mask_index
    return Segment(
        segment_id=seg_id, parent_id=parent_id, level=match.level, label=match.label,
        score=float(np.clip(match.score, 0.0, 1.0)), source=match.source, mask=masks.rles[i],
        bbox_xywh=tuple(float(v) for v in masks.boxes[i]), area=int(masks.areas[i]),
        phrase=match.noun.phrase if match.noun else None, caption_index=match.caption_index,
        char_span=match.noun.char_span if match.noun else None, clip_similarity=float(match.similarity),
        predicted_iou=_finite(masks.predicted_iou[i]), stability_score=_finite(masks.stability_score[i]))


def _finite(value: float) -> Optional[float]:
    return float(value) if np.isfinite(value) else None


def build_tree(root: Segment, matches: Sequence[Match], masks: MaskBatch) -> tuple[Segment, ...]:
    """Root first, then objects, then parts; ids are 0 (root), 1, 2, ... in that order.

    A part whose parent match is missing is dropped (it cannot hang in the tree).
    """
    segments = [root]
    ids: dict[int, int] = {}
    for k, match in enumerate(matches):
        if match.level == "object":
            ids[k] = len(segments)
            segments.append(_segment(ids[k], ROOT_ID, match, masks))
    for match in matches:
        if match.level == "part" and match.parent_match in ids:
            segments.append(_segment(len(segments), ids[match.parent_match], match, masks))
    return tuple(segments)


def tree_of(found: ImageMatches) -> tuple[Segment, ...]:
    """The segment tree of one image's matches."""
    return build_tree(found.root, found.matches, found.masks)
