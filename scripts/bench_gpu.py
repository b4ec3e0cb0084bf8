"""GPU benchmark of the engine's labelling path: SAM masks + CLIP region matching, end to end.

One command, random weights, no downloads, no apache_beam (the engine, torch/torchvision,
segment-anything and open_clip only):

    python scripts/bench_gpu.py --json $OUT/gpu.json        # on the GPU machine (scripts/gpu_check.sh)
    python scripts/bench_gpu.py --smoke --device cpu         # tiny models, 2 images of 128 px: a CPU check

What runs: ``--images`` procedural demo scenes (``engine/demo/scenes.py``, generated at ``--size`` px)
go, ``--batch`` images at a time, through

1. the batched SAM generator (``engine/masks/sam/``, built by the mask-generator registry with
   ``checkpoint: random`` weights made spatially coherent, ``--points`` x ``--points`` prompts, the
   random-weight thresholds of ``scripts/bench_sam.py`` so that masks survive), then
2. the :class:`~ovlabel.engine.matching.matcher.RegionMatcher` with masked crops and an open_clip
   ``--clip-model`` of random weights (``build_embedder`` with ``clip.checkpoint: random``), every
   threshold open (as ``configs/tiny.yaml``) so the rules do their full work. Captions are the
   scene's own; their nouns are read off the scene's ground truth (no spaCy on a GPU machine).
   Random SAM weights leave only 1-3 masks per image after NMS, so the matcher also gets each
   scene's ground-truth object and part masks (10-35 per scene; ``--no-gt-regions`` to drop them):
   real SAM weights give more (often 50-100 on photos), so the matching figures are a lower bound.

bf16 autocast (and fused encoder attention) on CUDA, as the engine does by default. ``--warmup``
whole passes are not timed (they also fill the embedder's label cache, as a long run has it);
each of ``--repeats`` timed passes is bracketed by ``torch.cuda.synchronize``; figures are medians.

Printed (and with ``--json OUT`` written as JSON): images/s end to end; per-stage seconds (masks:
image encoder incl. preprocessing / decoder + postprocessing; matching: crops / CLIP image encoder
/ CLIP text encoder / rules incl. candidate filtering); the SAM image encoder's FLOPs per image
(counted with ``torch.utils.flop_counter.FlopCounterMode`` and analytically), its achieved TFLOP/s
in the pipeline and alone, and their fraction of ``--peak-tflops`` (H200 bf16 dense: 790); peak
GPU memory; GPU name, torch and CUDA versions; the workload (masks, crops, matches per image).

Needs: torch, torchvision, segment-anything, open_clip_torch (and the engine's own needs:
pydantic, pyyaml, numpy, scipy, pillow, pycocotools, fsspec; ftfy for open_clip's tokenizer).
A missing one stops the script with one line naming it. Run from a checkout (the repo need not
be installed: the ``ovlabel`` package is assembled from the checkout's folders when missing).
"""
from __future__ import annotations

import argparse
import atexit
import importlib
import importlib.util
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
H200_BF16_DENSE_TFLOPS = 790.0
# import name -> pip name, of what this script and the engine parts it runs need
REQUIREMENTS = {"torch": "torch", "torchvision": "torchvision", "numpy": "numpy", "segment_anything": "segment-anything",
                "open_clip": "open_clip_torch", "ftfy": "ftfy", "pydantic": "pydantic", "yaml": "pyyaml",
                "scipy": "scipy", "PIL": "pillow", "pycocotools": "pycocotools", "fsspec": "fsspec"}
SMOKE = {"sam_model": "vit_tiny", "clip_model": "ovlabel-tiny-clip", "images": 2, "size": 128, "points": 4,
         "batch": 2, "repeats": 2, "encoder_batch": 2, "crops_per_batch": 16}
DEFAULTS = {"sam_model": "vit_h", "clip_model": "ViT-L-14", "images": 32, "size": 1024, "points": 32,
            "batch": 4, "repeats": 3, "encoder_batch": 4, "crops_per_batch": 64}  # batch sizes: configs/default.yaml
RANDOM_WEIGHT_THRESHOLDS = {"pred_iou_thresh": 0.01, "stability_score_thresh": 0.05}  # as scripts/bench_sam.py
STAGES = ("mask_encoder", "mask_decoder_postprocess", "match_crops", "match_clip_image_encoder",
          "match_clip_text_encoder", "match_rules")

log = logging.getLogger("bench_gpu")


# --- setting up ---------------------------------------------------------------------------------


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    p.add_argument("--smoke", action="store_true",
                   help="tiny preset for CPU: " + ", ".join(f"{k}={v}" for k, v in SMOKE.items()))
    p.add_argument("--images", type=int, help=f"demo scenes (default {DEFAULTS['images']})")
    p.add_argument("--size", type=int, help=f"their side in px (default {DEFAULTS['size']})")
    p.add_argument("--sam-model", help=f"masks.sam.model_type (default {DEFAULTS['sam_model']})")
    p.add_argument("--points", type=int, help=f"masks.sam.points_per_side (default {DEFAULTS['points']})")
    p.add_argument("--clip-model", help=f"clip.model, an open_clip architecture (default {DEFAULTS['clip_model']})")
    p.add_argument("--batch", type=int, help=f"images per generate / match_batch call (default {DEFAULTS['batch']})")
    p.add_argument("--repeats", type=int, help=f"timed passes (default {DEFAULTS['repeats']})")
    p.add_argument("--warmup", type=int, default=1, help="untimed passes first (default 1)")
    p.add_argument("--encoder-batch", type=int, help="masks.sam.encoder_batch_size (default 4)")
    p.add_argument("--points-per-batch", type=int, default=256, help="masks.sam.points_per_batch (default 256)")
    p.add_argument("--crops-per-batch", type=int, help="clip.crops_per_batch (default 64)")
    p.add_argument("--peak-tflops", type=float, default=H200_BF16_DENSE_TFLOPS,
                   help=f"the accelerator's dense peak the encoder rate is compared with (default {H200_BF16_DENSE_TFLOPS}, "
                   "H200 bf16)")
    p.add_argument("--no-gt-regions", dest="gt_regions", action="store_false",
                   help="match SAM's masks only (random SAM weights leave 1-3 per image)")
    p.add_argument("--seed", type=int, default=0, help="first scene seed and the random weights' seed")
    p.add_argument("--json", type=Path, help="also write every figure here as JSON")
    args = p.parse_args(argv)
    for key, value in (SMOKE if args.smoke else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for key in ("images", "size", "points", "batch", "repeats", "encoder_batch", "points_per_batch", "crops_per_batch"):
        if getattr(args, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be at least 1")
    if args.size < 32 or args.warmup < 0:
        p.error("--size must be at least 32 and --warmup at least 0")
    return args


def check_requirements(names: Sequence[str] = tuple(REQUIREMENTS)) -> None:
    """SystemExit with one line naming the missing packages (pip names), if any."""
    missing = [REQUIREMENTS.get(n, n) for n in names if _find_spec(n) is None]
    if missing:
        raise SystemExit(f"bench_gpu: missing Python package(s): {', '.join(missing)}; install them (on a machine "
                         f"without network: pip install --no-index --no-deps <their wheels>) and run again")


def _find_spec(name: str) -> Any:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def ensure_ovlabel() -> None:
    """Make ``ovlabel.engine`` importable from this checkout when it is not installed (a copied repo)."""
    try:
        engine = importlib.import_module("ovlabel.engine")
    except ImportError:
        engine = None
    if engine is not None:
        if Path(str(engine.__file__)).resolve().parent != (REPO / "engine").resolve():
            log.warning("benchmarking the ovlabel installed at %s, not this checkout's", Path(str(engine.__file__)).parent)
        return
    shim = Path(tempfile.mkdtemp(prefix="ovlabel-shim-")) / "ovlabel"
    atexit.register(shutil.rmtree, shim.parent, True)  # removes the links, never what they point to
    shim.mkdir()
    for folder in ("engine", "configs", "schemas", "pipelines"):
        (shim / folder).symlink_to(REPO / folder, target_is_directory=True)
    sys.path.insert(0, str(shim.parent))
    importlib.invalidate_caches()
    importlib.import_module("ovlabel.engine")


def check_device(device: str) -> None:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"bench_gpu: --device {device} but torch {torch.__version__} sees no CUDA device; "
                         "run on a GPU machine or pass --device cpu (with --smoke for a quick check)")


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


# --- the workload -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    """One benchmark input: (S, S, 3) uint8 pixels and its caption parses."""

    image: Any
    parses: tuple[Any, ...]
    gt_masks: Any  # MaskBatch of the ground-truth objects and parts


def _span(text: str, word: str) -> tuple[int, int]:
    start = text.lower().find(word.lower())
    return (start, start + len(word)) if start >= 0 else (0, 0)


def scene_parses(scene: Any) -> tuple[Any, ...]:
    """One parse of the scene's captions whose nouns are the scene's ground truth: the scene type,
    each object noun (counted), each part noun under its object noun. No spaCy needed."""
    from ovlabel.engine.demo.templates import plural
    from ovlabel.engine.records import CaptionParse, Noun

    text = " ".join(scene.captions)
    nouns = [Noun(scene.scene, scene.scene, "scene", _span(text, scene.scene))]
    where: dict[str, int] = {}
    for noun, n in Counter(o.noun for o in scene.objects).items():
        where[noun] = len(nouns)
        phrase = plural(noun) if n > 1 else noun
        nouns.append(Noun(phrase, noun, "object", _span(text, phrase), count=n, plural=n > 1))
    parts = Counter((scene.instance(p.parent_id).noun, p.noun) for p in scene.parts)
    for (owner, noun), n in parts.items():
        if owner in where:
            phrase = plural(noun) if n > 1 else noun
            nouns.append(Noun(phrase, noun, "part", _span(text, phrase), parent=where[owner], plural=n > 1))
    return (CaptionParse(text, tuple(nouns)),)


def make_scenes(count: int, size: int, seed: int) -> list[Scene]:
    import numpy as np

    from ovlabel.engine.demo import generate_scene
    from ovlabel.engine.masks.data import MaskBatch

    scenes = [generate_scene(seed + i, size) for i in range(count)]
    return [Scene(s.image, scene_parses(s), MaskBatch.from_masks(np.stack([i.mask for i in s.instances]),
                                                                 source="demo-ground-truth")
                  if s.instances else MaskBatch.empty((size, size), "demo-ground-truth")) for s in scenes]


# --- timing -------------------------------------------------------------------------------------


@dataclass
class Clock:
    """Seconds per stage, summed over the calls of one pass (device synchronised around each call)."""

    device: str
    seconds: dict[str, float] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            sync(self.device)
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            sync(self.device)
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start
            return out

        return timed

    def reset(self) -> None:
        self.seconds, self.counts = {}, Counter()


class TimedEmbedder:
    """A :class:`~ovlabel.engine.matching.embedder.RegionEmbedder` that times its inner one's calls."""

    def __init__(self, inner: Any, clock: Clock) -> None:
        self.inner = inner
        self.crop_size, self.logit_scale = inner.crop_size, inner.logit_scale
        self._clock = clock
        self._embed_crops = clock.wrap("match_clip_image_encoder", inner.embed_crops)
        self.embed_labels = clock.wrap("match_clip_text_encoder", inner.embed_labels)

    def embed_crops(self, crops: Any) -> Any:
        self._clock.counts["crops"] += len(crops)
        return self._embed_crops(crops)

    def describe(self) -> dict[str, object]:
        return dict(self.inner.describe())


@dataclass
class Bench:
    """The built models, instrumented: the SAM generator's image-encoder calls and the matcher's region
    embedding (crops + CLIP image encoder) are timed per stage by ``clock``."""

    generator: Any
    matcher: Any
    embedder: Any
    clock: Clock
    build_seconds: dict[str, float]


def build(args: argparse.Namespace) -> Bench:
    from ovlabel.engine.config import ClipConfig, MatchingConfig
    from ovlabel.engine.masks.registry import generator_spec
    from ovlabel.engine.masks.sam import make_random_sam_coherent
    from ovlabel.engine.masks.settings import SamConfig
    from ovlabel.engine.matching import RegionMatcher, build_embedder

    clock, built = Clock(args.device), {}
    start = time.perf_counter()
    sam_cfg = SamConfig(model_type=args.sam_model, checkpoint=f"random:{args.seed}", points_per_side=args.points,
                        points_per_batch=args.points_per_batch, encoder_batch_size=args.encoder_batch,
                        **RANDOM_WEIGHT_THRESHOLDS)
    generator = generator_spec("sam").build(sam_cfg, args.device)
    make_random_sam_coherent(generator.model)
    built["sam"] = time.perf_counter() - start
    start = time.perf_counter()
    clip_cfg = ClipConfig(model=args.clip_model, pretrained=None, checkpoint=f"random:{args.seed}",
                          crops_per_batch=args.crops_per_batch, device=args.device)
    embedder = build_embedder(clip_cfg, args.device)
    built["clip"] = time.perf_counter() - start
    matcher = RegionMatcher(TimedEmbedder(embedder, clock),
                            MatchingConfig(crop_mode="masked", similarity_threshold=-1.0, probability_threshold=0.0))
    generator._encode = clock.wrap("mask_encoder", generator._encode)  # instance attribute: the engine is unchanged
    matcher._embed_regions = clock.wrap("match_regions", matcher._embed_regions)
    return Bench(generator, matcher, embedder, clock, built)


def _regions(scene: Scene, masks: Any, gt_regions: bool) -> Any:
    from ovlabel.engine.masks.data import MaskBatch

    return MaskBatch.concat([masks, scene.gt_masks]) if gt_regions else masks


def one_pass(bench: Bench, scenes: Sequence[Scene], batch: int, gt_regions: bool = True) -> dict[str, Any]:
    """All scenes through masks then matching, ``batch`` at a time -> total seconds, per-stage seconds, counts."""
    from ovlabel.engine.matching import ImageInput

    clock, masks_s, match_s, counts = bench.clock, 0.0, 0.0, Counter()
    clock.reset()
    sync(clock.device)
    start = time.perf_counter()
    for s in range(0, len(scenes), batch):
        group = scenes[s:s + batch]
        t0 = time.perf_counter()
        masks = bench.generator.generate([sc.image for sc in group])
        t1 = time.perf_counter()
        found = bench.matcher.match_batch([ImageInput(sc.image, _regions(sc, m, gt_regions), sc.parses)
                                           for sc, m in zip(group, masks)])
        sync(clock.device)
        masks_s, match_s = masks_s + t1 - t0, match_s + time.perf_counter() - t1
        counts["masks"] += sum(len(m) for m in masks)
        counts["regions"] += sum(len(f.masks) for f in found)
        counts["matches"] += sum(len(f.matches) for f in found)
    total = time.perf_counter() - start
    counts.update(clock.counts)
    return {"seconds": total, "stages": _stages(clock.seconds, masks_s, match_s), "counts": dict(counts)}


def _stages(timed: dict[str, float], masks_s: float, match_s: float) -> dict[str, float]:
    """Per-stage seconds of one pass; the decoder and the rules are what their step spent outside the timed calls."""
    encoder, regions = timed.get("mask_encoder", 0.0), timed.get("match_regions", 0.0)
    image, text = timed.get("match_clip_image_encoder", 0.0), timed.get("match_clip_text_encoder", 0.0)
    return {"mask_encoder": encoder, "mask_decoder_postprocess": max(0.0, masks_s - encoder),
            "match_crops": max(0.0, regions - image), "match_clip_image_encoder": image,
            "match_clip_text_encoder": text, "match_rules": max(0.0, match_s - regions - text)}


# --- SAM image-encoder FLOPs ----------------------------------------------------------------------


def _linear_flops(tokens: int, fan_in: int, fan_out: int) -> int:
    return 2 * tokens * fan_in * fan_out


def _block_flops(blk: Any, grid: tuple[int, int]) -> int:
    """Matmul FLOPs of one segment-anything ViT block (one image): windowed blocks pad the grid to whole windows."""
    h, w = grid
    dim = int(blk.attn.qkv.in_features)
    hidden = int(blk.mlp.lin1.out_features)
    if blk.window_size > 0:
        ws = int(blk.window_size)
        windows = -(-h // ws) * -(-w // ws)
        side, seq = (ws, ws), ws * ws
    else:
        windows, side, seq = 1, (h, w), h * w
    tokens = windows * seq
    flops = _linear_flops(tokens, dim, 3 * dim) + _linear_flops(tokens, dim, dim)
    flops += windows * 2 * (2 * seq * seq * dim)                        # q @ k^T and attn @ v, all heads
    if blk.attn.use_rel_pos:
        flops += windows * 2 * seq * (side[0] + side[1]) * dim          # decomposed rel-pos einsums
    return flops + _linear_flops(h * w, dim, hidden) + _linear_flops(h * w, hidden, dim)


def analytic_encoder_flops(model: Any) -> int:
    """Matmul/convolution FLOPs (2 per multiply-add) of one image through SAM's image encoder."""
    enc = model.image_encoder
    conv = enc.patch_embed.proj
    grid = (enc.img_size // conv.stride[0], enc.img_size // conv.stride[1])
    tokens = grid[0] * grid[1]
    flops = _linear_flops(tokens, conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1], conv.out_channels)
    flops += sum(_block_flops(blk, grid) for blk in enc.blocks)
    for layer in enc.neck:
        if isinstance(layer, type(conv)):
            flops += _linear_flops(tokens, layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1],
                                   layer.out_channels)
    return flops


def _encoder_input(generator: Any, image: Any) -> Any:
    from ovlabel.engine.masks.sam.encoder import preprocess

    return preprocess(generator.model, generator.transform, image, generator.device)


def _encode(generator: Any, batch: Any, as_run: bool = True) -> Any:
    """The image encoder on ``batch``: as the generator runs it (its precision and attention), or
    (``as_run=False``) in fp32 with the written-out attention."""
    import torch

    from ovlabel.engine.masks.sam.encoder import encode_images

    autocast = bool(generator.autocast) and as_run
    with torch.inference_mode(), torch.autocast(generator.device.type, dtype=torch.bfloat16, enabled=autocast):
        return encode_images(generator.model, batch, bool(generator.sdpa) and as_run)


def counted_encoder_flops(generator: Any, image: Any) -> int:
    """FLOPs of one image-encoder forward as torch's FlopCounterMode counts them.

    Counted in fp32 with the written-out attention (the same arithmetic): FlopCounterMode does not count
    CPU fused attention, and under bf16 autocast it fails on the relative-position einsums (it decomposes
    them past autocast, so their operands' dtypes differ).
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        _encode(generator, _encoder_input(generator, image), as_run=False)
    return int(counter.get_total_flops())


def isolated_encoder_seconds(generator: Any, image: Any, repeats: int) -> float:
    """Median seconds of one encoder call on ``encoder_batch_size`` copies of ``image`` (after one warm-up)."""
    import torch

    batch = torch.cat([_encoder_input(generator, image)] * generator.encoder_batch_size)
    device = str(generator.device)
    _encode(generator, batch)
    times = []
    for _ in range(max(1, repeats)):
        sync(device)
        start = time.perf_counter()
        _encode(generator, batch)
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --- the run ------------------------------------------------------------------------------------


def environment(device: str) -> dict[str, Any]:
    import platform

    import torch

    cuda = device.startswith("cuda")
    return {"device": device, "torch_version": torch.__version__, "cuda_version": torch.version.cuda,
            "gpu_name": torch.cuda.get_device_name(torch.device(device)) if cuda else None,
            "cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads()}


def timed_passes(bench: Bench, scenes: Sequence[Scene], args: argparse.Namespace) -> list[dict[str, Any]]:
    for i in range(args.warmup):
        log.info("warm-up pass %d: %.2f s", i, one_pass(bench, scenes, args.batch, args.gt_regions)["seconds"])
    passes = []
    for i in range(args.repeats):
        passes.append(one_pass(bench, scenes, args.batch, args.gt_regions))
        log.info("timed pass %d: %.2f s", i, passes[-1]["seconds"])
    return passes


def encoder_figures(bench: Bench, scenes: Sequence[Scene], encoder_s: float, args: argparse.Namespace
                    ) -> dict[str, Any]:
    counted = counted_encoder_flops(bench.generator, scenes[0].image)
    analytic = analytic_encoder_flops(bench.generator.model)
    alone = isolated_encoder_seconds(bench.generator, scenes[0].image, args.repeats)
    in_pipeline = counted * len(scenes) / encoder_s / 1e12 if encoder_s > 0 else None
    isolated = counted * bench.generator.encoder_batch_size / alone / 1e12
    return {"flops_per_image_counted": counted, "flops_per_image_analytic": analytic,
            "flops_counted_with": "torch.utils.flop_counter.FlopCounterMode, one fp32 forward, written-out attention",
            "tflops_in_pipeline": in_pipeline, "tflops_isolated": isolated, "isolated_batch": bench.generator.encoder_batch_size,
            "isolated_seconds_per_call": alone, "peak_tflops": args.peak_tflops,
            "fraction_of_peak_in_pipeline": None if in_pipeline is None else in_pipeline / args.peak_tflops,
            "fraction_of_peak_isolated": isolated / args.peak_tflops}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.manual_seed(args.seed)
    start = time.perf_counter()
    scenes = make_scenes(args.images, args.size, args.seed)
    scene_s = time.perf_counter() - start
    bench = build(args)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(torch.device(args.device))
    passes = timed_passes(bench, scenes, args)
    median = statistics.median(p["seconds"] for p in passes)
    stages = {k: statistics.median(p["stages"][k] for p in passes) for k in STAGES}
    encoder = encoder_figures(bench, scenes, stages["mask_encoder"], args)
    counts = passes[0]["counts"]
    peak = torch.cuda.max_memory_allocated(torch.device(args.device)) if args.device.startswith("cuda") else None
    return {
        "settings": {**{k: getattr(args, k) for k in (*DEFAULTS, "warmup", "gt_regions", "points_per_batch",
                                                      "seed", "smoke")},
                     "sam": bench.generator.describe(), "clip": bench.embedder.describe()},
        "environment": environment(args.device),
        "images_per_s": len(scenes) / median,
        "seconds_per_pass": {"median": median, "runs": [p["seconds"] for p in passes]},
        "stage_seconds": stages,
        "sam_encoder": encoder,
        "peak_gpu_memory_bytes": peak,
        "workload": {"images": len(scenes), "sam_masks_per_image": counts.get("masks", 0) / len(scenes),
                     "gt_regions": args.gt_regions, "candidate_regions_per_image": counts.get("regions", 0) / len(scenes),
                     "crops_per_image": counts.get("crops", 0) / len(scenes),
                     "matches_per_image": counts.get("matches", 0) / len(scenes)},
        "setup_seconds": {"scenes": scene_s, **{f"build_{k}": v for k, v in bench.build_seconds.items()}},
    }


def _f(value: Optional[float], digits: int = 3, kind: str = "f") -> str:
    return "n/a" if value is None else f"{value:.{digits}{kind}}"


def report(result: dict[str, Any]) -> str:
    s, env, st, enc = result["settings"], result["environment"], result["stage_seconds"], result["sam_encoder"]
    peak = result["peak_gpu_memory_bytes"]
    work = result["workload"]
    return "\n".join([
        f"device {env['device']} ({env['gpu_name'] or env['cpu']}), torch {env['torch_version']}, cuda {env['cuda_version']}",
        (f"SAM {s['sam_model']} ({s['sam']['precision']}, attention {s['sam']['attention']}), {s['points']}x{s['points']} "
         f"points, + CLIP {s['clip_model']} masked crops; {s['images']} demo scenes of {s['size']} px, batch {s['batch']}"),
        (f"images/s end to end: {_f(result['images_per_s'], 4)}  (pass {_f(result['seconds_per_pass']['median'])} s, "
         f"median of {len(result['seconds_per_pass']['runs'])})"),
        ("stages (s per pass): masks: encoder {mask_encoder:.3f} / decoder+postprocess {mask_decoder_postprocess:.3f}; "
         "matching: crops {match_crops:.3f} / CLIP image encoder {match_clip_image_encoder:.3f} / CLIP text encoder "
         "{match_clip_text_encoder:.3f} / rules {match_rules:.3f}").format(**st),
        (f"SAM image encoder: {enc['flops_per_image_counted'] / 1e12:.4f} TFLOP/image counted "
         f"({enc['flops_per_image_analytic'] / 1e12:.4f} analytic); achieved {_f(enc['tflops_in_pipeline'], 4, 'g')} "
         f"TFLOP/s in the pipeline, {_f(enc['tflops_isolated'], 4, 'g')} TFLOP/s alone (batch {enc['isolated_batch']}); "
         f"fraction of the {enc['peak_tflops']:g} TFLOP/s peak: {_f(enc['fraction_of_peak_in_pipeline'], 3, 'g')} in "
         f"the pipeline, {_f(enc['fraction_of_peak_isolated'], 3, 'g')} alone"),
        f"peak GPU memory: {'n/a (not CUDA)' if peak is None else f'{peak / 2**30:.2f} GiB'}",
        (f"workload per image: {work['sam_masks_per_image']:.1f} SAM masks, {work['candidate_regions_per_image']:.1f} "
         f"regions matched ({'SAM + ground truth' if work['gt_regions'] else 'SAM only'}), "
         f"{work['crops_per_image']:.1f} CLIP crops (scene crop included), {work['matches_per_image']:.1f} matches"),
    ])


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args(argv)
    check_requirements()
    ensure_ovlabel()
    check_device(args.device)
    result = run(args)
    print(report(result), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
