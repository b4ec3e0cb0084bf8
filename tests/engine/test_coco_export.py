"""``ovlabel export coco``: pycocotools loads the file, masks round-trip, parts link to objects, bad input is named."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools.coco import COCO

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.coco_export import export_coco
from ovlabel.engine.errors import LabelsError
from ovlabel.engine.labelset import open_run
from tests.engine.label_runs import H, IMAGES, W, box_mask, labels_rows, write_labels_run


def exported(tmp_path: Path, version: str = "3", **kwargs: Any) -> tuple[Path, COCO]:
    out = write_labels_run(tmp_path, version)
    target = tmp_path / "coco.json"
    export_coco(str(out), str(target), **kwargs)
    return out, COCO(str(target))


def test_pycocotools_loads_it_and_masks_round_trip(tmp_path: Path) -> None:
    out, coco = exported(tmp_path)
    rows = labels_rows(tmp_path, "3")
    assert len(coco.getImgIds()) == 5
    for image_id, row in zip(sorted(coco.getImgIds()), rows):
        img = coco.loadImgs(image_id)[0]
        assert (img["file_name"], img["image_key"], img["height"], img["width"]) == (row["image_uri"], row["image_id"],
                                                                                   H, W)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        segments = [s for s in row["segments"] if s["level"] in ("object", "part")]
        assert len(anns) == len(segments)
        for ann, s in zip(anns, segments):
            assert (coco.annToMask(ann).astype(bool) == rle_utils.decode(s["mask"])).all()
            assert ann["area"] == s["area"] == coco.annToMask(ann).sum() and ann["bbox"] == s["bbox_xywh"]
            assert ann["score"] == pytest.approx(s["score"]) and ann["level"] == s["level"]
    assert (coco.annToMask(coco.loadAnns(1)[0]).astype(bool) == box_mask(IMAGES[0][2][0][2])).all()


def test_categories_are_the_run_classes_with_its_ids(tmp_path: Path) -> None:
    out, coco = exported(tmp_path)
    ids = open_run(str(out)).classes().ids
    cats = {c["name"]: c for c in coco.loadCats(coco.getCatIds())}
    assert set(cats) == {"car", "dog", "house", "tail", "wheel", "door"}  # 'puppy' and 'automobile' are classes
    assert all(c["id"] == ids[name] for name, c in cats.items())
    assert cats["dog"]["counts"] == {"object": 3} and cats["tail"]["counts"] == {"part": 1}
    words = {a["label"] for a in coco.loadAnns(coco.getAnnIds(catIds=[cats["dog"]["id"]]))}
    assert words == {"puppy", "dog"}


def test_version_2_shards_export_their_caption_words(tmp_path: Path) -> None:
    _, coco = exported(tmp_path, "2")
    assert {"puppy", "dog", "automobile", "car"} <= {c["name"] for c in coco.loadCats(coco.getCatIds())}


def test_parts_link_to_their_object_and_objects_to_the_scene(tmp_path: Path) -> None:
    _, coco = exported(tmp_path, levels=("scene", "object", "part"))
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[2]))  # img1: street, car (wheel), dog
    by_level = {lv: [a for a in anns if a["level"] == lv] for lv in ("scene", "object", "part")}
    scene, (car, dog), (wheel,) = by_level["scene"][0], by_level["object"], by_level["part"]
    assert scene["parent_id"] is None and car["parent_id"] == dog["parent_id"] == scene["id"]
    assert wheel["parent_id"] == car["id"] and wheel["parent_segment_id"] == car["segment_id"]
    assert coco.loadImgs(2)[0]["scene"] == "street"
    _, parts_only = exported(tmp_path / "p", levels=("part",))
    assert {a["parent_id"] for a in parts_only.dataset["annotations"]} == {None}
    assert all(a["parent_segment_id"] is not None for a in parts_only.dataset["annotations"])


def test_captions_spans_and_sources_travel(tmp_path: Path) -> None:
    _, coco = exported(tmp_path)
    puppy = coco.loadAnns(1)[0]
    caption = coco.loadImgs(puppy["image_id"])[0]["captions"][puppy["caption_index"]]
    assert caption[slice(*puppy["char_span"])] == "puppy" and puppy["source"] == "caption"


def test_an_empty_run_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run" / "labels").mkdir(parents=True)
    with pytest.raises(LabelsError, match="no labels shards"):
        export_coco(str(tmp_path / "run"), str(tmp_path / "x.json"))
    assert not (tmp_path / "x.json").exists()


def test_a_missing_image_is_named_unless_the_check_is_off(tmp_path: Path) -> None:
    out = write_labels_run(tmp_path, "2")
    gone = tmp_path / "images" / "img3.png"
    gone.unlink()
    with pytest.raises(LabelsError, match=f"image file not found: '{gone}' .*--no-image-check"):
        export_coco(str(out), str(tmp_path / "x.json"))
    assert export_coco(str(out), str(tmp_path / "x.json"), require_images=False)["images"] == 5
    assert len(json.loads((tmp_path / "x.json").read_text())["images"]) == 5


def test_an_unwritable_target_is_named(tmp_path: Path) -> None:
    out = write_labels_run(tmp_path, "2")
    (tmp_path / "file").write_text("")
    with pytest.raises(LabelsError, match="cannot write .*file/x.json"):
        export_coco(str(out), str(tmp_path / "file" / "x.json"))


def test_export_to_an_fsspec_uri(tmp_path: Path) -> None:
    import fsspec

    out = write_labels_run(tmp_path, "3")
    export_coco(str(out), "memory://exports/coco.json")
    with fsspec.open("memory://exports/coco.json", "rt") as fh:
        data = json.load(fh)
    assert len(data["annotations"]) == sum(len(o) + len(p) for _, _, o, p in IMAGES)
    assert np.isclose(sum(a["area"] for a in data["annotations"]), sum(
        box_mask(b).sum() for _, _, o, p in IMAGES for b in [x[2] for x in o] + [x[2] for x in p]))
