"""Candidates: which words are nouns, which are dropped, counts, scenes and words the tagger misread."""
from __future__ import annotations

from typing import Any, Optional

import pytest

from ovlabel.engine.captions import CaptionParser, parse_caption
from ovlabel.engine.captions.candidates import Quantities, find_candidates, is_noun_tag
from tests.engine.captions.helpers import assert_object, lemmas, names_of, noun, parse


@pytest.mark.parametrize("text, kept, dropped", [
    ("A man standing in front of a building.", ["man", "building"], "front"),
    ("A cat sitting on top of a car.", ["cat", "car"], "top"),
    ("A truck parked on the side of the road.", ["truck", "road"], "side"),
    ("A mess of items on a desk.", ["item", "desk"], "mess"),
    ("A picture of a cat on a bed.", ["cat", "bed"], "picture"),
    ("A photo of a bus parked by a curb.", ["bus", "curb"], "photo"),
    ("A view of a giraffe from a car window.", ["giraffe", "car", "window"], "view"),
    ("A close up of a hot dog with mustard.", ["hot dog", "mustard"], "close up"),
    ("A herd of elephants walking near the water.", ["elephant", "water"], "herd"),
    ("A bunch of bananas in the middle of a table.", ["banana", "table"], "bunch"),
    ("A lot of cars in the background of the image.", ["car"], "lot"),
    ("A slice of pizza sitting on a plate.", ["pizza", "plate"], "slice"),
])
def test_spatial_quantity_and_framing_words_are_dropped(parser: CaptionParser, text: str, kept: list[str],
                                                        dropped: str) -> None:
    result = parse(parser, text)
    assert [n for n in lemmas(result) if n in kept] == kept
    assert dropped not in lemmas(result)


def test_side_of_the_road(parser: CaptionParser) -> None:
    result = parse(parser, "the side of the road")
    assert lemmas(result) == ["road"]
    assert_object(result, "road")


@pytest.mark.parametrize("text, lemma, count", [
    ("A couple of pies on a table.", "pie", 2),
    ("A pair of skis leaning against a wall.", "ski", 2),
    ("Two pairs of skis stuck in the snow.", "ski", 4),
    ("A group of people standing on a beach.", "people", None),
])
def test_quantity_phrases_give_their_count(parser: CaptionParser, text: str, lemma: str,
                                           count: Optional[int]) -> None:
    result = parse(parser, text)
    found = assert_object(result, lemma)
    assert found.count == count and found.plural
    assert not {"couple", "pair", "group"} & set(lemmas(result))


@pytest.mark.parametrize("text, expected", [
    ("Something is on the table at night.", ["table"]),
    ("It is a sunny day at the beach.", ["beach"]),
    ("A couple sitting on a bench.", ["bench"]),
    ("They are standing at the edge of a lake in the distance.", ["lake"]),
    ("Some kind of animal walking in the area.", ["animal"]),
])
def test_stop_nouns_and_pronouns_are_never_emitted(parser: CaptionParser, text: str, expected: list[str]) -> None:
    assert lemmas(parse(parser, text)) == expected


@pytest.mark.parametrize("text, scene", [
    ("A woman in a living room holding a cell phone.", "living room"),
    ("Three people at a skate park.", "skate park"),
    ("Two zebras grazing in a field.", "field"),
    ("A small bathroom with a white sink.", "bathroom"),
    ("A bus driving down a busy street.", "street"),
    ("A man cutting vegetables in his kitchen.", "kitchen"),
    ("A surfer riding a wave near the beach.", "beach"),
    ("A train pulling into a train station.", "train station"),
])
def test_place_nouns_are_scenes(parser: CaptionParser, text: str, scene: str) -> None:
    found = noun(parse(parser, text), scene)
    assert found.level == "scene" and found.parent is None


@pytest.mark.parametrize("text, lemma", [
    ("A bus driving down a busy street.", "bus"),
    ("A train pulling into a train station.", "train"),
    ("A boat floating on the ocean.", "boat"),
    ("A car parked in a parking lot.", "car"),
    ("Two houses on a street.", "house"),
    ("A woman in a living room holding a cell phone.", "cell phone"),
])
def test_vehicles_and_things_stay_objects(parser: CaptionParser, text: str, lemma: str) -> None:
    assert_object(parse(parser, text), lemma)


@pytest.mark.parametrize("text, lemma, count, plural", [
    ("Two dogs playing in the snow.", "dog", 2, True),
    ("3 people sitting at a table.", "people", 3, True),
    ("One man riding a skateboard.", "man", 1, False),
    ("A dozen donuts in a box.", "donut", 12, True),
    ("Several elephants at a watering hole.", "elephant", None, True),
    ("Many birds sitting on a wire.", "bird", None, True),
    ("A dog running on the beach.", "dog", None, False),
])
def test_counts(parser: CaptionParser, text: str, lemma: str, count: Optional[int], plural: bool) -> None:
    found = noun(parse(parser, text), lemma)
    assert (found.count, found.plural) == (count, plural)
    assert "dozen" not in lemmas(parse(parser, text))


def test_colour_noun_on_its_own_is_an_object(parser: CaptionParser) -> None:
    assert_object(parse(parser, "An orange and a banana on the table."), "orange")


def test_verb_misread_as_plural_noun(parser: CaptionParser) -> None:
    result = parse(parser, "A red bus passes by an old church.")
    bus = assert_object(result, "bus")
    assert bus.attributes == ("red",) and "pass" not in lemmas(result)


def test_gerund_misread_as_noun(parser: CaptionParser) -> None:
    result = parse(parser, "A couple of zebra standing in a grass field.")
    zebra = assert_object(result, "zebra")
    assert zebra.count == 2 and "standing" not in lemmas(result)


def test_emoji_and_symbols_are_not_nouns() -> None:
    assert parse_caption("🐶🌊☀️🎉").nouns == ()
    lemmas = [n.lemma for n in parse_caption("A dog 🐶 on a beach 🌊.").nouns]
    assert "dog" in lemmas and all(any(ch.isalpha() for ch in lemma) for lemma in lemmas)



def test_quantities_count_the_noun_after_of(nlp: Any) -> None:
    names = names_of(nlp, "Two pairs of skis stuck in the snow.")
    quantities = Quantities(names)
    assert quantities.heads == {1} and quantities.counts == {3: 4}
    assert quantities.through(names.tokens[1]).i == 3 and quantities.through(names.tokens[7]).i == 7
    assert [(c.token.i, c.lemma, c.level) for c in find_candidates(names, quantities)] == [(3, "ski", "object"),
                                                                                           (7, "snow", "object")]


def test_candidates_keep_multiword_names_and_scenes(nlp: Any) -> None:
    names = names_of(nlp, "A yellow fire hydrant in a living room.")
    found = find_candidates(names, Quantities(names))
    assert [(c.lemma, c.level, c.host is c.token, c.whole) for c in found] == [
        ("fire hydrant", "object", True, None), ("living room", "scene", True, None)]


def test_noun_tags_need_letters(nlp: Any) -> None:
    doc = nlp("A dog 🐶 on a beach.")
    assert [t.text for t in doc if is_noun_tag(t)] == ["dog", "beach"]
