"""scripts/compare_outputs.py: two outputs are the same when every row is, run ids aside."""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ovlabel.engine import layout
from ovlabel.engine.hierarchy import root_segment
from ovlabel.engine.records import ErrorRecord, InputRecord
from ovlabel.schemas import ERRORS_SCHEMA, LABELS_SCHEMA


@pytest.fixture(scope="module")
def script(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("compare_outputs")


def _output(root: Path, run_id: str, folder: str = "/data", score: float = 1.0) -> str:
    record = InputRecord("a", f"{folder}/a.png", ("a dog",), "{}")
    labels = [layout.labels_row(record, (4, 6), (root_segment((4, 6), "scene", score),), {"run_id": run_id})]
    errors = [ErrorRecord(None, None, "ValidateRows", "InputError", "no image", '{"x": 1}').to_row(run_id)]
    for kind, schema, rows in ((layout.LABELS, LABELS_SCHEMA, labels), (layout.ERRORS, ERRORS_SCHEMA, errors)):
        (root / kind).mkdir(parents=True)
        table = pa.Table.from_pylist(rows, schema=schema)
        pq.write_table(table, f"{layout.shard_prefix(str(root), kind)}-00000-of-00001{layout.SHARD_SUFFIX}")
    return str(root)


def test_runs_that_differ_only_by_run_id_are_identical(script: ModuleType, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _output(tmp_path / "a", "run-1"), _output(tmp_path / "b", "run-2")
    assert script.main([a, b]) == 0
    out = capsys.readouterr().out
    assert "labels: 1 rows in A (1 segments), 1 in B: identical" in out and "errors: 1 rows" in out


def test_a_changed_field_is_named_with_its_path(script: ModuleType, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _output(tmp_path / "a", "run-1"), _output(tmp_path / "b", "run-1", score=0.5)
    assert script.main([a, b]) == 1
    assert "a segments[0].score: 1.0 != 0.5" in capsys.readouterr().out


def test_image_folders_can_be_told_apart_from_content(script: ModuleType, tmp_path: Path) -> None:
    a, b = _output(tmp_path / "a", "r", "/data"), _output(tmp_path / "b", "r", "/copy")
    assert script.main([a, b]) == 1
    assert script.main([a, b, "--ignore-prefix", "/data=/copy"]) == 0


def test_differences_walks_nested_rows(script: ModuleType) -> None:
    row: dict[str, Any] = {"a": [1, {"b": 2}], "c": 3}
    assert script.differences(row, {"a": [1, {"b": 5}], "c": 3}) == ["a[1].b: 2 != 5"]
    assert script.differences(row, row) == []


def test_identical_manifest_rows_are_matched_by_their_position(script: ModuleType, tmp_path: Path) -> None:
    raw = '{"image": "missing.png"}'
    first = ErrorRecord("x", None, "LoadImages", "ImageLoadError", "not found", raw, 3).to_row("r")
    later = ErrorRecord("x", None, "Deduplicate", "DuplicateImageId", "already used", raw, 9).to_row("r")
    for name, rows in (("a", [first, later]), ("b", [later, first])):  # read back in another order
        (tmp_path / name / layout.ERRORS).mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=ERRORS_SCHEMA), tmp_path / name / layout.ERRORS / "s.parquet")
    assert script.compare(str(tmp_path / "a"), str(tmp_path / "b"))[1].endswith("identical")
