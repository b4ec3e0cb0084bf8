"""Lemmas and names: spaCy's English noun/adjective lemma rules, and a caption's fixed multiword names.

The parser turns off spaCy's ``attribute_ruler`` and ``lemmatizer`` (together as slow as the
parser on short captions) and applies the same English lemma rules and tables itself, cached
per word (:class:`RuleLemmas`). :class:`Names` reads one parsed caption's noun lemmas, with
fixed names such as 'fire hydrant' or 'living room' kept whole.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from ovlabel.engine.captions.tags import ADJECTIVE_TAGS, MAX_MULTIWORD
from ovlabel.engine.vocab import Vocab

NounLemma = Callable[[Any], str]  # spaCy token -> its lemma read as a noun
_TABLES = ("lemma_index", "lemma_exc", "lemma_rules")


class RuleLemmas:
    """spaCy's English rule lemmatiser for nouns and adjectives, keyed by word and tag.

    Same rules, exceptions and index tables and the same choice of form as
    ``EnglishLemmatizer.rule_lemmatize``; the part of speech comes from the fine-grained tag
    (``NN``/``JJ`` are base forms). Any other tag is lemmatised as a noun: the reader asks only
    for nouns, including the last word of a name the tagger misread ('hydrant' as a verb).
    """

    def __init__(self, lookups: Any) -> None:
        self._tables = {name: lookups.get_table(name) for name in _TABLES}
        self._cache: dict[tuple[str, str], str] = {}

    @classmethod
    def from_pipeline(cls, nlp: Any) -> Optional["RuleLemmas"]:
        """None unless the pipeline has a rule-mode lemmatiser with its tables."""
        if "lemmatizer" not in nlp.pipe_names:
            return None
        lemmatizer = nlp.get_pipe("lemmatizer")
        lookups = getattr(lemmatizer, "lookups", None)
        if getattr(lemmatizer, "mode", None) != "rule" or lookups is None or not all(map(lookups.has_table, _TABLES)):
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
        pos = "adj" if tag in ADJECTIVE_TAGS else "noun"
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


class Names:
    """The noun lemmas and multiword names of one parsed caption. Token indices key every lookup.

    ``tokens``: the caption's spaCy tokens in order; ``noun_lemma``: a token's lemma read as a noun.
    """

    def __init__(self, tokens: Sequence[Any], vocab: Vocab, noun_lemma: NounLemma) -> None:
        self.tokens = tokens
        self.vocab = vocab
        self.noun_lemma = noun_lemma
        self._lemma_cache: dict[int, str] = {}
        self.multiword = self._find_multiwords()
        self.inside = {i for head, (start, _) in self.multiword.items() for i in range(start, head)}

    def base_lemma(self, token: Any) -> str:
        """The token's own noun lemma, in the vocabulary's spelling."""
        lemma = self._lemma_cache.get(token.i)
        if lemma is None:
            lemma = self.noun_lemma(token)
            lemma = self._lemma_cache[token.i] = self.vocab.spellings.get(lemma, lemma)
        return lemma

    def lemma(self, token: Any) -> str:
        """The name ending at the token ('fire hydrant'), else its own lemma."""
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
        while i >= 0 and len(words) < MAX_MULTIWORD:
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
