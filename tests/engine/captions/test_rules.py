"""A row's caption rules: at least one written caption, none too long, a noun somewhere (no spaCy needed)."""
from __future__ import annotations

from typing import Sequence

import pytest

from ovlabel.engine.captions import CaptionParser, parse_record_captions
from ovlabel.engine.errors import CaptionError
from ovlabel.engine.records import CaptionParse, Noun


class FakeParser:
    """Every word 'dog' is a noun; records what it was asked to parse."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def parse_many(self, texts: Sequence[str]) -> list[CaptionParse]:
        self.calls.append(list(texts))
        return [CaptionParse(text=t, nouns=self._nouns(t)) for t in texts]

    @staticmethod
    def _nouns(text: str) -> tuple[Noun, ...]:
        start = text.find("dog")
        if start < 0:
            return ()
        return (Noun(phrase="dog", lemma="dog", level="object", char_span=(start, start + 3), parent=None,
                     count=None, plural=False, attributes=()),)


def test_every_caption_is_parsed_in_order_blank_ones_included() -> None:
    parser = FakeParser()
    parses = parse_record_captions(parser, ["a cat", "  ", "a dog"], max_chars=10)
    assert isinstance(parses, tuple) and [p.text for p in parses] == ["a cat", "  ", "a dog"]
    assert [len(p.nouns) for p in parses] == [0, 0, 1]
    assert parser.calls == [["a cat", "  ", "a dog"]]


@pytest.mark.parametrize("captions", [[], [""], ["", " \t\n"]])
def test_all_captions_empty(captions: list[str]) -> None:
    parser = FakeParser()
    with pytest.raises(CaptionError) as err:
        parse_record_captions(parser, captions, max_chars=10)
    assert str(err.value).startswith("all captions are empty; give the row at least one non-empty caption")
    assert "matching.captionless=vocabulary" in str(err.value)
    assert parser.calls == []


def test_a_caption_over_max_chars() -> None:
    parser = FakeParser()
    with pytest.raises(CaptionError) as err:
        parse_record_captions(parser, ["a dog", "x" * 11], max_chars=10)
    assert str(err.value) == "a caption has 11 characters, over captions.max_chars=10"
    assert parser.calls == []
    assert len(parse_record_captions(parser, ["a dog", "x" * 10], max_chars=10)) == 2


def test_blank_captions_do_not_count_towards_the_length() -> None:
    assert len(parse_record_captions(FakeParser(), ["a dog", " " * 50], max_chars=10)) == 2


def test_no_nouns_in_any_caption() -> None:
    with pytest.raises(CaptionError) as err:
        parse_record_captions(FakeParser(), ["a cat", "nothing"], max_chars=10)
    assert str(err.value).startswith("no nouns found in any caption; nothing to label")


@pytest.mark.parametrize("captions", [[], [""], ["a cat", "nothing"]])
def test_captionless_rows_pass_when_the_vocabulary_labels_them(captions: list[str]) -> None:
    parses = parse_record_captions(FakeParser(), captions, max_chars=10, captionless=True)
    assert [p.text for p in parses] == captions and not any(p.nouns for p in parses)
    with pytest.raises(CaptionError, match="over captions.max_chars"):
        parse_record_captions(FakeParser(), ["x" * 11], max_chars=10, captionless=True)


def test_rules_with_the_real_parser(parser: CaptionParser) -> None:
    parses = parse_record_captions(parser, ["A dog on a beach.", ""], max_chars=100)
    assert [n.lemma for n in parses[0].nouns] == ["dog", "beach"] and parses[1].nouns == ()
    with pytest.raises(CaptionError, match="no nouns"):
        parse_record_captions(parser, ["It is very nice."], max_chars=100)
