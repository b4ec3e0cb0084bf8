"""Phrase spans and attributes: what words a noun's phrase covers, and its colour and size adjectives."""
from __future__ import annotations

from typing import Any

import pytest

from ovlabel.engine.captions import CaptionParser
from ovlabel.engine.captions.candidates import Quantities, find_candidates
from ovlabel.engine.captions.phrases import Phrases, modifies, plural
from ovlabel.engine.captions.wholes import link_wholes
from tests.engine.captions.helpers import assert_part, lemmas, names_of, noun, parse


def test_listed_parts_keep_their_own_colours(parser: CaptionParser) -> None:
    result = parse(parser, "You can see the tree's brown trunk and green crown in a field.")
    assert noun(result, "crown").attributes == ("green",)
    result = parse(parser, "You can see the boat's red hull and yellow sails on a beach.")
    assert noun(result, "hull").attributes == ("red",) and noun(result, "sail").attributes == ("yellow",)


def test_possessive_part_phrase_and_span(parser: CaptionParser) -> None:
    text = "The dog's tail is wagging."
    tail = assert_part(parse(parser, text), "tail", "dog")
    assert tail.phrase == "tail" and tail.char_span == (10, 14)


def test_compound_part_keeps_head_lemma_and_its_own_phrase(parser: CaptionParser) -> None:
    result = parse(parser, "A car door is open.")
    assert lemmas(result) == ["car", "door"]
    assert noun(result, "door").phrase == "door" and noun(result, "car").phrase == "car"


def test_with_part_keeps_attributes_and_plural(parser: CaptionParser) -> None:
    handle = assert_part(parse(parser, "A bike with white handles parked by a wall."), "handle", "bike")
    assert handle.plural and handle.attributes == ("white",) and handle.phrase == "white handles"


def test_colour_and_size_attributes(parser: CaptionParser) -> None:
    result = parse(parser, "A black and white cat sleeping on a large red bed.")
    assert noun(result, "cat").attributes == ("black", "white")
    assert noun(result, "bed").attributes == ("large", "red")
    assert noun(result, "cat").phrase == "black and white cat"


@pytest.mark.parametrize("text, expected, lemma, colour", [
    ("There are two women and a grey puppy in a grassy field.", ["woman", "puppy", "field"], "puppy", "grey"),
    ("You can see the boat's orange hull and red sail at the beach.", ["boat", "hull", "sail", "beach"], "hull",
     "orange"),
])
def test_colour_words_tagged_as_nouns_are_attributes(parser: CaptionParser, text: str, expected: list[str],
                                                     lemma: str, colour: str) -> None:
    result = parse(parser, text)
    assert lemmas(result) == expected and noun(result, lemma).attributes == (colour,)


def test_predicative_colour_and_comparative_size(parser: CaptionParser) -> None:
    result = parse(parser, "The kitchen is yellow and has smaller white cabinets.")
    assert noun(result, "kitchen").attributes == ("yellow",)
    assert noun(result, "cabinet").attributes == ("small", "white")


def test_non_attribute_adjectives_are_ignored(parser: CaptionParser) -> None:
    assert noun(parse(parser, "A cute old dog in a dimly lit room."), "dog").attributes == ()
    assert noun(parse(parser, "A cute old dog in a dimly lit room."), "room").attributes == ()


def test_phrases_drop_determiners_and_possessors(parser: CaptionParser) -> None:
    result = parse(parser, "The big dog's red collar and all the small toys.")
    assert [n.phrase for n in result.nouns] == ["big dog", "red collar", "small toys"]



def test_phrases_read_spans_attributes_and_plurals_of_linked_candidates(nlp: Any) -> None:
    names = names_of(nlp, "A bike with white handles parked by a wall.")
    quantities = Quantities(names)
    cands = find_candidates(names, quantities)
    link_wholes(cands, names, quantities)
    phrases = Phrases(names, {c.token.i for c in cands})
    assert [phrases.char_span(c) for c in cands] == [(2, 6), (12, 25), (38, 42)]
    assert [phrases.attributes(c) for c in cands] == [(), ("white",), ()]
    assert [plural(c) for c in cands] == [False, True, False]


def test_modifier_links_only_reach_the_head(nlp: Any) -> None:
    doc = nlp("A black and white cat sleeping on a large red bed.")
    assert modifies(doc[1], {4}) and modifies(doc[3], {4}) and modifies(doc[9], {10})
    assert not modifies(doc[5], {4}) and not modifies(doc[9], {4})
