"""The reference path ``ovlabel bench`` measures the pipeline against: what a naive labeller does.

Image by image, with the same models and the same matching rules: segment-anything's own
``SamAutomaticMaskGenerator`` (for the ``sam`` generator; any other generator is used as configured),
one CLIP image-encoder call per crop (no batching, so no padding), and every label of an image
encoded again for that image (no text cache). :func:`same_segments` compares its labels with the
pipeline's, segment by segment.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from ovlabel.engine.config import Config
from ovlabel.engine.matching.embedder import OpenClipEmbedder, build_clip_model
from ovlabel.engine.records import InputRecord

log = logging.getLogger(__name__)


class PerCropEmbedder(OpenClipEmbedder):
    """An OpenClipEmbedder used naively: one encoder call per crop, labels encoded per image (no cache)."""

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 -> (N, D): N encoder calls of one crop each."""
        if len(crops) == 0:
            return super().embed_crops(crops)
        return np.concatenate([super(PerCropEmbedder, self).embed_crops(crops[i:i + 1]) for i in range(len(crops))])

    def forget_labels(self) -> None:
        self._text_cache.clear()


@dataclass
class ReferenceTimes:
    """Seconds the reference path spent: building models, and per stage over all images."""

    build: float = 0.0
    stages: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("load", "parse", "masks", "match"), 0.0))

    def timed(self, stage: str, fn: Any, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.stages[stage] += time.perf_counter() - started


def _reference_generator(cfg: Config, device: str) -> Any:
    if cfg.masks.generator == "sam":
        from ovlabel.engine.masks.sam.build import reference_generator

        return reference_generator(cfg.masks.section("sam"), device)
    return cfg.masks.spec.build(cfg.masks.settings, device)


def reference_labels(cfg: Config, records: Iterable[InputRecord],
                     device: str = "cpu") -> tuple[dict[str, list[dict[str, Any]]], ReferenceTimes]:
    """image_id -> segment rows (as in a labels row) for every record that labels, and the time it took."""
    from ovlabel.engine.captions import CaptionParser, parse_record_captions
    from ovlabel.engine.errors import InputError
    from ovlabel.engine.hierarchy import tree_of
    from ovlabel.engine.images import load_configured
    from ovlabel.engine.matching import ImageInput, RegionMatcher

    times = ReferenceTimes()
    started = time.perf_counter()
    parser = CaptionParser(cfg.captions.spacy_model, 1)
    generator = _reference_generator(cfg, device)
    model, tokenizer, sha = build_clip_model(cfg.clip, device)
    embedder = PerCropEmbedder(model, tokenizer, cfg.clip.model_copy(update={"crops_per_batch": 1}), device, sha)
    matcher = RegionMatcher(embedder, cfg.matching)
    times.build = time.perf_counter() - started
    out: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        try:
            image = times.timed("load", load_configured, record.image_uri, cfg.images, cfg.input)
            parses = times.timed("parse", parse_record_captions, parser, record.captions, cfg.captions.max_chars,
                                 cfg.matching.captionless == "vocabulary")
        except InputError:
            continue
        masks = times.timed("masks", lambda: generator.generate([image], [record.image_id])[0])
        embedder.forget_labels()
        found = times.timed("match", lambda: matcher.match_batch([ImageInput(image, masks, parses)])[0])
        out[record.image_id] = [s.to_row() for s in tree_of(found)]
    return out, times


SEGMENT_KEYS = ("segment_id", "parent_id", "level", "label", "source", "mask")


def same_segments(ours: dict[str, Sequence[dict[str, Any]]], reference: dict[str, Sequence[dict[str, Any]]],
                  keys: Optional[Sequence[str]] = None) -> tuple[int, int]:
    """(segments identical in both, segments in either): segments are compared by position within their image,
    on ``keys`` (default :data:`SEGMENT_KEYS`: the tree, the labels and the masks; scores may differ in the last
    bits)."""
    keys = tuple(keys or SEGMENT_KEYS)
    same = total = 0
    for image_id in set(ours) | set(reference):
        a, b = list(ours.get(image_id, ())), list(reference.get(image_id, ()))
        total += max(len(a), len(b))
        same += sum(all(x.get(k) == y.get(k) for k in keys) for x, y in zip(a, b))
    return same, total
