"""Frozen records passed between stages.

Images are ``np.ndarray`` of shape (H, W, 3), dtype uint8, RGB. Character spans are
``(start, end)`` offsets into the caption they came from.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ovlabel.engine.masks.data import MaskBatch


def row_hash(text: str) -> str:
    """The hash of a manifest row's text (the first 16 hex digits of its sha256): with its position, the key a
    resumed run recognises the row by, and what tells a changed manifest row from the one an output accounts for."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True)
class InputRecord:
    """One manifest row after validation."""

    image_id: str
    image_uri: str
    captions: tuple[str, ...]
    raw: str  # the manifest row as JSON, kept for error rows
    row_index: int = -1  # position in the manifest (first wins among duplicate image_ids)

    def to_json(self) -> str:
        return json.dumps({"image_id": self.image_id, "image": self.image_uri, "captions": list(self.captions)})

    @property
    def key(self) -> tuple[int, str]:
        """(row_index, row_hash): the manifest row this record came from."""
        return self.row_index, row_hash(self.raw)


@dataclass(frozen=True)
class Noun:
    """A noun read from a caption.

    ``level`` is 'scene' | 'object' | 'part'; ``parent`` is the index (in the same caption's
    noun list) of a part's whole; ``count`` is 2 for 'two dogs', None when unknown.
    """

    phrase: str
    lemma: str
    level: str
    char_span: tuple[int, int]
    parent: Optional[int] = None
    count: Optional[int] = None
    plural: bool = False
    attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaptionParse:
    """All nouns of one caption."""

    text: str
    nouns: tuple[Noun, ...] = ()


@dataclass(frozen=True)
class Segment:
    """One labelled region of the scene/object/part tree; mirrors ``ovlabel.schemas.SEGMENT_TYPE``."""

    segment_id: int
    parent_id: Optional[int]
    level: str
    label: str
    score: float
    source: str
    mask: dict[str, Any]  # COCO RLE {'size': [h, w], 'counts': str}
    bbox_xywh: tuple[float, float, float, float]
    area: int
    phrase: Optional[str] = None
    caption_index: Optional[int] = None
    char_span: Optional[tuple[int, int]] = None
    clip_similarity: Optional[float] = None
    predicted_iou: Optional[float] = None
    stability_score: Optional[float] = None
    class_name: Optional[str] = None  # the canonical class (ovlabel.engine.ontology); None until classified

    def to_row(self) -> dict[str, Any]:
        """The segment as a labels row writes it; an unclassified segment's class is its label."""
        row = dataclasses.asdict(self)
        row["class_name"] = self.label if self.class_name is None else self.class_name
        row["char_span"] = list(self.char_span) if self.char_span is not None else None
        row["bbox_xywh"] = [float(v) for v in self.bbox_xywh]
        row["mask"] = {"size": [int(v) for v in self.mask["size"]], "counts": self.mask["counts"]}
        return row


@dataclass(frozen=True)
class Match:
    """A mask chosen for a noun. ``parent_match`` indexes the whole's match in the same list (parts only)."""

    mask_index: int
    level: str  # 'object' | 'part'
    label: str
    score: float
    similarity: float
    source: str  # 'caption' | 'lexicon' | 'vocabulary'
    noun: Optional[Noun] = None
    caption_index: Optional[int] = None
    parent_match: Optional[int] = None


@dataclass(frozen=True)
class ImageMatches:
    """Matching's verdict for one image: the scene root and the masks chosen for nouns.

    ``masks`` is the candidate set that ``Match.mask_index`` indexes.
    """

    root: Segment
    matches: tuple[Match, ...]
    masks: MaskBatch


@dataclass(frozen=True)
class ImageBundle:
    """Everything known about one input as it moves through the stages."""

    record: InputRecord
    parses: tuple[CaptionParse, ...] = ()
    image: Optional[np.ndarray] = field(default=None, repr=False)
    masks: Optional[MaskBatch] = field(default=None, repr=False)
    matches: Optional[ImageMatches] = field(default=None, repr=False)
    segments: tuple[Segment, ...] = ()

    @property
    def image_id(self) -> str:
        return self.record.image_id

    def replace(self, **changes: Any) -> "ImageBundle":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ErrorRecord:
    """A failed input; mirrors ``ovlabel.schemas.ERRORS_SCHEMA``."""

    image_id: Optional[str]
    image_uri: Optional[str]
    stage: str
    error_type: str
    message: str
    input_row: str
    row_index: int = -1  # the manifest row (-1: not known)

    def to_row(self, run_id: str) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "run_id": run_id, "row_hash": row_hash(self.input_row)}
