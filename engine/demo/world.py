"""The demo world as a run input: generated scenes in a cache folder, and the words captions use.

:func:`ensure_demo_manifest` turns a :class:`~ovlabel.engine.config.DemoConfig` into a manifest
(``manifest.jsonl`` next to ``images/`` and COCO ``instances.json``), generating the scenes on first
use; later runs with the same seeds and size reuse them. Each (seed, count, size) gets its own
folder under the cache, so a small test run never evicts the README's 200 scenes.

The words captions use for each category live in the demo label vocabulary (``configs/vocab/classes/demo.yaml``,
:func:`demo_vocabulary`): every word the caption parser emits for demo scenes (lemmas such as 'automobile',
'woman', 'people', 'sky') under the ground-truth category it names. ``configs/demo.yaml`` labels with it,
``ovlabel eval`` scores demo runs through it, and the demo CLIP is trained on all of them (:func:`category_words`).
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

from ovlabel.engine.config import DemoConfig
from ovlabel.engine.demo.scenes import MANIFEST_NAME, OBJECT_CATEGORIES, PART_CATEGORIES, SCENE_TYPES, ensure_dataset
from ovlabel.engine.ontology import Vocabulary, load_vocabulary
from ovlabel.engine.weights import cache_dir

log = logging.getLogger(__name__)

DEMO_VOCABULARY = "demo"  # the shipped label vocabulary of the demo world (configs/vocab/classes/demo.yaml)


@functools.lru_cache(maxsize=1)
def demo_vocabulary() -> Vocabulary:
    """The demo world's label vocabulary: its object, part and scene categories with the words captions use."""
    return load_vocabulary(DEMO_VOCABULARY)


def category_words(category: str) -> tuple[str, ...]:
    """Every label word that names ``category`` (the category itself first): 'car' -> ('car', 'automobile')."""
    return (category, *sorted(w for w in demo_vocabulary().words(category) if w != category))


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


__all__ = ["DEMO_VOCABULARY", "all_categories", "category_words", "demo_dir", "demo_seeds", "demo_vocabulary",
           "ensure_demo_manifest"]
