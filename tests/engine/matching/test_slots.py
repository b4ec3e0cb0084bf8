"""Noun slots and assignment: demands, eligibility, greedy assignment, synonym groups, part nouns."""
from __future__ import annotations

from typing import Optional

import numpy as np
import pytest

from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.matching import (Candidate, ImageContext, ImageInput, NounRef, Overlaps, Slot, assign, demand_of, eligible,
                                     merged_slot, part_nouns, synonym_groups)
from ovlabel.engine.matching.slots import Rules
from tests.engine.matching.helpers import config, noun, parse

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


def test_synonym_groups_link_close_label_embeddings_transitively() -> None:
    text = np.array([[1.0, 0.0, 0.0], [0.96, 0.28, 0.0], [0.0, 1.0, 0.0], [0.85, 0.527, 0.0], [0.0, 0.0, 1.0]])
    assert synonym_groups(text, None) == [[0], [1], [2], [3], [4]]
    assert synonym_groups(text, 0.95) == [[0, 1, 3], [2], [4]]  # 3 joins through 1 (cos 0.85 to 0)
    assert synonym_groups(text, 0.99) == [[0], [1], [2], [3], [4]]



def _slot(demand: Optional[int]) -> Slot:
    return Slot("dog", "object", demand, "caption")


def test_demand_of_counts_plurals_and_singulars() -> None:
    assert [demand_of(noun("dog", count=2, plural=True)), demand_of(noun("dog", plural=True)), demand_of(noun("dog"))] \
        == [2, None, 1]


def test_eligible_needs_both_thresholds_and_beating_background() -> None:
    sims = np.array([[0.5, 0.1, 0.2], [0.05, 0.5, 0.1], [0.5, 0.5, 0.1]])
    probs = np.array([[0.6, 0.1, 0.3], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4]])  # background column last
    ok = eligible(sims, probs, 2, 0.25, 0.1)
    assert ok.tolist() == [[True, False], [False, True], [False, False]]  # row 2: background wins


def test_assign_is_greedy_best_first_with_demand_nms_and_taken() -> None:
    cands = [Candidate(0.9, 0.5, 0, 0), Candidate(0.8, 0.5, 0, 1), Candidate(0.7, 0.5, 0, 2),
             Candidate(0.95, 0.5, 1, 3), Candidate(0.6, 0.5, 1, 0)]
    iou = {(1, 0): 0.9, (0, 1): 0.9}
    taken: set[int] = {2}
    chosen = assign(cands, [_slot(None), _slot(1)], taken, Overlaps(lambda i, j: iou.get((i, j), 0.0), 0.5))
    # mask 1 overlaps mask 0 (NMS), mask 2 is taken, slot 1 wants one mask
    assert [(c.slot, c.mask) for c in chosen] == [(0, 0), (1, 3)] and taken == {0, 2, 3}
    apart = assign(cands[:2], [_slot(None)], set(), Overlaps(lambda i, j: 0.0, 0.5, lambda i, j: 1.0, 0.5))
    assert [c.mask for c in apart] == [0]  # mask 1 shares too much with mask 0, labelled first


# swap: masks 0 (the fridge and the man), 1 (the fridge alone), 2 (the man); 0 holds 1 and 2
_HOLDS = {(0, 1), (1, 0), (0, 2), (2, 0)}
_SWAP_RULES = Overlaps(lambda i, j: 0.0, 0.5, lambda i, j: 1.0 if (i, j) in _HOLDS else 0.0, 0.3)


@pytest.mark.parametrize("swap, expected", [(None, [(0, 0)]), (0.05, [(0, 1), (1, 2)]), (0.005, [(0, 0)])])
def test_swap_gives_a_blocked_noun_its_mask_when_the_blocker_has_another(swap: float | None,
                                                                        expected: list[tuple[int, int]]) -> None:
    cands = [Candidate(0.99, 0.5, 0, 0), Candidate(0.98, 0.5, 0, 1), Candidate(0.9, 0.5, 1, 2)]
    taken: set[int] = set()
    chosen = assign(cands, [_slot(1), _slot(1)], taken, _SWAP_RULES, swap=swap)
    assert [(c.slot, c.mask) for c in chosen] == expected and taken == {m for _, m in expected}


def test_swap_leaves_the_blocker_without_another_mask_and_never_moves_earlier_rounds() -> None:
    lone = [Candidate(0.99, 0.5, 0, 0), Candidate(0.9, 0.5, 1, 2)]
    assert [(c.slot, c.mask) for c in assign(lone, [_slot(1), _slot(1)], set(), _SWAP_RULES, swap=0.5)] == [(0, 0)]
    fixed = assign([Candidate(0.9, 0.5, 1, 2)], [_slot(1), _slot(1)], {0}, _SWAP_RULES, swap=0.5)
    assert fixed == []  # mask 0 was labelled by an earlier round (taken on entry): not swappable
    two = [Candidate(0.99, 0.5, 0, 0), Candidate(0.98, 0.5, 0, 1), Candidate(0.9, 0.5, 1, 1), Candidate(0.8, 0.5, 1, 2)]
    chosen = assign(two, [_slot(1), _slot(1)], set(), _SWAP_RULES, swap=0.5)
    assert [(c.slot, c.mask) for c in chosen] == [(0, 1), (1, 2)]  # (1, 1) would need mask 1 twice: 2 instead


def test_merged_slot_takes_the_most_demanding_mention() -> None:
    refs = [NounRef(noun("car"), 0, 0), NounRef(noun("automobile", count=2, plural=True), 1, 0)]
    assert merged_slot(refs, "object", "caption") == Slot("automobile", "object", 2, "caption", refs[1])
    loose = refs + [NounRef(noun("cars", plural=True), 2, 0)]
    assert merged_slot(loose, "object", "caption").demand is None


def test_part_nouns_group_parts_under_their_object_whole() -> None:
    parses = [parse(noun("kitchen", level="scene"), noun("dog"), noun("tail", level="part", parent=1),
                    noun("ear", level="part", parent=0), noun("leg", level="part"))]
    table = part_nouns(parses)
    assert {whole: [r.noun.lemma for r in refs] for whole, refs in table.items()} == {"dog": ["tail"]}


def test_rules_score_labels_then_background() -> None:
    rules = Rules(config(background_labels=("background",)), logit_scale=10.0)
    text = {"dog": np.array([1.0, 0.0]), "background": np.array([0.0, 1.0])}
    masks = MaskBatch.empty((4, 4))
    item = ImageInput(np.zeros((4, 4, 3), np.uint8), masks, ())
    ctx = ImageContext(item, masks, np.array([[0.6, 0.8]]), np.zeros(2), text)
    sims, probs = rules.scores(ctx, [0], ["dog"])
    np.testing.assert_allclose(sims, [[0.6, 0.8]])
    np.testing.assert_allclose(probs, [[1 / (1 + np.exp(2.0)), 1 / (1 + np.exp(-2.0))]])
