"""The demo world as a run input: generated scenes in a cache folder, and the words captions use.

:func:`ensure_demo_manifest` turns a :class:`~ovlabel.engine.config.DemoConfig` into a manifest
(``manifest.jsonl`` next to ``images/`` and COCO ``instances.json``), generating the scenes on first
use; later runs with the same seeds and size reuse them. Each (seed, count, size) gets its own
folder under the cache, so a small test run never evicts the README's 200 scenes.

:data:`DEMO_SYNONYMS` maps every word the caption parser emits for demo scenes (lemmas such as
'automobile', 'woman', 'people', 'sky') to the ground-truth category it names; evaluation maps
labels through it and the demo CLIP is trained on all of them (:func:`category_words`).
"""
from __future__ import annotations

import logging
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from ovlabel.engine.config import DemoConfig
from ovlabel.engine.demo.scenes import MANIFEST_NAME, OBJECT_CATEGORIES, PART_CATEGORIES, SCENE_TYPES, ensure_dataset
from ovlabel.engine.demo.templates import OBJECT_NOUNS, PART_NOUNS
from ovlabel.engine.weights import cache_dir

log = logging.getLogger(__name__)

# caption lemma -> category, beyond the caption nouns of templates.OBJECT_NOUNS / PART_NOUNS: the
# plural lemmas spaCy keeps ('people') and the head nouns of multiword scene names ('sky')
_EXTRA_WORDS: dict[str, str] = {
    "people": "person", "men": "person", "women": "person", "puppies": "dog",
    "sky": "night sky", "night": "night sky", "starry sky": "night sky",
}


def _synonyms() -> dict[str, str]:
    table: dict[str, str] = {}
    for category, nouns in {**OBJECT_NOUNS, **PART_NOUNS}.items():
        for noun in (category, *nouns):
            table[noun] = category
    for scene in SCENE_TYPES:
        table[scene] = scene
    table.update(_EXTRA_WORDS)
    return table


DEMO_SYNONYMS: Mapping[str, str] = MappingProxyType(_synonyms())


def category_words(category: str) -> tuple[str, ...]:
    """Every label word that names ``category`` (the category itself first): 'car' -> ('car', 'automobile')."""
    return (category, *sorted(w for w, c in DEMO_SYNONYMS.items() if c == category and w != category))


def all_categories() -> tuple[str, ...]:
    """Scene types, object categories, part categories (demo ground-truth names)."""
    return (*SCENE_TYPES, *OBJECT_CATEGORIES, *PART_CATEGORIES)


def demo_seeds(cfg: DemoConfig) -> range:
    """The seeds of a demo run: ``seed .. seed + num_images - 1``."""
    return range(cfg.seed, cfg.seed + cfg.num_images)


def demo_dir(cfg: DemoConfig) -> Path:
    """The dataset folder of ``cfg``: ``<cache_dir>/s<seed>-n<num>-<size>px`` (cache_dir default
    ``~/.cache/ovlabel/demo``, or ``$OVLABEL_CACHE/demo``)."""
    root = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else cache_dir() / "demo"
    return root / f"s{cfg.seed}-n{cfg.num_images}-{cfg.image_size}px"


def ensure_demo_manifest(cfg: DemoConfig) -> Path:
    """The manifest of the demo scenes of ``cfg``, generating them first when missing or stale."""
    folder = demo_dir(cfg)
    log.info("demo world: %d scenes from seed %d (%dpx) in %s", cfg.num_images, cfg.seed, cfg.image_size, folder)
    ensure_dataset(folder, demo_seeds(cfg), cfg.image_size)
    return folder / MANIFEST_NAME


__all__ = ["DEMO_SYNONYMS", "all_categories", "category_words", "demo_dir", "demo_seeds", "ensure_demo_manifest"]
