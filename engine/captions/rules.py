"""A record's captions: the rules a row's captions must meet before and after parsing."""
from __future__ import annotations

from typing import Protocol, Sequence

from ovlabel.engine.errors import CaptionError
from ovlabel.engine.records import CaptionParse


class ManyCaptionParser(Protocol):
    """What :func:`parse_record_captions` needs of a parser (:class:`~.parser.CaptionParser` has it)."""

    def parse_many(self, texts: Sequence[str]) -> list[CaptionParse]: ...


def parse_record_captions(parser: ManyCaptionParser, captions: Sequence[str],
                          max_chars: int, captionless: bool = False) -> tuple[CaptionParse, ...]:
    """One parse per caption, in order (blank ones included), for a row that has at least one
    non-blank caption, none over ``max_chars`` characters, and a noun in some caption; else
    :class:`CaptionError` says which rule the row breaks. With ``captionless`` (``matching.captionless:
    vocabulary``) a row with no caption, or no noun, passes too: the matcher labels it from its vocabulary."""
    written = [c for c in captions if c.strip()]
    if not written and not captionless:
        raise CaptionError("all captions are empty; give the row at least one non-empty caption "
                           "(or set matching.captionless=vocabulary to label such rows from the vocabulary)")
    longest = max((len(c) for c in written), default=0)
    if longest > max_chars:
        raise CaptionError(f"a caption has {longest} characters, over captions.max_chars={max_chars}")
    parses = tuple(parser.parse_many(list(captions)))
    if not any(p.nouns for p in parses) and not captionless:
        raise CaptionError("no nouns found in any caption; nothing to label "
                           "(or set matching.captionless=vocabulary to label such rows from the vocabulary)")
    return parses
