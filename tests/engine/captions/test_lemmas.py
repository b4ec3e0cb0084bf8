"""Lemmas and names: multiword names kept whole, plurals lemmatised, the rule lemmatiser matching spaCy's."""
from __future__ import annotations

from typing import Any

import pytest

from ovlabel.engine.captions import CaptionParser, RuleLemmas, load_spacy
from tests.engine.captions.helpers import lemmas, names_of, noun, parse


@pytest.mark.parametrize("text, expected", [
    ("A yellow fire hydrant next to a stop sign.", ["fire hydrant", "stop sign"]),
    ("A brown teddy bear sitting under a traffic light.", ["teddy bear", "traffic light"]),
    ("A man holding a tennis racket on a tennis court.", ["man", "tennis racket", "tennis court"]),
    ("A boy swinging a baseball bat at a hot dog.", ["boy", "baseball bat", "hot dog"]),
    ("A microwave oven above the stove in a kitchen.", ["microwave oven", "stove", "kitchen"]),
])
def test_multiword_names_are_kept_whole(parser: CaptionParser, text: str, expected: list[str]) -> None:
    assert lemmas(parse(parser, text)) == expected


def test_teddy_bear_is_not_a_bear(parser: CaptionParser) -> None:
    result = parse(parser, "A brown teddy bear sitting under a traffic light.")
    bear = noun(result, "teddy bear")
    assert "bear" not in lemmas(result) and bear.phrase == "brown teddy bear" and bear.attributes == ("brown",)


def test_plurals_are_lemmatised(parser: CaptionParser) -> None:
    result = parse(parser, "Two hot dogs and some knives next to three glasses on the shelves.")
    assert lemmas(result) == ["hot dog", "knife", "glass", "shelf"]
    assert all(n.plural for n in result.nouns)
    assert [n.count for n in result.nouns] == [2, None, 3, None]


def test_rule_lemmas_match_spacy_lemmatizer() -> None:
    nlp = load_spacy("en_core_web_sm")
    rule = RuleLemmas.from_pipeline(nlp)
    assert rule is not None
    text = ("Geese and mice near the knives, skis, buses, women, glasses, boxes, leaves and ponies; "
            "the larger and biggest sheep, happier children, teeth and feet.")
    checked = [(t.text, t.tag_, t.lemma_.lower()) for t in nlp(text) if t.pos_ in ("NOUN", "ADJ")]
    assert len(checked) > 15
    assert [rule(word, tag) for word, tag, _ in checked] == [lemma for _, _, lemma in checked]



def test_names_join_multiword_names_ending_on_any_tag(nlp: Any) -> None:
    names = names_of(nlp, "A yellow fire hydrant next to a stop sign.")  # 'hydrant' tagged as an adverb
    assert names.multiword == {3: (2, "fire hydrant"), 8: (7, "stop sign")}
    assert names.inside == {2, 7}
    assert [names.name_start(i) for i in (3, 8, 1)] == [2, 7, 1]
    assert names.lemma(names.tokens[3]) == "fire hydrant" and names.base_lemma(names.tokens[3]) == "hydrant"


def test_names_take_the_vocabulary_spelling(nlp: Any) -> None:
    names = names_of(nlp, "A pair of scissors and some cookies.")  # spaCy: 'scissor', 'cooky'
    assert [names.base_lemma(names.tokens[i]) for i in (3, 6)] == ["scissors", "cookie"]
