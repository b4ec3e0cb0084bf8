"""Scoring pseudo-label shards against COCO-format ground truth (``ovlabel eval``).

Ground truth is a COCO instances JSON. Optional extensions: ``level`` ('object' | 'part', absent
means 'object') and ``parent_id`` per annotation, ``scene`` per image (the demo world writes all
three; real COCO has none, so only objects are scored). Crowd annotations (``iscrowd``) are
neither hits nor misses: a prediction covered by one is ignored.

Rows of the labels shards find their ground-truth image by ``image_id`` (the COCO id as a string,
the image's ``image_key``, or its file name / file stem) or by the file name of ``image_uri``.
A segment counts as its class (:func:`ovlabel.engine.labelset.segment_class`: its ``class_name``, or in
version 2 shards its caption lemma, 'automobile', 'woman'); a class names a GT category when its class in the
label vocabulary (:mod:`ovlabel.engine.ontology`: ``ovlabel eval --vocabulary NAME|FILE``, by default the
one the run labelled with, as its ``classes.json`` records) is the category's name; with no vocabulary,
when it is the name itself.

Per level, predictions and GT instances of one image are matched one-to-one, highest IoU first
(index order on ties), same category only, at mask IoU >= ``iou_threshold``. Reported: precision,
recall, mean IoU of matched pairs, per-category counts, and recall over the instances whose
category the image's captions name (``recall_mentioned``: what a caption-driven labeller can
reach). GT images with no labels row are all misses (and a wrong scene). Scene accuracy compares
the root segment's label (through the vocabulary) with the image's ``scene``. Beside these, COCO mask AP
per level (:mod:`ovlabel.engine.mask_ap`), and ``only_labelled`` leaves out the GT images with no row.
"""
from __future__ import annotations

import json
import logging
import posixpath
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

import fsspec
import numpy as np
from pycocotools import mask as mask_utils

from ovlabel.engine import layout
from ovlabel.engine import rle as rle_utils
from ovlabel.engine.errors import OvlabelError
from ovlabel.engine.labelset import open_run, segment_class
from ovlabel.engine.mask_ap import ap_lines, mask_ap
from ovlabel.engine.ontology import Vocabulary, load_vocabulary, plural, word_key

log = logging.getLogger(__name__)
LEVELS = ("object", "part")
ROW_COLUMNS = ["image_id", "image_uri", "captions", "scene", "segments"]



class EvaluationError(OvlabelError):
    """Labels or ground truth cannot be read or do not fit together."""


def _norm(word: str) -> str:
    return " ".join(str(word).lower().replace("_", " ").split())


# --- ground truth ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GtInstance:
    """One annotation: category name, level, COCO RLE (compressed, bytes counts), crowd flag."""

    category: str
    level: str
    rle: dict[str, Any] = field(repr=False)
    crowd: bool = False


@dataclass(frozen=True)
class GtImage:
    """One ground-truth image: lookup keys, (H, W), optional scene, instances."""

    keys: tuple[str, ...]
    size: tuple[int, int]
    scene: Optional[str]
    instances: tuple[GtInstance, ...]


def _rle_of(segmentation: Any, height: int, width: int) -> dict[str, Any]:
    """Polygons, uncompressed RLE or compressed RLE -> one compressed RLE with bytes counts."""
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
        return mask_utils.frPyObjects(segmentation, height, width)
    if isinstance(segmentation, dict) and "counts" in segmentation:
        return rle_utils.to_coco(segmentation)
    raise EvaluationError(f"unsupported segmentation {type(segmentation).__name__}; use polygons or RLE")


def _image_keys(image: Mapping[str, Any]) -> tuple[str, ...]:
    name = str(image.get("file_name", ""))
    base = posixpath.basename(name)
    keys = [str(image["id"]), str(image.get("image_key") or ""), name, base, posixpath.splitext(base)[0]]
    return tuple(k for k in dict.fromkeys(keys) if k)


def parse_ground_truth(coco: Mapping[str, Any]) -> list[GtImage]:
    """COCO instances dict -> :class:`GtImage` per image, in file order."""
    names = {c["id"]: _norm(c["name"]) for c in coco.get("categories", [])}
    by_image: dict[Any, list[Mapping[str, Any]]] = {}
    for ann in coco.get("annotations", []):
        by_image.setdefault(ann["image_id"], []).append(ann)
    images = []
    for img in coco.get("images", []):
        h, w = int(img["height"]), int(img["width"])
        instances = tuple(GtInstance(names[a["category_id"]], str(a.get("level") or "object"),
                                     _rle_of(a["segmentation"], h, w), bool(a.get("iscrowd", 0)))
                          for a in by_image.get(img["id"], []))
        scene = img.get("scene")
        images.append(GtImage(_image_keys(img), (h, w), _norm(scene) if scene else None, instances))
    return images


def read_coco(path: str) -> dict[str, Any]:
    """The COCO instances JSON at ``path`` (local or fsspec)."""
    try:
        with fsspec.open(path, "rt", encoding="utf-8") as fh:
            coco = json.load(fh)
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"ground truth {path!r} cannot be read as COCO JSON ({exc}); pass --gt instances.json") from None
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
        raise EvaluationError(f"ground truth {path!r} has no 'images' list; pass a COCO instances JSON")
    return coco


def load_ground_truth(path: str) -> list[GtImage]:
    return parse_ground_truth(read_coco(path))


# --- predictions ----------------------------------------------------------------------------


def read_label_rows(labels: str) -> list[dict[str, Any]]:
    """Every labels row (image_id, image_uri, captions, scene, segments) of the shards at ``labels``
    (a run folder, its labels/ folder or one shard), read through :func:`ovlabel.engine.labelset.open_run`."""
    run = open_run(labels)
    rows = run.rows(ROW_COLUMNS)
    log.info("read %d labels rows from %d shards", len(rows), len(run.files))
    return rows


def pair_rows(rows: Iterable[Mapping[str, Any]], images: Sequence[GtImage]
              ) -> tuple[list[Optional[Mapping[str, Any]]], int]:
    """(the labels row of each GT image or None, number of rows that fit no GT image)."""
    index: dict[str, int] = {}
    for k, img in enumerate(images):
        for key in img.keys:
            index.setdefault(key, k)
    found: list[Optional[Mapping[str, Any]]] = [None] * len(images)
    unmatched = 0
    for row in rows:
        base = posixpath.basename(str(row.get("image_uri") or ""))
        k = next((index[c] for c in (str(row.get("image_id")), base, posixpath.splitext(base)[0]) if c in index), None)
        if k is None:
            unmatched += 1
        elif found[k] is None:
            found[k] = row
        else:
            log.warning("image %s has more than one labels row; scoring the first", row.get("image_id"))
    return found, unmatched


# --- matching -------------------------------------------------------------------------------


@dataclass
class LevelCounts:
    """Running counts of one level (optionally of one category)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    ignored: int = 0
    gt_mentioned: int = 0
    tp_mentioned: int = 0
    iou_sum: float = 0.0

    def add(self, other: "LevelCounts") -> None:
        for name in ("tp", "fp", "fn", "ignored", "gt_mentioned", "tp_mentioned", "iou_sum"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def summary(self) -> dict[str, Any]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "ignored": self.ignored,
                "predictions": self.tp + self.fp, "gt": self.tp + self.fn,
                "precision": _ratio(self.tp, self.tp + self.fp), "recall": _ratio(self.tp, self.tp + self.fn),
                "mean_iou": _ratio(self.iou_sum, self.tp), "gt_mentioned": self.gt_mentioned,
                "recall_mentioned": _ratio(self.tp_mentioned, self.gt_mentioned)}


def _ratio(num: float, den: float) -> Optional[float]:
    return float(num) / den if den else None


def match_one_to_one(iou: np.ndarray, allowed: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Greedy one-to-one pairs (pred, gt, IoU) over an (P, G) IoU matrix, best IoU first.

    ``allowed`` (P, G) bool masks out pairs of different categories.
    """
    ok = allowed & (iou >= threshold)
    pairs = sorted(((-float(iou[p, g]), int(p), int(g)) for p, g in zip(*np.nonzero(ok))))
    used_p: set[int] = set()
    used_g: set[int] = set()
    out = []
    for neg, p, g in pairs:
        if p not in used_p and g not in used_g:
            used_p.add(p)
            used_g.add(g)
            out.append((p, g, -neg))
    return out


def _ious(preds: Sequence[dict[str, Any]], gts: Sequence[dict[str, Any]], crowd: Sequence[bool]) -> np.ndarray:
    if not preds or not gts:
        return np.zeros((len(preds), len(gts)))
    return np.asarray(mask_utils.iou(list(preds), list(gts), [int(c) for c in crowd]), dtype=np.float64).reshape(
        len(preds), len(gts))


def _pred_rle(segment: Mapping[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    mask = segment["mask"]
    if tuple(mask["size"]) != size:
        raise EvaluationError(f"a predicted mask is {tuple(mask['size'])} but its GT image is {size} (H, W); "
                              f"labels and ground truth must describe the same image sizes")
    return rle_utils.to_coco(mask)


def score_level(preds: Sequence[tuple[Optional[str], dict[str, Any]]], gts: Sequence[GtInstance],
                mentioned: Optional[set[str]], threshold: float) -> dict[str, LevelCounts]:
    """Counts per category ('' holds predictions whose label names no GT category) of one image and level.

    ``preds``: (category or None, RLE); ``mentioned``: categories the captions name (None: all).
    """
    counts: dict[str, LevelCounts] = {}
    normal = [g for g in gts if not g.crowd]
    crowd = [g for g in gts if g.crowd]
    iou = _ious([r for _, r in preds], [g.rle for g in normal], [False] * len(normal))
    allowed = np.array([[c == g.category for g in normal] for c, _ in preds], bool).reshape(len(preds), len(normal))
    pairs = match_one_to_one(iou, allowed, threshold)
    hit_p = {p: (g, v) for p, g, v in pairs}
    for g, inst in enumerate(normal):
        c = counts.setdefault(inst.category, LevelCounts())
        said = mentioned is None or inst.category in mentioned
        c.gt_mentioned += int(said)
        c.fn += int(g not in {gg for gg, _ in hit_p.values()})
    cover = _ious([r for _, r in preds], [g.rle for g in crowd], [True] * len(crowd))
    for p, (category, _) in enumerate(preds):
        c = counts.setdefault(category or "", LevelCounts())
        if p in hit_p:
            g, value = hit_p[p]
            c.tp += 1
            c.iou_sum += value
            c.tp_mentioned += int(mentioned is None or normal[g].category in mentioned)
        elif any(cover[p, k] >= threshold and crowd[k].category == category for k in range(len(crowd))):
            c.ignored += 1
        else:
            c.fp += 1
    return counts


# --- labels and mentions --------------------------------------------------------------------


class LabelMap:
    """Label lemma -> GT category name (None when it names none), and caption mentions per category.

    A label names the category its class in ``vocabulary`` is (a label the vocabulary does not list, or any
    label with no vocabulary, names the category of its own name); a category is mentioned by any word of its
    class (its name and synonyms, singular or plural)."""

    def __init__(self, categories: Iterable[str], vocabulary: Optional[Vocabulary] = None) -> None:
        self.categories = frozenset(_norm(c) for c in categories)
        self.vocabulary = vocabulary
        words = {c: {c, *(vocabulary.words(c) if vocabulary is not None else ())} for c in self.categories}
        self._forms = {c: {f for w in ws for f in (word_key(w), plural(word_key(w)))} for c, ws in words.items()}

    def category(self, label: Optional[str]) -> Optional[str]:
        if not label:
            return None
        found = self.vocabulary.class_of(label) if self.vocabulary is not None else None
        key = _norm(found or label)
        return key if key in self.categories else None

    def mentioned(self, captions: Sequence[str]) -> set[str]:
        """Categories any of whose words (singular or plural) occurs in ``captions``."""
        text = " " + " ".join(" ".join(re.findall(r"[a-z]+", c.lower())) for c in captions) + " "
        return {c for c, forms in self._forms.items() if any(f" {f} " in text for f in forms)}


# --- the report -----------------------------------------------------------------------------


@dataclass
class _Totals:
    levels: dict[str, dict[str, LevelCounts]] = field(default_factory=lambda: {lv: {} for lv in LEVELS})
    scene_total: int = 0
    scene_correct: int = 0
    scene_confusion: Counter = field(default_factory=Counter)
    unmapped: Counter = field(default_factory=Counter)

    def merge(self, level: str, counts: Mapping[str, LevelCounts]) -> None:
        for category, c in counts.items():
            self.levels[level].setdefault(category, LevelCounts()).add(c)


def _score_image(img: GtImage, row: Optional[Mapping[str, Any]], labels: LabelMap, threshold: float,
                 totals: _Totals) -> None:
    segments = list(row["segments"]) if row else []
    mentioned = labels.mentioned(row["captions"] or []) if row else None
    for level in LEVELS:
        preds = []
        for s in (s for s in segments if s["level"] == level):
            category = labels.category(segment_class(s))
            if category is None:
                totals.unmapped[segment_class(s)] += 1
            preds.append((category, _pred_rle(s, img.size)))
        gts = [g for g in img.instances if g.level == level]
        totals.merge(level, score_level(preds, gts, mentioned, threshold))
    if img.scene is not None:
        root = next((s for s in segments if s["level"] == "scene"), None)
        said = segment_class(root) if root else (row["scene"] if row else None)
        got = labels.category(said)
        totals.scene_total += 1
        totals.scene_correct += int(got == img.scene)
        totals.scene_confusion[f"{img.scene} -> {got or said or '(no row)'}"] += 1


def _level_report(per_category: Mapping[str, LevelCounts]) -> dict[str, Any]:
    total = LevelCounts()
    for c in per_category.values():
        total.add(c)
    out = total.summary()
    out["per_category"] = {(k or "(unmapped)"): v.summary() for k, v in sorted(per_category.items())}
    return out


def run_vocabulary(labels: str) -> Optional[Vocabulary]:
    """The vocabulary the run at ``labels`` was labelled with, as its ``classes.json`` records it (None: the run
    had none, or wrote no classes.json: an older ovlabel's). :class:`EvaluationError` when it cannot be loaded
    or its file has changed since the run."""
    fs, path = layout.open_location(labels)
    folders = [path, posixpath.dirname(path), posixpath.dirname(posixpath.dirname(path))]
    found = next((posixpath.join(f, layout.CLASSES) for f in folders if fs.isfile(posixpath.join(f, layout.CLASSES))),
                 None)
    if found is None:
        return None
    try:
        with fs.open(found, "rt", encoding="utf-8") as fh:
            ref = (json.load(fh).get("vocabulary") or {})
    except (OSError, ValueError, AttributeError) as exc:
        raise EvaluationError(f"{found!r} cannot be read ({exc}); pass --vocabulary NAME|FILE (or none)") from None
    if not ref.get("name"):
        return None
    try:
        vocabulary = load_vocabulary(str(ref["name"]))
    except OvlabelError as exc:
        raise EvaluationError(f"the run's vocabulary ({found}) cannot be loaded: {exc}; pass --vocabulary NAME|FILE "
                              f"(or none)") from None
    if ref.get("sha256") not in (None, vocabulary.sha256):
        raise EvaluationError(f"the run's vocabulary {ref['name']!r} has changed since the run ({found} records "
                              f"sha256 {ref['sha256']}); pass --vocabulary NAME|FILE to score with one explicitly")
    return vocabulary


def eval_vocabulary(spec: Optional[str], labels: str) -> Optional[Vocabulary]:
    """``ovlabel eval --vocabulary``: None -> the run's own (:func:`run_vocabulary`), 'none' -> no vocabulary,
    else a shipped vocabulary's name or a file (:func:`ovlabel.engine.ontology.load_vocabulary`)."""
    if spec is None:
        return run_vocabulary(labels)
    return None if spec.strip().lower() == "none" else load_vocabulary(spec)


def evaluate(labels: str, gt: str, iou_threshold: float = 0.5, vocabulary: Optional[Vocabulary] = None,
             only_labelled: bool = False) -> dict[str, Any]:
    """The report (a JSON-able dict) of the labels under ``labels`` against the COCO JSON ``gt``, labels mapped to
    categories through ``vocabulary`` (None: compared as written), with COCO mask AP per level; ``only_labelled``
    scores only the GT images that have a labels row (a subset run)."""
    if not 0.0 < iou_threshold <= 1.0:
        raise EvaluationError(f"--iou must be in (0, 1], got {iou_threshold}")
    coco = read_coco(gt)
    return evaluate_rows(read_label_rows(labels), parse_ground_truth(coco), iou_threshold, vocabulary, coco=coco,
                         only_labelled=only_labelled)


def _coco_category_of(coco: Mapping[str, Any], labels: LabelMap) -> Any:
    """segment -> the GT category id its class names (None: none), for :func:`ovlabel.engine.mask_ap.mask_ap`."""
    ids: dict[str, Any] = {}
    for cat in coco.get("categories", []):
        ids.setdefault(_norm(cat["name"]), cat["id"])
    return lambda segment: ids.get(labels.category(segment_class(segment)) or "")


def evaluate_rows(rows: Iterable[Mapping[str, Any]], images: Sequence[GtImage], iou_threshold: float = 0.5,
                  vocabulary: Optional[Vocabulary] = None, coco: Optional[Mapping[str, Any]] = None,
                  only_labelled: bool = False) -> dict[str, Any]:
    """:func:`evaluate` on labels rows already read and ground truth already parsed (``coco``: the GT dict
    ``images`` came from, for mask AP; None leaves AP out)."""
    categories = {i.category for img in images for i in img.instances} | {img.scene for img in images if img.scene}
    label_map = LabelMap(categories, vocabulary)
    paired, unmatched = pair_rows(rows, images)
    scored = [k for k, row in enumerate(paired) if row is not None or not only_labelled]
    totals = _Totals()
    for k in scored:
        _score_image(images[k], paired[k], label_map, iou_threshold, totals)
    labelled = sum(r is not None for r in paired)
    ap = None if coco is None else mask_ap(coco, [(coco["images"][k]["id"], paired[k]) for k in scored],
                                           _coco_category_of(coco, label_map), LEVELS)
    return {
        "iou_threshold": iou_threshold,
        "vocabulary": vocabulary.ref if vocabulary is not None else None,
        "images": {"gt": len(images), "labelled": labelled, "missing": len(images) - labelled,
                   "unmatched_rows": unmatched, "scored": len(scored), "only_labelled": only_labelled},
        "mask_ap": ap,
        "levels": {level: _level_report(totals.levels[level]) for level in LEVELS},
        "scene": {"images": totals.scene_total, "correct": totals.scene_correct,
                  "accuracy": _ratio(totals.scene_correct, totals.scene_total),
                  "confusion": dict(sorted(totals.scene_confusion.items()))},
        "unmapped_labels": dict(totals.unmapped.most_common()),
    }


# --- text -----------------------------------------------------------------------------------


def _pct(value: Optional[float]) -> str:
    return "  n/a" if value is None else f"{100 * value:5.1f}"


def _level_lines(name: str, rep: Mapping[str, Any]) -> Iterator[str]:
    yield (f"{name:<7} P {_pct(rep['precision'])}  R {_pct(rep['recall'])}  mIoU {_pct(rep['mean_iou'])}  "
           f"R(mentioned) {_pct(rep['recall_mentioned'])}  tp {rep['tp']} fp {rep['fp']} fn {rep['fn']}")
    for category, c in rep["per_category"].items():
        yield (f"  {category:<14} P {_pct(c['precision'])}  R {_pct(c['recall'])}  mIoU {_pct(c['mean_iou'])}  "
               f"tp {c['tp']} fp {c['fp']} fn {c['fn']}")


def format_report(report: Mapping[str, Any]) -> str:
    """The report as text: a summary line per level (percent), per-category lines, scene accuracy."""
    imgs = report["images"]
    subset = f"; scoring only the {imgs['scored']} labelled" if imgs.get("only_labelled") else ""
    vocabulary = (report.get("vocabulary") or {}).get("name")
    lines = [f"ovlabel eval @ mask IoU >= {report['iou_threshold']}: {imgs['labelled']} of {imgs['gt']} GT images "
             f"labelled ({imgs['missing']} missing, {imgs['unmatched_rows']} rows not in GT{subset}); vocabulary: "
             f"{vocabulary or 'none (labels compared as written; --vocabulary NAME|FILE maps synonyms)'}"]
    for level in LEVELS:
        if report["levels"][level]["gt"] or report["levels"][level]["predictions"]:
            lines.extend(_level_lines(level, report["levels"][level]))
    if report.get("mask_ap"):
        lines.append("COCO mask AP (IoU 0.50:0.95; AP50, AP75 at one IoU; AR100: recall at 100 per image):")
        lines.extend(ap_lines(report["mask_ap"]))
    scene = report["scene"]
    if scene["images"]:
        lines.append(f"scene   accuracy {_pct(scene['accuracy'])}  ({scene['correct']} of {scene['images']})")
    if report["unmapped_labels"]:
        top = ", ".join(f"{k} ({v})" for k, v in list(report["unmapped_labels"].items())[:8])
        lines.append(f"labels naming no GT category: {top}")
    return "\n".join(lines)


__all__ = ["EvaluationError", "GtImage", "GtInstance", "LabelMap", "eval_vocabulary", "evaluate", "evaluate_rows",
           "format_report", "load_ground_truth", "match_one_to_one", "parse_ground_truth", "plural",
           "read_coco", "read_label_rows", "run_vocabulary", "score_level"]
