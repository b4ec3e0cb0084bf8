"""``ovlabel eval``: hand-made ground truth and predictions with known precision, recall and IoU."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.errors import ConfigError
from ovlabel.engine.evaluation import (
    EvaluationError,
    LabelMap,
    eval_vocabulary,
    evaluate,
    evaluate_rows,
    format_report,
    match_one_to_one,
    parse_ground_truth,
    plural,
    run_vocabulary,
)
from ovlabel.engine.errors import LabelsError
from ovlabel.engine.layout import CLASSES
from ovlabel.engine.ontology import load_vocabulary
from ovlabel.pipelines.cli import main
from ovlabel.schemas import LABELS_SCHEMA

VOCABULARY = load_vocabulary("demo")  # what `ovlabel eval` maps a demo run's labels through

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
H, W = 40, 60


def box(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[y0:y1, x0:x1] = True
    return mask


# ground truth: image 1 (street) car, person + head part, a crowd of people; image 2 (beach) boat;
# image 3 (kitchen) cup, which has no labels row
CAR, PERSON, HEAD, CROWD, BOAT, CUP = box(0, 0, 20, 20), box(30, 0, 40, 30), box(30, 0, 40, 10), box(45, 20, 60, 40), \
    box(10, 10, 30, 30), box(0, 0, 10, 10)


def coco() -> dict[str, Any]:
    cats = [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}, {"id": 3, "name": "head"}, {"id": 4, "name": "boat"},
            {"id": 5, "name": "cup"}]
    images = [{"id": 1, "file_name": "images/a.png", "height": H, "width": W, "scene": "street"},
              {"id": 2, "file_name": "images/b.png", "height": H, "width": W, "scene": "night sky"},
              {"id": 3, "file_name": "images/c.png", "height": H, "width": W, "scene": "kitchen"}]
    anns = [(1, 1, 1, CAR, "object", None, 0), (2, 1, 2, PERSON, "object", None, 0), (3, 1, 3, HEAD, "part", 2, 0),
            (4, 1, 2, CROWD, "object", None, 1), (5, 2, 4, BOAT, "object", None, 0), (6, 3, 5, CUP, "object", None, 0)]
    annotations = [{"id": i, "image_id": img, "category_id": cat, "segmentation": rle_utils.encode(m), "level": lv,
                    "parent_id": parent, "iscrowd": crowd} for i, img, cat, m, lv, parent, crowd in anns]
    return {"images": images, "annotations": annotations, "categories": cats}


def seg(label: str, level: str, mask: np.ndarray, sid: int = 1, parent: Optional[int] = 0) -> dict[str, Any]:
    x, y, w, h = rle_utils.bbox_xywh(rle_utils.encode(mask))
    return {"segment_id": sid, "parent_id": parent, "level": level, "label": label, "class_name": label, "phrase": label,
            "caption_index": 0, "char_span": [0, 1], "score": 0.9, "clip_similarity": 0.3, "source": "caption",
            "mask": rle_utils.encode(mask), "bbox_xywh": [x, y, w, h], "area": int(mask.sum()),
            "predicted_iou": None, "stability_score": None}


def rows() -> list[dict[str, Any]]:
    root = seg("street", "scene", np.ones((H, W), bool), 0, None)
    a = [root,
         seg("automobile", "object", box(0, 0, 20, 16), 1),        # car, IoU 0.8: TP
         seg("man", "object", box(30, 0, 40, 30), 2),              # person, IoU 1: TP
         seg("woman", "object", box(30, 0, 40, 30), 3),            # duplicate of the same person: FP
         seg("person", "object", box(46, 21, 60, 40), 4),          # inside the crowd: ignored
         seg("dog", "object", box(0, 20, 10, 40), 5),              # no such GT category: FP (unmapped)
         seg("head", "part", box(30, 0, 40, 5), 6, 2),             # head, IoU 0.5: TP at 0.5
         seg("arm", "part", box(30, 10, 40, 20), 7, 2)]            # unmapped part: FP
    b = [seg("sky", "scene", np.ones((H, W), bool), 0, None),
         seg("sailboat", "object", box(0, 0, 10, 10), 1)]          # wrong place: FP, boat missed
    captions_a = ["An automobile, a man and people on a street.", "The man's head."]
    return [{"image_id": "a", "image_uri": "/x/images/a.png", "captions": captions_a, "scene": "street", "segments": a},
            {"image_id": "2", "image_uri": "/x/images/other.png", "captions": ["Something at night."], "scene": "sky",
             "segments": b},
            {"image_id": "zzz", "image_uri": "/x/images/zzz.png", "captions": ["x"], "scene": "scene", "segments": []}]


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return evaluate_rows(rows(), parse_ground_truth(coco()), 0.5, VOCABULARY)


def test_object_precision_recall_and_iou(report: dict[str, Any]) -> None:
    obj = report["levels"]["object"]
    # TP car + person; FP duplicate person, dog, sailboat; ignored crowd; FN boat, cup
    assert (obj["tp"], obj["fp"], obj["fn"], obj["ignored"]) == (2, 3, 2, 1)
    assert obj["precision"] == pytest.approx(2 / 5)
    assert obj["recall"] == pytest.approx(2 / 4)
    assert obj["mean_iou"] == pytest.approx((0.8 + 1.0) / 2)
    assert obj["per_category"]["car"]["tp"] == 1 and obj["per_category"]["(unmapped)"]["fp"] == 1
    assert obj["per_category"]["cup"]["fn"] == 1


def test_part_level_and_threshold(report: dict[str, Any]) -> None:
    part = report["levels"]["part"]
    assert (part["tp"], part["fp"], part["fn"]) == (1, 1, 0)
    assert part["mean_iou"] == pytest.approx(0.5)
    strict = evaluate_rows(rows(), parse_ground_truth(coco()), 0.75, VOCABULARY)["levels"]["part"]
    assert (strict["tp"], strict["fp"], strict["fn"]) == (0, 2, 1)


def test_scene_accuracy_and_images(report: dict[str, Any]) -> None:
    assert report["scene"]["accuracy"] == pytest.approx(2 / 3)  # street ok, sky -> night sky ok, missing kitchen
    assert report["images"] == {"gt": 3, "labelled": 2, "missing": 1, "unmatched_rows": 1, "scored": 3,
                                "only_labelled": False}
    assert report["unmapped_labels"] == {"dog": 1, "arm": 1}


def test_recall_over_mentioned_categories(report: dict[str, Any]) -> None:
    obj = report["levels"]["object"]
    # image a names car and person (2), b names no boat, c has no row (1)
    assert obj["gt_mentioned"] == 3
    assert obj["recall_mentioned"] == pytest.approx(2 / 3)


def test_one_to_one_prefers_the_best_iou() -> None:
    iou = np.array([[0.6, 0.9], [0.0, 0.7]])
    assert match_one_to_one(iou, np.ones((2, 2), bool), 0.5) == [(0, 1, 0.9)]
    assert match_one_to_one(iou, np.array([[True, False], [True, True]]), 0.5) == [(1, 1, 0.7), (0, 0, 0.6)]


def test_label_map_and_plurals() -> None:
    labels = LabelMap(["person", "car", "night sky"], VOCABULARY)
    assert labels.category("Woman") == "person" and labels.category("dog") is None and labels.category("car") == "car"
    assert labels.category("automobiles") == "car"  # a plural of a synonym
    assert labels.mentioned(["Two women and a starry sky."]) == {"person", "night sky"}
    plain = LabelMap(["person", "car"])  # no vocabulary: labels name categories by their own name only
    assert plain.category("car") == "car" and plain.category("woman") is None
    assert plain.mentioned(["Two women and cars."]) == {"car"}
    coco = LabelMap(["person", "bicycle", "cell phone"], load_vocabulary("coco"))
    assert coco.category("bike") == "bicycle" and coco.category("Cell_Phone") == "cell phone"
    assert coco.category("smartphone") == "cell phone" and coco.mentioned(["Kids on bikes."]) == {"person", "bicycle"}
    assert [plural(w) for w in ("bus", "puppy", "day", "man", "night sky")] == ["buses", "puppies", "days", "men",
                                                                             "night skies"]


def test_real_coco_style_gt_without_levels_or_scenes() -> None:
    data = coco()
    for ann in data["annotations"]:
        ann.pop("level"), ann.pop("parent_id")
    data["annotations"][0]["segmentation"] = [[0, 0, 20, 0, 20, 20, 0, 20]]  # polygons
    for img in data["images"]:
        img.pop("scene")
    images = parse_ground_truth(data)
    assert {i.level for img in images for i in img.instances} == {"object"}
    rep = evaluate_rows([{"image_id": "1", "image_uri": "a.png", "captions": ["a car"], "scene": "scene",
                          "segments": [seg("car", "object", CAR)]}], images, 0.5)
    assert rep["levels"]["object"]["tp"] == 1 and rep["scene"]["images"] == 0
    assert rep["levels"]["object"]["recall"] == pytest.approx(1 / 5)  # car, person, head, boat, cup (crowd aside)


def write_run(folder: Path) -> Path:
    (folder / "labels").mkdir(parents=True)
    prov = {"pipeline_version": "0", "schema_version": "1", "mask_generator": "x", "clip_model": "y", "run_id": "r"}
    full = [{**r, "width": W, "height": H, "provenance": prov, "row_index": i, "row_hash": str(i)}
            for i, r in enumerate(rows())]
    pq.write_table(pa.Table.from_pylist(full, schema=LABELS_SCHEMA), folder / "labels" / "part-0.parquet")
    gt = folder / "instances.json"
    gt.write_text(json.dumps(coco()))
    return gt


def test_evaluate_reads_shards_and_cli_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = write_run(tmp_path / "run")
    rep = evaluate(str(tmp_path / "run"), str(gt), vocabulary=VOCABULARY)
    assert rep["levels"]["object"]["tp"] == 2 and rep["vocabulary"] == VOCABULARY.ref
    assert evaluate(str(tmp_path / "run" / "labels"), str(gt), vocabulary=VOCABULARY)["levels"] == rep["levels"]
    text = format_report(rep)
    assert "object  P  40.0  R  50.0" in text and "scene   accuracy  66.7" in text
    out = tmp_path / "report.json"
    assert main(["eval", "--labels", str(tmp_path / "run"), "--gt", str(gt), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["levels"]["part"]["tp"] == 1
    assert "ovlabel eval" in capsys.readouterr().out


def test_errors_are_readable(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="cannot be read as COCO JSON"):
        evaluate(str(tmp_path), str(tmp_path / "gt.json"))
    gt = write_run(tmp_path / "run")
    with pytest.raises(LabelsError, match="no labels shards"):
        evaluate(str(tmp_path / "run" / "errors"), str(gt))
    with pytest.raises(EvaluationError, match="--iou"):
        evaluate(str(tmp_path / "run"), str(gt), iou_threshold=0.0)
    assert main(["eval", "--labels", str(tmp_path / "run"), "--gt", str(tmp_path / "nope.json")]) == 2


def test_only_labelled_scores_the_images_the_run_labelled() -> None:
    full = evaluate_rows(rows(), parse_ground_truth(coco()), 0.5, VOCABULARY, coco=coco())
    subset = evaluate_rows(rows(), parse_ground_truth(coco()), 0.5, VOCABULARY, coco=coco(), only_labelled=True)
    # image 3 (a cup) has no labels row: a miss of the whole run, not scored for a subset run
    assert full["levels"]["object"]["per_category"]["cup"]["fn"] == 1 and full["levels"]["object"]["recall"] == 0.5
    assert "cup" not in subset["levels"]["object"]["per_category"]
    assert subset["levels"]["object"]["recall"] == pytest.approx(2 / 3)
    assert subset["images"]["scored"] == 2 and subset["scene"]["images"] == 2
    assert subset["mask_ap"]["object"]["AP"] > full["mask_ap"]["object"]["AP"]
    assert "scoring only the 2 labelled" in format_report(subset)


def test_cli_reports_mask_ap_and_takes_only_labelled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = write_run(tmp_path / "run")
    out = tmp_path / "report.json"
    assert main(["eval", "--labels", str(tmp_path / "run"), "--gt", str(gt), "--only-labelled", "--json",
                 str(out)]) == 0
    text = capsys.readouterr().out
    assert "COCO mask AP" in text and "object  COCO mask AP" in text and "part    COCO mask AP" in text
    report = json.loads(out.read_text())
    assert report["images"]["only_labelled"] is True and report["mask_ap"]["part"]["AP50"] == pytest.approx(1.0)


def test_eval_refuses_a_shard_of_another_schema_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = write_run(tmp_path / "run")
    table = pq.read_table(tmp_path / "run" / "labels" / "part-0.parquet")
    old = table.replace_schema_metadata({b"ovlabel.schema_version": b"1", b"ovlabel.kind": b"labels"})
    pq.write_table(old, tmp_path / "run" / "labels" / "part-1.parquet")
    assert main(["eval", "--labels", str(tmp_path / "run"), "--gt", str(gt)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "part-1.parquet' has schema version '1'" in err
def _object_tp(report_path: Path) -> int:
    return json.loads(report_path.read_text())["levels"]["object"]["tp"]


def test_eval_maps_labels_through_the_runs_vocabulary_or_the_one_named(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    gt, out = write_run(run), tmp_path / "r.json"
    base = ["eval", "--labels", str(run), "--gt", str(gt), "--json", str(out)]
    assert main(base) == 0 and _object_tp(out) == 0  # no classes.json: 'automobile', 'man' name no category
    assert "vocabulary: none" in capsys.readouterr().out
    assert main([*base, "--vocabulary", "demo"]) == 0 and _object_tp(out) == 2
    (run / CLASSES).write_text(json.dumps({"vocabulary": VOCABULARY.ref, "classes": []}))
    assert run_vocabulary(str(run)) == VOCABULARY and run_vocabulary(str(run / "labels")) == VOCABULARY
    assert main(base) == 0 and _object_tp(out) == 2  # the run's own vocabulary, from its classes.json
    assert main([*base, "--vocabulary", "none"]) == 0 and _object_tp(out) == 0
    assert main([*base, "--vocabulary", "nosuch"]) == 2
    assert "no shipped vocabulary 'nosuch'" in capsys.readouterr().err
    (run / CLASSES).write_text(json.dumps({"vocabulary": {"name": "demo", "sha256": "0" * 64}, "classes": []}))
    with pytest.raises(EvaluationError, match="has changed since the run"):
        eval_vocabulary(None, str(run))
    assert eval_vocabulary("coco", str(run)) == load_vocabulary("coco")
    with pytest.raises(ConfigError, match="not found"):
        eval_vocabulary(str(tmp_path / "missing.yaml"), str(run))


def test_eval_reads_schema_2_shards_whose_segments_have_no_class(tmp_path: Path) -> None:
    segment_v2 = pa.struct([f for f in LABELS_SCHEMA.field("segments").type.value_type if f.name != "class_name"])
    fields = [pa.field("segments", pa.list_(pa.field("item", segment_v2, nullable=False)), nullable=False)
              if f.name == "segments" else f for f in LABELS_SCHEMA]
    schema_v2 = pa.schema(fields, metadata={b"ovlabel.schema_version": b"2", b"ovlabel.kind": b"labels"})
    prov = {"pipeline_version": "0", "schema_version": "2", "mask_generator": "x", "clip_model": "y", "run_id": "r"}
    full = [{**r, "segments": [{k: v for k, v in s.items() if k != "class_name"} for s in r["segments"]],
             "width": W, "height": H, "provenance": prov, "row_index": i, "row_hash": str(i)}
            for i, r in enumerate(rows())]
    (tmp_path / "labels").mkdir()
    pq.write_table(pa.Table.from_pylist(full, schema=schema_v2), tmp_path / "labels" / "part-0.parquet")
    gt = tmp_path / "instances.json"
    gt.write_text(json.dumps(coco()))
    assert evaluate(str(tmp_path), str(gt), vocabulary=VOCABULARY)["levels"]["object"]["tp"] == 2
