"""OutputDir: refusing to clobber, --overwrite / --resume, staging, publishing shards, reading accounts back."""
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
from ovlabel.engine.records import ErrorRecord, InputRecord
from ovlabel.pipelines.output import DoneKeys, OutputDir, count_by
from ovlabel.schemas import SCHEMAS


def _labels(*image_ids: str) -> list[dict[str, Any]]:
    records = [InputRecord(i, f"/x/{i}.png", ("a dog",), "{}") for i in image_ids]
    return [layout.labels_row(r, (4, 6), (root_segment((4, 6), "scene"),), {"run_id": "r"}) for r in records]


def _errors(*rows: tuple[Optional[str], str]) -> list[dict[str, Any]]:
    return [ErrorRecord(i, None, "ValidateRows", "InputError", "bad", raw).to_row("r") for i, raw in rows]


def _shard(folder: Path, kind: str, name: str, rows: list[dict[str, Any]]) -> Path:
    (folder / kind).mkdir(parents=True, exist_ok=True)
    path = folder / kind / name
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMAS[kind]), path)
    return path


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _staged_run(root: Path, run_id: str) -> None:
    """A finished run's shards in ``_staging/<run_id>``: two label shards and one error shard."""
    staging = root / layout.STAGING / run_id
    _shard(staging, layout.LABELS, "part-00000-of-00002.parquet", _labels("a"))
    _shard(staging, layout.LABELS, "part-00001-of-00002.parquet", _labels("b"))
    _shard(staging, layout.ERRORS, "part-00000-of-00001.parquet", _errors(("c", "{}")))


def test_the_root_loses_trailing_slashes(tmp_path: Path) -> None:
    assert OutputDir(f"{tmp_path}/out//").root == f"{tmp_path}/out"
    assert OutputDir("/").root == "/"


def test_output_paths_stay_inside_the_output_folder(tmp_path: Path) -> None:
    out = OutputDir(str(tmp_path / "o"))
    for bad in ("../escape", "/etc/passwd", "a/../../b"):
        with pytest.raises(OutputError, match="inside"):
            out.join(bad)


def test_join_names_paths_inside_the_folder(tmp_path: Path) -> None:
    out = OutputDir(str(tmp_path / "o"))
    assert out.join("labels", "part-00000-of-00001.parquet") == f"{tmp_path}/o/labels/part-00000-of-00001.parquet"
    assert out.join("a..b") == f"{tmp_path}/o/a..b"  # dots inside a name are no escape
    with pytest.raises(OutputError, match=r"refusing to write '\.\./x': output paths must stay inside '.*/o'"):
        out.join("labels", "../x")
    assert out.staging("run-1") == f"{tmp_path}/o/_staging/run-1"


def test_a_missing_or_empty_folder_is_prepared(tmp_path: Path) -> None:
    out = OutputDir(str(tmp_path / "new" / "out"))
    assert out.existing_entries() == []
    out.prepare(overwrite=False, resume=False)
    assert (tmp_path / "new" / "out").is_dir() and out.existing_entries() == []
    out.prepare(overwrite=False, resume=False)  # still empty: fine


def test_a_non_empty_folder_is_refused_without_a_flag(tmp_path: Path) -> None:
    for name in ("f", "e", "d", "c", "b", "a"):
        (tmp_path / name).write_text("x")
    out = OutputDir(str(tmp_path))
    assert out.existing_entries() == ["a", "b", "c", "d", "e", "f"]
    with pytest.raises(OutputError) as caught:
        out.prepare(overwrite=False, resume=False)
    assert str(caught.value) == (f"output folder {str(tmp_path)!r} is not empty (a, b, c, d, e); "
                                 f"pass --overwrite to replace it or --resume to finish it")
    assert _names(tmp_path) == ["a", "b", "c", "d", "e", "f"]


def _previous_run(root: Path) -> None:
    _shard(root, layout.LABELS, "part-00000-of-00001.parquet", _labels("a"))
    _shard(root, layout.ERRORS, "part-00000-of-00001.parquet", _errors())
    (root / layout.STAGING / "killed").mkdir(parents=True)
    (root / layout.RUN_INFO).write_text("{}")
    (root / "notes.txt").write_text("mine")


def test_overwrite_clears_our_outputs_and_nothing_else(tmp_path: Path) -> None:
    _previous_run(tmp_path)
    OutputDir(str(tmp_path)).prepare(overwrite=True, resume=False)
    assert _names(tmp_path) == ["notes.txt"]


def test_resume_keeps_the_shards_and_drops_a_killed_runs_staging(tmp_path: Path) -> None:
    _previous_run(tmp_path)
    OutputDir(str(tmp_path)).prepare(overwrite=False, resume=True)
    assert _names(tmp_path) == ["errors", "labels", "notes.txt", "run.json"]
    assert _names(tmp_path / "labels") == ["part-00000-of-00001.parquet"]


def test_publish_moves_a_runs_shards_under_their_own_names(tmp_path: Path) -> None:
    out = OutputDir(str(tmp_path))
    _staged_run(tmp_path, "run-1")
    moved = out.publish("run-1")
    assert moved == {"labels": [f"{tmp_path}/labels/part-00000-of-00002.parquet",
                                f"{tmp_path}/labels/part-00001-of-00002.parquet"],
                     "errors": [f"{tmp_path}/errors/part-00000-of-00001.parquet"]}
    assert _names(tmp_path) == ["errors", "labels"]  # the staging folder is gone once empty
    assert out.shard_files("labels") == moved["labels"]


def test_a_resumed_runs_shards_are_prefixed_with_its_run_id(tmp_path: Path) -> None:
    out = OutputDir(str(tmp_path))
    _staged_run(tmp_path, "run-1")
    out.publish("run-1")
    _staged_run(tmp_path, "run-2")
    _staged_run(tmp_path, "run-3")  # another run still staging
    moved = out.publish("run-2")
    assert [Path(p).name for p in moved["labels"]] == ["run-2-part-00000-of-00002.parquet",
                                                        "run-2-part-00001-of-00002.parquet"]
    assert _names(tmp_path / "errors") == ["part-00000-of-00001.parquet", "run-2-part-00000-of-00001.parquet"]
    assert _names(tmp_path / layout.STAGING) == ["run-3"]  # kept while another run stages there


def test_write_json_replaces_the_file_whole(tmp_path: Path) -> None:
    out = OutputDir(str(tmp_path))
    assert out.write_json("run.json", {"b": 1, "a": tmp_path}) == f"{tmp_path}/run.json"
    text = (tmp_path / "run.json").read_text()
    assert json.loads(text) == {"a": str(tmp_path), "b": 1} and text.index('"a"') < text.index('"b"')
    assert text.startswith('{\n  "a"')  # indented, sorted keys
    out.write_json("run.json", {"c": 2})
    assert json.loads((tmp_path / "run.json").read_text()) == {"c": 2} and _names(tmp_path) == ["run.json"]


def test_done_keys_are_the_ids_of_both_kinds_and_raw_rows_without_one(tmp_path: Path) -> None:
    _shard(tmp_path, layout.LABELS, "part-00000-of-00001.parquet", _labels("a", "b"))
    _shard(tmp_path, layout.ERRORS, "part-00000-of-00001.parquet", _errors(("c", '{"c"}'), (None, "{bad")))
    out = OutputDir(str(tmp_path))
    assert out.done_keys() == DoneKeys(frozenset({"a", "b", "c"}), frozenset({"{bad"}))
    assert out.read_column("labels", "image_id") == ["a", "b"]
    assert out.read_columns("errors", ["image_id", "stage"]) == [{"image_id": "c", "stage": "ValidateRows"},
                                                                 {"image_id": None, "stage": "ValidateRows"}]
    assert OutputDir(str(tmp_path / "empty")).done_keys() == DoneKeys(frozenset(), frozenset())


def test_count_by_counts_values_as_text_sorted() -> None:
    assert count_by(["LoadImages", "ParseCaptions", "LoadImages", None]) == {"LoadImages": 2, "None": 1,
                                                                             "ParseCaptions": 1}
    assert list(count_by(["b", "a", "c", "a"])) == ["a", "b", "c"]
    assert count_by([]) == {}
