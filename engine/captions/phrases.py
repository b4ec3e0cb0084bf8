"""Phrase spans and attributes: a kept noun's words in the caption and its colour and size adjectives."""
from __future__ import annotations

from typing import Any, Container, Iterator

from ovlabel.engine.captions.candidates import Candidate, anchors, is_misread_verb, is_noun_tag
from ovlabel.engine.captions.lemmas import Names
from ovlabel.engine.captions.tags import (ADJECTIVE_TAGS, ATTRIBUTE_DEPS, BE_FORMS, MODIFIER_DEPS, PHRASE_SKIP_DEPS,
                                          PLURAL_TAGS, SUBJECT_DEPS)


class Phrases:
    """Reads phrases and attributes of one caption's kept nouns; ``taken``: the token indices of their names."""

    def __init__(self, names: Names, taken: Container[int]) -> None:
        self.names = names
        self.tokens = names.tokens
        self.taken = taken

    def char_span(self, cand: Candidate) -> tuple[int, int]:
        """(start, end) character offsets of the noun phrase in the caption."""
        token = cand.token
        return self.tokens[self._phrase_start(cand)].idx, token.idx + len(token)

    def _phrase_start(self, cand: Candidate) -> int:
        """First token of the noun phrase: the run of modifiers before the noun, without
        determiners, possessors, a leading adverb ('only a laptop'), a compound whole or
        another noun."""
        token, own = cand.token, anchors(cand, self.names)
        heads = {t.i for t in own}
        floor = cand.whole if cand.whole is not None and cand.whole < token.i else -1
        run = self.names.name_start(token.i)
        while run - 1 > floor and self._in_phrase(self.tokens[run - 1], heads):
            run -= 1
        skipped = {t.i for a in own for c in a.lefts if c.dep_ == "poss" for t in c.subtree}
        for i in range(run, token.i):
            t = self.tokens[i]
            leading_adverb = t.dep_ == "advmod" and t.head.i in heads
            if not (i in skipped or t.dep_ in PHRASE_SKIP_DEPS or t.is_space or leading_adverb):
                return i
        return self.names.name_start(token.i)

    def _in_phrase(self, token: Any, heads: Container[int]) -> bool:
        if token.i in self.taken or is_misread_verb(token, self.names):
            return False
        return modifies(token, heads)

    def attributes(self, cand: Candidate) -> tuple[str, ...]:
        """Colour and size adjectives on the noun, in text order ('black and white' -> both).

        Adjectives the parser hung on a compound modifier ('black panda bear') count for the
        noun, unless that modifier is a noun of its own ('red car door': 'car' is the whole).
        """
        words = self.names.vocab.attributes
        seen: dict[int, str] = {}
        floor = self._nearest_other_noun(cand)
        for mod in self._modifiers(cand):
            word = self.names.noun_lemma(mod) if mod.tag_ in ADJECTIVE_TAGS else mod.lower_
            if word in words and mod.i not in self.names.inside and mod.i > floor:
                seen.setdefault(mod.i, word)
        return tuple(dict.fromkeys(seen[i] for i in sorted(seen)))

    def _nearest_other_noun(self, cand: Candidate) -> int:
        """Index of the last token of another kept noun before this one (-1 if none): adjectives
        before it describe that noun ("the tree's brown trunk and green crown")."""
        start = self.names.name_start(cand.token.i)
        return next((i for i in range(start - 1, -1, -1) if i in self.taken), -1)

    def _modifiers(self, cand: Candidate) -> Iterator[Any]:
        token = cand.token
        stack = [c for t in anchors(cand, self.names) for c in t.lefts if c.dep_ in ("amod", "compound", "nmod")]
        if token.dep_ in SUBJECT_DEPS and token.head.lower_ in BE_FORMS:
            stack += [c for c in token.head.children if c.dep_ == "acomp"]
        while stack:
            mod = stack.pop()
            if mod.dep_ == "compound" and is_noun_tag(mod) and mod.lower_ not in self.names.vocab.colors:
                if mod.i not in self.taken and not is_misread_verb(mod, self.names):
                    stack += [c for c in mod.children if c.dep_ == "amod"]
                continue
            yield mod
            stack += [c for c in mod.children if c.dep_ in ATTRIBUTE_DEPS and c.tag_ not in ("NN", "NNS")]


def plural(cand: Candidate) -> bool:
    """A plural tag, or a plural part name tagged as a verb ('and legs')."""
    return cand.token.tag_ in PLURAL_TAGS or (cand.listed_only and cand.lemma != cand.token.lower_)


def modifies(token: Any, heads: Container[int]) -> bool:
    """True when ``token`` reaches one of ``heads`` (token indices) through modifier links only
    (adjectives, compounds, numbers, determiners), i.e. it belongs to the noun phrase rather than
    a clause inside it."""
    for _ in range(8):
        if token.dep_ not in MODIFIER_DEPS and not token.is_space:
            return False
        token = token.head
        if token.i in heads:
            return True
    return False
