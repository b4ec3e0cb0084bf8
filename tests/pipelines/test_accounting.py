"""Accounting: each manifest row has exactly one row; rows published twice (a retried bundle) are dropped."""
from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ovlabel.engine.hierarchy import root_segment
from ovlabel.engine.layout import ERRORS, LABELS
from ovlabel.engine.records import ErrorRecord, row_hash
from ovlabel.pipelines.accounting import account, drop_duplicate_rows
from ovlabel.pipelines.output import OutputDir
from ovlabel.schemas import validate_shard
from ovlabel.engine.layout import segment_class_counts
from ovlabel.schemas import VERSION_KEY
from tests.pipelines.test_output import errors, labels, shard


def _manifest(tmp_path: Path, n: int) -> str:
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps({"id": f"i{k}"}) + "\n" for k in range(n)))
    return str(path)


def _output(tmp_path: Path) -> OutputDir:
    root = tmp_path / "o"
    shard(root, LABELS, "a-00000.parquet", labels("i0", "i1"))
    shard(root, ERRORS, "a-00001.parquet", errors(("i2", json.dumps({"id": "i2"}), 2)))
    return OutputDir(str(root))


def test_a_complete_output_balances(tmp_path: Path) -> None:
    summary = account(_output(tmp_path), _manifest(tmp_path, 3), 1.0)
    assert (summary.input_rows, summary.labeled_rows, summary.error_rows) == (3, 2, 1)
    assert (summary.missing_rows, summary.duplicate_rows, summary.balanced) == (0, 0, True)


def test_missing_and_duplicated_rows_unbalance_it(tmp_path: Path) -> None:
    out = _output(tmp_path)
    assert account(out, _manifest(tmp_path, 4), 1.0).missing_rows == 1
    shutil.copy(tmp_path / "o" / LABELS / "a-00000.parquet", tmp_path / "o" / LABELS / "b-00000.parquet")
    summary = account(out, _manifest(tmp_path, 3), 1.0)
    assert (summary.duplicate_rows, summary.labeled_rows, summary.balanced) == (2, 4, False)
    assert row_hash(json.dumps({"id": "i0"})) == out.row_keys()[0][1]


def test_rows_published_twice_are_dropped_keeping_the_first(tmp_path: Path) -> None:
    out = _output(tmp_path)
    shard(tmp_path / "o", LABELS, "b-00000.parquet", labels("i1", "i9", start=1))  # i1 again, and a new row
    assert drop_duplicate_rows(out) == 1
    rest = tmp_path / "o" / LABELS / "b-00000.parquet"
    assert pq.read_table(rest).column("image_id").to_pylist() == ["i9"] and validate_shard(rest) == 1
    assert pq.read_table(tmp_path / "o" / LABELS / "a-00000.parquet").num_rows == 2
    assert drop_duplicate_rows(out) == 0
    assert not (tmp_path / "o" / "_staging").exists() or not list((tmp_path / "o" / "_staging").iterdir())


def _segments(*named: tuple[str, str]) -> list[dict[str, Any]]:
    """A scene root and one segment per (level, label) under it."""
    root = root_segment((4, 6), "kitchen")
    return [root.to_row()] + [replace(root, segment_id=n, parent_id=0, level=level, label=label,
                                      source="caption").to_row() for n, (level, label) in enumerate(named, 1)]


def test_the_summary_counts_errors_by_kind_segments_by_level_and_top_classes(tmp_path: Path) -> None:
    root = tmp_path / "o"
    rows = labels("i0", "i1")
    rows[0]["segments"] = _segments(("object", "dog"), ("part", "tail"), ("object", "dog"))
    rows[1]["segments"] = _segments(("object", "cat"))
    shard(root, LABELS, "a-00000.parquet", rows)
    shard(root, ERRORS, "a-00001.parquet", errors(("i2", json.dumps({"id": "i2"}), 2)))
    bad = ErrorRecord("i3", None, "LoadImages", "ImageLoadError", "no file", json.dumps({"id": "i3"}), 3).to_row("r")
    shard(root, ERRORS, "a-00002.parquet", [bad])
    summary = account(OutputDir(str(root)), _manifest(tmp_path, 4), 1.0)
    assert summary.balanced and summary.errors_by_stage == {"LoadImages": 1, "ValidateRows": 1}
    assert summary.errors_by_kind == {"LoadImages": {"ImageLoadError": 1}, "ValidateRows": {"InputError": 1}}
    assert summary.segments_by_level == {"scene": 2, "object": 3, "part": 1}
    assert summary.top_classes == [("dog", 2), ("tail", 1), ("cat", 1)] and summary.top_scenes == [("kitchen", 2)]


def test_a_segments_class_name_counts_before_its_label(tmp_path: Path) -> None:
    rows = labels("i0")
    rows[0]["segments"] = [dict(s, class_name=name) for s, name in
                           zip(_segments(("object", "puppy"), ("object", "dog")), ["kitchen", "dog", "dog"])]
    shard(tmp_path / "o", LABELS, "a-00000.parquet", rows)
    summary = account(OutputDir(str(tmp_path / "o")), _manifest(tmp_path, 1), 1.0)
    assert summary.top_classes == [("dog", 2)] and summary.top_scenes == [("kitchen", 1)]


def _as_schema_2(path: Path) -> None:
    """Rewrite a labels shard as an older ovlabel wrote it: segments without class_name, schema version 2."""
    table = pq.read_table(path)
    rows = [{**r, "segments": [{k: v for k, v in s.items() if k != "class_name"} for s in r["segments"]]}
            for r in table.to_pylist()]
    segment = pa.struct([f for f in table.schema.field("segments").type.value_type if f.name != "class_name"])
    fields = [pa.field("segments", pa.list_(pa.field("item", segment, nullable=False)), nullable=False)
              if f.name == "segments" else f for f in table.schema]
    meta = {**table.schema.metadata, VERSION_KEY: b"2"}
    pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema(fields, metadata=meta)), path)


def test_a_schema_2_shard_of_a_forced_resume_keeps_its_schema_when_rewritten(tmp_path: Path) -> None:
    out = _output(tmp_path)
    old = shard(tmp_path / "o", LABELS, "b-00000.parquet", labels("i1", "i9", start=1))
    _as_schema_2(old)
    assert drop_duplicate_rows(out) == 1
    table = pq.read_table(old)
    assert table.column("image_id").to_pylist() == ["i9"] and table.schema.metadata[VERSION_KEY] == b"2"
    assert "class_name" not in [f.name for f in table.schema.field("segments").type.value_type]
    assert segment_class_counts(out.fs, out.shard_files(LABELS)) == {("scene", "scene"): 3}  # v2: class = label
