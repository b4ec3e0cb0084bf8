"""One parsed caption -> its nouns: candidates, part–whole links, then each kept noun's phrase and details."""
from __future__ import annotations

from typing import Any

from ovlabel.engine.captions.candidates import Candidate, Quantities, find_candidates
from ovlabel.engine.captions.lemmas import Names, NounLemma
from ovlabel.engine.captions.phrases import Phrases, plural
from ovlabel.engine.captions.wholes import link_wholes
from ovlabel.engine.records import Noun
from ovlabel.engine.vocab import Vocab


def read_nouns(doc: Any, vocab: Vocab, noun_lemma: NounLemma, text: str) -> tuple[Noun, ...]:
    """The nouns of ``doc``, the spaCy parse of ``text`` (same character offsets), in text order."""
    names = Names(list(doc), vocab, noun_lemma)
    quantities = Quantities(names)
    cands = find_candidates(names, quantities)
    link_wholes(cands, names, quantities)
    kept = [c for c in cands if c.whole is not None or not (c.listed_only or c.lemma in vocab.spatial)]
    index = {c.token.i: n for n, c in enumerate(kept)}
    taken = {i for c in kept for i in range(names.name_start(c.token.i), c.token.i + 1)}
    phrases = Phrases(names, taken)
    return tuple(_noun(c, index, phrases, quantities, text) for c in kept)


def _noun(cand: Candidate, index: dict[int, int], phrases: Phrases, quantities: Quantities, text: str) -> Noun:
    """``index``: token index -> noun index of the kept nouns."""
    start, end = phrases.char_span(cand)
    return Noun(
        phrase=text[start:end], lemma=cand.lemma, level=cand.level, char_span=(start, end),
        parent=index.get(cand.whole) if cand.whole is not None else None,
        count=quantities.count(cand), plural=plural(cand),
        attributes=phrases.attributes(cand),
    )
