"""The procedural demo world: determinism, ground-truth consistency, captions, COCO writers, caching."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.matching.crops import crop_region, mask_box
from ovlabel.engine.demo import scenes
from ovlabel.engine.demo.scenes import (
    MIN_OBJECT_FRACTION,
    MIN_PART_FRACTION,
    SCENE_SPECS,
    SCENE_TYPES,
    DemoScene,
    ensure_dataset,
    generate_scene,
    iter_region_samples,
    write_dataset,
)
from ovlabel.engine.demo.templates import OBJECT_NOUNS, PART_NOUNS, SCENE_PHRASES, surface_words

# pycocotools' own numpy-2 deprecation noise when decoding
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
SIZE = 128
SEEDS = tuple(range(10))  # every scene type twice


@pytest.fixture(scope="module")
def demo_scenes() -> list[DemoScene]:
    return [generate_scene(seed, SIZE) for seed in SEEDS]


def test_same_seed_gives_the_same_scene() -> None:
    a, b, c = generate_scene(7, 96), generate_scene(7, 96), generate_scene(8, 96)
    assert a.scene == b.scene and a.captions == b.captions
    np.testing.assert_array_equal(a.image, b.image)
    assert [i.category for i in a.instances] == [i.category for i in b.instances]
    assert all(np.array_equal(x.mask, y.mask) for x, y in zip(a.instances, b.instances))
    assert not np.array_equal(a.image, c.image)


def test_every_scene_type_with_plausible_objects(demo_scenes: list[DemoScene]) -> None:
    assert {s.scene for s in demo_scenes} == set(SCENE_TYPES)
    for s in demo_scenes:
        assert s.image.shape == (SIZE, SIZE, 3) and s.image.dtype == np.uint8
        assert s.objects, f"seed {s.seed} has no visible object"
        allowed = {slot.category for slot in SCENE_SPECS[s.scene]}
        assert {o.category for o in s.objects} <= allowed


def test_masks_are_visible_pixels_above_thresholds(demo_scenes: list[DemoScene]) -> None:
    for s in demo_scenes:
        for inst in s.instances:
            assert inst.mask.shape == (SIZE, SIZE) and inst.mask.dtype == bool
            floor = (MIN_OBJECT_FRACTION if inst.level == "object" else MIN_PART_FRACTION) * SIZE * SIZE
            assert inst.area >= floor
            assert not (inst.mask & ~inst.extent).any(), "visible pixels outside the unoccluded extent"
        objects = np.stack([o.mask for o in s.objects]).astype(np.int32)
        assert objects.sum(axis=0).max() <= 1, "object masks overlap: occlusion not resolved"
        if s.parts:
            assert np.stack([p.mask for p in s.parts]).astype(np.int32).sum(axis=0).max() <= 1


def test_parts_lie_within_their_parent(demo_scenes: list[DemoScene]) -> None:
    n_parts = 0
    for s in demo_scenes:
        for part in s.parts:
            parent = s.instance(part.parent_id)
            assert parent.level == "object" and parent.parent_id is None
            assert (part.mask & parent.mask).sum() >= 0.95 * part.area
            x0, y0, x1, y1 = mask_box(parent.extent)
            assert part.mask[y0:y1, x0:x1].sum() >= 0.95 * part.area
            n_parts += 1
        assert all(o.parent_id is None for o in s.objects)
    assert n_parts > 20


def test_captions_mention_only_present_categories(demo_scenes: list[DemoScene]) -> None:
    word_to_category = {w: c for c in (*OBJECT_NOUNS, *PART_NOUNS) for w in surface_words(c)}
    scene_words = {kind: set(re.findall(r"[a-z]+", " ".join(SCENE_PHRASES[kind]))) - {"a", "an", "the", "on",
                   "in", "at", "under", "along", "beneath", "dark", "starry", "sandy", "grassy", "open", "city",
                   "quiet", "bright", "small"} for kind in SCENE_TYPES}
    for s in demo_scenes:
        assert len(s.captions) == 5 and len(set(s.captions)) == 5
        for caption in s.captions:
            assert caption[0].isupper() and caption.endswith(".") and "  " not in caption
            words = set(re.findall(r"[a-z]+", caption.lower()))
            mentioned = {word_to_category[w] for w in words if w in word_to_category}
            assert mentioned <= s.categories(), (s.seed, caption)
            for kind, kind_words in scene_words.items():
                assert kind == s.scene or not (words & kind_words), (s.seed, caption)
        assert any(s.scene.split()[-1] in c for c in s.captions), "no caption names the scene"


def test_region_samples_feed_crop_region(demo_scenes: list[DemoScene]) -> None:
    s = demo_scenes[1]
    samples = list(iter_region_samples(s))
    assert samples[0][1] == s.scene and samples[0][0].all()
    assert [label for _, label in samples[1:]] == [i.category for i in s.instances]
    mask, _ = samples[1]
    assert crop_region(s.image, mask, "masked", 32).shape == (32, 32, 3)
    assert [label for _, label in iter_region_samples(s, levels=("part",))] == [p.category for p in s.parts]


def test_write_dataset_coco_and_manifest(tmp_path: Path) -> None:
    out = write_dataset(tmp_path / "demo", [0, 1, 2, 3, 4], size=96)
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and all((out / r["image"]).is_file() and len(r["captions"]) == 5 for r in rows)
    assert rows[0]["image_id"] == "demo-000000" and rows[0]["image"] == "images/demo-000000.png"
    coco = COCO(str(out / "instances.json"))
    assert {c["supercategory"] for c in coco.loadCats(coco.getCatIds())} == {"object", "part"}
    assert {img["scene"] for img in coco.loadImgs(coco.getImgIds())} == set(SCENE_TYPES)
    anns = coco.loadAnns(coco.getAnnIds())
    by_id = {a["id"]: a for a in anns}
    for ann in anns:
        assert isinstance(ann["segmentation"]["counts"], str) and ann["iscrowd"] == 0
        mask = coco.annToMask(ann)
        assert mask.shape == (96, 96) and int(mask.sum()) == ann["area"] > 0
        assert rle_utils.decode(ann["segmentation"]).sum() == ann["area"]
        if ann["level"] == "part":
            parent = by_id[ann["parent_id"]]
            assert parent["level"] == "object" and parent["image_id"] == ann["image_id"]
        else:
            assert ann["parent_id"] is None


def test_ensure_dataset_skips_when_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = scenes.generate_scene

    def counting(seed: int, size: int = 256, scene: str | None = None) -> DemoScene:
        calls.append(seed)
        return real(seed, size, scene)

    monkeypatch.setattr(scenes, "generate_scene", counting)
    ensure_dataset(tmp_path, [5, 6], size=64)
    assert calls == [5, 6]
    stamp = (tmp_path / "instances.json").stat().st_mtime_ns
    ensure_dataset(tmp_path, [5, 6], size=64)
    assert calls == [5, 6] and (tmp_path / "instances.json").stat().st_mtime_ns == stamp
    ensure_dataset(tmp_path, [6], size=64)  # other parameters: regenerated, stale image removed
    assert calls == [5, 6, 6]
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["demo-000006.png"]
