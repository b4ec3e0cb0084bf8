"""Candidates: which tokens of a parsed caption are nouns, their counts, and words the tagger misread.

Framing, spatial, time and generic nouns ("photo", "side", "day") are stop words; collective and
measure nouns ("a pair of skis", "a group of people") are dropped and give their count to the
noun after "of" (:class:`Quantities`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ovlabel.engine.captions.lemmas import Names
from ovlabel.engine.captions.tags import ARTICLES, COUNT_DEPS, LIST_JOINS, NOUN_TAGS, NUMBER_DEPS, VERB_OWN_DEPS
from ovlabel.engine.vocab import Vocab


@dataclass
class Candidate:
    """A noun head while its caption is being read.

    ``host`` carries the noun's modifiers: the noun itself, except where the parser read the
    noun as a compound of a verb it took for a plural noun ('A red bus passes by').
    """

    token: Any
    host: Any
    lemma: str
    level: str
    whole: Optional[int] = None  # token index of the whole, for a part
    listed_only: bool = False  # a part name tagged as a verb or adjective: kept only as a part


def is_noun_tag(token: Any) -> bool:
    """A noun tag on a word with letters (emoji and symbols tagged NN are not nouns), or an
    adverb with an article of its own, which only a noun takes ('a grey home')."""
    if token.tag_ in NOUN_TAGS:
        return any(ch.isalpha() for ch in token.text)
    return is_misread_adverb(token)


def is_misread_adverb(token: Any) -> bool:
    return token.tag_ == "RB" and token.is_alpha and token.dep_ != "advmod" and \
        any(c.dep_ == "det" and c.lower_ in ARTICLES for c in token.lefts)


def is_noun(token: Any, names: Names) -> bool:
    """A noun tag, or the last word of a multiword name, and not inside one."""
    return token.i not in names.inside and (is_noun_tag(token) or token.i in names.multiword)


def is_misread_verb(token: Any, names: Names) -> bool:
    """A verb the parser took for a noun headed by the noun before it: a plural after 'a'
    ('A red bus passes by') or a listed '-ing' verb ('a couple of zebra standing'). The compound
    right before it is the real noun."""
    if token.i == 0 or token.tag_ not in ("NNS", "NN"):
        return False
    prev = names.tokens[token.i - 1]
    if prev.dep_ != "compound" or prev.head.i != token.i or prev.tag_ != "NN":
        return False
    if token.tag_ == "NN":
        return token.lower_ in names.vocab.gerunds
    return any(c.dep_ == "det" and c.lower_ in ("a", "an") for c in token.lefts)


def of_object(token: Any) -> Optional[Any]:
    """The noun after 'of' that hangs on ``token`` ('the lid of a toilet' -> toilet)."""
    for prep in token.rights:
        if prep.dep_ == "prep" and prep.lower_ == "of":
            for obj in prep.rights:
                if obj.dep_ == "pobj" and is_noun_tag(obj):
                    return obj
    return None


def anchors(cand: Candidate, names: Names) -> list[Any]:
    """Tokens whose modifiers belong to the noun: its host, plus every word of a multiword
    name (the parser may hang 'brown' on 'teddy' in 'a brown teddy bear')."""
    start = names.name_start(cand.token.i)
    span = names.tokens[start:cand.token.i + 1]
    return span if cand.host is cand.token else [cand.host, *span]


class Quantities:
    """Collective and measure nouns of one caption: 'a pair of skis': 'pair' is dropped and skis get count 2."""

    def __init__(self, names: Names) -> None:
        self.names = names
        self.counts: dict[int, Optional[int]] = {}  # token index of the noun after 'of' -> its count
        self.heads: set[int] = set()  # token indices of the quantity nouns
        for token in names.tokens:
            lemma = names.lemma(token) if is_noun(token, names) else ""
            target = of_object(token) if lemma in names.vocab.quantity else None
            if target is None:
                continue
            self.heads.add(token.i)
            count = names.vocab.quantity[lemma]
            times = self.own_count(token)
            self.counts[target.i] = count * times if count and times else count

    def through(self, token: Any) -> Any:
        """'a pair of scissors' stands for the scissors."""
        while token.i in self.heads:
            token = of_object(token)
        return token

    def own_count(self, token: Any) -> Optional[int]:
        for child in token.lefts:
            if child.dep_ in COUNT_DEPS:
                value = _number(child.lower_, self.names.vocab)
                if value is not None:
                    return value
        return None

    def count(self, cand: Candidate) -> Optional[int]:
        own = next((c for c in map(self.own_count, anchors(cand, self.names)) if c is not None), None)
        return own if own is not None else self.counts.get(cand.host.i)


def find_candidates(names: Names, quantities: Quantities) -> list[Candidate]:
    """The caption's noun heads in text order, each an object or a scene for now."""
    found = []
    vocab = names.vocab
    for token in names.tokens:
        if listed_part_misread(token, names):
            found.append(Candidate(token, token, names.lemma(token), "object", listed_only=True))
            continue
        if not is_noun(token, names) or token.i in quantities.heads or token.dep_ in NUMBER_DEPS:
            continue
        lemma = names.lemma(token)
        if lemma in vocab.stop or is_misread_verb(token, names) or colour_modifier(token, lemma, vocab):
            continue
        host = token
        if token.dep_ == "compound":
            if is_misread_verb(token.head, names):
                host = token.head
            elif not vocab.is_part(names.lemma(token.head), lemma):
                continue
        level = "scene" if lemma in vocab.scenes else "object"
        found.append(Candidate(token, host, lemma, level))
    return found


def colour_modifier(token: Any, lemma: str, vocab: Vocab) -> bool:
    """A colour word tagged as a noun that modifies the noun after it ('the boat's orange hull')."""
    return lemma in vocab.colors and token.dep_ in ("amod", "nmod", "compound") and token.head.i > token.i


def listed_part_misread(token: Any, names: Names) -> bool:
    """A part name the tagger read as a bare verb after a list joint ('the man's torso and
    head') or as an adjective between an article and a joint ('a boat with a hull and red
    sails'). It is kept only when the list gives it a whole (:meth:`PartLinks.list_whole`)."""
    tokens = names.tokens
    if token.i == 0 or not token.is_alpha or token.i in names.inside:
        return False
    prev = tokens[token.i - 1].lower_
    if token.tag_ in ("VB", "VBP", "VBZ"):
        listed = prev in LIST_JOINS and not any(c.dep_ in VERB_OWN_DEPS for c in token.children)
    elif token.tag_ == "JJ" and token.i + 1 < len(tokens):
        listed = prev in ARTICLES and tokens[token.i + 1].lower_ in LIST_JOINS \
            and token.lower_ not in names.vocab.attributes
    else:
        return False
    return listed and names.base_lemma(token) in names.vocab.part_names


def _number(word: str, vocab: Vocab) -> Optional[int]:
    word = word.replace(",", "")
    if word.isdigit():
        return int(word)
    return vocab.numbers.get(word)
