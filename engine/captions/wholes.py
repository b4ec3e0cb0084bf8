"""Part–whole links: which candidate noun is a part of which other.

A noun is a part when a possessive ("the dog's tail", "his hand"), an "of" ("the lid of a
toilet"), a "with" ("a bike with white handles"), a "have" ("one of the cars has black wheels")
or a compound ("car door") ties it to a whole and the part lexicon (``configs/vocab/parts.yaml``)
allows it; possessive pronouns resolve to the nearest preceding noun that can have that part; a
part listed next to another ("the tree's trunk and crown") shares its whole however the parser
attached it, and a place with a part ("a barn with a red roof") is an object.
"""
from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence

from ovlabel.engine.captions.candidates import Candidate, Quantities, is_noun_tag, of_object
from ovlabel.engine.captions.lemmas import Names
from ovlabel.engine.captions.tags import (HAVE_FORMS, LIST_FILLER_TAGS, LIST_JOINS, PERSON_PRONOUNS, PRONOUN_TAGS,
                                          SUBJECT_DEPS, THING_PRONOUNS)


def link_wholes(cands: Sequence[Candidate], names: Names, quantities: Quantities) -> None:
    """Sets each candidate's ``whole`` (a token index) and makes parts ``part`` and their wholes ``object``."""
    links = PartLinks(names, quantities, {c.token.i: c for c in cands})
    for cand in cands:
        cand.whole = links.whole_of(cand)
    links.share_listed_wholes(cands)
    for cand in cands:
        if cand.whole is not None:
            cand.level = "part"
            links.by_token[cand.whole].level = "object"  # a place with parts is a thing: "the barn's roof"


class PartLinks:
    """Finds wholes among one caption's candidates; ``by_token``: token index -> candidate."""

    def __init__(self, names: Names, quantities: Quantities, by_token: dict[int, Candidate]) -> None:
        self.names = names
        self.vocab = names.vocab
        self.quantities = quantities
        self.by_token = by_token

    def whole_of(self, cand: Candidate) -> Optional[int]:
        """Token index of the whole this candidate is a part of, or None."""
        if cand.level == "scene" or cand.host is not cand.token:
            return None
        for whole in self._whole_tokens(cand):
            whole = self.quantities.through(whole)
            other = self.by_token.get(whole.i)
            if other is not None and other is not cand and not other.listed_only \
                    and other.lemma not in self.vocab.spatial and self.vocab.is_part(cand.lemma, other.lemma):
                return whole.i
        return None

    def _whole_tokens(self, cand: Candidate) -> Iterator[Any]:
        """Possible wholes in order: compound, possessive, 'of', 'with', 'have'."""
        token = cand.token
        first = first_conjunct(token)
        own_and_first = (token,) if first.i == token.i else (token, first)  # 'the head and tail of a dog'
        for child in token.lefts:
            if child.dep_ == "compound" and child.i in self.by_token:
                yield child
        for owner in (c for t in own_and_first for c in t.lefts if c.dep_ == "poss"):
            yield from self._possessor(owner, cand)
        for t in own_and_first:
            target = of_object(t)
            if target is not None:
                yield target
        yield from with_hosts(first)
        yield from have_owners(first)

    def _possessor(self, owner: Any, cand: Candidate) -> Iterator[Any]:
        """The possessor; for 'his', 'its', ... the nearest preceding noun that can have the part,
        people first for 'his'/'her', others first for 'its'."""
        if owner.tag_ not in PRONOUN_TAGS:
            yield owner
            return
        before = [self.by_token[i] for i in sorted(self.by_token, reverse=True) if i < owner.i]
        fitting = [c for c in before if self.vocab.is_part(cand.lemma, c.lemma)]
        if owner.lower_ in PERSON_PRONOUNS:
            fitting.sort(key=lambda c: c.lemma not in self.vocab.persons)
        elif owner.lower_ in THING_PRONOUNS:
            fitting.sort(key=lambda c: c.lemma in self.vocab.persons)
        if fitting:
            yield fitting[0].token

    def share_listed_wholes(self, cands: Sequence[Candidate]) -> None:
        """Nouns without a whole take the whole of the part listed right before them (left to
        right, so a list passes it on), then of the part listed right after them (right to left)."""
        pairs = [*zip(cands[1:], cands), *reversed(list(zip(cands, cands[1:])))]
        for cand, other in pairs:
            if cand.whole is None and cand.level == "object" and cand.host is cand.token:
                cand.whole = self.list_whole(cand, other)

    def list_whole(self, cand: Candidate, other: Candidate) -> Optional[int]:
        """The whole of ``other``, a part listed right before or after ``cand`` with only a list
        joint and modifiers between them, when the lexicon allows it ('a man with white legs and a
        black torso', "the tree's brown trunk and green crown"): the parser often hangs one of
        the two elsewhere."""
        if other.whole is None or not self._listed_together(*sorted((cand, other), key=_at)):
            return None
        whole = self.by_token.get(other.whole)
        return other.whole if whole is not None and self.vocab.is_part(cand.lemma, whole.lemma) else None

    def _listed_together(self, first: Candidate, second: Candidate) -> bool:
        names = self.names
        between = names.tokens[first.token.i + 1:names.name_start(second.token.i)]
        if not between or between[0].lower_ not in LIST_JOINS:
            return False
        return all(t.lower_ in LIST_JOINS or t.tag_ in LIST_FILLER_TAGS or names.base_lemma(t) in self.vocab.colors
                   for t in between)


def _at(cand: Candidate) -> int:
    return cand.token.i


def is_verb(token: Any) -> bool:
    return token.tag_.startswith("VB") or token.tag_ == "MD"


def first_conjunct(token: Any) -> Any:
    while token.dep_ == "conj" and token.head.i != token.i:
        token = token.head
    return token


def with_hosts(token: Any) -> list[Any]:
    """For the object of 'with', the nouns it may describe ('a bike with white handles' -> bike).

    When 'with' hangs on a verb ('a man riding a horse with a long mane'), the verb's objects
    come first, nearest first, then its subject.
    """
    prep = token.head
    if token.dep_ != "pobj" or prep.lower_ != "with":
        return []
    host = prep.head
    if is_noun_tag(host):
        return [host]
    if not is_verb(host):
        return []
    objects = [c for c in host.children if c.dep_ == "dobj" and c.i < prep.i and is_noun_tag(c)]
    objects += [o for c in host.children if c.dep_ == "prep" and c.i < prep.i
                for o in c.children if o.dep_ == "pobj" and is_noun_tag(o)]
    subject = verb_subject(host)
    return sorted(objects, key=lambda t: -t.i) + ([subject] if subject is not None else [])


def have_owners(token: Any) -> list[Any]:
    """For the object of 'have', the nouns that may have it: 'the car has black wheels' -> car;
    'one of the cars has black wheels' -> the subject 'one', then cars; 'a man who has long
    hair' -> man."""
    verb = token.head
    if token.dep_ != "dobj" or (verb.lower_ not in HAVE_FORMS and not have_as_auxiliary(verb)):
        return []
    owners = []
    for subject in (c for c in verb.children if c.dep_ in SUBJECT_DEPS):
        owners += [t for t in (subject, of_object(subject)) if t is not None]
    subject = verb_subject(verb)
    return owners + ([subject] if subject is not None else [])


def have_as_auxiliary(head: Any) -> bool:
    """'has' misread as the auxiliary of a non-verb ('One of the houses has yellow windows' with
    'yellow' as the head): the head stands for 'have'."""
    return not is_verb(head) and any(c.dep_ == "aux" and c.lower_ in HAVE_FORMS for c in head.children)


def verb_subject(verb: Any) -> Optional[Any]:
    """The noun a verb is about: its subject, or the noun it modifies ('a man standing with ...')."""
    for _ in range(4):
        for child in verb.children:
            if child.dep_ in SUBJECT_DEPS and is_noun_tag(child):
                return child
        if verb.dep_ in ("acl", "relcl") and is_noun_tag(verb.head):
            return verb.head
        if verb.dep_ not in ("conj", "advcl", "xcomp") or verb.head.i == verb.i:
            return None
        verb = verb.head
    return None
