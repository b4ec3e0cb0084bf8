"""What a region costs to embed in each ``matching.crop_mode``, on the same demo scenes and proposals.

    python scripts/bench_region_modes.py [--config demo] [--scenes 24] [--repeats 3] [--threads 1]
        [--modes masked,box,blend,alpha,mask_prompt,dense] [--json out.json]

The scenes (validation seeds 9000..) and their proposals (the config's mask generator) are made once; then
every mode embeds the same kept masks through the matcher's own ``_embed_regions`` (crop preparation and
the encoder, the scene crops included), modes taking turns within each repeat so that a change in load
hits all alike. The weights are random (``clip.checkpoint: random``, with the region encoder's parameters):
the cost does not depend on them. Prints per mode the median milliseconds per region and per image.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from typing import Any, Sequence

import torch

from ovlabel.engine.demo.scenes import generate_scene
from ovlabel.engine.masks import build_mask_generator
from ovlabel.engine.matching.context import ImageInput, candidate_masks
from ovlabel.engine.matching.matcher import RegionMatcher
from ovlabel.engine.matching.region_models import build_region_embedder
from ovlabel.pipelines.options import load_run_config

log = logging.getLogger("bench_region_modes")
MODES = ("masked", "box", "blend", "alpha", "mask_prompt", "dense")
VAL_SEED = 9000


def matcher_for(cfg: Any, mode: str) -> RegionMatcher:
    """A matcher of ``cfg`` in ``mode`` with random weights (the region encoder's parameters too), one model (the
    demo config's ensemble left out: each mode's own encoder cost is measured)."""
    clip = cfg.clip.model_copy(update={"checkpoint": "random", "checkpoint_sha256": None, "region_checkpoint": None,
                                       "ensemble": ()})
    matching = cfg.matching.model_copy(update={"crop_mode": mode})
    return RegionMatcher(build_region_embedder(clip, mode, clip.device), matching)


def inputs(cfg: Any, scenes: int) -> list[ImageInput]:
    generator = build_mask_generator(cfg.masks)
    out = []
    for seed in range(VAL_SEED, VAL_SEED + scenes):
        image = generate_scene(seed, cfg.demo.image_size if cfg.demo else 256).image
        out.append(ImageInput(image, generator.generate_one(image), ()))
    return out


def time_mode(matcher: RegionMatcher, items: Sequence[ImageInput], kept: Sequence[Any], per_call: int) -> float:
    """Seconds to embed the ``kept`` masks (and scene crops) of ``items``, ``per_call`` images per call."""
    started = time.perf_counter()
    for k in range(0, len(items), per_call):
        matcher._embed_regions(items[k:k + per_call], kept[k:k + per_call])
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="demo")
    p.add_argument("--scenes", type=int, default=24)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--json", dest="json_out")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    cfg = load_run_config(args.config, [])
    items = inputs(cfg, args.scenes)
    matchers = {m: matcher_for(cfg, m) for m in args.modes.split(",")}
    # every mode keeps the same masks: the area floors are the config's, not the mode's
    kept = [candidate_masks(i.masks, next(iter(matchers.values()))._min_area_fraction) for i in items]
    regions = sum(map(len, kept))
    per_call = cfg.beam.matching.images_per_batch
    times: dict[str, list[float]] = {m: [] for m in matchers}
    for _ in range(args.repeats):
        for mode, matcher in matchers.items():
            times[mode].append(time_mode(matcher, items, kept, per_call))
    out = {"scenes": len(items), "regions": regions, "threads": args.threads, "images_per_call": per_call, "modes": {}}
    for mode, ts in times.items():
        med = statistics.median(ts)
        out["modes"][mode] = {"seconds": ts, "ms_per_region": 1000 * med / regions, "ms_per_image": 1000 * med / len(items)}
        sys.stdout.write(f"{mode:12s} {1000 * med / regions:7.2f} ms/region  {1000 * med / len(items):8.1f} ms/image  "
                         f"(runs {', '.join(f'{t:.2f}' for t in ts)} s)\n")
    sys.stdout.write(f"{len(items)} scenes, {regions} regions, {args.threads} thread(s)\n")
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
