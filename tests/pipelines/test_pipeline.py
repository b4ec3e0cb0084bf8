"""The pipeline with a mask generator it has never heard of (registered by this test alone), and what a run's
label vocabulary makes of its output: classes.json, drop counts in run.json, captionless rows labelled."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ovlabel.engine import rle
from ovlabel.engine.config import DemoConfig
from ovlabel.engine.demo.world import ensure_demo_manifest
from ovlabel.engine.errors import ConfigError
from ovlabel.engine.layout import CLASSES
from ovlabel.engine.masks import GeneratorSpec
from ovlabel.engine.ontology import load_vocabulary
from ovlabel.engine.shipped import config_path
from ovlabel.pipelines.options import load_run_config
from ovlabel.pipelines.pipeline import run
from tests.pipelines.helpers import comparable, portable_services, read_rows, tiny_config
from tests.support import ManifestWriter

pytestmark = pytest.mark.slow


@pytest.fixture
def manifest(image_folder: Path, good_rows: list[dict[str, Any]], manifest_writer: ManifestWriter) -> Path:
    return manifest_writer(image_folder, good_rows[:3])


def test_a_toy_generator_registered_by_a_test_runs_through_the_pipeline(
        grid_generator: GeneratorSpec, manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = run(tiny_config("masks.generator=grid", "masks.grid.cells=3"), str(manifest), str(out))
    assert summary.balanced and summary.labeled_rows == 3 and summary.error_rows == 0
    for row in read_rows(out, "labels"):
        assert row["provenance"]["mask_generator"] == "grid:3"  # the spec's own provenance
        h, w = row["height"], row["width"]
        assert len(row["segments"]) > 1
        for seg in row["segments"][1:]:  # every labelled region is one of the grid's cells
            x, y, bw, bh = seg["bbox_xywh"]
            assert rle.decode(seg["mask"]).sum() == seg["area"] == bw * bh
            assert abs(bw - w / 3) <= 1 and abs(bh - h / 3) <= 1
    info = json.loads((out / "run.json").read_text())
    assert info["config"]["masks"]["grid"] == {"cells": 3}
    assert info["models"]["grid"] == {"cells": 3} and "sam" not in info["models"]


def test_the_toy_generator_reaches_portable_runner_workers(grid_generator: GeneratorSpec, manifest: Path,
                                                           tmp_path: Path) -> None:
    """The workers are other processes that never ran this test's registration: the entry goes with the handler."""
    cfg = tiny_config("masks.generator=grid", "masks.grid.cells=3")
    direct, portable = tmp_path / "direct", tmp_path / "portable"
    run(cfg, str(manifest), str(direct))
    with portable_services() as beam_args:
        summary = run(cfg, str(manifest), str(portable), beam_args)
    assert summary.balanced and summary.labeled_rows == 3
    assert comparable(read_rows(portable, "labels")) == comparable(read_rows(direct, "labels"))


def test_its_preflight_check_stops_the_run_before_it_starts(grid_generator: GeneratorSpec, manifest: Path,
                                                           tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="masks.grid.cells over 8"):
        run(tiny_config("masks.generator=grid", "masks.grid.cells=9"), str(manifest), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


# --- honest models: caption nouns the CLIP does not know are counted, warned about once, or refused ---------------

DEMO_WORDS = "clip.known_labels=vocab/demo_clip.yaml"  # the demo CLIP's 49 words (tiny.yaml's CLIP is random)


def _expected_unknown(rows: list[dict[str, Any]]) -> dict[str, int]:
    from ovlabel.engine.captions import CaptionParser
    from ovlabel.engine.known_labels import known_labels, sample_counts

    cfg = tiny_config(DEMO_WORDS)
    known = known_labels(cfg.clip)
    assert known is not None
    return dict(sample_counts(known, [r["captions"] for r in rows], CaptionParser(), cfg.captions.max_chars))


def test_unknown_caption_labels_are_counted_and_warned_about_once(
        image_folder: Path, good_rows: list[dict[str, Any]], manifest_writer: ManifestWriter, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from ovlabel.engine.shipped import config_path
    from ovlabel.pipelines.cli import main
    from tests.pipelines.helpers import FAST_MASKS

    manifest = manifest_writer(image_folder, good_rows[:4])
    expected = _expected_unknown(good_rows[:4])
    assert "grass" in expected and "car" not in expected and "dog" not in expected
    out = tmp_path / "out"
    code = main(["run", "--config", str(config_path("tiny.yaml")), "--input", str(manifest), "--output", str(out),
                 DEMO_WORDS, *FAST_MASKS])
    err = capsys.readouterr().err
    assert code == 0
    warnings = [line for line in err.splitlines() if line.startswith("ovlabel: warning: ")]
    assert len(warnings) == 1 and "the CLIP ovlabel-tiny-clip knows 49 labels (clip.known_labels: vocab/demo_clip.yaml)" \
        in warnings[0] and f"{sum(expected.values())} caption nouns outside them" in warnings[0], err
    info = json.loads((out / "run.json").read_text())
    assert info["unknown_labels"] == {"known": 49, "source": "clip.known_labels: vocab/demo_clip.yaml",
                                      "rows": sum(expected.values()), "labels": expected}
    assert info["warnings"] == [warnings[0].removeprefix("ovlabel: warning: ")]
    assert info["accounting_ok"] and info["counts"]["labeled_rows"] == 4


def test_refused_unknown_labels_stop_preflight_and_make_later_rows_error_rows(
        image_folder: Path, good_rows: list[dict[str, Any]], manifest_writer: ManifestWriter, tmp_path: Path) -> None:
    from tests.pipelines.helpers import FAST_MASKS

    manifest = manifest_writer(image_folder, good_rows[:4])
    cfg = tiny_config(DEMO_WORDS, "clip.unknown_labels=refuse", *FAST_MASKS)
    with pytest.raises(ConfigError, match=r"^clip.unknown_labels=refuse: .* the captions of the first 4 manifest rows"):
        run(cfg, str(manifest), str(tmp_path / "refused"))
    assert not (tmp_path / "refused").exists()
    out = tmp_path / "out"  # rows past the rows preflight reads: each one naming an unknown label is an error row
    summary = run(cfg, str(manifest), str(out), checked=True)
    refused = {r["image_id"] for r in read_rows(out, "errors")}
    assert summary.balanced and summary.errors_by_stage == {"ParseCaptions": len(refused)}
    unknown_rows = {r["image_id"] for r in good_rows[:4] if _expected_unknown([r])}
    assert refused == unknown_rows and 0 < len(refused) < 4
    assert {r["image_id"] for r in read_rows(out, "labels")} == {r["image_id"] for r in good_rows[:4]} - refused
    message = read_rows(out, "errors")[0]["message"]
    assert "are outside the labels the CLIP ovlabel-tiny-clip knows" in message and "clip.unknown_labels=refuse" in message
OBJECTS_ONLY = "house: [home]\ncar: [automobile]\ntree: []\nperson: [man, woman, people]\nboat: [sailboat]\n" \
               "sun: []\nmoon: []\ndog: [puppy]\ntable: []\ncup: [mug]\nrefrigerator: [fridge]\n"


def test_captionless_rows_are_labelled_and_the_vocabulary_names_and_drops_classes(tmp_path: Path,
                                                                                 manifest_writer: ManifestWriter) -> None:
    demo = ensure_demo_manifest(DemoConfig(num_images=2, seed=10_003, image_size=256, cache_dir=str(tmp_path / "c")))
    scenes = [json.loads(line) for line in demo.read_text().splitlines()]
    rows = [{"image": str(demo.parent / scenes[0]["image"]), "captions": scenes[0]["captions"], "image_id": "named"},
            {"image": str(demo.parent / scenes[1]["image"]), "image_id": "no-captions"},
            {"image": str(demo.parent / scenes[1]["image"]), "caption": "", "image_id": "empty-caption"}]
    manifest = manifest_writer(tmp_path, rows)
    vocabulary = tmp_path / "objects.yaml"
    vocabulary.write_text(OBJECTS_ONLY)  # the demo world's objects only: its parts and scenes are unmapped
    overrides = ["matching.captionless=vocabulary", f"vocabulary.file={vocabulary}", "vocabulary.unmapped=drop"]
    out = tmp_path / "out"
    summary = run(load_run_config(config_path("demo.yaml"), overrides), str(manifest), str(out))
    assert summary.balanced and summary.labeled_rows == 3 and summary.error_rows == 0
    labels = {r["image_id"]: r for r in read_rows(out, "labels")}
    for image_id in ("no-captions", "empty-caption"):  # labelled from matching.object_vocabulary
        objects = [s for s in labels[image_id]["segments"] if s["level"] == "object"]
        assert objects and all(s["source"] == "vocabulary" for s in objects), image_id
    written = [s for r in labels.values() for s in r["segments"]]
    assert {s["class_name"] for s in written} <= {*load_vocabulary(str(vocabulary)).classes, "scene"}
    assert not [s for s in written if s["level"] == "part"]  # every part word is unmapped: dropped
    classes = json.loads((out / CLASSES).read_text())
    assert classes["vocabulary"] == load_vocabulary(str(vocabulary)).ref and classes["schema_version"] == "3"
    assert [c["name"] for c in classes["classes"]][:11] == list(load_vocabulary(str(vocabulary)).classes)
    objects = sum(c["counts"]["object"] for c in classes["classes"])
    assert objects == sum(s["level"] == "object" for s in written) > 0
    info = json.loads((out / "run.json").read_text())["vocabulary"]
    assert info["unmapped"] == "drop" and info["name"] == str(vocabulary.resolve())
    assert info["dropped"]["unmapped_part"] > 0 and info["dropped"]["unmapped_scene"] >= 1  # 'named' has a scene noun
