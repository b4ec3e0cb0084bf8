"""COCO mask AP of labels rows against COCO ground truth, per level (pycocotools ``COCOeval``, iouType segm).

``ovlabel eval`` reports it beside its precision/recall table. Each level is its own COCO evaluation:
the ground-truth annotations of that level (``level`` absent means 'object', as in
:mod:`ovlabel.engine.evaluation`) and the segments of that level, scored by their ``score``, with the
category a caller's ``category_of`` gives them (segments naming no GT category are left out, as a
COCO detector's unknown classes would be). Only the GT images passed in are scored, so a subset run
can be scored on what it labelled.
"""
from __future__ import annotations

import contextlib
import io
from typing import Any, Callable, Mapping, Optional, Sequence

from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

Row = Mapping[str, Any]
CategoryOf = Callable[[Mapping[str, Any]], Optional[Any]]  # a segment -> a GT category id, or None
STAT_NAMES = {"AP": 0, "AP50": 1, "AP75": 2, "AP_small": 3, "AP_medium": 4, "AP_large": 5, "AR100": 8}


def quiet_coco(dataset: Mapping[str, Any]) -> COCO:
    """A pycocotools ``COCO`` over an in-memory dict (without its progress prints)."""
    coco = COCO()
    coco.dataset = dict(dataset)
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def level_ground_truth(coco: Mapping[str, Any], level: str, image_ids: Sequence[Any]) -> dict[str, Any]:
    """The GT dict of one level on ``image_ids`` (ids, areas and crowd flags filled in where missing)."""
    keep = set(image_ids)
    images = {img["id"]: img for img in coco.get("images", []) if img["id"] in keep}
    anns = []
    for k, ann in enumerate(coco.get("annotations", []), start=1):
        if ann["image_id"] not in images or str(ann.get("level") or "object") != level:
            continue
        ann = {**ann, "id": ann.get("id", k), "iscrowd": int(ann.get("iscrowd", 0))}
        if "area" not in ann:
            img = images[ann["image_id"]]
            ann["area"] = float(mask_utils.area(_gt_rle(ann["segmentation"], img["height"], img["width"])))
        anns.append(ann)
    return {"images": list(images.values()), "categories": list(coco.get("categories", [])), "annotations": anns}


def _gt_rle(segmentation: Any, height: int, width: int) -> Any:
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation.get("counts"), list):
        return mask_utils.frPyObjects(segmentation, height, width)
    return segmentation


def level_results(pairs: Sequence[tuple[Any, Optional[Row]]], level: str, category_of: CategoryOf
                  ) -> list[dict[str, Any]]:
    """COCO results (image_id, category_id, segmentation, score) of the segments of ``level``."""
    results = []
    for image_id, row in pairs:
        for segment in (s for s in (row["segments"] if row else []) if s["level"] == level):
            category = category_of(segment)
            if category is not None:
                mask = segment["mask"]
                results.append({"image_id": image_id, "category_id": category, "score": float(segment["score"]),
                                "segmentation": {"size": [int(v) for v in mask["size"]], "counts": mask["counts"]}})
    return results


def _stat(value: float) -> Optional[float]:
    return None if value < 0 else float(value)


def _per_category(evaluation: COCOeval, names: Mapping[Any, str]) -> dict[str, float]:
    precision = evaluation.eval["precision"][:, :, :, 0, -1]  # (iou, recall, category) at all areas, maxDets 100
    out = {}
    for k, cat in enumerate(evaluation.params.catIds):
        values = precision[:, :, k]
        values = values[values > -1]
        if values.size:  # categories with no GT instance at this level are left out
            out[names.get(cat, str(cat))] = float(values.mean())
    return out


def level_ap(coco: Mapping[str, Any], pairs: Sequence[tuple[Any, Optional[Row]]], level: str,
             category_of: CategoryOf) -> Optional[dict[str, Any]]:
    """AP figures of one level (None when the GT has no annotation of it on these images)."""
    gt = level_ground_truth(coco, level, [image_id for image_id, _ in pairs])
    if not gt["annotations"]:
        return None
    results = level_results(pairs, level, category_of)
    if not results:
        return {**{name: 0.0 for name in STAT_NAMES}, "detections": 0, "per_category": {}}
    gt_api = quiet_coco(gt)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation = COCOeval(gt_api, gt_api.loadRes(results), iouType="segm")
        evaluation.params.imgIds = [image_id for image_id, _ in pairs]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    names = {c["id"]: c["name"] for c in gt["categories"]}
    stats = {name: _stat(evaluation.stats[k]) for name, k in STAT_NAMES.items()}
    return {**stats, "detections": len(results), "per_category": _per_category(evaluation, names)}


def mask_ap(coco: Mapping[str, Any], pairs: Sequence[tuple[Any, Optional[Row]]], category_of: CategoryOf,
            levels: Sequence[str] = ("object", "part")) -> dict[str, Optional[dict[str, Any]]]:
    """COCO mask AP per level of the labels rows ``pairs`` ((GT image id, its labels row or None), ...)."""
    return {level: level_ap(coco, pairs, level, category_of) for level in levels}


def ap_lines(report: Mapping[str, Optional[Mapping[str, Any]]]) -> list[str]:
    """Text lines (percent) of :func:`mask_ap`'s report."""
    lines = []
    for level, rep in report.items():
        if rep is not None:
            figures = "  ".join(f"{name} {_pct(rep[name])}" for name in ("AP", "AP50", "AP75", "AR100"))
            lines.append(f"{level:<7} COCO mask {figures}  ({rep['detections']} detections)")
    return lines


def _pct(value: Optional[float]) -> str:
    return "  n/a" if value is None else f"{100 * value:5.1f}"


__all__ = ["ap_lines", "level_ap", "level_ground_truth", "level_results", "mask_ap", "quiet_coco"]
