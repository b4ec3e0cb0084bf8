"""Word lists for caption understanding: scenes, parts, stop and quantity nouns.

The lists live in ``configs/vocab/*.yaml`` (shipped as package data, found through
:data:`ovlabel.engine.shipped.CONFIG_DIR`) and are read once per process.

Public helpers: :func:`parts_of`, :func:`is_part_of`, :func:`is_scene` and :func:`load_vocab`;
:func:`load_part_lexicon` and :func:`load_label_list` read a config's own lists (a part lexicon, the
labels a CLIP knows).
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional

import yaml

from ovlabel.engine.shipped import shipped, shipped_path
from ovlabel.engine.errors import ConfigError

log = logging.getLogger(__name__)
VOCAB_DIR = shipped("vocab")
PERSON = "person"  # the whole in parts.yaml whose name and aliases are people


@dataclass(frozen=True)
class Vocab:
    """All caption word lists, as lowercase lemmas (multiword names joined by single spaces)."""

    stop: frozenset[str]
    spatial: frozenset[str]
    gerunds: frozenset[str]
    quantity: Mapping[str, Optional[int]]
    numbers: Mapping[str, int]
    multiword: frozenset[str]
    multiword_ends: frozenset[str]  # last words of the multiword names
    spellings: Mapping[str, str]
    colors: frozenset[str]
    sizes: frozenset[str]
    scenes: frozenset[str]
    parts: Mapping[str, frozenset[str]]
    persons: frozenset[str]

    @property
    def attributes(self) -> frozenset[str]:
        return self.colors | self.sizes

    @functools.cached_property
    def part_names(self) -> frozenset[str]:
        """Every noun that is a part of some whole."""
        return frozenset().union(*self.parts.values())

    def is_part(self, part: str, whole: str) -> bool:
        """Lexicon check on normalised lemmas (see :func:`is_part_of` for raw words)."""
        return part in self.parts.get(whole, ())


def _read_yaml(name: str | Path, fix: str = "reinstall ovlabel") -> dict[str, Any]:
    """A vocabulary YAML mapping (``name`` relative to ``configs/vocab``); ``fix`` ends the error message."""
    path = VOCAB_DIR / name
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"vocabulary file {path} cannot be read ({exc}); {fix}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"vocabulary file {path} must hold a YAML mapping")
    return data


def _norm(word: str) -> str:
    return " ".join(str(word).lower().replace("_", " ").split())


def _words(items: Any) -> frozenset[str]:
    return frozenset(_norm(item) for item in items or ())


def _scene_lemmas(data: Mapping[str, Any]) -> frozenset[str]:
    places = data.get("places365") or {}
    return _words(v for v in places.values() if v) | _words(data.get("aliases"))


def _part_table(data: Mapping[str, Any], source: str = "parts.yaml") -> dict[str, frozenset[str]]:
    """Whole name and each alias -> the union of the parts listed for every whole it names."""
    groups = {name: _words(parts) for name, parts in (data.get("groups") or {}).items()}
    table: dict[str, set[str]] = {}
    for whole, spec in (data.get("wholes") or {}).items():
        spec = spec or {}
        unknown = [g for g in spec.get("groups") or () if g not in groups]
        if unknown:
            raise ConfigError(f"{source}: whole {whole!r} names unknown groups {unknown}; list them under `groups`")
        parts = set(_words(spec.get("parts")))
        for group in spec.get("groups") or ():
            parts |= groups[group]
        for name in {_norm(whole), *_words(spec.get("aliases"))}:
            table.setdefault(name, set()).update(parts)
    return {name: frozenset(parts) for name, parts in table.items()}


def _whole_names(data: Mapping[str, Any], whole: str) -> frozenset[str]:
    spec = (data.get("wholes") or {}).get(whole) or {}
    return frozenset({_norm(whole)}) | _words(spec.get("aliases"))


def _multiwords(nouns: Mapping[str, Any], scenes: frozenset[str],
                parts: Mapping[str, frozenset[str]]) -> frozenset[str]:
    all_parts = frozenset().union(*parts.values()) if parts else frozenset()
    names = _words(nouns.get("multiword")) | scenes | all_parts
    return frozenset(name for name in names if " " in name)


@functools.lru_cache(maxsize=1)
def load_vocab() -> Vocab:
    """Read ``configs/vocab/{nouns,scenes,parts}.yaml`` once."""
    nouns, scenes_data, parts_data = (_read_yaml(n) for n in ("nouns.yaml", "scenes.yaml", "parts.yaml"))
    scenes = _scene_lemmas(scenes_data)
    parts = _part_table(parts_data)
    multiword = _multiwords(nouns, scenes, parts)
    vocab = Vocab(
        stop=_words(nouns.get("stop")),
        spatial=_words(nouns.get("spatial")),
        gerunds=_words(nouns.get("gerunds")),
        quantity=MappingProxyType({_norm(k): v for k, v in (nouns.get("quantity") or {}).items()}),
        numbers=MappingProxyType({_norm(k): int(v) for k, v in (nouns.get("numbers") or {}).items()}),
        multiword=multiword,
        multiword_ends=frozenset(name.rsplit(" ", 1)[-1] for name in multiword),
        spellings=MappingProxyType({_norm(k): _norm(v) for k, v in (nouns.get("spellings") or {}).items()}),
        colors=_words(nouns.get("colors")),
        sizes=_words(nouns.get("sizes")),
        scenes=scenes,
        parts=MappingProxyType(parts),
        persons=_whole_names(parts_data, PERSON),
    )
    log.debug("vocabulary: %d scenes, %d wholes with parts, %d multiword names",
              len(vocab.scenes), len(vocab.parts), len(vocab.multiword))
    return vocab


def parts_of(object_lemma: str) -> frozenset[str]:
    """Part lemmas an object (or one of its aliases: 'man' -> person) can have; empty if none known."""
    return load_vocab().parts.get(_norm(object_lemma), frozenset())


@functools.lru_cache(maxsize=8)
def load_part_lexicon(location: str) -> Mapping[str, frozenset[str]]:
    """Whole name or alias -> its part lemmas, from a YAML file in the format of ``parts.yaml``.

    A relative ``location`` not found from the working directory is looked up in the configs folder.
    """
    path = shipped_path(location)
    if not path.is_file():
        raise ConfigError(f"part lexicon {str(path)!r} not found; set matching.part_lexicon to a YAML file in the "
                          f"format of {VOCAB_DIR / 'parts.yaml'}, or to null for that one")
    return MappingProxyType(_part_table(_read_yaml(path, "fix the file or set matching.part_lexicon"), str(path)))


@functools.lru_cache(maxsize=8)
def load_label_list(location: str, key: str = "clip.known_labels") -> frozenset[str]:
    """The labels of a YAML file holding a list of words, or a mapping whose ``labels`` is one (lowercase, single
    spaces). A relative ``location`` not found from the working directory is looked up in the configs folder."""
    path = shipped_path(location)
    if not path.is_file():
        raise ConfigError(f"{key} {str(path)!r} not found; point it at a YAML list of labels "
                          f"(e.g. {VOCAB_DIR / 'demo_clip.yaml'}) or set {key}=null")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{key} {str(path)!r} cannot be read ({str(exc).splitlines()[0]}); fix the file") from None
    words = data.get("labels") if isinstance(data, dict) else data
    if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
        raise ConfigError(f"{key} {str(path)!r} must hold a list of labels (or `labels:` and a list); fix the file")
    return _words(words)


def norm_label(word: str) -> str:
    """A label as caption lemmas are written: lowercase, single spaces ('Night_Sky' -> 'night sky')."""
    return _norm(word)


def label_words(words: Any) -> frozenset[str]:
    """Labels as :func:`norm_label` writes them."""
    return _words(words)


def part_lexicon(location: Optional[str] = None) -> Callable[[str], frozenset[str]]:
    """``object lemma -> part lemmas`` of the lexicon at ``location`` (None: :func:`parts_of`)."""
    if location is None:
        return parts_of
    table = load_part_lexicon(location)
    return lambda lemma: table.get(_norm(lemma), frozenset())


def is_part_of(part_lemma: str, whole_lemma: str) -> bool:
    """True when the part lexicon allows ``part_lemma`` as a part of ``whole_lemma``."""
    return load_vocab().is_part(_norm(part_lemma), _norm(whole_lemma))


def is_scene(lemma: str) -> bool:
    """True for place nouns (Places365 names and a few aliases): 'kitchen', 'living room', 'field'."""
    return _norm(lemma) in load_vocab().scenes
