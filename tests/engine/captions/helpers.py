"""Helpers for caption tests: parse a caption (checking every phrase is its span), look nouns up, read a doc."""
from __future__ import annotations

from typing import Any, Optional

from ovlabel.engine.captions import CaptionParser
from ovlabel.engine.captions.lemmas import Names
from ovlabel.engine.records import CaptionParse, Noun
from ovlabel.engine.vocab import load_vocab


def parse(parser: CaptionParser, text: str) -> CaptionParse:
    result = parser.parse(text)
    for noun in result.nouns:  # every noun's phrase is its span of the caption
        assert text[noun.char_span[0]:noun.char_span[1]] == noun.phrase
    return result


def lemmas(result: CaptionParse, level: Optional[str] = None) -> list[str]:
    return [n.lemma for n in result.nouns if level is None or n.level == level]


def noun(result: CaptionParse, lemma: str) -> Noun:
    found = [n for n in result.nouns if n.lemma == lemma]
    assert len(found) == 1, f"{lemma!r} in {result.nouns}"
    return found[0]


def whole_of(result: CaptionParse, part: Noun) -> Noun:
    assert part.level == "part" and part.parent is not None, part
    return result.nouns[part.parent]


def assert_part(result: CaptionParse, part: str, whole: str) -> Noun:
    found = noun(result, part)
    assert whole_of(result, found).lemma == whole
    return found


def assert_object(result: CaptionParse, lemma: str) -> Noun:
    found = noun(result, lemma)
    assert found.level == "object" and found.parent is None, found
    return found



def spacy_lemma(token: Any) -> str:
    """The lemma spaCy's own lemmatiser gave the token (what the parser's rule lemmas reproduce)."""
    return token.lemma_.lower()


def names_of(nlp: Any, text: str) -> Names:
    """The :class:`Names` of ``text`` parsed by the full pipeline ``nlp``."""
    return Names(list(nlp(text)), load_vocab(), spacy_lemma)
