from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ovlabel.engine.errors import InputError, ManifestError
from ovlabel.engine.manifest import check_exists, read_rows, stable_image_id, to_record


def _records(path: Path) -> list:
    out = []
    for row in read_rows(str(path)):
        try:
            out.append(to_record(row, str(path.parent)))
        except InputError as exc:
            out.append(exc)
    return out


def test_jsonl_relative_paths_captions_and_default_ids(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"image": "a.jpg", "caption": "a dog"}) + "\n\n"
                    + json.dumps({"image": "gs://b/c.jpg", "captions": ["x", "y"], "image_id": 7}) + "\n")
    first, second = _records(path)
    assert first.image_uri == str(tmp_path / "a.jpg") and first.captions == ("a dog",)
    assert first.image_id == stable_image_id(str(tmp_path / "a.jpg")) and len(first.image_id) == 16
    assert second.image_uri == "gs://b/c.jpg" and second.captions == ("x", "y") and second.image_id == "7"


def test_bad_rows_are_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"image": "a.jpg"}\n{oops\n[1, 2]\n{"image": 5, "caption": "x"}\n'
                    '{"image": "a.jpg", "caption": 3}\n{"image": "a.jpg", "captions": [1]}\n')
    messages = [str(r) for r in _records(path)]
    assert "no 'caption' or 'captions'" in messages[0]
    assert "unparseable JSON" in messages[1]
    assert "not an object" in messages[2]
    assert "'image'" in messages[3]
    assert "'caption' must be a string" in messages[4]
    assert "list of strings" in messages[5]


def test_a_row_without_captions_is_one_when_captionless_rows_are_labelled(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"image": "a.jpg"}\n{"image": "b.jpg", "caption": 3}\n')
    first, bad = read_rows(str(path))
    assert to_record(first, str(tmp_path), captions_required=False).captions == ()
    with pytest.raises(InputError, match="matching.captionless=vocabulary"):
        to_record(first, str(tmp_path))
    with pytest.raises(InputError, match="must be a string"):  # a caption of the wrong type is still an error
        to_record(bad, str(tmp_path), captions_required=False)


def test_csv_and_parquet(tmp_path: Path) -> None:
    csv_path = tmp_path / "m.csv"
    csv_path.write_text('image,caption,image_id\nimg/a.png,"a cat, sleeping",a\nb.png,,b\n')
    first, second = _records(csv_path)
    assert first.captions == ("a cat, sleeping",) and first.image_uri == str(tmp_path / "img/a.png")
    assert isinstance(second, InputError)
    pq_path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"image": ["a.png"], "captions": [["one", "two"]]}), pq_path)
    (record,) = _records(pq_path)
    assert record.captions == ("one", "two")


def test_missing_or_unknown_manifest_is_a_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not found"):
        check_exists(str(tmp_path / "none.jsonl"))
    with pytest.raises(ManifestError, match="extension"):
        check_exists(str(tmp_path / "m.txt"))


@pytest.mark.parametrize("name,text", [
    ("m.csv", "image,caption,image_id\na.png,a cat,a\n"),
    ("m.jsonl", '{"image": "a.png", "caption": "a cat", "image_id": "a"}\n'),
])
def test_a_byte_order_mark_is_not_part_of_the_first_field(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))  # as Excel and Notepad save 'UTF-8'
    (record,) = _records(path)
    assert not isinstance(record, InputError), record
    assert (record.image_id, record.image_uri, record.captions) == ("a", str(tmp_path / "a.png"), ("a cat",))
