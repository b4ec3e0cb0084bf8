"""Folders and globs of images end to end (DirectRunner, configs/tiny.yaml): sidecar captions, no captions,
--limit and --resume on a folder."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import ovlabel
from ovlabel.engine.records import row_hash
from ovlabel.engine.shipped import config_path
from ovlabel.pipelines.cli import main
from tests.pipelines.helpers import FAST_MASKS, TINY_OVERRIDES, read_rows
from tests.support import CAPTIONS, draw_scene

OVERRIDES = [*TINY_OVERRIDES, *FAST_MASKS]
# the folder, in its listing order: a.png, b.png, d.png, e.png, then sub/c.png (a folder's files come first)
ORDER = ["a.png", "b.png", "d.png", "e.png", "sub/c.png"]


def _images(folder: Path, names: list[str]) -> None:
    for i, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(draw_scene(i)).save(folder / name)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """a.png (.txt sidecar), b.png (.json), sub/c.png (.txt), d.png (none), e.png (a sidecar that is not JSON)."""
    folder = tmp_path_factory.mktemp("photos")
    _images(folder, ORDER)
    (folder / "a.txt").write_text("\n".join(CAPTIONS[0]) + "\n")
    (folder / "b.json").write_text(json.dumps({"captions": CAPTIONS[1]}))
    (folder / "sub" / "c.txt").write_text(CAPTIONS[2][0])
    (folder / "e.json").write_text("{not json")
    (folder / "notes.md").write_text("not an image")
    return folder


@pytest.fixture(scope="module")
def labelled(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> ovlabel.LabelResult:
    out = tmp_path_factory.mktemp("api") / "out"
    overrides = dict(text.split("=", 1) for text in OVERRIDES)
    return ovlabel.label(photos, out, config=config_path("tiny.yaml"), overrides=overrides)


def _by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["image_id"]: row for row in rows}


def test_a_folder_with_sidecar_captions_labels_end_to_end(labelled: ovlabel.LabelResult, photos: Path) -> None:
    assert labelled.ok and labelled.summary.input_rows == 5
    labels = _by_id(read_rows(Path(labelled.output), "labels"))
    assert {"a.png", "b.png", "sub/c.png"} <= set(labels)
    assert labels["a.png"]["captions"] == CAPTIONS[0] and labels["b.png"]["captions"] == CAPTIONS[1]
    assert labels["sub/c.png"]["captions"] == CAPTIONS[2][:1]
    for image_id in ("a.png", "b.png", "sub/c.png"):
        row = labels[image_id]
        assert row["image_uri"] == str(photos / image_id) and row["row_index"] == ORDER.index(image_id)
        assert row["row_hash"] == row_hash(json.dumps({"image": image_id, "captions": row["captions"]}))
        assert row["segments"], image_id


def test_every_image_of_the_folder_is_one_row(labelled: ovlabel.LabelResult) -> None:
    labels, errors = read_rows(Path(labelled.output), "labels"), read_rows(Path(labelled.output), "errors")
    assert sorted(r["image_id"] for r in labels + errors) == sorted(ORDER)
    bad = _by_id(errors)["e.png"]
    assert bad["stage"] == "ValidateRows" and "e.json" in bad["message"] and "not valid JSON" in bad["message"]
    assert json.loads(bad["input_row"]) == {"image": "e.png", "sidecar": "e.json"}
    captionless = _by_id(labels + errors)["d.png"]
    assert captionless.get("captions", []) == [] and captionless.get("stage", "ParseCaptions") == "ParseCaptions"
    assert labelled.summary.labeled_rows + labelled.summary.error_rows == 5


def test_the_api_result_names_the_output_and_its_run(labelled: ovlabel.LabelResult) -> None:
    info = labelled.read_run_info()
    assert info["run_id"] == labelled.run_id and info["accounting_ok"] is True
    assert info["counts"]["input_rows"] == labelled.summary.input_rows == 5
    assert Path(labelled.labels).is_dir() and Path(labelled.errors).is_dir() and Path(labelled.run_info).is_file()
    with pytest.raises(Exception):
        labelled.run_id = "x"  # type: ignore[misc]  # frozen


def test_a_glob_of_images_with_no_captions_accounts_for_every_image(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    _images(tmp_path / "raw", ["x.png", "y.png", "z.jpg"])
    code = main(["run", "--config", "tiny", "--input", f"{tmp_path}/raw/*.png", "--output", str(tmp_path / "out"),
                 *OVERRIDES])
    assert code == 0, capsys.readouterr().err
    rows = read_rows(tmp_path / "out", "labels") + read_rows(tmp_path / "out", "errors")
    assert sorted(r["image_id"] for r in rows) == ["x.png", "y.png"]  # the glob: not z.jpg
    for row in rows:  # no captions: a labels row says so, an error row is ParseCaptions' (until vocabulary-only)
        assert row.get("captions", []) == [] and row.get("stage", "ParseCaptions") == "ParseCaptions"
        assert json.loads(row["input_row"] if "input_row" in row else "{}").get("captions", []) == []
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert info["accounting_ok"] and info["counts"]["input_rows"] == 2


def test_a_folder_with_no_captions_labels_from_the_vocabulary(tmp_path: Path) -> None:
    _images(tmp_path / "raw", ["x.png", "y.png"])
    result = ovlabel.label(tmp_path / "raw", tmp_path / "out", config="tiny", overrides=[
        *OVERRIDES, "matching.captionless=vocabulary", "matching.object_vocabulary=[dog, car]",
        "matching.vocabulary_threshold=0.0"])
    assert result.ok and (result.summary.labeled_rows, result.summary.error_rows) == (2, 0)
    for row in read_rows(tmp_path / "out", "labels"):
        assert row["captions"] == []
        objects = [s for s in row["segments"] if s["level"] == "object"]
        assert objects and {s["source"] for s in objects} == {"vocabulary"}
        assert {s["label"] for s in objects} <= {"dog", "car"}


def test_limit_then_resume_finishes_the_folder(photos: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out, photos = tmp_path / "out", Path(shutil.copytree(photos, tmp_path / "photos"))
    base = ["run", "--config", str(config_path("tiny.yaml")), "--input", str(photos), "--output", str(out), *OVERRIDES]
    assert main([*base, "--limit", "2"]) == 0
    first = read_rows(out, "labels") + read_rows(out, "errors")
    assert sorted(r["image_id"] for r in first) == ["a.png", "b.png"]
    assert json.loads((out / "run.json").read_text())["counts"]["input_rows"] == 2
    assert main([*base, "--resume"]) == 0
    assert "3/3 images (100%)" in capsys.readouterr().err  # the progress counts what is left to do
    info = json.loads((out / "run.json").read_text())
    assert info["accounting_ok"] and info["counts"]["input_rows"] == 5
    assert info["stages"]["Deduplicate"]["skipped"] == 2  # the two done rows were not labelled again
    rows = read_rows(out, "labels") + read_rows(out, "errors")
    assert sorted(r["image_id"] for r in rows) == sorted(ORDER)
    (photos / "a.txt").write_text("A different caption.\n")  # a changed sidecar is a changed row
    assert main([*base, "--resume"]) == 2
    assert "manifest row 0" in capsys.readouterr().err


@pytest.mark.slow
def test_a_relative_folder_on_portable_runner_workers_gives_the_same_rows(
        labelled: ovlabel.LabelResult, photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.pipelines.helpers import comparable, portable_services

    with portable_services() as beam_args:
        monkeypatch.chdir(photos.parent)  # the workers started elsewhere: the relative folder must still be found
        result = ovlabel.label(photos.name, tmp_path / "out", config="tiny", overrides=OVERRIDES, beam_args=beam_args)
    assert result.ok and result.summary.input_rows == 5
    for kind in ("labels", "errors"):
        assert comparable(read_rows(tmp_path / "out", kind)) == comparable(read_rows(Path(labelled.output), kind))
