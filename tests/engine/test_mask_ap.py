"""COCO mask AP: hand-computed cases, one level at a time, and an export scored against itself."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.coco_export import export_coco
from ovlabel.engine.evaluation import evaluate, format_report
from ovlabel.engine.mask_ap import ap_lines, level_ground_truth, mask_ap
from tests.engine.label_runs import write_labels_run

H, W = 40, 60


def box(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def gt(*anns: tuple[int, int, np.ndarray, str]) -> dict[str, Any]:
    """(image id, category id, mask, level) per annotation; images 1 and 2, categories car (1), wheel (2)."""
    return {"images": [{"id": i, "height": H, "width": W, "file_name": f"{i}.png"} for i in (1, 2)],
            "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "wheel"}],
            "annotations": [{"image_id": i, "category_id": c, "segmentation": rle_utils.encode(m), "level": lv}
                            for i, c, m, lv in anns]}


def seg(label: str, mask: np.ndarray, score: float, level: str = "object") -> dict[str, Any]:
    return {"label": label, "level": level, "score": score, "mask": rle_utils.encode(mask)}


def row(*segments: dict[str, Any]) -> dict[str, Any]:
    return {"segments": list(segments)}


def category(segment: dict[str, Any]) -> Optional[int]:
    return {"car": 1, "wheel": 2}.get(segment["label"])


CAR = box(0, 0, 30, 10)  # 300 px


def test_one_match_at_iou_0_77_scores_the_six_thresholds_up_to_0_75() -> None:
    pred = box(0, 0, 23, 10)  # IoU 230 / 300 = 0.767: a hit at 0.50, 0.55, ..., 0.75, a miss from 0.80
    ap = mask_ap(gt((1, 1, CAR, "object")), [(1, row(seg("car", pred, 0.9))), (2, None)], category)["object"]
    assert ap["AP"] == pytest.approx(0.6) and ap["AP50"] == pytest.approx(1.0) and ap["AP75"] == pytest.approx(1.0)
    assert ap["per_category"]["car"] == pytest.approx(0.6) and ap["detections"] == 1


@pytest.mark.parametrize("hit_score, false_score, expected", [(0.9, 0.5, 1.0), (0.5, 0.9, 0.5)])
def test_the_ranking_by_score_counts(hit_score: float, false_score: float, expected: float) -> None:
    preds = row(seg("car", CAR, hit_score), seg("car", box(40, 20, 60, 40), false_score))
    ap = mask_ap(gt((1, 1, CAR, "object")), [(1, preds)], category)["object"]
    assert ap["AP"] == pytest.approx(expected)


def test_levels_are_scored_apart_and_classes_naming_no_category_are_left_out() -> None:
    truth = gt((1, 1, CAR, "object"), (1, 2, box(0, 5, 5, 10), "part"), (2, 1, box(30, 20, 60, 40), None))
    preds = [(1, row(seg("car", CAR, 0.9), seg("tree", box(40, 0, 60, 20), 0.99))),
             (2, row(seg("car", box(30, 20, 60, 40), 0.8)))]
    ap = mask_ap(truth, preds, category)
    assert ap["object"]["AP"] == pytest.approx(1.0) and ap["object"]["detections"] == 2  # 'tree' left out
    assert ap["part"]["AP"] == 0.0 and ap["part"]["detections"] == 0  # GT parts, no predicted ones
    assert mask_ap(gt((1, 1, CAR, "object")), preds, category)["part"] is None  # no GT parts at all
    assert any(line.startswith("object  COCO mask AP 100.0") for line in ap_lines(ap))


def test_only_the_images_passed_are_scored() -> None:
    truth = gt((1, 1, CAR, "object"), (2, 1, CAR, "object"))
    assert len(level_ground_truth(truth, "object", [1])["annotations"]) == 1
    ap = mask_ap(truth, [(1, row(seg("car", CAR, 0.9)))], category)["object"]
    assert ap["AP"] == pytest.approx(1.0)  # image 2's car is not missed: image 2 is not scored
    assert mask_ap(truth, [(1, row(seg("car", CAR, 0.9))), (2, None)], category)["object"]["AP"] < 0.6


def test_crowd_and_polygon_ground_truth() -> None:
    truth = gt((1, 1, CAR, "object"))
    truth["annotations"][0]["segmentation"] = [[0, 0, 30, 0, 30, 10, 0, 10]]
    truth["annotations"].append({"image_id": 1, "category_id": 1, "iscrowd": 1, "level": "object",
                                 "segmentation": rle_utils.encode(box(40, 20, 60, 40))})
    preds = row(seg("car", CAR, 0.9), seg("car", box(41, 21, 60, 40), 0.95))  # the second lies in the crowd
    assert mask_ap(truth, [(1, preds)], category)["object"]["AP"] > 0.9


def test_an_export_scored_against_itself_is_perfect(tmp_path: Path) -> None:
    out = write_labels_run(tmp_path, "3")
    export_coco(str(out), str(tmp_path / "gt.json"))
    report = evaluate(str(out), str(tmp_path / "gt.json"))
    for level in ("object", "part"):
        assert report["mask_ap"][level]["AP"] == pytest.approx(1.0)
        assert report["levels"][level]["precision"] == report["levels"][level]["recall"] == 1.0
    assert "COCO mask AP" in format_report(report)
    assert json.loads(json.dumps(report))["mask_ap"]["part"]["AP50"] == pytest.approx(1.0)
