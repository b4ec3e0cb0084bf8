"""Caption understanding with spaCy: scene, object and part nouns with their relations.

Public API: :func:`parse_caption`, :func:`parse_captions` and :class:`CaptionParser`;
:func:`parse_record_captions` applies a row's caption rules. The spaCy model is loaded once per
parser (and once per process for the module functions).

Each caption becomes a :class:`~ovlabel.engine.records.CaptionParse` whose nouns are read off
the dependency parse:

- a noun head (multiword names such as 'hot dog' or 'living room' kept whole) is a **scene**
  when its lemma is a place name (``configs/vocab/scenes.yaml``), else an **object**;
- it is a **part** when a possessive, an "of", a "with", a "have" or a compound ties it to a
  whole and the part lexicon (``configs/vocab/parts.yaml``) allows it (:mod:`.wholes`);
- framing, spatial, time and generic nouns ("photo", "side", "day") are dropped; collective and
  measure nouns ("a pair of skis", "a group of people") are dropped and give their count to the
  noun after "of" (:mod:`.candidates`).

Modules, in the order a caption goes through them: :mod:`.spacy_model` (loading and finding the
model), :mod:`.parser` (:class:`CaptionParser`), :mod:`.reader` (one parse -> nouns),
:mod:`.lemmas` (:class:`RuleLemmas`, multiword names), :mod:`.candidates`, :mod:`.wholes`,
:mod:`.phrases` (spans and attributes); :mod:`.tags` holds the tag and word lists they key on.

Speed: the reader needs only fine-grained tags, the parse and lemmas of nouns and adjectives,
so the parser turns off spaCy's ``attribute_ruler`` and ``lemmatizer`` and applies the same
English lemma rules itself, cached per word (:class:`RuleLemmas`).
"""
from __future__ import annotations

from ovlabel.engine.captions.lemmas import RuleLemmas
from ovlabel.engine.captions.parser import CaptionParser, get_parser, parse_caption, parse_captions
from ovlabel.engine.captions.rules import ManyCaptionParser, parse_record_captions
from ovlabel.engine.captions.spacy_model import (DEFAULT_MODEL, find_spacy_model, load_spacy, missing_model_error,
                                                 spacy_candidates)

__all__ = ["DEFAULT_MODEL", "CaptionParser", "ManyCaptionParser", "RuleLemmas", "find_spacy_model", "get_parser",
           "load_spacy", "missing_model_error", "parse_caption", "parse_captions", "parse_record_captions",
           "spacy_candidates"]
