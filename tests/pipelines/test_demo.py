"""The offline demo world: its manifest, its shipped CLIP, and a small end-to-end run scored by ``ovlabel eval``."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ovlabel.engine.config import DemoConfig
from ovlabel.engine.shipped import config_path
from ovlabel.pipelines.options import load_run_config
from ovlabel.engine.demo.objects import OBJECT_PARTS
from ovlabel.engine.demo.world import category_words, demo_dir, demo_vocabulary, ensure_demo_manifest
from ovlabel.engine.layout import CLASSES
from ovlabel.engine.weights import resolve_checkpoint
from ovlabel.pipelines.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

# A regression guard on 12 scenes (the alpha + masked ensemble in bf16 with mirror images and object swaps; on the
# 200 held-out scenes objects P 0.92 / R 0.82, parts P 0.90 / R 0.69, scenes 1.0, issue 23's targets; the alpha
# model alone: objects P 0.86 / R 0.76, parts P 0.86 / R 0.63). Raise these floors as the demo improves.
MIN_SCORES = {("object", "precision"): 0.88, ("object", "recall"): 0.78, ("part", "precision"): 0.82,
              ("part", "recall"): 0.68}  # these 12 scenes in the 200-scene run: 0.941, 0.857, 0.887, 0.750
MIN_SCENE_ACCURACY = 0.9


def test_manifest_is_generated_once_per_setting(tmp_path: Path) -> None:
    cfg = DemoConfig(num_images=2, seed=10_000, image_size=64, cache_dir=str(tmp_path))
    manifest = ensure_demo_manifest(cfg)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert [r["image_id"] for r in rows] == ["demo-010000", "demo-010001"]
    assert manifest.parent == demo_dir(cfg) and (manifest.parent / "instances.json").is_file()
    stamp = manifest.stat().st_mtime_ns
    assert ensure_demo_manifest(cfg) == manifest and manifest.stat().st_mtime_ns == stamp
    other = ensure_demo_manifest(DemoConfig(num_images=1, seed=10_000, image_size=64, cache_dir=str(tmp_path)))
    assert other != manifest and manifest.is_file()


def test_caption_words_name_their_categories() -> None:
    vocabulary = demo_vocabulary()
    assert vocabulary.class_of("automobile") == "car" and vocabulary.class_of("people") == "person"
    assert vocabulary.class_of("sky") == "night sky" and vocabulary.class_of("torso") == "torso"
    assert category_words("person")[0] == "person" and "woman" in category_words("person")


def test_shipped_checkpoint_resolves_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    clip = load_run_config(config_path("demo.yaml")).clip
    assert clip.checkpoint and not Path(clip.checkpoint).is_absolute()
    path = resolve_checkpoint(clip.checkpoint, "clip.checkpoint", clip.checkpoint_sha256)
    assert path.is_file() and path.stat().st_size < 10_000_000
    member = clip.member(0)  # the ensemble's masked-crop model, found the same way
    assert member.checkpoint and not Path(member.checkpoint).is_absolute()
    assert resolve_checkpoint(member.checkpoint, "clip.checkpoint", member.checkpoint_sha256).is_file()


@pytest.mark.slow
def test_demo_run_labels_scenes_and_passes_the_quality_floor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache, out = tmp_path / "cache", tmp_path / "run"
    overrides = ["demo.num_images=12", f"demo.cache_dir={cache}"]
    assert main(["run", "--config", str(config_path("demo.yaml")), "--output", str(out), *overrides]) == 0
    assert f"{out}/labels/" in capsys.readouterr().out
    info = json.loads((out / "run.json").read_text())  # the demo's captions name only words its CLIP knows
    assert info["config"]["clip"]["known_labels"] == "vocab/demo_clip.yaml"
    assert info["unknown_labels"] == {} and info["warnings"] == []
    gt = demo_dir(load_run_config(config_path("demo.yaml"), overrides).demo) / "instances.json"
    report_path = tmp_path / "report.json"
    assert main(["eval", "--labels", str(out), "--gt", str(gt), "--json", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["images"] == {"gt": 12, "labelled": 12, "missing": 0, "unmatched_rows": 0, "scored": 12,
                                "only_labelled": False}
    scores = {(level, k): report["levels"][level][k] or 0.0 for level, k in MIN_SCORES}
    assert all(scores[key] >= floor for key, floor in MIN_SCORES.items()), scores
    assert report["scene"]["accuracy"] >= MIN_SCENE_ACCURACY, report["scene"]
    assert report["vocabulary"] == demo_vocabulary().ref  # eval took the run's own vocabulary (classes.json)
    classes = json.loads((out / CLASSES).read_text())
    objects = {c["name"] for c in classes["classes"] if c["counts"]["object"]}
    assert objects <= set(OBJECT_PARTS) and len(objects) >= 8, objects  # classes, not caption words: no 'automobile'
    assert [c["name"] for c in classes["classes"][:11]] == list(OBJECT_PARTS)
