"""The part level: caption parts, then lexicon parts, under each matched object instance.

A part noun is tied to its whole by ``Noun.parent``; every mask matched to that whole is a parent
instance. Its part candidates are the masks strictly smaller than it with at least
``part_containment`` of their area inside it (down to ``min_part_area_fraction`` of the image when
set; objects need ``min_mask_area_fraction``). One softmax per candidate over the whole's part
nouns plus background; same eligibility and greedy rule as objects, a mask carries at most one
part label. A part whose whole matched nothing yields nothing. With ``lexicon_parts`` the part
lexicon (``part_lexicon``; :func:`ovlabel.engine.vocab.part_lexicon`) then proposes the parts the
caption did not name (softmax over the whole's full lexicon plus its caption parts plus
background), kept at ``lexicon_part_threshold`` on the masks still free, source 'lexicon'. With
``part_reach``, parts may also reach outside their whole's mask (a trunk below the crown the tree
was matched by): masks touching it inside its widened box, and the whole's own mask, are
candidates too; the whole then grows to the union with its parts outside it
(:func:`grow_objects`), so a part still lies inside its object.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.config import MatchingConfig
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.matching.context import ImageContext, containment, dilate, fraction_inside, widened_box
from ovlabel.engine.matching.slots import (Candidate, NounRef, Rules, Slot, candidates_from, demand_of, eligible,
                                           part_nouns, to_match)
from ovlabel.engine.records import Match

Lexicon = Callable[[str], Iterable[str]]  # object lemma -> part lemmas it can have
PartGroup = tuple[Sequence[int], Sequence[str], list[Slot]]  # candidate masks, softmax labels, their slots


class PartLexicon:
    """A :data:`Lexicon` as sorted tuples (set order must not leak into the output), memoised per lemma."""

    def __init__(self, lexicon: Lexicon) -> None:
        self._lexicon = lexicon
        self._cache: dict[str, tuple[str, ...]] = {}

    def __call__(self, lemma: str) -> tuple[str, ...]:
        if lemma not in self._cache:
            self._cache[lemma] = tuple(sorted(set(self._lexicon(lemma))))
        return self._cache[lemma]


def match_parts(ctx: ImageContext, rules: Rules, objects: Sequence[Match], lexicon: PartLexicon) -> list[Match]:
    """Caption parts, then (``lexicon_parts``) lexicon parts on the masks still free."""
    cfg = rules.cfg
    by_whole = part_nouns(ctx.item.parses)
    wanted = [k for k, m in enumerate(objects) if by_whole.get(m.label) or cfg.lexicon_parts]
    if not wanted:
        return []
    pools = part_candidates(ctx, cfg, objects)
    taken: set[int] = set()
    found = _caption_parts(ctx, rules, objects, pools, by_whole, taken)
    if cfg.lexicon_parts:
        found += _lexicon_parts(ctx, rules, objects, pools, by_whole, taken, lexicon)
    return found


def part_candidates(ctx: ImageContext, cfg: MatchingConfig, objects: Sequence[Match]) -> list[list[int]]:
    """Per object match, the masks strictly smaller than it and >= ``part_containment`` inside it;
    with ``part_reach`` also the masks reaching outside it (:func:`reaching`) and its own mask."""
    parents = [m.mask_index for m in objects]
    inside = containment(ctx.masks, range(len(ctx.masks)), parents)
    areas = ctx.masks.areas
    pools = [np.flatnonzero((areas < areas[p]) & (inside[:, k] >= cfg.part_containment)).tolist()
             for k, p in enumerate(parents)]
    if cfg.part_reach is None or not parents:
        return pools
    owns = [ctx.masks.decode(p) for p in parents]
    everything = np.logical_or.reduce(owns)
    return [sorted({*pool, *reaching(ctx, cfg, owns[k], everything, ctx.masks.areas[parents[k]]), parents[k]})
            for k, pool in enumerate(pools)]


def reaching(ctx: ImageContext, cfg: MatchingConfig, own: np.ndarray, objects: np.ndarray, own_area: int) -> list[int]:
    """Masks that may be parts of an object outside its (H, W) bool mask ``own``: smaller than it,
    touching it (within ``part_touch_px``), at least ``part_containment`` inside its box widened
    by ``part_reach``, and at most ``1 - part_containment`` inside the other objects (``objects``:
    (H, W) bool, the union of every object mask)."""
    regions = rle_utils.encode_many(np.stack([dilate(own, cfg.part_touch_px),
                                              widened_box(own, cfg.part_reach), objects & ~own]))
    share = fraction_inside(ctx.masks.rles, ctx.masks.areas, regions, [rle_utils.area(r) for r in regions])
    keep = ((ctx.masks.areas < own_area) & (share[:, 0] > 0)
            & (share[:, 1] >= cfg.part_containment) & (share[:, 2] <= 1.0 - cfg.part_containment))
    return [int(i) for i in np.flatnonzero(keep)]


def _place_parts(ctx: ImageContext, rules: Rules, groups: Sequence[PartGroup], threshold: float, taken: set[int]
                 ) -> list[Match]:
    """Assign part slots; each group is (candidate masks, softmax labels, slots for the first labels)."""
    slots: list[Slot] = []
    cands: list[Candidate] = []
    for rows, labels, group_slots in groups:
        if not rows or not group_slots:
            continue
        sims, probs = rules.scores(ctx, rows, labels)
        ok = eligible(sims, probs, len(labels), threshold, rules.cfg.similarity_threshold)
        ids = [len(slots) + c for c in range(len(group_slots))] + [None] * (len(labels) - len(group_slots))
        cands += candidates_from(sims, probs, ok, rows, ids)
        slots += group_slots
    chosen = rules.place(ctx, cands, slots, taken)
    return [to_match(c, slots[c.slot]) for c in chosen]


def _caption_parts(ctx: ImageContext, rules: Rules, objects: Sequence[Match], pools: Sequence[list[int]],
                   by_whole: Mapping[str, list[NounRef]], taken: set[int]) -> list[Match]:
    groups: list[PartGroup] = []
    for k, obj in enumerate(objects):
        refs = by_whole.get(obj.label, [])
        slots = [Slot(r.noun.lemma, "part", demand_of(r.noun), "caption", r, k) for r in refs]
        groups.append((pools[k], [s.label for s in slots], slots))
    return _place_parts(ctx, rules, groups, rules.cfg.probability_threshold, taken)


def _lexicon_parts(ctx: ImageContext, rules: Rules, objects: Sequence[Match], pools: Sequence[list[int]],
                   by_whole: Mapping[str, list[NounRef]], taken: set[int], lexicon: PartLexicon) -> list[Match]:
    groups: list[PartGroup] = []
    for k, obj in enumerate(objects):
        named = [r.noun.lemma for r in by_whole.get(obj.label, [])]
        proposed = [p for p in lexicon(obj.label) if p not in named]
        slots = [Slot(p, "part", None, "lexicon", None, k) for p in proposed]
        free = [i for i in pools[k] if i not in taken]
        groups.append((free, proposed + named, slots))
    return _place_parts(ctx, rules, groups, rules.cfg.lexicon_part_threshold, taken)


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
