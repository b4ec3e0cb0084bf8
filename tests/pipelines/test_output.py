"""OutputDir: paths that stay inside, refusing '' and '/', listing, whole-file JSON, the marker, row keys."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ovlabel.engine import layout
from ovlabel.engine.errors import OutputError
from ovlabel.engine.hierarchy import root_segment
from ovlabel.engine.records import ErrorRecord, InputRecord, row_hash
from ovlabel.pipelines.output import OutputDir, count_by, read_row_keys
from ovlabel.schemas import SCHEMAS


def labels(*image_ids: str, start: int = 0) -> list[dict[str, Any]]:
    records = [InputRecord(i, f"/x/{i}.png", ("a dog",), f'{{"id": "{i}"}}', row_index=start + n)
               for n, i in enumerate(image_ids)]
    return [layout.labels_row(r, (4, 6), (root_segment((4, 6), "scene"),), {"run_id": "r"}) for r in records]


def errors(*rows: tuple[Optional[str], str, int]) -> list[dict[str, Any]]:
    return [ErrorRecord(i, None, "ValidateRows", "InputError", "bad", raw, n).to_row("r") for i, raw, n in rows]


def shard(folder: Path, kind: str, name: str, rows: list[dict[str, Any]]) -> Path:
    (folder / kind).mkdir(parents=True, exist_ok=True)
    path = folder / kind / name
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMAS[kind]), path)
    return path


def test_the_root_loses_trailing_slashes_and_empty_or_root_is_refused(tmp_path: Path) -> None:
    assert OutputDir(f"{tmp_path}/out//").root == f"{tmp_path}/out"
    with pytest.raises(OutputError, match="--output is empty"):
        OutputDir("")
    for root in ("/", "//", "file:///"):
        with pytest.raises(OutputError, match="refusing to write into '/'"):
            OutputDir(root)


def test_output_paths_stay_inside_the_output_folder(tmp_path: Path) -> None:
    out = OutputDir(str(tmp_path / "o"))
    assert out.join("labels", "x.parquet") == f"{tmp_path}/o/labels/x.parquet"
    assert out.join("a..b") == f"{tmp_path}/o/a..b"  # dots inside a name are no escape
    for bad in ("../escape", "/etc/passwd", "a/../../b"):
        with pytest.raises(OutputError, match="inside"):
            out.join(bad)
    with pytest.raises(OutputError, match=r"refusing to write '\.\./x': output paths must stay inside '.*/o'"):
        out.fs_path("labels", "../x")


def test_entries_move_and_remove(tmp_path: Path) -> None:
    out = OutputDir(str(tmp_path / "o"))
    assert out.existing_entries() == [] and not out.exists("a")
    (tmp_path / "o" / "a").mkdir(parents=True)
    (tmp_path / "o" / "a" / "f").write_text("x")
    out.move(("a",), ("b", "c", "a"))
    assert (tmp_path / "o" / "b" / "c" / "a" / "f").read_text() == "x" and out.existing_entries() == ["b"]
    out.remove("b")
    out.remove("nothing-here")
    assert out.existing_entries() == []


def test_write_json_replaces_the_file_whole_and_read_json_reads_it_back(tmp_path: Path) -> None:
    out = OutputDir(str(tmp_path))
    assert out.write_json("run.json", {"b": 1, "a": tmp_path}) == f"{tmp_path}/run.json"
    text = (tmp_path / "run.json").read_text()
    assert json.loads(text) == {"a": str(tmp_path), "b": 1} and text.startswith('{\n  "a"')  # indented, sorted
    out.write_json("run.json", {"c": 2}, "_next", "r1")
    assert out.read_json("run.json", "_next", "r1") == {"c": 2} and out.read_json("run.json") == {"a": str(tmp_path), "b": 1}
    (tmp_path / "broken.json").write_text("{")
    assert out.read_json("broken.json") is None and out.read_json("absent.json") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_next", "broken.json", "run.json"]  # no .tmp left


def test_the_marker_says_whether_ovlabel_made_the_folder(tmp_path: Path) -> None:
    out = OutputDir(str(tmp_path))
    assert out.marker() is None
    out.write_json(layout.MARKER, {"something": "else"})
    assert out.marker() is None
    out.write_json(layout.MARKER, {"ovlabel_output": 1, "runs": []})
    assert out.marker() == {"ovlabel_output": 1, "runs": []}


def test_row_keys_are_those_of_both_kinds(tmp_path: Path) -> None:
    shard(tmp_path, layout.LABELS, "a.parquet", labels("a", "b"))
    shard(tmp_path, layout.ERRORS, "b.parquet", errors(("c", '{"c"}', 2), (None, "{bad", 3)))
    out = OutputDir(str(tmp_path))
    expected = [(0, row_hash('{"id": "a"}')), (1, row_hash('{"id": "b"}')), (2, row_hash('{"c"}')), (3, row_hash("{bad"))]
    assert out.row_keys() == expected
    assert read_row_keys(str(tmp_path), tuple(out.shard_files("labels"))) == frozenset(expected[:2])
    assert out.read_column("labels", "image_id") == ["a", "b"]
    assert OutputDir(str(tmp_path / "empty")).row_keys() == []


def test_count_by_counts_values_as_text_sorted() -> None:
    assert count_by(["LoadImages", "ParseCaptions", "LoadImages", None]) == {"LoadImages": 2, "None": 1,
                                                                             "ParseCaptions": 1}
    assert list(count_by(["b", "a", "c", "a"])) == ["a", "b", "c"]
    assert count_by([]) == {}
