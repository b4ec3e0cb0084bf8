"""A run's labels as one COCO instances JSON (``ovlabel export coco RUN OUT.json``).

``images``: one per labels row, ids 1.. in shard order, with ``file_name`` and ``uri`` (the row's
``image_uri``), ``height``, ``width``, and the extras ``image_key`` (the row's image_id, which
``ovlabel eval`` pairs by), ``captions``, ``scene`` (the root's class) and ``scene_score``.
``categories``: the classes the exported segments use, with the run's class ids
(:class:`ovlabel.engine.labelset.ClassIndex`) and ``counts`` per level. ``annotations``: one per
segment of the chosen levels, ids 1.., with the segment's COCO RLE as ``segmentation``, ``bbox``,
``area``, ``score``, ``iscrowd`` 0 and the extras ``level``, ``label`` (the caption word),
``segment_id``, ``parent_segment_id``, ``parent_id`` (the annotation id of the segment's parent when
that level is exported too: a part names its object, an object its scene), ``source``,
``caption_index`` and ``char_span``. The file is also ground truth ``ovlabel eval --gt`` reads
(``level``, ``parent_id``, ``scene``).
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any, Iterable, Mapping, Sequence

import fsspec

from ovlabel.engine.errors import LabelsError
from ovlabel.engine.labelset import ClassIndex, open_run, segment_class

log = logging.getLogger(__name__)
DEFAULT_LEVELS = ("object", "part")
EXPORT_COLUMNS = ["image_id", "image_uri", "width", "height", "captions", "segments"]


def coco_image(row: Mapping[str, Any], image_id: int) -> dict[str, Any]:
    root = next((s for s in row["segments"] if s["level"] == "scene"), None)
    return {"id": image_id, "file_name": row["image_uri"], "uri": row["image_uri"], "height": int(row["height"]),
            "width": int(row["width"]), "image_key": row["image_id"], "captions": list(row["captions"] or []),
            "scene": segment_class(root) if root else None, "scene_score": float(root["score"]) if root else None}


def coco_annotation(segment: Mapping[str, Any], ann_id: int, image_id: int, classes: ClassIndex) -> dict[str, Any]:
    mask = segment["mask"]
    return {"id": ann_id, "image_id": image_id, "category_id": classes.id_of(segment_class(segment)),
            "segmentation": {"size": [int(v) for v in mask["size"]], "counts": mask["counts"]},
            "bbox": [float(v) for v in segment["bbox_xywh"]], "area": int(segment["area"]),
            "score": float(segment["score"]), "iscrowd": 0, "level": segment["level"], "label": segment["label"],
            "segment_id": int(segment["segment_id"]), "parent_segment_id": segment["parent_id"],
            "source": segment["source"], "caption_index": segment["caption_index"],
            "char_span": list(segment["char_span"]) if segment["char_span"] is not None else None}


def row_annotations(row: Mapping[str, Any], image_id: int, first_id: int, classes: ClassIndex,
                    levels: Sequence[str]) -> list[dict[str, Any]]:
    """The annotations of one row's segments at ``levels``, ids from ``first_id``, parents linked."""
    anns: list[dict[str, Any]] = []
    by_segment: dict[int, int] = {}
    for segment in (s for s in row["segments"] if s["level"] in levels):
        ann = coco_annotation(segment, first_id + len(anns), image_id, classes)
        by_segment[ann["segment_id"]] = ann["id"]
        anns.append(ann)
    for ann in anns:
        ann["parent_id"] = by_segment.get(ann["parent_segment_id"]) if ann["parent_segment_id"] is not None else None
    return anns


def _categories(annotations: Iterable[Mapping[str, Any]], classes: ClassIndex) -> list[dict[str, Any]]:
    counts: dict[int, Counter] = {}
    for ann in annotations:
        counts.setdefault(ann["category_id"], Counter())[ann["level"]] += 1
    names = {v: k for k, v in classes.ids.items()}
    return [{"id": cid, "name": names[cid], "supercategory": "", "counts": dict(sorted(counts[cid].items()))}
            for cid in sorted(counts)]


def coco_dict(rows: Sequence[Mapping[str, Any]], classes: ClassIndex, levels: Sequence[str] = DEFAULT_LEVELS
              ) -> dict[str, Any]:
    """The COCO instances dict of labels ``rows`` (images in row order)."""
    images, annotations = [], []
    for k, row in enumerate(rows, start=1):
        images.append(coco_image(row, k))
        annotations.extend(row_annotations(row, k, len(annotations) + 1, classes, levels))
    return {"info": {"description": "ovlabel pseudo-labels", "levels": list(levels), "class_ids": classes.origin},
            "images": images, "annotations": annotations, "categories": _categories(annotations, classes)}


def check_images(rows: Iterable[Mapping[str, Any]]) -> None:
    """Refuse rows whose image file is gone (a :class:`LabelsError` naming the first)."""
    for row in rows:
        uri = str(row["image_uri"])
        fs, path = fsspec.core.url_to_fs(uri)
        if not fs.isfile(path):
            raise LabelsError(f"image file not found: {uri!r} (labels row {row['image_id']!r}); move the image "
                              f"back, or export without the check (--no-image-check)")


def export_coco(location: str, out: str, levels: Sequence[str] = DEFAULT_LEVELS, require_images: bool = True
                ) -> dict[str, Any]:
    """Write the run at ``location`` as COCO JSON ``out`` (local or fsspec); returns counts for the CLI."""
    run = open_run(location)
    rows = run.rows(EXPORT_COLUMNS)
    if require_images:
        check_images(rows)
    coco = coco_dict(rows, run.classes(), levels)
    try:
        with fsspec.open(out, "wt", encoding="utf-8") as fh:
            json.dump(coco, fh)
    except OSError as exc:
        raise LabelsError(f"cannot write {out!r}: {exc}; pick a writable path") from None
    log.info("wrote %d images, %d annotations to %s", len(coco["images"]), len(coco["annotations"]), out)
    return {"images": len(coco["images"]), "annotations": len(coco["annotations"]),
            "categories": len(coco["categories"]), "out": out}


__all__ = ["DEFAULT_LEVELS", "check_images", "coco_annotation", "coco_dict", "coco_image", "export_coco",
           "row_annotations"]
