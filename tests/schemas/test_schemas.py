from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ovlabel.schemas import (ERRORS_SCHEMA, LABELS_SCHEMA, READABLE_VERSIONS, SCHEMA_VERSION, SchemaValidationError,
                             segment_class, validate_shard)

RLE = {"size": [2, 3], "counts": "06"}


def _segment(seg_id: int, parent: int | None, level: str, score: float = 0.5) -> dict:
    return {"segment_id": seg_id, "parent_id": parent, "level": level, "label": "x", "class_name": "x", "phrase": None,
            "caption_index": None, "char_span": None, "score": score, "clip_similarity": None,
            "source": "image" if parent is None else "caption", "mask": RLE, "bbox_xywh": [0, 0, 3, 2], "area": 6,
            "predicted_iou": None, "stability_score": None}


def _write(path: Path, segments: list[dict], schema: pa.Schema = LABELS_SCHEMA) -> Path:
    row = {"image_id": "a", "image_uri": "a.png", "width": 3, "height": 2, "captions": ["c"], "scene": "x",
           "segments": segments, "provenance": {"pipeline_version": "0", "schema_version": SCHEMA_VERSION,
                                                "mask_generator": "m", "clip_model": "c", "run_id": "r"},
           "row_index": 0, "row_hash": "0"}
    pq.write_table(pa.Table.from_pylist([row], schema=schema), path)
    return path


def test_version_lives_in_arrow_metadata() -> None:
    for schema in (LABELS_SCHEMA, ERRORS_SCHEMA):
        assert schema.metadata[b"ovlabel.schema_version"] == SCHEMA_VERSION.encode()


def test_valid_tree_passes(tmp_path: Path) -> None:
    path = _write(tmp_path / "ok.parquet", [_segment(0, None, "scene", 1.0), _segment(1, 0, "object"),
                                             _segment(2, 1, "part")])
    assert validate_shard(path) == 1


@pytest.mark.parametrize("segments, message", [
    ([_segment(1, 0, "object")], "scene root"),
    ([_segment(0, None, "scene"), _segment(1, 0, "part")], "needs a object parent"),
    ([_segment(0, None, "scene"), _segment(1, 0, "object", 1.5)], "outside"),
    ([_segment(0, None, "scene"), _segment(0, 0, "object")], "duplicate"),
])
def test_broken_trees_fail(tmp_path: Path, segments: list[dict], message: str) -> None:
    with pytest.raises(SchemaValidationError, match=message):
        validate_shard(_write(tmp_path / "bad.parquet", segments))


def test_wrong_version_or_columns_fail(tmp_path: Path) -> None:
    path = tmp_path / "v.parquet"
    pq.write_table(pa.table({"image_id": ["a"]}).replace_schema_metadata({b"ovlabel.schema_version": b"0"}), path)
    with pytest.raises(SchemaValidationError, match="version"):
        validate_shard(path)
    path2 = tmp_path / "c.parquet"
    meta = {b"ovlabel.schema_version": SCHEMA_VERSION.encode(), b"ovlabel.kind": b"labels"}
    pq.write_table(pa.table({"image_id": ["a"]}).replace_schema_metadata(meta), path2)
    with pytest.raises(SchemaValidationError, match="columns differ"):
        validate_shard(path2)


def test_segments_carry_their_class_and_a_schema_2_segment_is_its_label() -> None:
    names = [f.name for f in LABELS_SCHEMA.field("segments").type.value_type]
    assert names.index("class_name") == names.index("label") + 1 and SCHEMA_VERSION == "3"
    assert segment_class({"label": "automobile", "class_name": "car"}) == "car"
    assert segment_class({"label": "automobile"}) == "automobile" and READABLE_VERSIONS == ("2", "3")


def test_a_schema_2_shard_is_refused_by_validation_naming_its_version(tmp_path: Path) -> None:
    path = _write(tmp_path / "ok.parquet", [_segment(0, None, "scene", 1.0)])
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({**table.schema.metadata, b"ovlabel.schema_version": b"2"}), path)
    with pytest.raises(SchemaValidationError, match="schema version '2', expected '3'"):
        validate_shard(path)
