"""Benchmark segment-anything's SamAutomaticMaskGenerator against our SamBatchedGenerator.

Both run on the same model object (same weights) and the same images; prints images/s for each
(median of ``--repeats`` timed runs after a warm-up, the two interleaved so load changes hit both),
the speed ratio, and how well the masks agree (equal counts, one-to-one mask IoU).

    python scripts/bench_sam.py --model-type vit_b --random-weights --device cpu --images 2 --size 640 \\
        --points-per-side 16
    python scripts/bench_sam.py --model-type vit_h --checkpoint sam_vit_h_4b8939.pth --device cuda \\
        --images-dir ../shared/data/coco-mini-train/images --images 16

Random weights give speckle masks; they are made spatially coherent with
``make_random_sam_coherent`` (``--raw-random`` to skip), and unless set, the quality thresholds are
lowered (pred_iou_thresh 0.01, stability_score_thresh 0.05) so that masks survive.
The reference runs in fp32 as segment-anything ships it; ours uses bf16 autocast and fused
attention on CUDA unless ``--precision fp32`` / ``--attention exact``.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw
from scipy.optimize import linear_sum_assignment

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.masks.settings import SamConfig
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.masks.sam import batched_generator, make_random_sam_coherent, reference_generator

log = logging.getLogger("bench_sam")

RANDOM_WEIGHT_THRESHOLDS = {"pred_iou_thresh": 0.01, "stability_score_thresh": 0.05}
CONFIG_FLAGS = ("points_per_side", "points_per_batch", "encoder_batch_size", "pred_iou_thresh",
                "stability_score_thresh", "box_nms_thresh", "crop_n_layers", "crop_nms_thresh",
                "crop_n_points_downscale_factor", "min_mask_region_area")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-type", default="vit_b", help="vit_h, vit_l, vit_b or vit_tiny")
    p.add_argument("--checkpoint", help="SAM checkpoint path or URL")
    p.add_argument("--random-weights", action="store_true", help="seeded random weights (no checkpoint)")
    p.add_argument("--seed", type=int, default=0, help="with --random-weights: their seed")
    p.add_argument("--raw-random", action="store_true", help="keep plain random weights (speckle masks)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--images", type=int, default=4, help="number of images")
    p.add_argument("--size", type=int, default=640, help="long side of the synthetic images")
    p.add_argument("--images-dir", type=Path, help="use the first --images photos of this folder instead")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto", help="ours only")
    p.add_argument("--attention", choices=("auto", "exact", "sdpa"), default="auto", help="ours only")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--json", type=Path, help="also write the results here")
    for name in CONFIG_FLAGS:
        kind = float if "thresh" in name else int
        p.add_argument("--" + name.replace("_", "-"), type=kind, help=f"masks.sam.{name}")
    return p.parse_args(argv)


def build_config(args: argparse.Namespace) -> SamConfig:
    checkpoint = f"random:{args.seed}" if args.random_weights else args.checkpoint
    values: dict[str, Any] = {"model_type": args.model_type, "checkpoint": checkpoint}
    if args.random_weights:
        values.update(RANDOM_WEIGHT_THRESHOLDS)
    values.update({k: getattr(args, k) for k in CONFIG_FLAGS if getattr(args, k) is not None})
    return SamConfig(**values)


def synthetic_image(index: int, long_side: int) -> np.ndarray:
    """(H, W, 3) uint8: a background with a dozen squares and discs; aspect varies with index."""
    rng = np.random.default_rng(index)
    short = int(long_side * (0.75, 1.0, 0.66)[index % 3])
    h, w = (short, long_side) if index % 2 == 0 else (long_side, short)
    image = Image.new("RGB", (w, h), tuple(int(c) for c in rng.integers(100, 230, 3)))
    draw = ImageDraw.Draw(image)
    for i in range(12):
        r = int(rng.integers(long_side // 40, long_side // 8))
        cx, cy = int(rng.integers(r, w - r)), int(rng.integers(r, h - r))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        (draw.ellipse if i % 2 else draw.rectangle)([cx - r, cy - r, cx + r, cy + r], fill=colour)
    return np.asarray(image)


def load_images(args: argparse.Namespace) -> list[np.ndarray]:
    if args.images_dir is None:
        return [synthetic_image(i, args.size) for i in range(args.images)]
    paths = sorted(p for p in args.images_dir.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not paths:
        raise SystemExit(f"no images in {args.images_dir}")
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths[: args.images]]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(generate: Callable[[list[np.ndarray]], list[MaskBatch]], images: list[np.ndarray],
          device: str) -> tuple[float, list[MaskBatch]]:
    _sync(device)
    start = time.perf_counter()
    out = generate(images)
    _sync(device)
    return time.perf_counter() - start, out


def match(a: MaskBatch, b: MaskBatch) -> np.ndarray:
    """IoUs of a one-to-one matching of a's and b's masks (prefers the same prompt point)."""
    if not len(a) or not len(b):
        return np.zeros(0)
    iou = rle_utils.iou_matrix(list(a.rles), list(b.rles))
    same_point = np.all(np.abs(a.points[:, None] - b.points[None]) < 1e-3, axis=-1)
    rows, cols = linear_sum_assignment(-(iou + 0.5 * same_point))
    return iou[rows, cols]


def agreement(ref: Sequence[MaskBatch], ours: Sequence[MaskBatch]) -> dict[str, Any]:
    ious = np.concatenate([match(r, o) for r, o in zip(ref, ours)] + [np.zeros(0)])
    n_ref, n_ours = sum(len(b) for b in ref), sum(len(b) for b in ours)
    return {
        "images_with_equal_count": sum(len(r) == len(o) for r, o in zip(ref, ours)),
        "masks_reference": n_ref, "masks_ours": n_ours,
        "matched_iou_mean": float(ious.mean()) if len(ious) else None,
        "matched_iou_min": float(ious.min()) if len(ious) else None,
        "masks_iou_ge_0.99": int((ious >= 0.99).sum()),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = build_config(args)
    images = load_images(args)
    ref = reference_generator(cfg, args.device)
    if args.random_weights and not args.raw_random:
        make_random_sam_coherent(ref.model)
    ours = batched_generator(cfg, args.device, model=ref.model,
                             autocast=None if args.precision == "auto" else args.precision == "bf16",
                             sdpa=None if args.attention == "auto" else args.attention == "sdpa")
    ours.checkpoint_sha256 = ref.checkpoint_sha256
    gens = {"reference": ref.generate, "batched": ours.generate}
    for _ in range(args.warmup):
        for gen in gens.values():
            gen(images[:1])
    times: dict[str, list[float]] = {name: [] for name in gens}
    outputs: dict[str, list[MaskBatch]] = {}
    for r in range(args.repeats):
        for name in (list(gens) if r % 2 == 0 else list(gens)[::-1]):
            seconds, out = timed(gens[name], images, args.device)
            times[name].append(seconds)
            outputs.setdefault(name, out)
            log.info("repeat %d %s: %.2f s", r, name, seconds)
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    return {
        "settings": {"device": args.device, "images": len(images),
                     "image_sizes": [list(im.shape[:2]) for im in images],
                     "source": str(args.images_dir) if args.images_dir else f"synthetic, long side {args.size}",
                     "coherent_random_weights": bool(args.random_weights and not args.raw_random),
                     "batched": ours.describe(), "torch_threads": torch.get_num_threads()},
        "seconds": times,
        "images_per_s": {name: len(images) / m for name, m in medians.items()},
        "speedup": medians["reference"] / medians["batched"],
        "agreement": agreement(outputs["reference"], outputs["batched"]),
    }


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 4)


def report(result: dict[str, Any]) -> str:
    s, ips, agr, secs = result["settings"], result["images_per_s"], result["agreement"], result["seconds"]
    b = s["batched"]
    runs = {name: ", ".join(f"{t:.1f}" for t in ts) for name, ts in secs.items()}
    return "\n".join([
        (f"model {b['model_type']} on {s['device']} ({s['torch_threads']} threads), {s['images']} images "
         f"({s['source']}), points_per_side {b['points_per_side']}, points_per_batch {b['points_per_batch']}, "
         f"encoder_batch_size {b['encoder_batch_size']}, crop_n_layers {b['crop_n_layers']}"),
        (f"thresholds: pred_iou {b['pred_iou_thresh']}, stability {b['stability_score_thresh']}, "
         f"box_nms {b['box_nms_thresh']}; ours: {b['precision']}, attention {b['attention']}"),
        f"reference: {ips['reference']:.4f} images/s  (runs {runs['reference']} s)",
        f"batched:   {ips['batched']:.4f} images/s  (runs {runs['batched']} s)",
        f"speedup:   {result['speedup']:.2f}x",
        (f"agreement: equal counts on {agr['images_with_equal_count']}/{s['images']} images, masks "
         f"{agr['masks_reference']} vs {agr['masks_ours']}, matched IoU mean {_round(agr['matched_iou_mean'])}, "
         f"min {_round(agr['matched_iou_min'])}, {agr['masks_iou_ge_0.99']} with IoU >= 0.99"),
    ])


def main(argv: Optional[Sequence[str]] = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.random_weights and not args.checkpoint:
        raise SystemExit("pass --checkpoint PATH or --random-weights")
    result = run(args)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
