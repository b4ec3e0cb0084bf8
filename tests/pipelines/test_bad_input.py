"""Every kind of bad input ends as one specific error row; everything else is labelled."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ovlabel.pipelines.pipeline import RunSummary, run
from tests.engine.bad_files import BAD_MESSAGES, PIXEL_CAP, bad_files, good_variants
from tests.pipelines.helpers import FAST_MASKS, read_rows, tiny_config
from tests.support import ManifestWriter

pytestmark = pytest.mark.slow

# image_id -> (stage, error type, words of the message)
EXPECTED_ERRORS: dict[str, tuple[str, str, str]] = {
    **{f"bad-{name}": ("LoadImages", "ImageLoadError", words) for name, words in BAD_MESSAGES.items()},
    "missing-file": ("LoadImages", "ImageLoadError", "not found"),
    "ftp-scheme": ("LoadImages", "ImageLoadError", "scheme 'ftp' is not allowed"),
    "empty-caption": ("ParseCaptions", "CaptionError", "empty"),
    "no-nouns": ("ParseCaptions", "CaptionError", "no nouns"),
    "huge-caption": ("ParseCaptions", "CaptionError", "over captions.max_chars"),
    "emoji": ("ParseCaptions", "CaptionError", "no nouns"),
    "dup": ("Deduplicate", "DuplicateImageId", "already used by manifest row"),
    "no-image": ("ValidateRows", "InputError", "no 'image' field"),
    "int-caption": ("ValidateRows", "InputError", "'caption' must be a string"),
    "no-caption": ("ValidateRows", "InputError", "no 'caption' or 'captions'"),
}
CAPTION = "A red house with a blue door next to a tree."


def _rows(folder: Path) -> list[dict[str, Any]]:
    images = folder / "images"
    images.mkdir()
    rows: list[dict[str, Any]] = []
    for name, data in {**good_variants(), **bad_files()}.items():
        (images / name).write_bytes(data)
        prefix = "good" if name in good_variants() else "bad"
        rows.append({"image": f"images/{name}", "caption": CAPTION, "image_id": f"{prefix}-{name}"})
    rows += [
        {"image": "images/nope.png", "caption": CAPTION, "image_id": "missing-file"},
        {"image": "ftp://example.com/a.png", "caption": CAPTION, "image_id": "ftp-scheme"},
        {"image": "images/gray.png", "captions": ["", "  "], "image_id": "empty-caption"},
        {"image": "images/gray.png", "caption": "Running quickly and happily.", "image_id": "no-nouns"},
        {"image": "images/gray.png", "caption": "a dog " * 20_000, "image_id": "huge-caption"},
        {"image": "images/gray.png", "caption": "🐶🌊☀️🎉", "image_id": "emoji"},
        {"image": "images/palette.png", "caption": "Un chien brun sur la plage près de la mer.", "image_id": "french"},
        {"image": "images/rgba.png", "caption": CAPTION, "image_id": "dup"},
        {"image": "images/gray.png", "caption": CAPTION, "image_id": "dup"},
        {"caption": CAPTION, "image_id": "no-image"},
        {"image": "images/gray.png", "caption": 42, "image_id": "int-caption"},
        {"image": "images/gray.png", "image_id": "no-caption"},
    ]
    return rows


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory: pytest.TempPathFactory, manifest_writer: ManifestWriter) -> tuple[Path, RunSummary]:
    folder = tmp_path_factory.mktemp("bad")
    manifest = manifest_writer(folder, _rows(folder))
    with manifest.open("a") as fh:
        fh.write('{"image": "images/gray.png", "caption": \n')  # an unparseable line
    out = folder / "out"
    cfg = tiny_config(f"images.max_pixels={PIXEL_CAP}", "images.min_side=8", "captions.max_chars=10000", *FAST_MASKS)
    return out, run(cfg, str(manifest), str(out))


def test_each_bad_input_has_its_specific_error_row(bad_run: tuple[Path, RunSummary]) -> None:
    out, _ = bad_run
    errors = {r["image_id"]: r for r in read_rows(out, "errors") if r["image_id"] is not None}
    for image_id, (stage, error_type, words) in EXPECTED_ERRORS.items():
        row = errors.get(image_id)
        assert row is not None, f"no error row for {image_id}"
        assert (row["stage"], row["error_type"]) == (stage, error_type), image_id
        assert words in row["message"], (image_id, row["message"])
        assert row["input_row"], image_id


def test_unparseable_line_is_an_error_row_with_its_text(bad_run: tuple[Path, RunSummary]) -> None:
    out, _ = bad_run
    (row,) = [r for r in read_rows(out, "errors") if r["image_id"] is None]
    assert row["stage"] == "ValidateRows" and "unparseable JSON" in row["message"]
    assert row["input_row"].startswith('{"image": "images/gray.png", "caption":')


def test_all_other_rows_are_labelled(bad_run: tuple[Path, RunSummary]) -> None:
    out, summary = bad_run
    labelled = {r["image_id"]: r for r in read_rows(out, "labels")}
    assert {f"good-{name}" for name in good_variants()} | {"dup"} <= set(labelled)
    assert labelled["dup"]["image_uri"].endswith("rgba.png")  # the first row of a duplicated id wins
    assert (labelled["good-exif.jpg"]["width"], labelled["good-exif.jpg"]["height"]) == (48, 64)
    errors = {r["image_id"] for r in read_rows(out, "errors")}
    assert "french" in labelled or "french" in errors  # non-English: labelled or a clean error, never lost
    assert summary.input_rows == summary.labeled_rows + summary.error_rows == len(labelled) + len(errors - {None}) + 1


def test_accounting_per_stage_is_in_run_json(bad_run: tuple[Path, RunSummary]) -> None:
    out, summary = bad_run
    info = json.loads((out / "run.json").read_text())
    assert info["accounting_ok"] is True
    stages = info["stages"]
    assert stages["ValidateRows"]["in"] == summary.input_rows
    for name, flow in stages.items():
        assert flow["in"] == flow["out"] + flow["errors"] and flow["skipped"] == 0, name
    assert stages["Deduplicate"]["errors"] == 1
    assert stages["BuildHierarchy"]["out"] == summary.labeled_rows


def _unblock_fifo(fifo: Path) -> None:
    """Open the FIFO's writing end once and close it: a reader blocked on it (the old loader) gets EOF."""
    import os

    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass  # nobody is reading it: the new loader never opens it


def test_hostile_inputs_end_as_error_rows_quickly(tmp_path: Path, manifest_writer: ManifestWriter) -> None:
    import os
    import threading
    import time

    from PIL import Image

    from tests.engine.bad_files import encode, rgb

    images = tmp_path / "images"
    images.mkdir()
    os.mkfifo(images / "pipe.jpg")
    (images / "long.png").write_bytes(encode(Image.new("RGB", (60_000, 9))))
    (images / "text.jpg").write_text("secret words, not a picture\n")
    (images / "good.png").write_bytes(encode(rgb(6)))
    rows = [{"image": f"images/{name}", "caption": CAPTION, "image_id": name}
            for name in ("pipe.jpg", "long.png", "text.jpg", "good.png")]
    rows.append({"image": "/dev/zero", "caption": CAPTION, "image_id": "zero"})
    watchdog = threading.Timer(60, _unblock_fifo, [images / "pipe.jpg"])
    watchdog.start()
    start = time.monotonic()
    try:
        run(tiny_config(*FAST_MASKS), str(manifest_writer(tmp_path, rows)), str(tmp_path / "out"))
    finally:
        watchdog.cancel()
    assert time.monotonic() - start < 60, "a read blocked until the watchdog opened the FIFO"
    errors = {r["image_id"]: r for r in read_rows(tmp_path / "out", "errors")}
    expected = {"pipe.jpg": "not a regular file (it is a FIFO", "zero": "not a regular file (it is a character device",
                "long.png": "over images.max_aspect", "text.jpg": "is text, not a raster image"}
    for image_id, words in expected.items():
        assert errors[image_id]["stage"] == "LoadImages" and words in errors[image_id]["message"], image_id
    assert "secret" not in errors["text.jpg"]["message"]
    assert [r["image_id"] for r in read_rows(tmp_path / "out", "labels")] == ["good.png"]
