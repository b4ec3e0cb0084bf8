"""The labels a CLIP knows (``clip.known_labels``), and the caption nouns outside them.

A CLIP trained on a closed vocabulary (the demo CLIP knows the demo world's 49 words) scores any word it is
given: on real photos it labels rocks 'elephant' with confidence. A config can declare what its CLIP knows;
caption nouns outside it (:func:`ovlabel.engine.matching.slots.caption_labels`, the labels the matcher
scores) are then counted per run and warned about once (``clip.unknown_labels: warn``), or refused
(``refuse``): at preflight when the config's own words or the first manifest rows' captions name one
(:func:`check_known_labels`), and in the run, where a row whose captions name one is an error row.
"""
from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Mapping, Optional, Sequence

from ovlabel.engine.config import ClipConfig, Config
from ovlabel.engine.errors import ConfigError
from ovlabel.engine.records import CaptionParse
from ovlabel.engine.vocab import label_words, load_label_list, norm_label, part_lexicon

if TYPE_CHECKING:
    from ovlabel.engine.captions import CaptionParser

SAMPLE_ROWS = 200  # manifest rows whose captions preflight reads when clip.unknown_labels=refuse
SHOWN = 6  # unknown labels a message names, most frequent first


@dataclass(frozen=True)
class KnownLabels:
    """The labels ``model`` knows, declared by ``source`` (a file, or the key itself for an inline list)."""

    labels: frozenset[str]
    source: str
    model: str
    refuse: bool = False

    def outside(self, words: Iterable[str]) -> list[str]:
        """The words of ``words`` this model does not know, each once, in order."""
        return [w for w in dict.fromkeys(words) if w not in self.labels]

    def unknown_in(self, parses: Sequence[CaptionParse]) -> list[str]:
        """The caption labels of one row's parses outside the known labels."""
        from ovlabel.engine.matching.slots import caption_labels

        return self.outside(caption_labels(parses))

    @property
    def knows(self) -> str:
        return f"the CLIP {self.model} knows {len(self.labels)} labels ({self.source})"

    def row_refusal(self, unknown: Sequence[str]) -> str:
        """The error of a row whose captions name ``unknown`` labels, under ``clip.unknown_labels=refuse``."""
        return (f"caption nouns {', '.join(map(repr, unknown[:SHOWN]))} are outside the labels {self.knows}; "
                f"refused by clip.unknown_labels=refuse (use a CLIP that knows them, or set it to warn)")

    def warning(self, counts: Mapping[str, int], total: Optional[int] = None) -> str:
        """The one warning of a run whose captions named the labels ``counts`` (label -> rows) outside them,
        ``total`` times in all (default: the sum of ``counts``)."""
        total = sum(counts.values()) if total is None else total
        return (f"{self.knows}; {total} caption nouns outside them ({shown(counts)}) were labelled "
                f"by a model that never saw them: use a CLIP that knows them (e.g. configs/default.yaml), or set "
                f"clip.unknown_labels=refuse to refuse them")


def shown(counts: Mapping[str, int]) -> str:
    """'leaf ×30, elephant ×14, ...': the most frequent first (ties by name)."""
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{label} ×{n}" for label, n in top[:SHOWN])
    return text + (", ..." if len(top) > SHOWN else "")


def known_labels(cfg: ClipConfig) -> Optional[KnownLabels]:
    """``clip.known_labels`` read (a file, or the list itself); None when the config declares none."""
    spec = cfg.known_labels
    if spec is None:
        return None
    refuse = cfg.unknown_labels == "refuse"
    if isinstance(spec, str):
        return KnownLabels(load_label_list(spec), f"clip.known_labels: {spec}", cfg.model, refuse)
    if not spec:
        raise ConfigError("clip.known_labels is an empty list; list the labels the CLIP knows, or set it to null")
    return KnownLabels(label_words(spec), "clip.known_labels", cfg.model, refuse)


def config_labels(cfg: Config) -> list[str]:
    """The labels the config itself gives the matcher, whatever the captions say: the background labels, the
    object vocabulary and (with lexicon parts) the lexicon's parts of those objects."""
    words = [*cfg.matching.background_labels, *cfg.matching.object_vocabulary]
    if cfg.matching.lexicon_parts:
        lexicon = part_lexicon(cfg.matching.part_lexicon)
        words += [part for lemma in cfg.matching.object_vocabulary for part in sorted(lexicon(lemma))]
    return list(dict.fromkeys(norm_label(w) for w in words))


def sample_counts(known: KnownLabels, captions: Iterable[Sequence[str]], parser: "CaptionParser",
                  max_chars: int) -> Counter[str]:
    """label -> rows, of the unknown caption labels of ``captions`` (one tuple per row); rows whose captions
    cannot be used are passed over (the run makes them error rows)."""
    from ovlabel.engine.captions import parse_record_captions
    from ovlabel.engine.errors import InputError

    counts: Counter[str] = Counter()
    for row in captions:
        try:
            counts.update(known.unknown_in(parse_record_captions(parser, row, max_chars)))
        except InputError:
            continue
    return counts


def check_known_labels(cfg: Config, captions: Iterable[Sequence[str]] = ()) -> None:
    """Preflight: ``clip.known_labels`` can be read; with ``clip.unknown_labels=refuse``, raise
    :class:`ConfigError` when the config's own labels or the captions of the first :data:`SAMPLE_ROWS` rows of
    ``captions`` name a label outside them."""
    known = known_labels(cfg.clip)
    if known is None or not known.refuse:
        return
    own = known.outside(config_labels(cfg))
    if own:
        raise ConfigError(f"clip.unknown_labels=refuse: {known.knows}, but the config itself names "
                          f"{len(own)} outside them ({', '.join(own[:SHOWN])}); remove them from "
                          f"matching.background_labels / object_vocabulary / part_lexicon, or add them to "
                          f"clip.known_labels if the model knows them")
    from ovlabel.engine.captions import CaptionParser

    rows = list(itertools.islice(captions, SAMPLE_ROWS))
    counts = sample_counts(known, rows, CaptionParser(cfg.captions.spacy_model), cfg.captions.max_chars) if rows else {}
    if counts:
        raise ConfigError(f"clip.unknown_labels=refuse: {known.knows}; the captions of the first {len(rows)} "
                          f"manifest rows name {sum(counts.values())} outside them ({shown(counts)}); label "
                          f"with a CLIP that knows them (e.g. configs/default.yaml), or set clip.unknown_labels=warn")
