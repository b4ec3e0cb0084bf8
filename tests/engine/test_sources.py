"""One reader for every kind of --input: manifest, folder, glob or one image; --limit; what is checked first."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ovlabel.engine.errors import ManifestError
from ovlabel.engine.folders import Listing
from ovlabel.engine.manifest import to_record
from ovlabel.engine.sources import base_dir_of, check_exists, input_keys, listing_of, read_rows


@pytest.fixture
def world(tmp_path: Path) -> Path:
    (tmp_path / "photos" / "sub").mkdir(parents=True)
    for name in ("photos/a.png", "photos/b.jpg", "photos/sub/c.png", "odd [1]/d.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "photos" / "a.txt").write_text("a dog\n")
    (tmp_path / "m.jsonl").write_text(json.dumps({"image": "photos/a.png", "caption": "a dog"}) + "\n")
    return tmp_path


def test_what_each_location_is(world: Path) -> None:
    assert listing_of(str(world / "m.jsonl")) is None
    assert listing_of(str(world / "photos")) == Listing(str(world / "photos"))
    assert listing_of(f"{world}/photos/*.png") == Listing(str(world / "photos"), ("*.png",))
    assert listing_of(str(world / "photos" / "a.png")) == Listing(str(world / "photos"), ("a.png",))
    assert listing_of(str(world / "odd [1]")) == Listing(str(world / "odd [1]"))  # a folder named like a glob
    assert listing_of(str(world / "missing.jsonl")) is None


def test_rows_of_each_kind_and_the_limit(world: Path) -> None:
    assert [r.data["image_id"] for r in read_rows(str(world / "photos"))] == ["a.png", "b.jpg", "sub/c.png"]
    assert [r.data["image_id"] for r in read_rows(str(world / "photos"), limit=2)] == ["a.png", "b.jpg"]
    assert [r.data["image_id"] for r in read_rows(f"{world}/**/*.png")] == ["odd [1]/d.png", "photos/a.png",
                                                                            "photos/sub/c.png"]
    (row,) = read_rows(str(world / "m.jsonl"), limit=5)
    assert to_record(row, base_dir_of(str(world / "m.jsonl"))).image_uri == str(world / "photos" / "a.png")
    assert list(input_keys(str(world / "photos"), 1)) == [0]


def test_a_folder_rows_image_is_absolute_whatever_the_base(world: Path) -> None:
    row = next(read_rows(str(world / "photos")))
    assert to_record(row, base_dir_of(str(world / "photos"))).image_uri == str(world / "photos" / "a.png")
    assert to_record(row, "/elsewhere").image_uri == str(world / "photos" / "a.png")


def test_check_exists_names_the_problem(world: Path) -> None:
    check_exists(str(world / "photos"))
    check_exists(f"{world}/photos/*.jpg")
    check_exists(str(world / "m.jsonl"))
    with pytest.raises(ManifestError, match="not found; pass a manifest .*, a folder of images or a glob"):
        check_exists(str(world / "nothing"))
    with pytest.raises(ManifestError, match="no images matching"):
        check_exists(f"{world}/photos/*.gif")
    with pytest.raises(ManifestError, match="not found"):
        check_exists(str(world / "photos" / "zzz.png"))
    (world / "notes.md").write_text("x")
    with pytest.raises(ManifestError, match="unknown extension; use .jsonl, .csv or .parquet .*folder of images"):
        check_exists(str(world / "notes.md"))


def test_a_relative_location_is_made_absolute_for_the_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ovlabel.engine.sources import absolute_location

    monkeypatch.chdir(tmp_path)
    assert absolute_location("photos/*.jpg") == f"{tmp_path}/photos/*.jpg"
    assert absolute_location("m.jsonl") == str(tmp_path / "m.jsonl")
    assert absolute_location("gs://bucket/photos/") == "gs://bucket/photos/"
    assert absolute_location("/data/p") == "/data/p"
