"""Measure the weights-free superpixel generator on COCO images (mask recall, proposals, speed).

    python scripts/eval_superpixel.py --data ../shared/data/coco-mini-train [--limit 20]
        [--set max_side=320 --set colour_spaces=[hsv,lab]] [--no-baseline]

Ground truth: non-crowd instances covering >= 1% of the image. Recall@t is the fraction of
ground-truth instances whose best proposal has mask IoU >= t. The baseline is the union of
Felzenszwalb segments at four scales (100/300/500/1000, sigma 0.8, min_size 20) as proposals, at
full resolution or, with ``--baseline-side``, on the image shrunk to that longest side. Seconds are
wall-clock and CPU (process) time per image; the CPU figure is the one-core cost on a busy machine.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml
from PIL import Image
from pycocotools import mask as mask_utils
from skimage.segmentation import felzenszwalb

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.masks.settings import SuperpixelConfig
from ovlabel.engine.masks.superpixel import SuperpixelGenerator

log = logging.getLogger("eval_superpixel")

BASELINE_SCALES = (100, 300, 500, 1000)
THRESHOLDS = (0.5, 0.75)


def load_coco(data: Path, min_fraction: float) -> list[tuple[Path, list[np.ndarray]]]:
    """[(image path, [(H, W) bool ground-truth masks])] for every image with at least one instance."""
    coco = json.loads((data / "instances_train2017.json").read_text())
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    out = []
    for img in sorted(coco["images"], key=lambda i: i["file_name"]):
        h, w = img["height"], img["width"]
        masks = []
        for ann in by_image.get(img["id"], []):
            if ann.get("iscrowd", 0):
                continue
            seg = ann["segmentation"]
            rles = mask_utils.frPyObjects(seg, h, w) if isinstance(seg, list) else [seg]
            mask = mask_utils.decode(mask_utils.merge(rles)).astype(bool)
            if mask.sum() >= min_fraction * h * w:
                masks.append(mask)
        if masks:
            out.append((data / "images" / img["file_name"], masks))
    return out


def best_iou_rles(proposals: Sequence[dict[str, Any]], gt: Sequence[np.ndarray]) -> np.ndarray:
    """(G,) best mask IoU of each ground-truth mask over the proposals."""
    if not proposals:
        return np.zeros(len(gt))
    return rle_utils.iou_matrix(list(proposals), rle_utils.encode_many(np.stack(gt))).max(axis=0)


def best_iou_labels(label_images: Sequence[np.ndarray], gt: Sequence[np.ndarray]) -> tuple[np.ndarray, int]:
    """(G,) best IoU of each ground-truth mask over all segments of the label images, and the segment count."""
    best = np.zeros(len(gt))
    count = 0
    for labels in label_images:
        n = int(labels.max()) + 1
        count += n
        seg_area = np.bincount(labels.ravel(), minlength=n)
        for g, mask in enumerate(gt):
            inter = np.bincount(labels[mask], minlength=n)
            iou = inter / (seg_area + mask.sum() - inter)
            best[g] = max(best[g], iou.max())
    return best, count


class Tally:
    """Per-image results of one method: best IoUs (G,), proposal counts, wall and CPU seconds."""

    def __init__(self) -> None:
        self.ious: list[np.ndarray] = []
        self.counts: list[int] = []
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def add(self, ious: np.ndarray, count: int, wall: float, cpu: float) -> None:
        self.ious.append(ious)
        self.counts.append(count)
        self.wall.append(wall)
        self.cpu.append(cpu)


def summarise(name: str, tally: Tally) -> dict[str, float]:
    allv = np.concatenate(tally.ious)
    row: dict[str, Any] = {f"recall@{t}": float((allv >= t).mean()) for t in THRESHOLDS}
    row.update({"proposals_mean": float(np.mean(tally.counts)), "proposals_median": float(np.median(tally.counts)),
                "wall_s_per_image": float(np.mean(tally.wall)), "cpu_s_per_image": float(np.mean(tally.cpu)),
                "instances": len(allv), "images": len(tally.counts)})
    print(f"{name:>12}: " + "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    return row


def run_baseline(image: np.ndarray, gt: Sequence[np.ndarray], side: int) -> tuple[np.ndarray, int, float, float]:
    """Felzenszwalb at BASELINE_SCALES: (best IoU per ground truth, segment count, wall s, CPU s).

    With ``side`` > 0 the image is shrunk to that longest side and the labels scaled back (nearest).
    """
    h, w = image.shape[:2]
    t0, c0 = time.perf_counter(), time.process_time()
    small = image
    if side and max(h, w) > side:
        scale = side / max(h, w)
        small = np.asarray(Image.fromarray(image).resize((round(w * scale), round(h * scale)), Image.BILINEAR))
    labels = [felzenszwalb(small, scale=k, sigma=0.8, min_size=20) for k in BASELINE_SCALES]
    if small is not image:
        rows = np.minimum(((np.arange(h) + 0.5) * small.shape[0] / h).astype(int), small.shape[0] - 1)
        cols = np.minimum(((np.arange(w) + 0.5) * small.shape[1] / w).astype(int), small.shape[1] - 1)
        labels = [lab[rows][:, cols] for lab in labels]
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    best, count = best_iou_labels(labels, gt)
    return best, count, wall, cpu


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key.strip()] = yaml.safe_load(value)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="COCO folder: instances_train2017.json + images/")
    ap.add_argument("--limit", type=int, default=0, help="first N images only (0 = all)")
    ap.add_argument("--min-fraction", type=float, default=0.01, help="smallest ground-truth instance, of image area")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="SuperpixelConfig field=value")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--baseline-side", type=int, default=0, help="run the baseline at this longest side (0 = full)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)

    items = load_coco(args.data, args.min_fraction)
    if args.limit:
        items = items[: args.limit]
    cfg = SuperpixelConfig(**parse_overrides(args.overrides))
    gen = SuperpixelGenerator(cfg)
    print("config:", json.dumps(cfg.model_dump(mode="json")))
    ours, base = Tally(), Tally()
    for path, gt in items:
        image = np.asarray(Image.open(path).convert("RGB"))
        t0, c0 = time.perf_counter(), time.process_time()
        batch = gen.generate([image], [path.stem])[0]
        ours.add(best_iou_rles(batch.rles, gt), len(batch), time.perf_counter() - t0, time.process_time() - c0)
        if not args.no_baseline:
            base.add(*run_baseline(image, gt, args.baseline_side))
    result = {"superpixel": summarise("superpixel", ours)}
    if not args.no_baseline:
        result["felzenszwalb4"] = summarise("felz x4", base)
    if args.json:
        args.json.write_text(json.dumps({"config": cfg.model_dump(mode="json"), **result}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
