"""Matching class-agnostic masks to caption nouns with region embeddings: scene, objects, parts.

For each image: masks -> crops (:mod:`ovlabel.engine.crops`) -> region embeddings; nouns ->
prompt-ensemble text embeddings; similarity matrices masks x labels then decide which masks
each noun takes. Regions of all images in a batch are embedded in one call, and the labels of
the batch in one call (the embedder caches them across batches).

Rules (thresholds in :class:`~ovlabel.engine.config.MatchingConfig`):

Objects
    One softmax per mask over the image's object nouns plus ``background_labels`` at the
    embedder's logit scale. A (mask, noun) pair is eligible when its probability is at least
    ``probability_threshold``, its raw cosine at least ``similarity_threshold``, and no
    background label is more probable for that mask. Pairs are then taken greedily, best
    probability first: a singular noun takes one mask, 'two dogs' the top 2, an uncounted
    plural every eligible mask; the masks of one noun overlap at most ``instance_nms_iou``
    (mask IoU); a mask carries at most one object label. With ``merge_similarity``, nouns whose
    label embeddings are that close ('car', 'automobile'; :func:`synonym_groups`) are one class:
    their probabilities are summed, and one slot takes the most demanding mention's label and
    demand. With ``level_overlap``, a mask sharing more than that fraction of the smaller mask
    with one already labelled at its level is skipped (visible objects do not overlap; the same
    holds for parts). With ``object_vocabulary``, the masks still free are then scored against
    the vocabulary words no caption noun covers (within ``merge_similarity``), the image's object
    nouns and background; a vocabulary word takes every mask where it is eligible at
    ``vocabulary_threshold`` (source 'vocabulary'), same rules.
Parts
    A part noun is tied to its whole by ``Noun.parent``; every mask matched to that whole is a
    parent instance. Its part candidates are the masks strictly smaller than it with at least
    ``part_containment`` of their area inside it (down to ``min_part_area_fraction`` of the image
    when set; objects need ``min_mask_area_fraction``). One softmax per candidate over the whole's
    part nouns plus background; same eligibility and greedy rule, a mask carries at most one
    part label. A part whose whole matched nothing yields nothing. With ``lexicon_parts`` the
    part lexicon (``part_lexicon``; :func:`ovlabel.engine.vocab.part_lexicon`) then proposes the
    parts the caption did not name (softmax over the whole's full lexicon plus its caption parts
    plus background), kept at ``lexicon_part_threshold`` on the masks still free, source 'lexicon'.
    With ``part_reach``, parts may also reach outside their whole's mask (a trunk below the crown
    the tree was matched by): masks touching it inside its widened box, and the whole's own mask,
    are candidates too; the whole then grows to the union with its parts outside it
    (:func:`grow_objects`), so a part still lies inside its object.
Scene
    The whole image (:func:`~ovlabel.engine.crops.crop_image`) is scored against the scene
    nouns plus background; the best scene noun labels the root when its probability is at
    least ``scene_threshold`` and its cosine at least ``similarity_threshold``; otherwise the
    root is the unlabelled 'scene'.

Every decision sorts with explicit index tie-breaks, so identical input gives identical output.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Optional, Sequence

import numpy as np
from scipy import ndimage

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.clip import RegionEmbedder
from ovlabel.engine.config import MatchingConfig
from ovlabel.engine.crops import crop_image, crop_region
from ovlabel.engine.hierarchy import root_segment, tree_of
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.records import CaptionParse, ImageMatches, Match, Noun, Segment
from ovlabel.engine.vocab import part_lexicon

log = logging.getLogger(__name__)

Lexicon = Callable[[str], Iterable[str]]  # object lemma -> part lemmas it can have


@dataclass(frozen=True)
class NounRef:
    """A noun with where it came from: ``parses[caption_index].nouns[noun_index]``."""

    noun: Noun
    caption_index: int
    noun_index: int


@dataclass(frozen=True)
class ImageInput:
    """What matching needs of one image: (H, W, 3) uint8 pixels, its masks, its caption parses."""

    image: np.ndarray
    masks: MaskBatch
    parses: tuple[CaptionParse, ...]


@dataclass(frozen=True)
class Slot:
    """One label to place: a noun (objects), or a noun under one parent instance (parts).

    ``demand`` is how many masks it may take; None means every eligible one (uncounted plural).
    """

    label: str
    level: str
    demand: Optional[int]
    source: str
    ref: Optional[NounRef] = None
    parent_match: Optional[int] = None


@dataclass(frozen=True)
class Candidate:
    """An eligible (slot, mask) pair with its softmax probability and raw cosine."""

    score: float
    similarity: float
    slot: int
    mask: int

    def rank(self) -> tuple[float, float, int, int]:
        """Sort key: best probability first, then cosine, then lowest slot, then lowest mask."""
        return (-self.score, -self.similarity, self.slot, self.mask)


# --- nouns ----------------------------------------------------------------------------------


def demand_of(noun: Noun) -> Optional[int]:
    """Masks a noun asks for: its count ('two dogs' -> 2), None for an uncounted plural, else 1."""
    if noun.count is not None and noun.count >= 1:
        return int(noun.count)
    return None if noun.plural else 1


def _precedence(ref: NounRef) -> tuple[int, int, int, int]:
    """Which mention of a lemma speaks for it: counted > uncounted plural > singular, larger count, earlier."""
    noun = ref.noun
    kind = 0 if noun.count is not None and noun.count >= 1 else (1 if noun.plural else 2)
    return (kind, -(noun.count or 0), ref.caption_index, ref.noun_index)


def _best_mentions(refs: Iterable[tuple[str, NounRef]]) -> dict[str, NounRef]:
    """key -> its most demanding mention; keys keep the order of their first mention."""
    best: dict[str, NounRef] = {}
    for key, ref in refs:
        if key not in best or _precedence(ref) < _precedence(best[key]):
            best[key] = ref
    return best


def nouns_at_level(parses: Sequence[CaptionParse], level: str) -> list[NounRef]:
    """One mention per lemma at ``level`` across the captions, in order of first mention.

    The mention kept is the most demanding one ('two dogs' over 'a dog'), so its count applies.
    """
    mentions = ((n.lemma, NounRef(n, ci, ni)) for ci, p in enumerate(parses) for ni, n in enumerate(p.nouns)
                if n.level == level)
    return list(_best_mentions(mentions).values())


def _whole_of(parse: CaptionParse, noun: Noun) -> Optional[Noun]:
    if noun.parent is None or not 0 <= noun.parent < len(parse.nouns):
        return None
    whole = parse.nouns[noun.parent]
    return whole if whole.level == "object" else None


def part_nouns(parses: Sequence[CaptionParse]) -> dict[str, list[NounRef]]:
    """Object lemma -> its part nouns (one mention per part lemma), in caption order.

    Parts without an object whole (no ``parent``, or a parent that is not an object) are dropped.
    """
    mentions: list[tuple[tuple[str, str], NounRef]] = []
    for ci, parse in enumerate(parses):
        for ni, noun in enumerate(parse.nouns):
            whole = _whole_of(parse, noun) if noun.level == "part" else None
            if whole is not None:
                mentions.append(((whole.lemma, noun.lemma), NounRef(noun, ci, ni)))
            elif noun.level == "part":
                log.debug("part noun %r (caption %d) has no object whole; skipped", noun.phrase, ci)
    table: dict[str, list[NounRef]] = {}
    for (whole, _), ref in _best_mentions(mentions).items():
        table.setdefault(whole, []).append(ref)
    return table


# --- scores and assignment ------------------------------------------------------------------


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def label_scores(regions: np.ndarray, text: np.ndarray, logit_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Cosines and softmax probabilities, both (N, L), of N region rows (N, D) against L labels (L, D)."""
    sims = regions @ text.T
    return sims, softmax(logit_scale * sims, axis=1)


def eligible(sims: np.ndarray, probs: np.ndarray, n_labels: int, prob_threshold: float,
             sim_threshold: float) -> np.ndarray:
    """(N, n_labels) bool: above both thresholds and at least as probable as every background column.

    ``sims``/``probs`` are (N, n_labels + n_background), background columns last.
    """
    ok = (probs[:, :n_labels] >= prob_threshold) & (sims[:, :n_labels] >= sim_threshold)
    if probs.shape[1] > n_labels:
        ok &= probs[:, :n_labels] >= probs[:, n_labels:].max(axis=1, keepdims=True)
    return ok


def candidates_from(sims: np.ndarray, probs: np.ndarray, ok: np.ndarray, rows: Sequence[int],
                    slots: Sequence[Optional[int]]) -> list[Candidate]:
    """Candidates of the ``ok`` cells; row r is mask ``rows[r]``, column c is slot ``slots[c]`` (None: skip)."""
    return [Candidate(float(probs[r, c]), float(sims[r, c]), slot, int(rows[r]))
            for r, c in zip(*np.nonzero(ok)) if (slot := slots[c]) is not None]


def assign(candidates: Iterable[Candidate], slots: Sequence[Slot], taken: set[int],
           overlap: Callable[[int, int], float], nms_iou: float,
           shared: Optional[Callable[[int, int], float]] = None, max_shared: Optional[float] = None
           ) -> list[Candidate]:
    """Greedy best-first assignment; ``taken`` (masks already labelled at this level) is updated.

    A candidate is kept when its mask is free, its slot still wants masks, its mask overlaps
    none of the slot's kept masks by more than ``nms_iou``, and (with ``max_shared``) it shares
    at most ``max_shared`` with every mask in ``taken`` (``shared(i, j)``: intersection over the
    smaller mask). Returned in slot order, best first.
    """
    kept: dict[int, list[int]] = {}
    chosen: list[Candidate] = []
    for cand in sorted(candidates, key=Candidate.rank):
        mine = kept.setdefault(cand.slot, [])
        demand = slots[cand.slot].demand
        if cand.mask in taken or (demand is not None and len(mine) >= demand):
            continue
        if any(overlap(cand.mask, m) > nms_iou for m in mine):
            continue
        if shared is not None and max_shared is not None and any(shared(cand.mask, m) > max_shared for m in taken):
            continue
        mine.append(cand.mask)
        taken.add(cand.mask)
        chosen.append(cand)
    return sorted(chosen, key=lambda c: (c.slot,) + c.rank())


def synonym_groups(text: np.ndarray, threshold: Optional[float]) -> list[list[int]]:
    """Rows of ``text`` (L, D unit label embeddings) that name one class: linked when their cosine is
    at least ``threshold`` (transitively). Groups list rows in order, ordered by their first row;
    ``threshold`` None gives singletons."""
    n = len(text)
    root = list(range(n))

    def find(i: int) -> int:
        while root[i] != i:
            i = root[i]
        return i

    if threshold is not None and n > 1:
        close = (text @ text.T) >= threshold
        for i, j in zip(*np.nonzero(np.triu(close, 1))):
            root[max(find(i), find(j))] = min(find(i), find(j))
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def merge_columns(sims: np.ndarray, probs: np.ndarray, groups: Sequence[Sequence[int]], n_labels: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Label columns merged per group (cosine: the best member's, probability: the members' sum);
    the background columns after ``n_labels`` are kept as they are."""
    merged_sims = [sims[:, list(g)].max(axis=1) for g in groups]
    merged_probs = [probs[:, list(g)].sum(axis=1) for g in groups]
    return (np.column_stack(merged_sims + [sims[:, n_labels:]]),
            np.column_stack(merged_probs + [probs[:, n_labels:]]))


def merged_slot(refs: Sequence[NounRef], level: str, source: str) -> Slot:
    """One slot for nouns naming one class: labelled by the most demanding mention (see
    :func:`nouns_at_level`); it takes every eligible mask when any member is an uncounted plural,
    else the largest demand."""
    best = min(refs, key=_precedence)
    demands = [demand_of(r.noun) for r in refs]
    demand = None if any(d is None for d in demands) else max(d for d in demands if d is not None)
    return Slot(best.noun.lemma, level, demand, source, best)


def to_match(cand: Candidate, slot: Slot) -> Match:
    ref = slot.ref
    return Match(mask_index=cand.mask, level=slot.level, label=slot.label, score=float(np.clip(cand.score, 0.0, 1.0)),
                 similarity=cand.similarity, source=slot.source, noun=ref.noun if ref else None,
                 caption_index=ref.caption_index if ref else None, parent_match=slot.parent_match)


# --- geometry -------------------------------------------------------------------------------


def containment(masks: MaskBatch, rows: Sequence[int], cols: Sequence[int]) -> np.ndarray:
    """(len(rows), len(cols)): the fraction of each row mask's area that lies inside each column mask."""
    return fraction_inside([masks.rles[i] for i in rows], masks.areas[list(rows)],
                           [masks.rles[j] for j in cols], masks.areas[list(cols)])


def fraction_inside(rles: Sequence[dict], areas: np.ndarray, regions: Sequence[dict], region_areas: np.ndarray
                    ) -> np.ndarray:
    """(len(rles), len(regions)): the fraction of each mask's area (RLEs with their areas) inside each region."""
    if len(rles) == 0 or len(regions) == 0:
        return np.zeros((len(rles), len(regions)))
    iou = rle_utils.iou_matrix(list(rles), list(regions))
    a = np.asarray(areas, np.float64)[:, None]
    return intersection(iou, a, np.asarray(region_areas, np.float64)[None, :]) / np.maximum(a, 1.0)


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) bool ``mask`` grown by ``radius`` pixels (a square neighbourhood)."""
    if radius <= 0:
        return mask.copy()
    return ndimage.binary_dilation(mask, np.ones((2 * radius + 1, 2 * radius + 1), bool))


def widened_box(mask: np.ndarray, fraction: float) -> np.ndarray:
    """(H, W) bool: the bounding box of (H, W) bool ``mask`` widened by ``fraction`` of its height
    and width on each side (clipped to the image); all False for an empty mask."""
    box = np.zeros_like(mask, dtype=bool)
    ys, xs = np.nonzero(mask)
    if len(ys):
        dy, dx = fraction * (ys.max() + 1 - ys.min()), fraction * (xs.max() + 1 - xs.min())
        box[max(0, int(ys.min() - dy)):int(np.ceil(ys.max() + 1 + dy)),
            max(0, int(xs.min() - dx)):int(np.ceil(xs.max() + 1 + dx))] = True
    return box


def intersection(iou: np.ndarray | float, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """|A n B| from the IoU and the areas of A and B (IoU = I / (|A| + |B| - I)), rounded to pixels."""
    return np.rint(np.asarray(iou) * (np.asarray(a) + b) / (1.0 + np.asarray(iou)))


@dataclass
class ImageContext:
    """One image during matching: its kept masks (M), their region embeddings (M, D), the
    whole-image embedding (D,), and the batch's label embeddings."""

    item: ImageInput
    masks: MaskBatch
    regions: np.ndarray
    scene: np.ndarray
    text: Mapping[str, np.ndarray]
    _iou: Optional[np.ndarray] = field(default=None, repr=False)

    def label_matrix(self, labels: Sequence[str]) -> np.ndarray:
        """(L, D) embeddings of ``labels``."""
        return np.stack([self.text[label] for label in labels])

    def iou(self, i: int, j: int) -> float:
        """Mask IoU of masks i and j (the (M, M) matrix is computed on first use)."""
        if self._iou is None:
            self._iou = rle_utils.iou_matrix(list(self.masks.rles), list(self.masks.rles))
        return float(self._iou[i, j])

    def shared(self, i: int, j: int) -> float:
        """|i n j| / min(|i|, |j|) of masks i and j: 1.0 when one lies inside the other."""
        a, b = float(self.masks.areas[i]), float(self.masks.areas[j])
        return float(intersection(self.iou(i, j), a, b)) / max(min(a, b), 1.0)


# --- the matcher ----------------------------------------------------------------------------


def large_enough(masks: MaskBatch, min_area_fraction: float) -> np.ndarray:
    """(M,) bool: masks of at least ``min_area_fraction`` of the image (and at least one pixel)."""
    h, w = masks.image_size
    return masks.areas >= max(1.0, min_area_fraction * h * w)


def candidate_masks(masks: MaskBatch, min_area_fraction: float) -> MaskBatch:
    """The masks :func:`large_enough` keeps."""
    return masks.select(large_enough(masks, min_area_fraction))


class RegionMatcher:
    """Labels the masks of a batch of images; returns each image's matches or segment tree.

    ``lexicon`` (object lemma -> part lemmas) defaults to the part lexicon ``cfg.part_lexicon``
    names (``configs/vocab/parts.yaml`` when None); it is only consulted when ``cfg.lexicon_parts``
    is set.
    """

    def __init__(self, embedder: RegionEmbedder, cfg: MatchingConfig, crop_mode: str = "masked",
                 lexicon: Optional[Lexicon] = None) -> None:
        self.embedder = embedder
        self.cfg = cfg
        self.crop_mode = crop_mode
        self._lexicon_fn: Lexicon = lexicon or part_lexicon(cfg.part_lexicon)
        self._lexicon_cache: dict[str, tuple[str, ...]] = {}

    @property
    def _min_area_fraction(self) -> float:
        """The smallest mask (fraction of the image) any level may label."""
        return min(self.cfg.part_area_fraction, self.cfg.min_mask_area_fraction)

    def label_batch(self, items: Sequence[ImageInput]) -> list[tuple[Segment, ...]]:
        """Each image's segment tree (root, objects, parts)."""
        return [tree_of(found) for found in self.match_batch(items)]

    def match_batch(self, items: Sequence[ImageInput]) -> list[ImageMatches]:
        """Each image's root and matches; all regions and all labels of the batch embedded in one call each."""
        if not items:
            return []
        kept = [candidate_masks(item.masks, self._min_area_fraction) for item in items]
        regions = self._embed_regions(items, kept)
        scenes = self.embedder.embed_crops(np.stack([crop_image(i.image, self.embedder.crop_size) for i in items]))
        text = self._embed_labels(items)
        return [self._match_image(ImageContext(item, masks, emb, scene, text))
                for item, masks, emb, scene in zip(items, kept, regions, scenes)]

    # embeddings

    def _embed_regions(self, items: Sequence[ImageInput], kept: Sequence[MaskBatch]) -> list[np.ndarray]:
        """Per image, (M_k, D) embeddings of its kept masks' crops (one embed_crops call)."""
        size = self.embedder.crop_size
        crops = [crop_region(item.image, masks.decode(i), self.crop_mode, size)
                 for item, masks in zip(items, kept) for i in range(len(masks))]
        flat = self.embedder.embed_crops(np.stack(crops)) if crops else np.zeros((0, 0), np.float32)
        bounds = np.cumsum([0] + [len(m) for m in kept])
        return [flat[bounds[k]:bounds[k + 1]] for k in range(len(kept))]

    def _lexicon(self, lemma: str) -> tuple[str, ...]:
        """Sorted part lemmas of ``lemma`` (sorted: set order must not leak into the output); memoised."""
        if lemma not in self._lexicon_cache:
            self._lexicon_cache[lemma] = tuple(sorted(set(self._lexicon_fn(lemma))))
        return self._lexicon_cache[lemma]

    def _batch_labels(self, items: Sequence[ImageInput]) -> list[str]:
        labels: dict[str, None] = dict.fromkeys(self.cfg.background_labels)
        labels.update(dict.fromkeys(self.cfg.object_vocabulary))
        for item in items:
            for level in ("scene", "object", "part"):
                labels.update(dict.fromkeys(r.noun.lemma for r in nouns_at_level(item.parses, level)))
        if self.cfg.lexicon_parts:
            objects = [r.noun.lemma for item in items for r in nouns_at_level(item.parses, "object")]
            for lemma in [*self.cfg.object_vocabulary, *objects]:
                labels.update(dict.fromkeys(self._lexicon(lemma)))
        return list(labels)

    def _embed_labels(self, items: Sequence[ImageInput]) -> dict[str, np.ndarray]:
        labels = self._batch_labels(items)
        return dict(zip(labels, self.embedder.embed_labels(labels))) if labels else {}

    def _scores(self, ctx: ImageContext, rows: Sequence[int], labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(len(rows), len(labels) + n_background) cosines and probabilities; background columns last."""
        text = ctx.label_matrix(list(labels) + list(self.cfg.background_labels))
        return label_scores(ctx.regions[list(rows)], text, self.embedder.logit_scale)

    # one image

    def _match_image(self, ctx: ImageContext) -> ImageMatches:
        objects = self._match_objects(ctx)
        parts = self._match_parts(ctx, objects)
        masks = ctx.masks
        if self.cfg.part_reach is not None:
            objects, parts, masks = grow_objects(ctx, objects, parts, self.cfg.part_containment)
        log.debug("matched %d masks: %d objects, %d parts", len(ctx.masks), len(objects), len(parts))
        return ImageMatches(self._root(ctx), tuple(objects + parts), masks)

    def _root(self, ctx: ImageContext) -> Segment:
        """The scene root: labelled by the best scene noun above the thresholds, else 'scene'."""
        size = ctx.item.image.shape[:2]
        scenes = nouns_at_level(ctx.item.parses, "scene")
        if not scenes:
            return root_segment(size, "scene")
        labels = [r.noun.lemma for r in scenes] + list(self.cfg.background_labels)
        sims, probs = label_scores(ctx.scene[None, :], ctx.label_matrix(labels), self.embedder.logit_scale)
        best = int(np.argmax(probs[0, :len(scenes)]))  # first on ties
        prob, sim = float(probs[0, best]), float(sims[0, best])
        if prob < self.cfg.scene_threshold or sim < self.cfg.similarity_threshold:
            return root_segment(size, "scene")
        ref = scenes[best]
        return root_segment(size, ref.noun.lemma, float(np.clip(prob, 0.0, 1.0)), sim, ref.noun, ref.caption_index)

    def _match_objects(self, ctx: ImageContext) -> list[Match]:
        """Each object class's masks (see the module docstring); at most one object label per mask."""
        refs = nouns_at_level(ctx.item.parses, "object")
        rows = np.flatnonzero(large_enough(ctx.masks, self.cfg.min_mask_area_fraction))
        if len(rows) == 0:
            return []
        if not refs:
            return self._vocabulary_objects(ctx, [], rows, set())
        labels = [r.noun.lemma for r in refs]
        groups = synonym_groups(ctx.label_matrix(labels), self.cfg.merge_similarity)
        slots = [merged_slot([refs[i] for i in g], "object", "caption") for g in groups]
        sims, probs = merge_columns(*self._scores(ctx, rows, labels), groups, len(labels))
        ok = eligible(sims, probs, len(slots), self.cfg.probability_threshold, self.cfg.similarity_threshold)
        taken: set[int] = set()
        chosen = self._assign(ctx, candidates_from(sims, probs, ok, rows, range(len(slots))), slots, taken)
        found = [to_match(c, slots[c.slot]) for c in chosen]
        return found + self._vocabulary_objects(ctx, labels, rows, taken)

    def _vocabulary_objects(self, ctx: ImageContext, named: Sequence[str], rows: Sequence[int], taken: set[int]
                            ) -> list[Match]:
        """Objects of ``object_vocabulary`` on the free masks among ``rows`` (see the module docstring)."""
        words = self._uncovered(ctx, [w for w in self.cfg.object_vocabulary if w not in named], named)
        free = [int(r) for r in rows if r not in taken]
        if not words or not free:
            return []
        labels = words + list(named)
        sims, probs = self._scores(ctx, free, labels)
        ok = eligible(sims, probs, len(labels), self.cfg.vocabulary_threshold, self.cfg.similarity_threshold)
        slots = [Slot(w, "object", None, "vocabulary") for w in words]
        ids = list(range(len(words))) + [None] * len(named)
        chosen = self._assign(ctx, candidates_from(sims, probs, ok, free, ids), slots, taken)
        return [to_match(c, slots[c.slot]) for c in chosen]

    def _uncovered(self, ctx: ImageContext, words: Sequence[str], named: Sequence[str]) -> list[str]:
        """``words`` whose label embedding is below ``merge_similarity`` to every ``named`` noun
        (all of them when ``merge_similarity`` is None or nothing is named)."""
        if not words or not named or self.cfg.merge_similarity is None:
            return list(words)
        close = (ctx.label_matrix(words) @ ctx.label_matrix(named).T).max(axis=1)
        return [w for w, c in zip(words, close) if c < self.cfg.merge_similarity]

    def _assign(self, ctx: ImageContext, cands: list[Candidate], slots: Sequence[Slot], taken: set[int]
                ) -> list[Candidate]:
        return assign(cands, slots, taken, ctx.iou, self.cfg.instance_nms_iou, ctx.shared, self.cfg.level_overlap)

    def _part_candidates(self, ctx: ImageContext, objects: Sequence[Match]) -> list[list[int]]:
        """Per object match, the masks strictly smaller than it and >= ``part_containment`` inside it;
        with ``part_reach`` also the masks reaching outside it (:meth:`_reaching`) and its own mask."""
        parents = [m.mask_index for m in objects]
        inside = containment(ctx.masks, range(len(ctx.masks)), parents)
        areas = ctx.masks.areas
        pools = [[i for i in range(len(ctx.masks))
                  if areas[i] < areas[p] and inside[i, k] >= self.cfg.part_containment]
                 for k, p in enumerate(parents)]
        if self.cfg.part_reach is None or not parents:
            return pools
        owns = [ctx.masks.decode(p) for p in parents]
        everything = np.logical_or.reduce(owns)
        return [sorted({*pool, *self._reaching(ctx, owns[k], everything, ctx.masks.areas[parents[k]]), parents[k]})
                for k, pool in enumerate(pools)]

    def _reaching(self, ctx: ImageContext, own: np.ndarray, objects: np.ndarray, own_area: int) -> list[int]:
        """Masks that may be parts of an object outside its (H, W) bool mask ``own``: smaller than it,
        touching it (within ``part_touch_px``), at least ``part_containment`` inside its box widened
        by ``part_reach``, and at most ``1 - part_containment`` inside the other objects (``objects``:
        (H, W) bool, the union of every object mask)."""
        regions = rle_utils.encode_many(np.stack([dilate(own, self.cfg.part_touch_px),
                                                  widened_box(own, self.cfg.part_reach), objects & ~own]))
        share = fraction_inside(ctx.masks.rles, ctx.masks.areas, regions, [rle_utils.area(r) for r in regions])
        keep = ((ctx.masks.areas < own_area) & (share[:, 0] > 0)
                & (share[:, 1] >= self.cfg.part_containment) & (share[:, 2] <= 1.0 - self.cfg.part_containment))
        return [int(i) for i in np.flatnonzero(keep)]

    def _match_parts(self, ctx: ImageContext, objects: Sequence[Match]) -> list[Match]:
        """Caption parts, then (``lexicon_parts``) lexicon parts on the masks still free."""
        by_whole = part_nouns(ctx.item.parses)
        wanted = [k for k, m in enumerate(objects) if by_whole.get(m.label) or self.cfg.lexicon_parts]
        if not wanted:
            return []
        pools = self._part_candidates(ctx, objects)
        taken: set[int] = set()
        found = self._caption_parts(ctx, objects, pools, by_whole, taken)
        if self.cfg.lexicon_parts:
            found += self._lexicon_parts(ctx, objects, pools, by_whole, taken)
        return found

    def _place_parts(self, ctx: ImageContext, groups: Sequence[tuple[Sequence[int], Sequence[str], list[Slot]]],
                     threshold: float, taken: set[int]) -> list[Match]:
        """Assign part slots; each group is (candidate masks, softmax labels, slots for the first labels)."""
        slots: list[Slot] = []
        cands: list[Candidate] = []
        for rows, labels, group_slots in groups:
            if not rows or not group_slots:
                continue
            sims, probs = self._scores(ctx, rows, labels)
            ok = eligible(sims, probs, len(labels), threshold, self.cfg.similarity_threshold)
            ids = [len(slots) + c for c in range(len(group_slots))] + [None] * (len(labels) - len(group_slots))
            cands += candidates_from(sims, probs, ok, rows, ids)
            slots += group_slots
        chosen = self._assign(ctx, cands, slots, taken)
        return [to_match(c, slots[c.slot]) for c in chosen]

    def _caption_parts(self, ctx: ImageContext, objects: Sequence[Match], pools: Sequence[list[int]],
                       by_whole: Mapping[str, list[NounRef]], taken: set[int]) -> list[Match]:
        groups = []
        for k, obj in enumerate(objects):
            refs = by_whole.get(obj.label, [])
            slots = [Slot(r.noun.lemma, "part", demand_of(r.noun), "caption", r, k) for r in refs]
            groups.append((pools[k], [s.label for s in slots], slots))
        return self._place_parts(ctx, groups, self.cfg.probability_threshold, taken)

    def _lexicon_parts(self, ctx: ImageContext, objects: Sequence[Match], pools: Sequence[list[int]],
                       by_whole: Mapping[str, list[NounRef]], taken: set[int]) -> list[Match]:
        groups = []
        for k, obj in enumerate(objects):
            named = [r.noun.lemma for r in by_whole.get(obj.label, [])]
            proposed = [p for p in self._lexicon(obj.label) if p not in named]
            slots = [Slot(p, "part", None, "lexicon", None, k) for p in proposed]
            free = [i for i in pools[k] if i not in taken]
            groups.append((free, proposed + named, slots))
        return self._place_parts(ctx, groups, self.cfg.lexicon_part_threshold, taken)


def grow_objects(ctx: ImageContext, objects: Sequence[Match], parts: Sequence[Match], min_inside: float
                 ) -> tuple[list[Match], list[Match], MaskBatch]:
    """Objects take the parts that lie outside them (less than ``min_inside`` of the part inside).

    Such an object's mask becomes the union of its mask and those parts, appended to the returned
    mask batch (``ctx.masks`` plus the unions); a part labelled on the object's own former mask
    stays (the crown the tree was matched by). An object that did not grow drops a part on its own
    mask (a part cannot be the whole object). Part order is kept; ``parent_match`` still indexes
    ``objects``.
    """
    grown: list[Match] = list(objects)
    unions: list[np.ndarray] = []
    grew: set[int] = set()
    for k, obj in enumerate(objects):
        outside = [m.mask_index for m in parts
                   if m.parent_match == k and ctx.shared(m.mask_index, obj.mask_index) < min_inside]
        if outside:
            unions.append(np.logical_or.reduce([ctx.masks.decode(i) for i in [obj.mask_index, *outside]]))
            grown[k] = dataclasses.replace(obj, mask_index=len(ctx.masks) + len(unions) - 1)
            grew.add(k)
    own_masks = {(k, obj.mask_index) for k, obj in enumerate(objects) if k not in grew}
    kept = [m for m in parts if (m.parent_match, m.mask_index) not in own_masks]
    if not unions:
        return grown, kept, ctx.masks
    return grown, kept, MaskBatch.concat([ctx.masks, MaskBatch.from_masks(np.stack(unions), source=ctx.masks.source)])


def label_image(embedder: RegionEmbedder, cfg: MatchingConfig, image: np.ndarray, masks: MaskBatch,
                parses: Sequence[CaptionParse], crop_mode: str = "masked",
                lexicon: Optional[Lexicon] = None) -> tuple[Segment, ...]:
    """Convenience: label one image."""
    matcher = RegionMatcher(embedder, cfg, crop_mode, lexicon)
    return matcher.label_batch([ImageInput(image, masks, tuple(parses))])[0]


__all__ = ["Candidate", "ImageContext", "ImageInput", "NounRef", "RegionMatcher", "Slot", "assign", "containment",
           "demand_of", "dilate", "eligible", "fraction_inside", "grow_objects", "label_image", "merge_columns",
           "merged_slot", "nouns_at_level", "part_nouns", "synonym_groups", "widened_box"]
