"""The caption parser: batching, order, blank and all-capitals captions, the per-process module functions."""
from __future__ import annotations

from ovlabel.engine.captions import CaptionParser, parse_caption, parse_captions
from ovlabel.engine.captions import parser as parser_module
from tests.engine.captions.helpers import noun, parse


def test_all_capitals_caption(parser: CaptionParser) -> None:
    text = "LARGE BLACK AND WHITE PANDA BEAR WALKING IN AN ENCLOSURE"
    result = parse(parser, text)
    bear = noun(result, "bear")
    assert bear.attributes == ("large", "black", "white")
    assert bear.phrase == "LARGE BLACK AND WHITE PANDA BEAR"
    assert noun(result, "enclosure").level == "scene"


def test_empty_and_nounless_captions(parser: CaptionParser) -> None:
    assert parser.parse("").nouns == ()
    assert parser.parse("   ").nouns == ()
    assert parser.parse("It is very nice.").nouns == ()


def test_parse_many_matches_parse_and_keeps_order(parser: CaptionParser) -> None:
    texts = ["A car door is open.", "", "Two dogs playing in a field.", "A man has a frisbee in his hand."]
    assert parser.parse_many(texts) == [parser.parse(t) for t in texts]
    assert [p.text for p in parser.parse_many(texts)] == texts


def test_module_functions_share_one_parser() -> None:
    texts = ["A dog on a beach.", "Two cats."]
    assert parse_captions(texts) == [parse_caption(t) for t in texts]
    assert parser_module.get_parser() is parser_module.get_parser()

