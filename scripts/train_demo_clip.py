"""Train the demo world's tiny CLIP (``configs/models/ovlabel-tiny-clip.*``) on CPU, reproducibly.

    python scripts/train_demo_clip.py [--steps 4000] [--threads 2] [--fit-target 1.0] [--snapshots]
        [--out configs/models/ovlabel-tiny-clip-alpha.safetensors] [--crop-mode masked|box|blend|alpha|mask_prompt]

Everything the engine does at inference is read from ``configs/demo.yaml``: the open_clip
architecture, crop mode, prompt templates, superpixel settings and the matcher's background
labels, so training sees the pixels and texts inference sees.

Data (cached under ``$OVLABEL_CACHE/demo-train``, keyed by every setting that shapes it):

- scenes of seeds ``0 .. --scenes - 1`` (evaluation uses 10000 and up; validation 9000 and up):
  the whole image (:func:`~ovlabel.engine.matching.crops.crop_image`) labelled with its scene type, and
  every ground-truth object and part (:func:`~ovlabel.engine.matching.crops.crop_region`);
- superpixel proposals of the first ``--proposal-scenes`` of them, what inference sees: a proposal
  with mask IoU >= 0.5 to a ground-truth instance takes its category, one below 0.4 to every
  instance is 'background' (half of those kept are pieces or supersets of instances, IoU >= 0.1:
  what the matcher must reject), the rest are skipped. Each sample keeps its quality: the best
  IoU with an instance (1 for ground-truth and whole-image crops).

A region's labels are every category whose instance it overlaps at IoU >= 0.5 (a tree's crown
is nearly the whole tree). Texts: every word the caption parser emits for a category
(:func:`ovlabel.engine.demo.world.category_words`: 'car' and 'automobile', 'person', 'man',
'woman', 'people', 'sky' for the night sky) in the demo templates; 'background' regions take the
matcher's background labels ('background', 'other', 'thing', 'stuff').

Loss, per step:

- ``open_clip.loss.ClipLoss`` over groups holding one single-label region of every class, each with
  one random word and template of its class (no repeated class within a group, so no false
  negatives);
- a matcher-style loss over those regions and ``--extra`` random proposals (drawn as inference
  meets them, mostly background): each region against the prompt-ensemble embeddings of a random
  handful of label words plus the background labels, as the matcher's softmax sees it; the
  target is the region's own word when offered, else the background labels (``logsumexp``).
  With ``--fit-target F`` below 1, the own word's target probability grows with the region's
  quality (:func:`own_target`: F at IoU 0.5, 1 from IoU 0.85) and the rest goes to the background
  labels, so that of several proposals covering one object the best fitting scores highest (the
  matcher takes the most probable mask first). Measured on validation scenes, F 0.5 raised mask
  IoU but not precision or recall; the default, 1, is hard labels.

Region encoders that see the mask (``--crop-mode alpha``, the shipped demo model
``ovlabel-tiny-clip-alpha.safetensors``, or ``mask_prompt``; measured side by side in the README): samples keep
each crop's mask (:func:`~ovlabel.engine.matching.crops.crop_with_mask`,
the whole image's for scene crops), flips mirror crop and mask alike, and the model gets Alpha-CLIP's
zero-initialised ``conv1_alpha`` or OVSeg's mask prompts (:mod:`ovlabel.engine.matching.region_encoders`),
trained with the rest; the checkpoint then holds ``visual.conv1_alpha.weight`` / ``visual.mask_embedding``
and serves with ``matching.crop_mode`` set alike. The other crop modes make the same samples, draws and
checkpoint as before (``--crop-mode masked`` trains ``ovlabel-tiny-clip.safetensors``, the masked-crop model).

Determinism: seeded numpy and torch, ``torch.use_deterministic_algorithms``, samples that depend
on their scene's seed only (``--threads`` processes make them in chunks, gathered in seed order)
and a fixed torch thread count; the same torch build and ``--threads`` reproduce the checkpoint
bit for bit. Weights are saved as float16 safetensors; token-embedding rows of tokens
no training prompt uses are zeroed (they never received a gradient), which keeps the file
compressible.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
import torch

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.config import Config
from ovlabel.engine.shipped import config_path, shipped
from ovlabel.pipelines.options import load_run_config
from ovlabel.engine.demo.scenes import GENERATOR_VERSION, DemoScene, generate_scene
from ovlabel.engine.demo.world import all_categories, category_words
from ovlabel.engine.masks.superpixel import SuperpixelGenerator
from ovlabel.engine.matching.crops import crop_image, crop_region, crop_with_mask, image_with_mask
from ovlabel.engine.matching.embedder import (crop_size_of, normalise_crops, pixel_stats, prompt_ensemble,
                                              prompt_tokens, template_features)
from ovlabel.engine.matching.region_encoders import (ALPHA_MODE, MASK_INPUT_MODES, alpha_forward, alpha_input,
                                                     attach_alpha, attach_mask_prompt, mask_prompt_forward, patch_keep)
from ovlabel.engine.weights import cache_dir, sha256_file

log = logging.getLogger("train_demo_clip")

DATA_VERSION = 4  # bump when sample making changes: invalidates the crop cache
BACKGROUND = "background"
POSITIVE_IOU, NEGATIVE_IOU, HARD_IOU = 0.5, 0.4, 0.1
FULL_IOU = 0.85  # own_target: 1 from this IoU on
VAL_SEED = 9000
PROPOSAL_MIN_AREA = 0.001  # proposals this small (fraction of the image) and up are trained on; the demo
# config's matching.min_mask_area_fraction may only be larger (it is a matching knob, tuned after training)


# --- settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSpec:
    """What the training crops are made from; its JSON is the cache key."""

    seeds: tuple[int, int]  # [start, stop) of scenes with ground-truth crops
    proposal_seeds: tuple[int, int]  # [start, stop) of scenes with superpixel proposals too
    size: int  # scene image size
    crop_size: int
    crop_mode: str
    superpixel: dict[str, Any]
    min_area_fraction: float
    max_positives: int  # proposal positives kept per scene
    max_negatives: int  # proposal backgrounds kept per scene
    alpha_context: float | None = None  # crop_mode alpha: the context crop's box enlargement

    def key(self) -> str:
        shaping = {k: v for k, v in self.__dict__.items() if k != "alpha_context" or self.crop_mode == ALPHA_MODE}
        text = json.dumps({"spec": shaping, "generator": GENERATOR_VERSION, "data": DATA_VERSION}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Vocabulary:
    """Classes (categories + 'background') and their label words; ``word_class`` (W,) class index per word."""

    classes: tuple[str, ...]
    words: tuple[str, ...]
    word_class: np.ndarray

    @classmethod
    def build(cls, background_labels: Sequence[str]) -> "Vocabulary":
        classes = (*all_categories(), BACKGROUND)
        pairs = [(w, k) for k, c in enumerate(classes[:-1]) for w in category_words(c)]
        pairs += [(w, len(classes) - 1) for w in background_labels]
        return cls(classes, tuple(w for w, _ in pairs), np.array([k for _, k in pairs], np.int64))

    @property
    def background(self) -> int:
        return len(self.classes) - 1

    def index(self, category: str) -> int:
        return self.classes.index(category)


# --- data -----------------------------------------------------------------------------------


@dataclass
class Samples:
    """Crops (N, S, S, 3) uint8, their labels (N, C) bool (multi-hot over classes), source (N,) int8
    (0 ground truth, 1 proposal, 2 whole image), context (N, C) bool: the classes of the sample's scene
    (its type and every category in it: what its captions can name), quality (N,) float32: a
    proposal's best mask IoU with an instance, 1 for ground-truth and whole-image crops; masks (N, S, S)
    uint8, each crop's mask for a mask-input crop mode, else (N, 0, 0)."""

    crops: np.ndarray
    labels: np.ndarray
    source: np.ndarray
    context: np.ndarray
    quality: np.ndarray
    masks: np.ndarray

    FIELDS: ClassVar[tuple[str, ...]] = ("crops", "labels", "source", "context", "quality", "masks")

    def __len__(self) -> int:
        return len(self.crops)


def _instance_labels(scene: DemoScene, ious: np.ndarray, vocab: Vocabulary) -> np.ndarray:
    """(R, C) bool: for each of R regions, the categories of the instances it overlaps at IoU >= 0.5.

    ``ious`` is (R, I) against the scene's instances.
    """
    out = np.zeros((len(ious), len(vocab.classes)), bool)
    cats = np.array([vocab.index(i.category) for i in scene.instances], np.int64)
    rows, cols = np.nonzero(ious >= POSITIVE_IOU)
    out[rows, cats[cols]] = True
    return out


def _proposal_picks(rng: np.random.Generator, ious: np.ndarray, spec: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    """(positive proposal indices, background proposal indices), subsampled; ``ious`` (P, I).

    Half the backgrounds are hard ones: pieces or supersets of instances (best IoU in [0.1, 0.4)),
    which inference must reject too.
    """
    best = ious.max(axis=1) if ious.shape[1] else np.zeros(len(ious))
    pos = rng.permutation(np.flatnonzero(best >= POSITIVE_IOU))[:spec.max_positives]
    hard = rng.permutation(np.flatnonzero((best >= HARD_IOU) & (best < NEGATIVE_IOU)))[:spec.max_negatives // 2]
    easy = rng.permutation(np.flatnonzero(best < HARD_IOU))[:spec.max_negatives - len(hard)]
    return np.sort(pos), np.sort(np.concatenate([hard, easy]))


def scene_context(scene: DemoScene, vocab: Vocabulary) -> np.ndarray:
    """(C,) bool: the scene type and every category present."""
    row = np.zeros(len(vocab.classes), bool)
    row[[vocab.index(c) for c in {scene.scene, *scene.categories()}]] = True
    return row


# crops, label rows, sources, qualities, masks
SceneSamples = tuple[list[np.ndarray], list[np.ndarray], list[int], list[float], list[np.ndarray]]
NO_MASK = np.zeros((0, 0), np.uint8)  # a sample's mask in a crop mode that takes none


def region_crop(image: np.ndarray, mask: np.ndarray | None, spec: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    """(crop, its mask or NO_MASK) as inference makes them; ``mask`` None: the whole image (scene scoring)."""
    mode, s = spec.crop_mode, spec.crop_size
    if mode in MASK_INPUT_MODES:
        return crop_with_mask(image, mask, mode, s, spec.alpha_context) if mask is not None else \
            image_with_mask(image, mode, s, spec.alpha_context)
    return (crop_region(image, mask, mode, s) if mask is not None else crop_image(image, s)), NO_MASK


def scene_samples(scene: DemoScene, spec: DataSpec, vocab: Vocabulary, generator: SuperpixelGenerator | None
                  ) -> SceneSamples:
    """(crops, multi-hot label rows, sources, qualities, masks) of one scene: whole image, instances, then proposals."""
    scene_row = np.zeros(len(vocab.classes), bool)
    scene_row[vocab.index(scene.scene)] = True
    crop, mask = region_crop(scene.image, None, spec)
    out: SceneSamples = ([crop], [scene_row], [2], [1.0], [mask])
    if not scene.instances:
        return out
    gt = rle_utils.encode_many(np.stack([i.mask for i in scene.instances]))
    for inst, row in zip(scene.instances, _instance_labels(scene, rle_utils.iou_matrix(gt, gt), vocab)):
        crop, mask = region_crop(scene.image, inst.mask, spec)
        for column, value in zip(out, (crop, row, 0, 1.0, mask)):
            column.append(value)
    if generator is not None:
        _add_proposals(scene, gt, spec, vocab, generator, out)
    return out


def _add_proposals(scene: DemoScene, gt: list[dict[str, Any]], spec: DataSpec, vocab: Vocabulary,
                   generator: SuperpixelGenerator, out: SceneSamples) -> None:
    masks = generator.generate_one(scene.image)
    masks = masks.select(masks.areas >= max(1.0, spec.min_area_fraction * spec.size * spec.size))
    if len(masks) == 0:
        return
    ious = rle_utils.iou_matrix(list(masks.rles), gt)
    pos, neg = _proposal_picks(np.random.default_rng([scene.seed, 7]), ious, spec)
    labels = _instance_labels(scene, ious, vocab)
    background = np.zeros(len(vocab.classes), bool)
    background[vocab.background] = True
    best = ious.max(axis=1)
    for i, row in [(i, labels[i]) for i in pos] + [(i, background) for i in neg]:
        crop, mask = region_crop(scene.image, masks.decode(int(i)), spec)
        for column, value in zip(out, (crop, row, 1, float(best[i]), mask)):
            column.append(value)


def _chunk_samples(args: tuple[DataSpec, Vocabulary, int, int]) -> Samples:
    """The samples of the scenes of seeds [start, stop)."""
    from ovlabel.engine.masks.settings import SuperpixelConfig

    spec, vocab, start, stop = args
    generator = SuperpixelGenerator(SuperpixelConfig(**spec.superpixel))
    crops: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    sources: list[int] = []
    context: list[np.ndarray] = []
    quality: list[float] = []
    region_masks: list[np.ndarray] = []
    for seed in range(start, stop):
        scene = generate_scene(seed, spec.size)
        with_proposals = spec.proposal_seeds[0] <= seed < spec.proposal_seeds[1]
        c, r, s, q, m = scene_samples(scene, spec, vocab, generator if with_proposals else None)
        crops += c
        rows += r
        sources += s
        quality += q
        region_masks += m
        context += [scene_context(scene, vocab)] * len(c)
    return Samples(np.stack(crops), np.stack(rows), np.array(sources, np.int8), np.stack(context),
                   np.array(quality, np.float32), np.stack(region_masks))


def make_samples(spec: DataSpec, vocab: Vocabulary, workers: int = 1, chunk: int = 50) -> Samples:
    """All samples of ``spec``, in seed order: the same whatever ``workers`` (each scene's samples
    depend on its seed only; chunks of ``chunk`` scenes are made by ``workers`` processes)."""
    import multiprocessing

    chunks = [(spec, vocab, a, min(a + chunk, spec.seeds[1])) for a in range(spec.seeds[0], spec.seeds[1], chunk)]
    parts: list[Samples] = []
    started = time.time()
    pool = multiprocessing.get_context("fork").Pool(workers) if workers > 1 else None
    try:
        results = pool.imap(_chunk_samples, chunks) if pool is not None else map(_chunk_samples, chunks)
        for (_, _, _, stop), part in zip(chunks, results):
            parts.append(part)
            done, made = stop - spec.seeds[0], sum(map(len, parts))
            log.info("  %d scenes, %d samples, %.0fs", done, made, time.time() - started)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return Samples(*(np.concatenate([getattr(p, f) for p in parts]) for f in Samples.FIELDS))


def _no_masks(n: int) -> np.ndarray:
    """The masks of ``n`` samples of a crop mode that takes none (caches made before masks were kept hold none)."""
    return np.zeros((n, 0, 0), np.uint8)


def cached_samples(spec: DataSpec, vocab: Vocabulary, folder: Path, workers: int = 1) -> Samples:
    """:func:`make_samples`, stored once per :meth:`DataSpec.key` in ``folder``."""
    path = folder / f"samples-{spec.key()}.npz"
    if path.is_file():
        with np.load(path) as data:
            log.info("samples from cache %s", path)
            return Samples(*(data[f] if f in data else _no_masks(len(data["crops"])) for f in Samples.FIELDS))
    log.info("making samples for scenes %s (proposals for %s) -> %s", spec.seeds, spec.proposal_seeds, path)
    samples = make_samples(spec, vocab, workers)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **{f: getattr(samples, f) for f in Samples.FIELDS})
    tmp.replace(path)
    return samples


# --- model and text -------------------------------------------------------------------------


def build_model(cfg: Config, seed: int) -> tuple[Any, Any]:
    """(fresh open_clip model of ``cfg.clip.model``, its tokenizer); for a mask-input ``matching.crop_mode``
    with Alpha-CLIP's zero ``conv1_alpha`` or OVSeg's mask prompts (``clip.mask_prompt_depth``) attached."""
    import open_clip

    open_clip.add_model_config(shipped("models", f"{cfg.clip.model}.json"))
    torch.manual_seed(seed)
    model = open_clip.create_model(cfg.clip.model, pretrained=None)
    if cfg.matching.crop_mode == ALPHA_MODE:
        attach_alpha(model.visual)
    elif cfg.matching.crop_mode in MASK_INPUT_MODES:
        attach_mask_prompt(model.visual, cfg.clip.mask_prompt_depth)
    return model, open_clip.get_tokenizer(cfg.clip.model)


# Token ids (prompt_tokens), template embeddings (template_features) and their prompt ensembles
# (prompt_ensemble) come from the engine's embedder, so training sees the texts inference sees.


def encode_images(model: Any, crops: np.ndarray, masks: np.ndarray | None = None, mode: str = "masked") -> torch.Tensor:
    """(B, S, S, 3) uint8 (and, for a mask-input ``mode``, (B, S, S) uint8 masks) -> (B, D) L2-normalised, pixels
    normalised by the engine's ``OpenClipEmbedder`` code, masks fed as its region encoders feed them."""
    pixels = normalise_crops(torch.from_numpy(crops), *pixel_stats(model))
    if mode not in MASK_INPUT_MODES:
        return model.encode_image(pixels, normalize=True)
    assert masks is not None and masks.shape == crops.shape[:3], "a mask-input crop mode needs each crop's mask"
    m, visual = torch.from_numpy(masks), model.visual
    feats = alpha_forward(visual, pixels, alpha_input(m)) if mode == ALPHA_MODE else \
        mask_prompt_forward(visual, pixels, patch_keep(m, int(visual.patch_size[0])))
    return torch.nn.functional.normalize(feats, dim=-1)


def ensemble_text(model: Any, tokens: torch.Tensor) -> torch.Tensor:
    """(W, T, context) -> (W, D): prompt-ensemble embeddings of every word."""
    return prompt_ensemble(template_features(model, tokens))


# --- batches and losses ---------------------------------------------------------------------


@dataclass(frozen=True)
class Pools:
    """Per class, the single-label samples with that label (ClipLoss groups draw from these); and every
    proposal sample (extra matcher-loss rows, drawn as inference meets them)."""

    by_class: tuple[np.ndarray, ...]
    proposals: np.ndarray

    @classmethod
    def build(cls, samples: Samples) -> "Pools":
        single = samples.labels.sum(axis=1) == 1
        by_class = tuple(np.flatnonzero(single & samples.labels[:, k]) for k in range(samples.labels.shape[1]))
        return cls(by_class, np.flatnonzero(samples.source == 1))

    def groups(self, rng: np.random.Generator, n_groups: int) -> np.ndarray:
        """(n_groups * C',) sample indices: each group one random sample of every class that has any."""
        present = [p for p in self.by_class if len(p)]
        return np.concatenate([np.array([p[rng.integers(len(p))] for p in present]) for _ in range(n_groups)])

    def extra(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n,) random proposal samples (empty when there are none)."""
        return self.proposals[rng.integers(len(self.proposals), size=n)] if len(self.proposals) else self.proposals


def flip(rng: np.random.Generator, crops: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
    """Mirror a random half of (B, S, S, 3) crops left-right; ``masks`` ((B, S, S), or (B, 0, 0): none) in place alike."""
    out = crops.copy()
    which = rng.random(len(crops)) < 0.5
    out[which] = out[which][:, :, ::-1]
    if masks is not None and masks.size:
        masks[which] = masks[which][:, :, ::-1]
    return out


def clip_texts(rng: np.random.Generator, labels: np.ndarray, vocab: Vocabulary, n_templates: int) -> np.ndarray:
    """(B, 2) int64 (word, template): per single-label sample, a random word of its class in a random template."""
    out = []
    for row in labels:
        words = np.flatnonzero(vocab.word_class == int(np.argmax(row)))
        out.append((words[rng.integers(len(words))], rng.integers(n_templates)))
    return np.array(out, np.int64).reshape(-1, 2)


def own_target(quality: np.ndarray, floor: float) -> np.ndarray:
    """(B,) float32: the target probability of a region's own word, from its quality (B,), its best IoU
    with an instance: ``floor`` at ``POSITIVE_IOU`` (and below), rising linearly to 1 at ``FULL_IOU``
    (``floor`` 1: always 1)."""
    rise = (np.asarray(quality, np.float32) - POSITIVE_IOU) / (FULL_IOU - POSITIVE_IOU)
    return np.clip(floor + (1.0 - floor) * rise, floor, 1.0).astype(np.float32)


@dataclass(frozen=True)
class MatcherTargets:
    """Per region (B rows) over the words (W columns): ``offered`` (B, W) bool, the words of its softmax;
    ``own`` (B, W) bool, its own word when offered (at most one); ``background`` (B, W) bool, the
    background labels; ``weight`` (B,) float32, the target probability of ``own`` (0 when none is
    offered); the rest of the target goes to the background labels."""

    offered: np.ndarray
    own: np.ndarray
    background: np.ndarray
    weight: np.ndarray

    def hard(self) -> np.ndarray:
        """(B, W) bool: the own word where offered, else the background labels."""
        return np.where(self.own.any(axis=1, keepdims=True), self.own, self.background)


def matcher_targets(rng: np.random.Generator, labels: np.ndarray, context: np.ndarray, quality: np.ndarray,
                    vocab: Vocabulary, spec: TrainSpec) -> MatcherTargets:
    """The words of each region's softmax and its target.

    ``labels`` and ``context`` are (B, C), ``quality`` (B,). Each region is offered the background
    labels, words of its scene's other classes (each with probability ``context_p``: what its
    captions may name), a few random words (``offer_p``) and, with probability ``keep_own_p``, one
    random word of its own classes; that word's target probability is :func:`own_target` of its
    quality, the rest (all of it when no own word is offered) is the background labels'.
    """
    is_bg = vocab.word_class == vocab.background
    own = labels[:, vocab.word_class] & ~is_bg[None, :]
    near = context[:, vocab.word_class] & (rng.random(own.shape) < spec.context_p)
    offered = (near | (rng.random(own.shape) < spec.offer_p)) & ~own & ~is_bg[None, :]
    target = np.zeros_like(own)
    for b in np.flatnonzero(own.any(axis=1) & (rng.random(len(own)) < spec.keep_own_p)):
        choices = np.flatnonzero(own[b])
        target[b, choices[rng.integers(len(choices))]] = True
    weight = np.where(target.any(axis=1), own_target(quality, spec.fit_target), 0.0).astype(np.float32)
    background = np.broadcast_to(is_bg, own.shape).copy()
    return MatcherTargets(offered | target | background, target, background, weight)


def matcher_loss(logits: torch.Tensor, targets: MatcherTargets) -> torch.Tensor:
    """Mean over rows of the cross-entropy, under a softmax over the offered columns, of the target
    (``weight`` on the own word, the rest on the background labels together: ``logsumexp``)."""
    neg_inf = torch.finfo(logits.dtype).min

    def log_sum(mask: np.ndarray) -> torch.Tensor:
        return torch.logsumexp(logits.masked_fill(~torch.from_numpy(mask), neg_inf), dim=1)

    all_ = log_sum(targets.offered)
    weight = torch.from_numpy(targets.weight)
    own = torch.where(weight > 0, log_sum(targets.own) - all_, torch.zeros_like(all_))
    return -(weight * own + (1.0 - weight) * (log_sum(targets.background) - all_)).mean()


# --- training -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainSpec:
    steps: int
    groups: int
    extra: int
    lr: float
    weight_decay: float
    warmup: int
    matcher_weight: float
    offer_p: float
    context_p: float
    keep_own_p: float
    fit_target: float  # own_target's floor
    seed: int
    crop_mode: str = "masked"  # a mask-input mode feeds each crop's mask to the encoder


def make_optimizer(model: Any, spec: TrainSpec) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": spec.weight_decay}, {"params": rest, "weight_decay": 0.0}],
                             lr=spec.lr, betas=(0.9, 0.98), eps=1e-6, fused=True)


def lr_at(step: int, spec: TrainSpec) -> float:
    if step < spec.warmup:
        return spec.lr * (step + 1) / spec.warmup
    progress = (step - spec.warmup) / max(1, spec.steps - spec.warmup)
    return spec.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


Batch = tuple[np.ndarray, np.ndarray, np.ndarray, "MatcherTargets", np.ndarray]  # crops, labels, texts, targets, masks


def train_step(model: Any, batch: Batch, all_tokens: torch.Tensor, n_groups: int,
               spec: TrainSpec) -> tuple[torch.Tensor, float, float]:
    """(loss, ClipLoss value, matcher loss value) of one batch (crops, labels, texts, matcher targets, masks).

    The first ``len(texts)`` crops form ``n_groups`` ClipLoss groups, their texts (word, template)
    pairs of ``all_tokens``, encoded once with the prompt ensembles; the matcher loss covers every crop.
    """
    from open_clip.loss import ClipLoss

    crops, _, texts, targets, masks = batch
    scale = model.logit_scale.exp()
    images = encode_images(model, crops, masks, spec.crop_mode)
    features = template_features(model, all_tokens)
    captions = features[torch.from_numpy(texts[:, 0]), torch.from_numpy(texts[:, 1])]
    loss_fn = ClipLoss()
    grouped = images[:len(texts)]
    per_group = [loss_fn(i, t, scale) for i, t in zip(grouped.chunk(n_groups), captions.chunk(n_groups))]
    contrastive = torch.stack(per_group).mean()
    words = prompt_ensemble(features)
    matcher = matcher_loss(scale * images @ words.T, targets)
    return contrastive + spec.matcher_weight * matcher, contrastive.item(), matcher.item()


def make_batch(rng: np.random.Generator, samples: Samples, pools: Pools, vocab: Vocabulary, tokens: torch.Tensor,
               spec: TrainSpec) -> Batch:
    """(crops, labels, ClipLoss texts for the grouped crops, matcher targets, masks): groups first, extras last."""
    grouped = pools.groups(rng, spec.groups)
    idx = np.concatenate([grouped, pools.extra(rng, spec.extra)])
    labels = samples.labels[idx]
    texts = clip_texts(rng, labels[:len(grouped)], vocab, tokens.shape[1])
    targets = matcher_targets(rng, labels, samples.context[idx], samples.quality[idx], vocab, spec)
    masks = samples.masks[idx]
    return flip(rng, samples.crops[idx], masks), labels, texts, targets, masks


def train(model: Any, samples: Samples, val: Samples, vocab: Vocabulary, tokens: torch.Tensor, spec: TrainSpec,
          snapshot: Callable[[int], None] | None = None) -> None:
    """AdamW with warmup and cosine decay; ``snapshot(step)`` after every validation (every 500 steps)."""
    rng = np.random.default_rng(spec.seed)
    pools = Pools.build(samples)
    optimizer = make_optimizer(model, spec)
    started = time.time()
    for step in range(spec.steps):
        model.train()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, spec)
        batch = make_batch(rng, samples, pools, vocab, tokens, spec)
        loss, contrastive, matcher = train_step(model, batch, tokens, spec.groups, spec)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0.0, math.log(100.0))
        if step % 100 == 0 or step == spec.steps - 1:
            log.info("step %d/%d  clip %.3f  matcher %.3f  scale %.1f  %.0fs", step, spec.steps, contrastive, matcher,
                     model.logit_scale.exp().item(), time.time() - started)
        if (step + 1) % 500 == 0 or step == spec.steps - 1:
            log.info("  validation: %s", validate(model, val, vocab, tokens, spec))
            if snapshot is not None:
                snapshot(step + 1)


# --- validation -----------------------------------------------------------------------------


def _embed_all(model: Any, val: Samples, mode: str, batch: int = 512) -> torch.Tensor:
    return torch.cat([encode_images(model, val.crops[i:i + batch], val.masks[i:i + batch], mode)
                      for i in range(0, len(val), batch)])


@torch.no_grad()
def validate(model: Any, val: Samples, vocab: Vocabulary, tokens: torch.Tensor, spec: TrainSpec) -> dict[str, float]:
    """Held-out accuracy: top class over every word (a hit when any of the region's labels), by source;
    then as the matcher sees it, offered its scene's words and the background labels: 'own' (own
    word offered too, it wins), 'absent' (own word not offered, background wins), 'bg' (background
    regions, background wins)."""
    model.eval()
    images = _embed_all(model, val, spec.crop_mode)
    sims = images @ ensemble_text(model, tokens).T
    top_class = vocab.word_class[sims.argmax(dim=1).numpy()]
    hit = val.labels[np.arange(len(val)), top_class]
    out = {name: float(hit[val.source == k].mean()) for k, name in enumerate(("gt", "proposal", "scene"))
           if (val.source == k).any()}
    labelled = ~val.labels[:, vocab.background]
    for name, keep in (("own", 1.0), ("absent", 0.0)):
        targets = matcher_targets(np.random.default_rng(0), val.labels, val.context, val.quality, vocab,
                                  TrainSpec(**{**spec.__dict__, "keep_own_p": keep, "offer_p": 0.0}))
        best = sims.masked_fill(~torch.from_numpy(targets.offered), -2.0).argmax(dim=1).numpy()
        won = targets.hard()[np.arange(len(val)), best]
        out[name] = float(won[labelled].mean())
        if keep == 0.0:
            out["bg"] = float(won[~labelled].mean())
    return {k: round(v, 4) for k, v in out.items()}


# --- saving ---------------------------------------------------------------------------------


def save_checkpoint(model: Any, tokens: torch.Tensor, path: Path, metadata: dict[str, str]) -> str:
    """Float16 safetensors of the state dict (unused token rows zeroed); returns its sha256."""
    from safetensors.torch import save_file

    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    used = torch.zeros(state["token_embedding.weight"].shape[0], dtype=torch.bool)
    used[tokens.unique()] = True
    state["token_embedding.weight"][~used] = 0.0
    state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=metadata)
    canonical_header(path)
    return sha256_file(path)


def canonical_header(path: Path) -> None:
    """Rewrite a safetensors header with sorted keys (in place, same length): safetensors writes the
    metadata in hash-map order, which differs between runs even for identical weights."""
    with open(path, "r+b") as fh:
        n = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(n))
        text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        if len(text) > n:
            raise ValueError(f"{path}: canonical safetensors header is longer than the original")
        fh.seek(8)
        fh.write(text.ljust(n, b" "))


# --- main -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(config_path("demo.yaml")), help="the demo config whose settings to train for")
    p.add_argument("--out", default=None, help="default: configs/models/ovlabel-tiny-clip.safetensors for masked crops, "
                   "ovlabel-tiny-clip-MODE.safetensors for another crop mode")
    p.add_argument("--scenes", type=int, default=3000, help="training scenes (seeds 0 .. N-1)")
    p.add_argument("--proposal-scenes", type=int, default=1200, help="of those, scenes with superpixel proposals")
    p.add_argument("--val-scenes", type=int, default=30, help="validation scenes (seeds 9000 ..)")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--groups", type=int, default=3, help="ClipLoss groups per step (one region per class each)")
    p.add_argument("--extra", type=int, default=128, help="random proposal crops per step, matcher loss only")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--fit-target", type=float, default=1.0,
                   help="a proposal's own-word target probability at IoU 0.5 (rising to 1 at IoU 0.85); 1: hard labels")
    p.add_argument("--threads", type=int, default=2, help="torch threads (the checkpoint is reproducible per count)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=str(cache_dir() / "demo-train"))
    p.add_argument("--snapshots", action="store_true", help="also save OUT.stepN.safetensors every 500 steps")
    p.add_argument("--crop-mode", default=None, choices=["masked", "box", "blend", "alpha", "mask_prompt"],
                   help="train for this matching.crop_mode instead of the config's")
    return p


def default_out(crop_mode: str) -> Path:
    """Where the shipped checkpoint of ``crop_mode`` lives: masked crops' under the plain name, others' suffixed."""
    name = "ovlabel-tiny-clip" + ("" if crop_mode == "masked" else f"-{crop_mode}")
    return shipped("models", f"{name}.safetensors")


def shaping_args(args: argparse.Namespace, crop_mode: str) -> dict[str, Any]:
    """The arguments that shape the weights, as the checkpoint's metadata records them: the crop mode only when it
    is not masked crops (so a checkpoint's metadata, hence its sha256, is the same whether the mode came from
    ``--crop-mode`` or from the config)."""
    shaping = {k: v for k, v in vars(args).items() if k not in ("out", "cache", "snapshots", "config", "crop_mode")}
    return {**shaping, "crop_mode": crop_mode} if crop_mode != "masked" else shaping


def data_spec(cfg: Config, seeds: tuple[int, int], proposal_seeds: tuple[int, int], crop_size: int) -> DataSpec:
    return DataSpec(seeds, proposal_seeds, cfg.demo.image_size if cfg.demo else 256, crop_size, cfg.matching.crop_mode,
                    cfg.masks.superpixel.model_dump(mode="json"), PROPOSAL_MIN_AREA, 48, 48, cfg.matching.alpha_context)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    started = time.time()
    cfg = load_run_config(args.config, [f"matching.crop_mode={args.crop_mode}"] if args.crop_mode else [])
    vocab = Vocabulary.build(cfg.matching.background_labels)
    model, tokenizer = build_model(cfg, args.seed)
    crop_size = crop_size_of(model)
    tokens = prompt_tokens(tokenizer, vocab.words, cfg.clip.templates)
    cache = Path(args.cache)
    train_spec = data_spec(cfg, (0, args.scenes), (0, args.proposal_scenes), crop_size)
    samples = cached_samples(train_spec, vocab, cache, args.threads)
    val_seeds = (VAL_SEED, VAL_SEED + args.val_scenes)
    val_spec = data_spec(cfg, val_seeds, val_seeds, crop_size)
    val = cached_samples(val_spec, vocab, cache, args.threads)
    log.info("%d training samples, %d validation, %d classes, %d words; data ready in %.0fs",
             len(samples), len(val), len(vocab.classes), len(vocab.words), time.time() - started)
    spec = TrainSpec(args.steps, args.groups, args.extra, args.lr, weight_decay=0.05, warmup=max(1, args.steps // 20),
                     matcher_weight=1.0, offer_p=0.03, context_p=0.5, keep_own_p=0.6, fit_target=args.fit_target,
                     seed=args.seed, crop_mode=cfg.matching.crop_mode)
    meta = {"trained_by": "scripts/train_demo_clip.py", "config": Path(args.config).name,
            "args": json.dumps(shaping_args(args, cfg.matching.crop_mode), sort_keys=True),
            "words": json.dumps(vocab.words)}
    out = Path(args.out or default_out(cfg.matching.crop_mode))

    def snapshot(step: int) -> None:
        if step < spec.steps:
            save_checkpoint(model, tokens, out.with_name(f"{out.stem}.step{step}{out.suffix}"), meta)

    train(model, samples, val, vocab, tokens, spec, snapshot if args.snapshots else None)
    sha = save_checkpoint(model, tokens, out, meta)
    log.info("saved %s (%.1f MB) in %.0fs total", out, out.stat().st_size / 1e6, time.time() - started)
    sys.stdout.write(f"sha256 {sha}  {out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
