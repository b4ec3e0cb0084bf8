"""Part–whole links: possessives, 'of', 'with', 'have', compounds, pronouns and listed parts (COCO-style captions)."""
from __future__ import annotations

from typing import Any

import pytest

from ovlabel.engine.captions import CaptionParser
from ovlabel.engine.captions.candidates import Quantities, find_candidates
from ovlabel.engine.captions.wholes import first_conjunct, have_owners, link_wholes, with_hosts
from tests.engine.captions.helpers import assert_object, assert_part, lemmas, names_of, noun, parse, whole_of


@pytest.mark.parametrize("text, part, whole", [
    ("The dog's tail is wagging.", "tail", "dog"),
    ("A girl's hand holding a donut.", "hand", "girl"),
    ("The door of the refrigerator is open.", "door", "refrigerator"),
    ("Someone lifted the lid of a toilet.", "lid", "toilet"),
    ("The wing of an airplane above the clouds.", "wing", "airplane"),
    ("A man has a frisbee in his hand.", "hand", "man"),
    ("A bear opening its mouth near a river.", "mouth", "bear"),
    ("A dog with a frisbee in its mouth.", "mouth", "dog"),
    ("A girl holding a puppy in her arms.", "arm", "girl"),
    ("A giraffe bending its long neck to eat leaves.", "neck", "giraffe"),
    ("A bike with white handles parked by a wall.", "handle", "bike"),
    ("An oven with the door open.", "door", "oven"),
    ("A woman with long hair holding an umbrella.", "hair", "woman"),
    ("A man riding a horse with a long mane.", "mane", "horse"),
    ("A boat with white sails on the water.", "sail", "boat"),
    ("A car door is open.", "door", "car"),
    ("A toilet seat left up in a small bathroom.", "seat", "toilet"),
    ("The tree's crown is green.", "crown", "tree"),
    ("The home's door is brown.", "door", "home"),
    ("A house with a red roof on a street.", "roof", "house"),
    ("A grey home with a brown roof on a street.", "roof", "home"),  # 'home' tagged as an adverb
    ("The car has black wheels.", "wheel", "car"),
    ("One of the cars has black wheels.", "wheel", "car"),
    ("One of the houses has yellow windows.", "window", "house"),  # 'has' parsed as an auxiliary
    ("Each of the giraffes has a long neck.", "neck", "giraffe"),
    ("A man who has long hair and a beard.", "beard", "man"),
])
def test_part_of_its_whole(parser: CaptionParser, text: str, part: str, whole: str) -> None:
    result = parse(parser, text)
    assert_part(result, part, whole)
    assert whole_of(result, noun(result, part)).level == "object"


@pytest.mark.parametrize("text, whole, parts", [
    ("A man with white legs and a black torso at the beach.", "man", ["leg", "torso"]),
    ("You can see the car's blue window and grey wheels under a night sky.", "car", ["window", "wheel"]),
    ("You can see the tree's brown trunk and green crown in a field.", "tree", ["trunk", "crown"]),
    ("You can see the boat's red hull and yellow sails on a beach.", "boat", ["hull", "sail"]),
    ("You can see the person's purple torso and head on a street.", "person", ["torso", "head"]),
    ("A boat with a hull and red sails on a sandy beach.", "boat", ["hull", "sail"]),
])
def test_listed_parts_share_their_whole(parser: CaptionParser, text: str, whole: str, parts: list[str]) -> None:
    result = parse(parser, text)
    assert lemmas(result, "part") == parts
    for part in parts:
        assert_part(result, part, whole)


def test_place_with_parts_is_an_object(parser: CaptionParser) -> None:
    result = parse(parser, "A barn with a red roof.")
    assert_object(result, "barn")
    assert_part(result, "roof", "barn")
    assert noun(parse(parser, "Inside the barn."), "barn").level == "scene"


def test_nested_parts(parser: CaptionParser) -> None:
    result = parse(parser, "The handle of the door of the refrigerator is silver.")
    assert_part(result, "handle", "door")
    assert_part(result, "door", "refrigerator")
    assert_object(result, "refrigerator")


def test_pronoun_skips_nearer_noun_without_that_part(parser: CaptionParser) -> None:
    result = parse(parser, "A lady with dark brown hair has a knife in her hand.")
    assert_part(result, "hand", "lady")
    assert_part(result, "hair", "lady")
    assert_object(result, "knife")


@pytest.mark.parametrize("text, lemma", [
    ("A man with a frisbee in a park.", "frisbee"),
    ("A man sitting on a bench with his dog.", "dog"),
    ("A woman's purse on a kitchen table.", "purse"),
    ("A kitchen with white cabinets and a stove.", "cabinet"),
    ("The lid of the box is next to a cup.", "cup"),
    ("A girl with long hair and a dog.", "dog"),
    ("A man has a frisbee in his hand.", "frisbee"),
    ("A kitchen has white cabinets and a black stove.", "cabinet"),
    ("The man's shirt and tie are blue.", "tie"),
])
def test_not_a_part(parser: CaptionParser, text: str, lemma: str) -> None:
    assert_object(parse(parser, text), lemma)


def test_part_noun_without_a_whole_is_an_object(parser: CaptionParser) -> None:
    result = parse(parser, "A hand holding a slice of pizza.")
    assert_object(result, "hand")
    assert_object(result, "pizza")



def test_with_on_a_verb_offers_its_objects_then_its_subject(nlp: Any) -> None:
    doc = nlp("A man riding a horse with a long mane.")
    assert [t.text for t in with_hosts(doc[8])] == ["horse", "man"]
    assert with_hosts(doc[4]) == [] and have_owners(doc[8]) == []


def test_have_offers_its_subject_then_the_noun_after_of(nlp: Any) -> None:
    doc = nlp("One of the cars has black wheels.")
    assert [t.text for t in have_owners(doc[6])] == ["One", "cars"]


def test_a_conjunct_shares_the_first_ones_wholes(nlp: Any) -> None:
    doc = nlp("The head and tail of a dog.")
    assert first_conjunct(doc[3]).text == "head" and first_conjunct(doc[1]).text == "head"


def test_link_wholes_sets_token_indices_and_levels(nlp: Any) -> None:
    names = names_of(nlp, "The head and tail of a dog.")
    quantities = Quantities(names)
    cands = find_candidates(names, quantities)
    link_wholes(cands, names, quantities)
    assert [(c.lemma, c.level, c.whole) for c in cands] == [("head", "part", 6), ("tail", "part", 6),
                                                            ("dog", "object", None)]
