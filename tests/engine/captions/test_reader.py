"""The reader: one parsed caption -> its nouns, with any noun-lemma function."""
from __future__ import annotations

from typing import Any

import pytest

from ovlabel.engine.captions import CaptionParser
from ovlabel.engine.captions.reader import read_nouns
from ovlabel.engine.vocab import load_vocab
from tests.engine.captions.helpers import spacy_lemma


@pytest.mark.parametrize("text", [
    "A yellow fire hydrant next to a stop sign.",
    "Two pairs of skis stuck in the snow.",
    "The dog's tail is wagging.",
    "A man riding a horse with a long mane.",
    "One of the cars has black wheels.",
    "A black and white cat sleeping on a large red bed.",
])
def test_spacys_own_lemmas_read_what_the_parser_reads(nlp: Any, parser: CaptionParser, text: str) -> None:
    assert read_nouns(nlp(text), load_vocab(), spacy_lemma, text) == parser.parse(text).nouns


def test_nouns_come_in_text_order_with_parents_as_indices(nlp: Any) -> None:
    text = "The handle of the door of the refrigerator is silver."
    nouns = read_nouns(nlp(text), load_vocab(), spacy_lemma, text)
    assert [(n.lemma, n.level, n.parent) for n in nouns] == [("handle", "part", 1), ("door", "part", 2),
                                                             ("refrigerator", "object", None)]
    assert [n.char_span for n in nouns] == [(4, 10), (18, 22), (30, 42)]


def test_a_doc_without_tokens_has_no_nouns(nlp: Any) -> None:
    assert read_nouns(nlp(""), load_vocab(), spacy_lemma, "") == ()
