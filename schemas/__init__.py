"""The Arrow schemas of ovlabel's output: the single source of truth.

Imports only pyarrow. Every shard carries ``ovlabel.schema_version`` in its Arrow metadata;
:func:`validate_shard` checks a written file against the schema it claims.

Layout of a labels row (one per image)::

    image_id, image_uri, width, height, captions: list<string>,
    scene: string (label of the root segment),
    segments: list<struct{segment_id, parent_id, level, label, class_name, phrase, caption_index,
                          char_span: list<int32> (start, end), score, clip_similarity, source,
                          mask: struct{size: list<int32> (h, w), counts: string (COCO RLE)},
                          bbox_xywh: list<float32> (x, y, w, h), area, predicted_iou, stability_score}>,
    provenance: struct{pipeline_version, schema_version, mask_generator, clip_model, run_id, config_sha256},
    row_index: int64, row_hash: string (the manifest row this row accounts for; errors rows carry them too)

``level`` is 'scene' | 'object' | 'part'; the scene root has ``parent_id`` null and covers the
whole image. ``source`` says why a segment was kept: 'image' (the root), 'caption' (a caption noun), 'lexicon'
(a part the part lexicon lists for its object) or 'vocabulary' (an object of the configured
vocabulary no caption names). ``label`` is the caption word a segment was matched by ('automobile');
``class_name`` its canonical class ('car'), from the run's label vocabulary (``ovlabel.engine.ontology``;
without one, or for a word it does not list under ``vocabulary.unmapped: keep``, the label itself); the
run's ``classes.json`` gives every class its id.

Versions: 3 added ``class_name``. Readers also take version 2 shards (:data:`READABLE_VERSIONS`), whose
segments have no ``class_name``: a v2 segment's class is its label (:func:`segment_class`).
:func:`validate_shard` checks the current version only.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = "3"  # 3: segments' class_name; 2: row_index/row_hash, provenance.config_sha256
READABLE_VERSIONS = ("2", SCHEMA_VERSION)  # what readers of shards (resume, eval, exports) take
VERSION_KEY = b"ovlabel.schema_version"
KIND_KEY = b"ovlabel.kind"
LEVELS = ("scene", "object", "part")
SOURCES = ("image", "caption", "lexicon", "vocabulary")

RLE_TYPE = pa.struct([
    pa.field("size", pa.list_(pa.int32()), nullable=False),
    pa.field("counts", pa.string(), nullable=False),
])

SEGMENT_TYPE = pa.struct([
    pa.field("segment_id", pa.int32(), nullable=False),
    pa.field("parent_id", pa.int32()),
    pa.field("level", pa.string(), nullable=False),
    pa.field("label", pa.string(), nullable=False),
    pa.field("class_name", pa.string(), nullable=False),
    pa.field("phrase", pa.string()),
    pa.field("caption_index", pa.int32()),
    pa.field("char_span", pa.list_(pa.int32())),
    pa.field("score", pa.float32(), nullable=False),
    pa.field("clip_similarity", pa.float32()),
    pa.field("source", pa.string(), nullable=False),
    pa.field("mask", RLE_TYPE, nullable=False),
    pa.field("bbox_xywh", pa.list_(pa.float32()), nullable=False),
    pa.field("area", pa.int64(), nullable=False),
    pa.field("predicted_iou", pa.float32()),
    pa.field("stability_score", pa.float32()),
])

PROVENANCE_TYPE = pa.struct([
    pa.field("pipeline_version", pa.string()),
    pa.field("schema_version", pa.string()),
    pa.field("mask_generator", pa.string()),
    pa.field("clip_model", pa.string()),
    pa.field("run_id", pa.string()),
    pa.field("config_sha256", pa.string()),
])

# Every labels and errors row names the manifest row it accounts for: its position and the hash of its text
# (ovlabel.engine.manifest.row_hash); a resumed run skips exactly the rows whose (row_index, row_hash) it finds.
ROW_KEY_FIELDS = [pa.field("row_index", pa.int64(), nullable=False), pa.field("row_hash", pa.string(), nullable=False)]


def _with_metadata(fields: list[pa.Field], kind: str) -> pa.Schema:
    return pa.schema(fields, metadata={VERSION_KEY: SCHEMA_VERSION.encode(), KIND_KEY: kind.encode()})


LABELS_SCHEMA = _with_metadata([
    pa.field("image_id", pa.string(), nullable=False),
    pa.field("image_uri", pa.string(), nullable=False),
    pa.field("width", pa.int32(), nullable=False),
    pa.field("height", pa.int32(), nullable=False),
    pa.field("captions", pa.list_(pa.string()), nullable=False),
    pa.field("scene", pa.string(), nullable=False),
    pa.field("segments", pa.list_(pa.field("item", SEGMENT_TYPE, nullable=False)), nullable=False),
    pa.field("provenance", PROVENANCE_TYPE, nullable=False),
    *ROW_KEY_FIELDS,
], "labels")

ERRORS_SCHEMA = _with_metadata([
    pa.field("image_id", pa.string()),
    pa.field("image_uri", pa.string()),
    pa.field("stage", pa.string(), nullable=False),
    pa.field("error_type", pa.string(), nullable=False),
    pa.field("message", pa.string(), nullable=False),
    pa.field("input_row", pa.string(), nullable=False),
    pa.field("run_id", pa.string()),
    *ROW_KEY_FIELDS,
], "errors")

SCHEMAS = {"labels": LABELS_SCHEMA, "errors": ERRORS_SCHEMA}


def segment_class(segment: Mapping[str, Any]) -> str:
    """A segment's class: its ``class_name`` (schema 3), or for a version 2 segment, which has none, its label."""
    found = segment.get("class_name")
    return str(found) if found is not None else str(segment["label"])


class SchemaValidationError(ValueError):
    """A shard does not match the ovlabel schema it claims; the message names the first problem."""


def validate_shard(path: str | Path, kind: str | None = None) -> int:
    """Validate a Parquet shard against its ovlabel schema; return its row count.

    ``kind`` ('labels' | 'errors') defaults to the kind recorded in the shard's metadata.
    Checks the schema version, the column types, and the row-level invariants of labels
    (levels, sources, one scene root per image, parents that exist, scores in [0, 1]).
    """
    table = pq.read_table(str(path))
    meta = table.schema.metadata or {}
    version = meta.get(VERSION_KEY, b"").decode()
    if version != SCHEMA_VERSION:
        raise SchemaValidationError(f"{path}: schema version {version or 'missing'!r}, expected {SCHEMA_VERSION!r}")
    kind = kind or meta.get(KIND_KEY, b"").decode()
    if kind not in SCHEMAS:
        raise SchemaValidationError(f"{path}: unknown shard kind {kind!r}; pass kind='labels' or 'errors'")
    expected = SCHEMAS[kind]
    if not table.schema.equals(expected, check_metadata=False):
        raise SchemaValidationError(f"{path}: columns differ from the {kind} schema v{SCHEMA_VERSION}:\n"
                                    f"got {table.schema.to_string(show_schema_metadata=False)}")
    if kind == "labels":
        for row in table.to_pylist():
            _check_labels_row(row)
    return table.num_rows


def _check_labels_row(row: dict[str, Any]) -> None:
    segments = row["segments"]
    ids = {s["segment_id"] for s in segments}
    if len(ids) != len(segments):
        raise SchemaValidationError(f"image {row['image_id']}: duplicate segment ids")
    roots = [s for s in segments if s["parent_id"] is None]
    if len(roots) != 1 or roots[0]["level"] != "scene":
        raise SchemaValidationError(f"image {row['image_id']}: expected exactly one scene root, got {len(roots)}")
    by_id = {s["segment_id"]: s for s in segments}
    for s in segments:
        if s["level"] not in LEVELS or s["source"] not in SOURCES:
            raise SchemaValidationError(f"image {row['image_id']}: bad level/source {s['level']!r}/{s['source']!r}")
        if not 0.0 <= s["score"] <= 1.0:
            raise SchemaValidationError(f"image {row['image_id']}: score {s['score']} outside [0, 1]")
        if len(s["bbox_xywh"]) != 4 or (s["char_span"] is not None and len(s["char_span"]) != 2):
            raise SchemaValidationError(f"image {row['image_id']}: bbox_xywh needs 4 values, char_span 2")
        if list(s["mask"]["size"]) != [row["height"], row["width"]]:
            raise SchemaValidationError(f"image {row['image_id']}: mask size {s['mask']['size']} is not (h, w)")
        if s["parent_id"] is not None:
            parent = by_id.get(s["parent_id"])
            want = {"object": "scene", "part": "object"}.get(s["level"])
            if parent is None or parent["level"] != want:
                raise SchemaValidationError(
                    f"image {row['image_id']}: {s['level']} segment {s['segment_id']} needs a {want} parent")
