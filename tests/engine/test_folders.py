"""Folders, globs and single images as input rows: order, sidecar captions, keys, errors."""
from __future__ import annotations

import json
import shutil
import types
from pathlib import Path

import fsspec
import pytest

from ovlabel.engine.errors import InputError, ManifestError
from ovlabel.engine.folders import MAX_SIDECAR_BYTES, Listing, captions_of, matches, may_hold
from ovlabel.engine.manifest import to_record


def _touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def _ids(location: str) -> list[str]:
    return [row.data["image_id"] for row in Listing.of(location).rows()]


def test_a_folder_lists_its_images_in_order_files_before_subfolders(tmp_path: Path) -> None:
    _touch(tmp_path, "b.JPG", "a.png", "z/c.jpeg", "m/d.webp", "m/n/e.tif", "notes.md", "a.txt", ".x.jpg",
           ".cache/f.jpg", "m/.g.png")
    assert _ids(str(tmp_path)) == ["a.png", "b.JPG", "m/d.webp", "m/n/e.tif", "z/c.jpeg"]
    assert _ids(str(tmp_path) + "/") == _ids(str(tmp_path))
    rows = list(Listing.of(str(tmp_path)).rows())
    assert [row.index for row in rows] == list(range(5))


def test_rows_stream_one_folder_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _touch(tmp_path, "a/1.png", "b/2.png")
    listed: list[str] = []
    import ovlabel.engine.folders as folders

    original = folders._list_dir
    monkeypatch.setattr(folders, "_list_dir", lambda fs, path: listed.append(path) or original(fs, path))
    rows = Listing.of(str(tmp_path)).rows()
    assert isinstance(rows, types.GeneratorType)
    first = next(rows)
    assert first.data["image_id"] == "a/1.png" and len(listed) == 2  # the root and a/, not b/ yet
    assert [r.data["image_id"] for r in rows] == ["b/2.png"] and len(listed) == 3


def test_sidecar_captions_txt_and_json(tmp_path: Path) -> None:
    _touch(tmp_path, "a.jpg", "b.png", "c.png", "d.png")
    (tmp_path / "a.txt").write_text("A dog on grass.\n\n  A brown dog.  \n")
    (tmp_path / "b.json").write_text(json.dumps({"captions": ["a cat", "a sofa"]}))
    (tmp_path / "c.JSON").write_text(json.dumps({"caption": "a boat"}))
    rows = list(Listing.of(str(tmp_path)).rows())
    records = [to_record(row, str(tmp_path)) for row in rows]
    assert [r.captions for r in records] == [("A dog on grass.", "A brown dog."), ("a cat", "a sofa"), ("a boat",), ()]
    assert [r.image_id for r in records] == ["a.jpg", "b.png", "c.png", "d.png"]
    assert records[0].image_uri == str(tmp_path / "a.jpg")
    assert json.loads(rows[0].text) == {"image": "a.jpg", "captions": ["A dog on grass.", "A brown dog."]}


@pytest.mark.parametrize("name,raw,message", [
    ("x.json", b"{oops", "not valid JSON"),
    ("x.json", b'{"captions": "one string"}', "must hold"),
    ("x.json", b'{"captions": [1, 2]}', "must hold"),
    ("x.json", b'{"text": "a dog"}', "must hold"),
])
def test_a_bad_json_sidecar_says_what_it_must_hold(name: str, raw: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        captions_of(name, raw)


def test_sidecar_formats_accepted() -> None:
    assert captions_of("x.json", b'["a", "b"]') == ["a", "b"]
    assert captions_of("x.txt", "\ufeffa dog\r\nb cat\n".encode()) == ["a dog", "b cat"]  # BOM, CRLF


def test_an_unusable_sidecar_is_an_error_row_naming_the_image(tmp_path: Path) -> None:
    _touch(tmp_path, "a.png", "b.png", "c.png")
    (tmp_path / "a.json").write_text("{oops")
    (tmp_path / "b.txt").write_text("x")
    (tmp_path / "b.json").write_text('{"captions": ["y"]}')
    (tmp_path / "c.txt").write_bytes(b"x" * (MAX_SIDECAR_BYTES + 1))
    rows = list(Listing.of(str(tmp_path)).rows())
    assert "not valid JSON" in rows[0].error and "'a.png'" in rows[0].error
    assert "two caption sidecars (b.txt and b.json)" in rows[1].error
    assert f"over {MAX_SIDECAR_BYTES} bytes" in rows[2].error
    for row in rows:
        assert row.data["image_id"] == json.loads(row.text)["image"]  # an error row still names its image
        with pytest.raises(InputError, match="sidecar"):
            to_record(row, str(tmp_path))


def test_keys_are_the_relative_path_and_captions(tmp_path: Path) -> None:
    _touch(tmp_path / "one", "a.png", "b.png")
    (tmp_path / "one" / "a.txt").write_text("a dog")
    keys = [row.key for row in Listing.of(str(tmp_path / "one")).rows()]
    shutil.move(tmp_path / "one", tmp_path / "two")
    assert [row.key for row in Listing.of(str(tmp_path / "two")).rows()] == keys  # a moved folder resumes
    (tmp_path / "two" / "a.txt").write_text("a cat")
    changed = [row.key for row in Listing.of(str(tmp_path / "two")).rows()]
    assert changed[0][0] == keys[0][0] and changed[0][1] != keys[0][1] and changed[1] == keys[1]


@pytest.mark.parametrize("pattern,expected", [  # image_ids are relative to the folder before the first '*?['
    ("*.png", ["a.png"]),
    ("**/*.png", ["a.png", "s/b.png", "s/t/c.png"]),
    ("s/*.png", ["b.png"]),
    ("*/*.png", ["s/b.png"]),
    ("s/**", ["b.png", "d.jpg", "t/c.png"]),
    ("?.jpg", ["e.jpg"]),
    ("[ae].*", ["a.png", "e.jpg"]),
])
def test_globs(tmp_path: Path, pattern: str, expected: list[str]) -> None:
    _touch(tmp_path, "a.png", "e.jpg", "s/b.png", "s/d.jpg", "s/t/c.png", "s/b.txt")
    assert _ids(f"{tmp_path}/{pattern}") == expected


def test_a_glob_lists_only_the_folders_it_can_match(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _touch(tmp_path, "a/x.png", "b/y.png", "b/deep/z.png")
    import ovlabel.engine.folders as folders

    listed: list[str] = []
    original = folders._list_dir
    monkeypatch.setattr(folders, "_list_dir", lambda fs, path: listed.append(path) or original(fs, path))
    assert _ids(f"{tmp_path}/a/*.png") == ["x.png"]
    assert listed == [str(tmp_path / "a")]


def test_pattern_matching_rules() -> None:
    assert matches(("a", "b.png"), ("**", "*.png")) and matches(("b.png",), ("**", "*.png"))
    assert not matches(("a", "b.png"), ("*.png",))
    assert may_hold(("a",), ("*", "*.png")) and not may_hold(("a", "b"), ("*", "*.png"))
    assert may_hold(("a", "b", "c"), ("a", "**")) and not may_hold(("x",), ("a", "**"))


def test_one_image_is_a_listing_of_one(tmp_path: Path) -> None:
    _touch(tmp_path, "p[1].png", "p1.png")
    (tmp_path / "p[1].txt").write_text("a dog")
    (row,) = Listing.of(str(tmp_path / "p[1].png"), literal=True).rows()
    assert row.data["image_id"] == "p[1].png" and row.data["captions"] == ["a dog"]
    assert [r.data["image_id"] for r in Listing.of(str(tmp_path / "p1.png")).rows()] == ["p1.png"]
    assert [r.data["image_id"] for r in Listing.of(str(tmp_path / "p[1].png")).rows()] == ["p1.png"]  # a glob


def test_check_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not found"):
        Listing.of(str(tmp_path / "nope")).check()
    _touch(tmp_path, "a.txt", ".hidden.png")
    with pytest.raises(ManifestError, match=r"no images in .*looked for \.jpg"):
        Listing.of(str(tmp_path)).check()
    with pytest.raises(ManifestError, match=r"no images matching '\*\.gif'"):
        Listing.of(f"{tmp_path}/*.gif").check()


def test_an_fsspec_folder_lists_the_same_way() -> None:
    fs = fsspec.filesystem("memory")
    for name in ("bucket/p/b.png", "bucket/p/a.png", "bucket/p/s/c.jpg"):
        fs.pipe(name, b"")
    fs.pipe("bucket/p/a.txt", b"a dog\n")
    rows = list(Listing.of("memory://bucket/p").rows())
    assert [r.data["image_id"] for r in rows] == ["a.png", "b.png", "s/c.jpg"]
    assert rows[0].data["image"] == "memory:///bucket/p/a.png" and rows[0].data["captions"] == ["a dog"]
    Listing.of("memory://bucket/p/").check()
    fs.rm("bucket", recursive=True)
