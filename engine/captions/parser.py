"""The caption parser: a spaCy pipeline (loaded once per parser) and the reader turning its parses into nouns."""
from __future__ import annotations

import functools
import logging
from typing import Any, Iterable, Sequence

from ovlabel.engine.captions.lemmas import RuleLemmas
from ovlabel.engine.captions.reader import read_nouns
from ovlabel.engine.captions.spacy_model import DEFAULT_MODEL, load_spacy
from ovlabel.engine.records import CaptionParse
from ovlabel.engine.vocab import load_vocab

log = logging.getLogger(__name__)
_SKIPPED_PIPES = ("attribute_ruler", "lemmatizer")


class CaptionParser:
    """Reads nouns from captions. Build once; :meth:`parse_many` batches through ``nlp.pipe``."""

    def __init__(self, spacy_model: str = DEFAULT_MODEL, batch_size: int = 64) -> None:
        self.spacy_model = spacy_model
        self.batch_size = batch_size
        self._nlp = load_spacy(spacy_model)
        self._vocab = load_vocab()
        self._lemmas = RuleLemmas.from_pipeline(self._nlp)
        if self._lemmas is not None:
            for name in _SKIPPED_PIPES:
                if name in self._nlp.pipe_names:
                    self._nlp.disable_pipe(name)
        else:
            log.info("spaCy model %s has no rule lemmatiser; keeping its lemmatizer on (slower)", spacy_model)

    def parse(self, text: str) -> CaptionParse:
        return self.parse_many([text])[0]

    def parse_many(self, texts: Sequence[str]) -> list[CaptionParse]:
        docs = self._nlp.pipe((_parse_text(t) for t in texts), batch_size=self.batch_size)
        return [self._from_doc(text, doc) for text, doc in zip(texts, docs)]

    def _from_doc(self, text: str, doc: Any) -> CaptionParse:
        return CaptionParse(text=text, nouns=read_nouns(doc, self._vocab, self._noun_lemma, text))

    def _noun_lemma(self, token: Any) -> str:
        """The lemma of a token read as a noun (adjectives keep their own rules)."""
        if self._lemmas is not None:
            return self._lemmas(token.text, token.tag_)
        return token.lemma_.lower()


def _parse_text(text: str) -> str:
    """All-capitals captions parse badly; they are parsed lowercased (same length, same offsets)."""
    lowered = text.lower()
    if text.isupper() and len(lowered) == len(text):
        return lowered
    return text


@functools.lru_cache(maxsize=4)
def get_parser(spacy_model: str = DEFAULT_MODEL) -> CaptionParser:
    """One parser per model name per process."""
    return CaptionParser(spacy_model)


def parse_caption(text: str, spacy_model: str = DEFAULT_MODEL) -> CaptionParse:
    return get_parser(spacy_model).parse(text)


def parse_captions(texts: Iterable[str], spacy_model: str = DEFAULT_MODEL) -> list[CaptionParse]:
    return get_parser(spacy_model).parse_many(list(texts))
