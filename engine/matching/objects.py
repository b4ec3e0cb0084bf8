"""The object level: caption objects, then vocabulary objects on the masks still free.

One softmax per mask (of at least ``min_mask_area_fraction`` of the image) over the image's
object nouns plus ``background_labels`` at the embedder's logit scale. A (mask, noun) pair is
eligible when its probability is at least ``probability_threshold``, its raw cosine at least
``similarity_threshold``, and no background label is more probable for that mask. Pairs are then
taken greedily, best probability first (:func:`~ovlabel.engine.matching.slots.assign`): a
singular noun takes one mask, 'two dogs' the top 2, an uncounted plural every eligible mask; the
masks of one noun overlap at most ``instance_nms_iou`` (mask IoU); a mask carries at most one
object label. With ``merge_similarity``, nouns whose label embeddings are that close ('car',
'automobile'; :func:`~ovlabel.engine.matching.slots.synonym_groups`) are one class: their
probabilities are summed, and one slot takes the most demanding mention's label and demand. With
``level_overlap``, a mask sharing more than that fraction of the smaller mask with one already
labelled at its level is skipped (visible objects do not overlap; the same holds for parts).
With ``object_swap_margin``, a mask the greedy pass left out because one labelled mask of
another noun overlaps it (the fridge's mask holding the man) takes that one's place when the other
noun has another mask that fits, at most that margin less probable (:func:`~ovlabel.engine.matching.slots.assign`).
With ``count_fill_threshold``, a counted noun that got fewer masks than its count then takes its
next most probable masks down to that probability (the captions say how many there are).
With ``object_vocabulary``, the masks still free are then scored against the vocabulary words no
caption noun covers (within ``merge_similarity``), the image's object nouns and background; a
vocabulary word takes every mask where it is eligible at ``vocabulary_threshold`` (source
'vocabulary'), same rules.
"""
from __future__ import annotations

from collections import Counter
from typing import Optional, Sequence

import numpy as np

from ovlabel.engine.matching.context import ImageContext, large_enough
from ovlabel.engine.matching.slots import (Candidate, Rules, Slot, candidates_from, eligible, merge_columns, merged_slot,
                                           nouns_at_level, synonym_groups, to_match)
from ovlabel.engine.records import Match


def match_objects(ctx: ImageContext, rules: Rules, captionless_words: Sequence[str] = ()) -> list[Match]:
    """Each object class's masks (caption nouns, then vocabulary words); at most one object label per mask.
    An image whose captions name no object is labelled from ``object_vocabulary`` and ``captionless_words``."""
    cfg = rules.cfg
    refs = nouns_at_level(ctx.item.parses, "object")
    rows = np.flatnonzero(large_enough(ctx.masks, cfg.min_mask_area_fraction))
    if len(rows) == 0:
        return []
    if not refs:
        return vocabulary_objects(ctx, rules, [], rows, set(), [*cfg.object_vocabulary, *captionless_words])
    labels = [r.noun.lemma for r in refs]
    groups = synonym_groups(ctx.label_matrix(labels), cfg.merge_similarity)
    slots = [merged_slot([refs[i] for i in g], "object", "caption") for g in groups]
    sims, probs = merge_columns(*rules.scores(ctx, rows, labels), groups, len(labels))
    ok = eligible(sims, probs, len(slots), cfg.probability_threshold, cfg.similarity_threshold)
    taken: set[int] = set()
    chosen = rules.place(ctx, candidates_from(sims, probs, ok, rows, range(len(slots))), slots, taken,
                         swap=cfg.object_swap_margin)
    if cfg.count_fill_threshold is not None:
        filled = fill_counts(ctx, rules, (sims, probs), rows, slots, chosen, taken)
        chosen = sorted([*chosen, *filled], key=lambda c: (c.slot,) + c.rank())
    found = [to_match(c, slots[c.slot]) for c in chosen]
    return found + vocabulary_objects(ctx, rules, labels, rows, taken)


def fill_counts(ctx: ImageContext, rules: Rules, scores: tuple[np.ndarray, np.ndarray], rows: Sequence[int],
                slots: Sequence[Slot], chosen: Sequence[Candidate], taken: set[int]) -> list[Candidate]:
    """What counted slots ('two trees', 'a dog') still lack after ``chosen``, from their candidates at
    ``count_fill_threshold`` (the other rules unchanged); ``taken`` is updated."""
    got = Counter(c.slot for c in chosen)
    short = [i if s.demand is not None and got[i] < s.demand else None for i, s in enumerate(slots)]
    if all(i is None for i in short):
        return []
    sims, probs = scores
    ok = eligible(sims, probs, len(slots), rules.cfg.count_fill_threshold or 0.0, rules.cfg.similarity_threshold)
    return rules.place(ctx, candidates_from(sims, probs, ok, rows, short), slots, taken, prior=chosen,
                       swap=rules.cfg.object_swap_margin)


def vocabulary_objects(ctx: ImageContext, rules: Rules, named: Sequence[str], rows: Sequence[int], taken: set[int],
                       vocabulary: Optional[Sequence[str]] = None) -> list[Match]:
    """Objects of ``vocabulary`` (default ``object_vocabulary``) on the masks among ``rows`` not in ``taken``
    (which is updated)."""
    cfg = rules.cfg
    listed = cfg.object_vocabulary if vocabulary is None else vocabulary
    words = uncovered(ctx, [w for w in dict.fromkeys(listed) if w not in named], named, cfg.merge_similarity)
    free = [int(r) for r in rows if r not in taken]
    if not words or not free:
        return []
    labels = words + list(named)
    sims, probs = rules.scores(ctx, free, labels)
    ok = eligible(sims, probs, len(labels), cfg.vocabulary_threshold, cfg.similarity_threshold)
    slots = [Slot(w, "object", None, "vocabulary") for w in words]
    ids = list(range(len(words))) + [None] * len(named)
    chosen = rules.place(ctx, candidates_from(sims, probs, ok, free, ids), slots, taken, swap=cfg.object_swap_margin)
    return [to_match(c, slots[c.slot]) for c in chosen]


def uncovered(ctx: ImageContext, words: Sequence[str], named: Sequence[str], merge_similarity: Optional[float]
              ) -> list[str]:
    """``words`` whose label embedding is below ``merge_similarity`` to every ``named`` noun
    (all of them when ``merge_similarity`` is None or nothing is named)."""
    if not words or not named or merge_similarity is None:
        return list(words)
    close = (ctx.label_matrix(words) @ ctx.label_matrix(named).T).max(axis=1)
    return [w for w, c in zip(words, close) if c < merge_similarity]
