"""The frozen records passed between stages, and the rows they become (mirroring ovlabel.schemas)."""
from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest

from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.records import (CaptionParse, ErrorRecord, ImageBundle, ImageMatches, InputRecord, Match, Noun,
                                    Segment, row_hash)
from ovlabel.schemas import ERRORS_SCHEMA, SEGMENT_TYPE

RECORD = InputRecord("a", "/x/a.png", ("a dog", "a cat"), '{"image": "a.png", "extra": 1}', row_index=3)


def _segment(**changes: object) -> Segment:
    fields = {"segment_id": 1, "parent_id": 0, "level": "object", "label": "dog", "score": 0.5, "source": "caption",
              "mask": {"size": (np.int64(4), np.int32(6)), "counts": "abc"}, "bbox_xywh": (np.float32(1), 2, 3.5, 4),
              "area": 7, "phrase": "a dog", "caption_index": 0, "char_span": (2, 5)}
    return Segment(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize("record", [
    RECORD, Noun("a dog", "dog", "object", (0, 5)), CaptionParse("a dog"), _segment(),
    Match(0, "object", "dog", 0.5, 0.3, "caption"), ImageBundle(RECORD), ErrorRecord(None, None, "S", "E", "m", "{}"),
])
def test_records_are_frozen(record: object) -> None:
    field = dataclasses.fields(record)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(record, field, None)


def test_input_record_json_is_the_manifest_row_it_stands_for() -> None:
    assert json.loads(RECORD.to_json()) == {"image_id": "a", "image": "/x/a.png", "captions": ["a dog", "a cat"]}
    assert InputRecord("b", "b.png", (), "{}").row_index == -1


def test_noun_and_parse_defaults() -> None:
    noun = Noun("two dogs", "dog", "object", (0, 8))
    assert (noun.parent, noun.count, noun.plural, noun.attributes) == (None, None, False, ())
    assert CaptionParse("nothing here").nouns == ()


def test_segment_row_has_the_schemas_fields_in_plain_python_types() -> None:
    row = _segment().to_row()
    assert set(row) == {f.name for f in SEGMENT_TYPE}
    assert row["char_span"] == [2, 5] and row["bbox_xywh"] == [1.0, 2.0, 3.5, 4.0]
    assert all(type(v) is float for v in row["bbox_xywh"])
    assert row["mask"] == {"size": [4, 6], "counts": "abc"} and all(type(v) is int for v in row["mask"]["size"])
    assert (row["segment_id"], row["parent_id"], row["label"], row["phrase"]) == (1, 0, "dog", "a dog")
    assert row["clip_similarity"] is row["predicted_iou"] is row["stability_score"] is None


def test_a_segment_without_a_span_has_none() -> None:
    assert _segment(char_span=None, phrase=None, caption_index=None).to_row()["char_span"] is None


def test_bundle_names_its_image_and_replace_makes_a_new_one() -> None:
    bundle = ImageBundle(RECORD)
    assert bundle.image_id == "a" and bundle.parses == () and bundle.segments == ()
    assert bundle.image is None and bundle.masks is None and bundle.matches is None
    image = np.zeros((2, 3, 3), np.uint8)
    loaded = bundle.replace(image=image)
    assert loaded is not bundle and loaded.image is image and loaded.record is RECORD
    assert bundle.image is None
    assert "image=" not in repr(loaded)  # arrays stay out of the repr


def test_image_matches_hold_the_candidates_that_matches_index() -> None:
    masks = MaskBatch.empty((4, 6))
    root = _segment(segment_id=0, parent_id=None, level="scene")
    verdict = ImageMatches(root, (Match(0, "object", "dog", 0.5, 0.3, "caption"),), masks)
    assert verdict.masks is masks and verdict.matches[0].parent_match is None


def test_error_row_has_the_schemas_fields_and_the_run_id() -> None:
    error = ErrorRecord("a", "/x/a.png", "LoadImages", "ImageLoadError", "not found", RECORD.raw, 3)
    row = error.to_row("run-1")
    assert set(row) == set(ERRORS_SCHEMA.names)
    assert row == {"image_id": "a", "image_uri": "/x/a.png", "stage": "LoadImages", "error_type": "ImageLoadError",
                   "message": "not found", "input_row": RECORD.raw, "run_id": "run-1", "row_index": 3,
                   "row_hash": row_hash(RECORD.raw)}
    assert row_hash(RECORD.raw) == hashlib.sha256(RECORD.raw.encode()).hexdigest()[:16]
