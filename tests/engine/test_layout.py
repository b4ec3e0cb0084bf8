"""The output layout: where shards are found, how they are read back, what a labels row holds."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ovlabel.engine import layout
from ovlabel.engine.errors import OutputError
from ovlabel.engine.hierarchy import root_segment
from ovlabel.engine.records import InputRecord
from ovlabel.schemas import ERRORS_SCHEMA, LABELS_SCHEMA, validate_shard


def _run_folder(root: Path) -> Path:
    record = InputRecord("a", "/x/a.png", ("a dog",), "{}")
    row = layout.labels_row(record, (4, 6), (root_segment((4, 6), "scene"),), {"run_id": "r"})
    for kind, schema, rows in ((layout.LABELS, LABELS_SCHEMA, [row]), (layout.ERRORS, ERRORS_SCHEMA, [])):
        (root / kind).mkdir(parents=True)
        prefix = layout.shard_prefix(str(root), kind)
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), f"{prefix}-00000-of-00001{layout.SHARD_SUFFIX}")
    return root


def test_labels_row_fits_the_schema(tmp_path: Path) -> None:
    root = _run_folder(tmp_path / "run")
    (shard,) = sorted((root / "labels").glob("*.parquet"))
    assert validate_shard(shard) == 1
    fs, _ = layout.open_location(str(root))
    (row,) = layout.read_rows(fs, [str(shard)])
    assert (row["image_id"], row["width"], row["height"], row["scene"]) == ("a", 6, 4, "scene")
    assert row["segments"][0]["parent_id"] is None and row["captions"] == ["a dog"]


def test_shards_are_found_from_a_run_folder_its_kind_folder_or_one_file(tmp_path: Path) -> None:
    root = _run_folder(tmp_path / "run")
    fs, path = layout.open_location(str(root))
    (labels,) = layout.find_shards(fs, path, layout.LABELS)
    assert labels.endswith("labels/part-00000-of-00001.parquet")
    assert layout.find_shards(fs, path + "/labels", layout.LABELS) == [labels]
    assert layout.find_shards(fs, labels) == [labels]
    assert layout.find_shards(fs, path, layout.ERRORS)[0].endswith("errors/part-00000-of-00001.parquet")
    assert layout.find_shards(fs, str(tmp_path / "nothing")) == []
    assert layout.read_column(fs, [labels], "image_id") == ["a"]


def test_every_schema_has_its_folder() -> None:
    assert layout.KINDS == (layout.LABELS, layout.ERRORS)


def test_a_truncated_shard_is_an_output_error_naming_the_file(tmp_path: Path) -> None:
    root = _run_folder(tmp_path / "run")
    (shard,) = sorted((root / "labels").glob("*.parquet"))
    shard.write_bytes(shard.read_bytes()[:-20])  # a copy cut short
    fs, _ = layout.open_location(str(root))
    with pytest.raises(OutputError) as err:
        layout.read_rows(fs, [str(shard)])
    message = str(err.value)
    assert str(shard) in message and "delete it and rerun with --resume" in message and "\n" not in message
    with pytest.raises(OutputError, match="part-00000-of-00001.parquet"):
        layout.read_column(fs, [str(shard)], "image_id")


def test_segment_fields_read_only_what_is_asked_and_skip_what_a_shard_lacks(tmp_path: Path) -> None:
    root = _run_folder(tmp_path / "run")
    fs, path = layout.open_location(str(root))
    files = layout.shards_in(fs, f"{path}/{layout.LABELS}")
    assert layout.read_segment_fields(fs, files, ("level", "label", "no_such_field")) == [[{"level": "scene",
                                                                                         "label": "scene"}]]
    assert layout.read_segment_fields(fs, files, ("nothing",)) == []
    with open(files[0], "wb") as fh:
        fh.write(b"PAR1 not really")
    with pytest.raises(OutputError, match="cannot be read"):
        layout.read_segment_fields(fs, files, ("level",))
