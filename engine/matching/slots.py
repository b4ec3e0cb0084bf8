"""Noun slots and greedy assignment: which caption nouns want masks, how many, and who gets which.

A :class:`Slot` is one label to place (a noun, or a noun under one parent instance); a
:class:`Candidate` is an eligible (slot, mask) pair. Each level scores its masks against its
labels plus the background labels (:func:`label_scores`, one softmax per mask), keeps the
:func:`eligible` pairs and hands them to :func:`assign`, best probability first. Every sort has
explicit index tie-breaks, so identical input gives identical output.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from ovlabel.engine.config import MatchingConfig
from ovlabel.engine.matching.context import ImageContext
from ovlabel.engine.records import CaptionParse, Match, Noun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NounRef:
    """A noun with where it came from: ``parses[caption_index].nouns[noun_index]``."""

    noun: Noun
    caption_index: int
    noun_index: int


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


LABEL_LEVELS = ("scene", "object", "part")  # the levels whose caption nouns become labels


def caption_labels(parses: Sequence[CaptionParse]) -> list[str]:
    """The labels the captions give the matcher to score: each scene, object and part lemma once, in order."""
    return list(dict.fromkeys(r.noun.lemma for level in LABEL_LEVELS for r in nouns_at_level(parses, level)))


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


@dataclass(frozen=True)
class Overlaps:
    """The overlap rules of one level: ``overlap(i, j)`` (mask IoU) at most ``nms_iou`` between the masks of
    one slot; with ``max_shared``, ``shared(i, j)`` (intersection over the smaller mask) at most that between
    any two masks labelled at the level."""

    overlap: Callable[[int, int], float]
    nms_iou: float
    shared: Optional[Callable[[int, int], float]] = None
    max_shared: Optional[float] = None

    def clash(self, a: int, b: int) -> bool:
        """Masks ``a`` and ``b`` may not both be labelled at this level (one is the other, or they share too much)."""
        return a == b or (self.shared is not None and self.max_shared is not None
                          and self.shared(a, b) > self.max_shared)


class _Assignment:
    """The kept candidates of one :func:`assign` call, over masks ``fixed`` that earlier rounds labelled."""

    def __init__(self, slots: Sequence[Slot], rules: Overlaps, fixed: set[int], prior: Sequence[Candidate]) -> None:
        self.slots, self.rules, self.fixed = slots, rules, fixed
        self.kept: list[Candidate] = []
        self._by_slot: dict[int, list[int]] = {}  # each slot's masks: the prior round's, then this call's
        for cand in prior:
            self._by_slot.setdefault(cand.slot, []).append(cand.mask)

    def add(self, cand: Candidate) -> None:
        self.kept.append(cand)
        self._by_slot.setdefault(cand.slot, []).append(cand.mask)

    def remove(self, cand: Candidate) -> None:
        self.kept.remove(cand)
        self._by_slot[cand.slot].remove(cand.mask)

    def _room(self, cand: Candidate) -> bool:
        """Its slot wants more, its mask clashes with no fixed one, and it passes NMS with its slot's masks."""
        mine = self._by_slot.get(cand.slot, [])
        demand = self.slots[cand.slot].demand
        if (demand is not None and len(mine) >= demand) or any(self.rules.clash(cand.mask, m) for m in self.fixed):
            return False
        return not any(self.rules.overlap(cand.mask, m) > self.rules.nms_iou for m in mine)

    def fits(self, cand: Candidate) -> bool:
        return self._room(cand) and not any(self.rules.clash(cand.mask, k.mask) for k in self.kept)

    def blockers(self, cand: Candidate) -> Optional[list[Candidate]]:
        """The kept candidates of other slots ``cand`` clashes with ([]: it fits), or None when nothing this
        call kept can make room for it (its slot is full, its mask is fixed or clashes with one, NMS)."""
        if not self._room(cand):
            return None
        return [k for k in self.kept if self.rules.clash(cand.mask, k.mask)]

    def try_swap(self, cand: Candidate, pool: Sequence[Candidate], margin: float) -> bool:
        """Keep ``cand`` in place of the one kept candidate blocking it when that one's slot has another mask that
        fits beside ``cand`` and scores at most ``margin`` below it (the best such, from ``pool``, best first): one
        match more. False: nothing changed."""
        found = self.blockers(cand)
        if not found or len(found) != 1:
            return False
        (old,) = found
        self.remove(old)
        self.add(cand)
        for alt in pool:  # a kept candidate never fits again (its mask clashes with itself), old clashes with cand
            if alt.score < old.score - margin:
                break  # pool is best first
            if alt.slot == old.slot and self.fits(alt):
                self.add(alt)
                return True
        self.remove(cand)
        self.add(old)
        return False


def assign(candidates: Iterable[Candidate], slots: Sequence[Slot], taken: set[int], rules: Overlaps,
           prior: Sequence[Candidate] = (), swap: Optional[float] = None) -> list[Candidate]:
    """Greedy best-first assignment; ``taken`` (masks already labelled at this level) is updated.

    A candidate is kept when its mask is free, its slot still wants masks, its mask overlaps
    none of the slot's kept masks by more than ``rules.nms_iou``, and (with ``rules.max_shared``) it
    shares at most that with every mask in ``taken``. ``prior``: candidates an earlier round kept
    (counted against their slots' demand and NMS; not returned again). With a ``swap`` margin, each
    candidate left out because one kept candidate of another slot blocks it (a mask with the fridge and
    the man in it, labelled fridge) then takes its place when that slot has another mask that fits
    beside it, at most ``swap`` less probable (:meth:`_Assignment.try_swap`), in rank order. Returned
    in slot order, best first.
    """
    ranked = sorted(candidates, key=Candidate.rank)
    state = _Assignment(slots, rules, set(taken), prior)
    left_out: list[Candidate] = []
    for cand in ranked:
        if state.fits(cand):
            state.add(cand)
        else:
            left_out.append(cand)
    if swap is not None:
        for cand in left_out:
            state.try_swap(cand, ranked, swap)
    taken.update(c.mask for c in state.kept)
    return sorted(state.kept, key=lambda c: (c.slot,) + c.rank())


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


@dataclass(frozen=True)
class Rules:
    """What every level scores and assigns with: the matching thresholds and the embedder's temperature."""

    cfg: MatchingConfig
    logit_scale: float

    def scores(self, ctx: ImageContext, rows: Sequence[int], labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(len(rows), len(labels) + n_background) cosines and probabilities; background columns last."""
        text = ctx.label_matrix(list(labels) + list(self.cfg.background_labels))
        return label_scores(ctx.regions[list(rows)], text, self.logit_scale)

    def place(self, ctx: ImageContext, cands: list[Candidate], slots: Sequence[Slot], taken: set[int],
              prior: Sequence[Candidate] = (), swap: Optional[float] = None) -> list[Candidate]:
        """:func:`assign` with the level's NMS and ``level_overlap`` rules (``swap``: its margin); ``taken`` is
        updated."""
        rules = Overlaps(ctx.iou, self.cfg.instance_nms_iou, ctx.shared, self.cfg.level_overlap)
        return assign(cands, slots, taken, rules, prior, swap)
