"""Label vocabularies (ontologies): the canonical class of a caption word, and the classes of a run.

A labels row keeps the caption word a segment was matched by (``label``: 'automobile', 'woman') and its
class (``class_name``: 'car', 'person'), the canonical name a vocabulary gives it. A vocabulary file is
YAML, one entry per class in the order their ids take::

    person: [man, woman, child, people]   # class: [synonyms...]
    car: automobile                       # one synonym may be written alone
    tree:                                 # no synonyms ([] works too)

Shipped vocabularies live in ``configs/vocab/classes/`` and are named without a path: ``coco`` (the 80
COCO categories), ``lvis`` (LVIS v1's 1,203 categories and their synonyms) and ``demo`` (the demo world's
objects, parts and scenes). Anything else is a path to a file (:func:`load_vocabulary`).

Words are compared as keys (:func:`word_key`): lowercase, '_' and '-' read as spaces, so 'cell_phone',
'Cell-Phone' and 'cell phone' are one word. A label finds its class when its key is the class name, a
synonym, or the English plural of either (:func:`plural`: 'puppies', 'people', 'night skies'); multiword
names match whole ('hot dog' is never 'dog'; :attr:`Vocabulary.multiword` are the names the caption parser
keeps whole). A word listed twice (under two classes, or twice as a class) is an error naming the file.

:func:`classify` gives every segment of a tree its class under the ``unmapped`` policy (``keep``: a label
the vocabulary does not list is its own class; ``drop``: the segment, and an object's parts with it, are
left out, each with a reason); :func:`class_table` is a run's ``classes.json``.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import yaml

from ovlabel.engine.errors import ConfigError
from ovlabel.engine.hierarchy import UNLABELLED_SCENE
from ovlabel.engine.records import Segment
from ovlabel.engine.shipped import shipped, shipped_path
from ovlabel.schemas import LEVELS

VOCABULARY_DIR = shipped("vocab", "classes")
SHIPPED_SUFFIX = ".yaml"
UNMAPPED_POLICIES = ("keep", "drop")
# why classify() leaves a segment out (unmapped_scene: the root stays, its class becomes UNLABELLED_SCENE)
DROP_REASONS = ("unmapped_object", "unmapped_part", "object_dropped", "unmapped_scene")
_IRREGULAR_PLURALS = {"person": "people", "man": "men", "woman": "women", "child": "children", "mouse": "mice",
                      "foot": "feet", "sheep": "sheep", "knife": "knives", "leaf": "leaves", "shelf": "shelves",
                      "tooth": "teeth", "goose": "geese", "fish": "fish", "deer": "deer", "ox": "oxen",
                      "wolf": "wolves", "calf": "calves", "scarf": "scarves", "loaf": "loaves", "wife": "wives"}


def word_key(word: str) -> str:
    """The form words are compared in: lowercase, '_' and '-' as spaces, single spaces ('Cell_Phone' -> 'cell phone')."""
    return " ".join(str(word).lower().replace("_", " ").replace("-", " ").split())


def display_name(word: str) -> str:
    """A class name as classes.json and the labels rows write it: lowercase, '_' as spaces ('hot-air balloon')."""
    return " ".join(str(word).lower().replace("_", " ").split())


def plural(word: str) -> str:
    """English plural of a (possibly multiword) noun: 'bus' -> 'buses', 'night sky' -> 'night skies'."""
    head, _, last = word.rpartition(" ")
    if last in _IRREGULAR_PLURALS:
        out = _IRREGULAR_PLURALS[last]
    elif re.search(r"(s|x|z|ch|sh)$", last):
        out = last + "es"
    elif re.search(r"[^aeiou]y$", last):
        out = last[:-1] + "ies"
    else:
        out = last + "s"
    return f"{head} {out}" if head else out


@dataclass(frozen=True)
class Vocabulary:
    """A vocabulary: ``entries`` (class name, its synonyms) in file order; ``name`` the shipped name or the
    file's path, ``sha256`` of the file's bytes (what classes.json records)."""

    name: str
    sha256: str
    entries: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.entries)

    @property
    def ref(self) -> dict[str, str]:
        """What a run records of its vocabulary (classes.json, run.json)."""
        return {"name": self.name, "sha256": self.sha256}

    def words(self, name: str) -> tuple[str, ...]:
        """The class name first, then its synonyms as the file lists them; () for a name that is no class."""
        return next(((n, *syn) for n, syn in self.entries if n == name), ())

    @functools.cached_property
    def _index(self) -> dict[str, str]:
        """Key -> class: every listed word, then the plurals of those (a listed word wins over a plural)."""
        index = {word_key(w): name for name, syn in self.entries for w in (name, *syn)}
        for name, syn in self.entries:
            for w in (name, *syn):
                index.setdefault(plural(word_key(w)), name)
        return index

    def class_of(self, label: Optional[str]) -> Optional[str]:
        """The class ``label`` names, or None when the vocabulary does not list it."""
        return self._index.get(word_key(label)) if label else None

    @functools.cached_property
    def multiword(self) -> frozenset[str]:
        """Every multiword class name and synonym, as keys ('hot dog', 'cell phone'): names a caption parser
        must keep whole for the vocabulary to see them."""
        return frozenset(k for name, syn in self.entries for k in map(word_key, (name, *syn)) if " " in k)


def shipped_vocabularies() -> tuple[str, ...]:
    """The names of the vocabularies shipped in ``configs/vocab/classes/``."""
    return tuple(sorted(p.stem for p in VOCABULARY_DIR.glob(f"*{SHIPPED_SUFFIX}")))


def vocabulary_path(spec: str) -> tuple[str, Path]:
    """(name, file) of ``spec``: a shipped vocabulary's name (no '/', no '.yaml'), else a path (a relative one not
    found from the working directory is looked up in the configs folder)."""
    if "/" not in spec and "\\" not in spec and not spec.lower().endswith((".yaml", ".yml")):
        path = VOCABULARY_DIR / f"{spec}{SHIPPED_SUFFIX}"
        if not path.is_file():
            raise ConfigError(f"no shipped vocabulary {spec!r}; name one of {', '.join(shipped_vocabularies())} or "
                              f"give the path of a YAML file of 'class: [synonyms...]'")
        return spec, path
    path = shipped_path(spec)
    if not path.is_file():
        raise ConfigError(f"vocabulary file {str(path)!r} not found; give the path of a YAML file of "
                          f"'class: [synonyms...]' or a shipped name ({', '.join(shipped_vocabularies())})")
    return str(path.resolve()), path


def load_vocabulary(spec: str) -> Vocabulary:
    """The vocabulary ``spec`` names (see :func:`vocabulary_path`); :class:`ConfigError` naming the file for a
    file that cannot be read, is not a mapping of class -> synonyms, or lists a word twice."""
    name, path = vocabulary_path(spec)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"vocabulary file {str(path)!r} cannot be read ({exc}); check its permissions") from None
    return _parsed(name, str(path), data)


@functools.lru_cache(maxsize=16)
def _parsed(name: str, where: str, data: bytes) -> Vocabulary:
    from ovlabel.engine.config import _load_yaml  # the config loader: safe types, aliases bounded

    try:
        text = data.decode("utf-8-sig")
        tree = _load_yaml(text, where)
        _refuse_repeated_keys(text, where)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"vocabulary file {where!r} is not valid UTF-8 YAML ({reason}); fix the file") from None
    if not isinstance(tree, dict) or not tree:
        raise ConfigError(f"vocabulary file {where!r} must hold a mapping 'class: [synonyms...]' with at least one "
                          f"class, got {'nothing' if not tree else type(tree).__name__}")
    entries = tuple((_class_name(key, where), _synonyms(key, value, where)) for key, value in tree.items())
    _refuse_repeated_words(entries, where)
    return Vocabulary(name, hashlib.sha256(data).hexdigest(), entries)


def _refuse_repeated_keys(text: str, where: str) -> None:
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if isinstance(node, yaml.MappingNode):
        seen = Counter(str(key.value) for key, _ in node.value)
        repeated = [key for key, n in seen.items() if n > 1]
        if repeated:
            raise ConfigError(f"vocabulary file {where!r} lists the class {repeated[0]!r} twice; merge its synonyms "
                              f"into one entry")


def _class_name(key: Any, where: str) -> str:
    if not isinstance(key, str) or not word_key(key):
        raise ConfigError(f"vocabulary file {where!r}: class {key!r} is not a name (a YAML "
                          f"{type(key).__name__}); write class names as text, quoted if need be ('yes': [...])")
    return display_name(key)


def _synonyms(key: Any, value: Any, where: str) -> tuple[str, ...]:
    items = [] if value is None else [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(w, str) and word_key(w) for w in items):
        raise ConfigError(f"vocabulary file {where!r}: the synonyms of {key!r} must be a list of words "
                          f"('{key}: [word, other word]'), got {value!r}")
    own = word_key(key)
    return tuple(dict.fromkeys(display_name(w) for w in items if word_key(w) != own))


def _refuse_repeated_words(entries: Sequence[tuple[str, tuple[str, ...]]], where: str) -> None:
    owner: dict[str, str] = {}
    for name, synonyms in entries:
        for word in (name, *synonyms):
            key = word_key(word)
            if owner.get(key, name) != name or (word == name and key in owner):
                raise ConfigError(f"vocabulary file {where!r} lists {word!r} under both {owner[key]!r} and {name!r}; "
                                  f"a word names one class: keep it under one of them")
            owner[key] = name


# --- classes of a tree ----------------------------------------------------------------------


@dataclass(frozen=True)
class Classified:
    """A tree whose segments carry their class (ids renumbered 0, 1, ... when some were left out), and the
    reason (:data:`DROP_REASONS`) for each segment left out (or, for the root, each class dropped)."""

    segments: tuple[Segment, ...]
    dropped: tuple[str, ...] = ()


def _class_or_reason(segment: Segment, vocabulary: Optional[Vocabulary], unmapped: str) -> tuple[str, Optional[str]]:
    """(class, None), or (the label, reason) for a segment the ``drop`` policy leaves out."""
    if segment.level == "scene" and segment.source == "image":
        return UNLABELLED_SCENE, None  # no scene noun named the image
    found = vocabulary.class_of(segment.label) if vocabulary is not None else segment.label
    if found is not None:
        return found, None
    if unmapped == "keep":
        return segment.label, None
    if segment.level == "scene":
        return UNLABELLED_SCENE, "unmapped_scene"
    return segment.label, f"unmapped_{segment.level}"


def classify(segments: Sequence[Segment], vocabulary: Optional[Vocabulary], unmapped: str = "keep") -> Classified:
    """Each segment of a tree (root first, objects, parts: :mod:`ovlabel.engine.hierarchy`) with its class.

    With no vocabulary a segment's class is its label. ``unmapped='drop'`` leaves out an object or part the
    vocabulary does not list (an object's parts with it) and gives an unlisted scene the root's
    :data:`UNLABELLED_SCENE` class; the root itself always stays."""
    if unmapped not in UNMAPPED_POLICIES:
        raise ConfigError(f"vocabulary.unmapped must be one of {', '.join(UNMAPPED_POLICIES)}, got {unmapped!r}")
    kept: list[Segment] = []
    new_id: dict[int, int] = {}
    reasons: list[str] = []
    for segment in segments:
        name, reason = _class_or_reason(segment, vocabulary, unmapped)
        parent = segment.parent_id
        if parent is not None and parent not in new_id:
            reason = "object_dropped"  # a part whose object was left out
        if reason is not None:
            reasons.append(reason)
            if reason != "unmapped_scene":
                continue
        new_id[segment.segment_id] = len(kept)
        kept.append(dataclasses.replace(segment, segment_id=len(kept), class_name=name,
                                        parent_id=None if parent is None else new_id[parent]))
    return Classified(tuple(kept), tuple(reasons))


# --- classes.json ---------------------------------------------------------------------------


def class_table(vocabulary: Optional[Vocabulary], counts: Mapping[tuple[str, str], int],
                schema_version: str) -> dict[str, Any]:
    """A run's ``classes.json``: every class with its id and its segments per level.

    ``counts``: (class name, level) -> segments. Ids start at 1 (0 is left for background): the vocabulary's
    classes in its order first (the same ids in every run of that vocabulary, counted or not), then every other
    class the run wrote (kept unmapped words, the unlabelled root's 'scene') in sorted order."""
    listed = list(vocabulary.classes) if vocabulary is not None else []
    others = sorted({name for name, _ in counts} - set(listed))
    return {
        "schema_version": schema_version,
        "vocabulary": vocabulary.ref if vocabulary is not None else {"name": None, "sha256": None},
        "classes": [{"id": k, "name": name, "counts": {level: int(counts.get((name, level), 0)) for level in LEVELS}}
                    for k, name in enumerate([*listed, *others], start=1)],
    }


__all__ = ["Classified", "DROP_REASONS", "UNLABELLED_SCENE", "UNMAPPED_POLICIES", "VOCABULARY_DIR", "Vocabulary",
           "class_table", "classify", "display_name", "load_vocabulary", "plural", "shipped_vocabularies",
           "vocabulary_path", "word_key"]
