"""Matching class-agnostic masks to caption nouns with region embeddings.

For each image: masks -> crops (:mod:`ovlabel.engine.crops`) -> region embeddings; nouns ->
prompt-ensemble text embeddings; then a similarity matrix masks x labels decides which mask
each noun takes. Regions of all images in a batch are embedded in one call.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ovlabel.engine.clip import RegionEmbedder
from ovlabel.engine.config import MatchingConfig
from ovlabel.engine.crops import crop_image, crop_region
from ovlabel.engine.hierarchy import root_segment, tree_of
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.records import CaptionParse, ImageMatches, Match, Noun, Segment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NounRef:
    """A noun with where it came from."""

    noun: Noun
    caption_index: int
    noun_index: int


@dataclass(frozen=True)
class ImageInput:
    """What matching needs of one image: (H, W, 3) uint8 pixels, its masks, its caption parses."""

    image: np.ndarray
    masks: MaskBatch
    parses: tuple[CaptionParse, ...]


def nouns_at_level(parses: Sequence[CaptionParse], level: str) -> list[NounRef]:
    """First occurrence of each lemma at ``level`` across the captions, in caption order."""
    seen: dict[str, NounRef] = {}
    for ci, parse in enumerate(parses):
        for ni, noun in enumerate(parse.nouns):
            if noun.level == level and noun.lemma not in seen:
                seen[noun.lemma] = NounRef(noun, ci, ni)
    return list(seen.values())


def candidate_masks(masks: MaskBatch, min_area_fraction: float) -> MaskBatch:
    h, w = masks.image_size
    return masks.select(masks.areas >= max(1.0, min_area_fraction * h * w))


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


class RegionMatcher:
    """Labels the masks of a batch of images; returns each image's segment tree."""

    def __init__(self, embedder: RegionEmbedder, cfg: MatchingConfig, crop_mode: str = "masked") -> None:
        self.embedder = embedder
        self.cfg = cfg
        self.crop_mode = crop_mode

    def label_batch(self, items: Sequence[ImageInput]) -> list[tuple[Segment, ...]]:
        """Each image's segment tree (root, objects, parts)."""
        return [tree_of(found) for found in self.match_batch(items)]

    def match_batch(self, items: Sequence[ImageInput]) -> list[ImageMatches]:
        """Each image's root and matches; all regions of the batch embedded in one call."""
        kept = [candidate_masks(item.masks, self.cfg.min_mask_area_fraction) for item in items]
        region_emb = self._embed_regions(items, kept)
        scene_emb = self.embedder.embed_crops(np.stack([crop_image(i.image, self.embedder.crop_size) for i in items]))
        return [self._match_image(item, masks, emb, scene)
                for item, masks, emb, scene in zip(items, kept, region_emb, scene_emb)]

    def _embed_regions(self, items: Sequence[ImageInput], kept: Sequence[MaskBatch]) -> list[np.ndarray]:
        size = self.embedder.crop_size
        crops = [crop_region(item.image, masks.decode(i), self.crop_mode, size)
                 for item, masks in zip(items, kept) for i in range(len(masks))]
        flat = self.embedder.embed_crops(np.stack(crops)) if crops else np.zeros((0, 0), np.float32)
        bounds = np.cumsum([0] + [len(m) for m in kept])
        return [flat[bounds[k]:bounds[k + 1]] for k in range(len(kept))]

    def _match_image(self, item: ImageInput, masks: MaskBatch, emb: np.ndarray, scene_emb: np.ndarray) -> ImageMatches:
        matches = self._match_objects(masks, emb, nouns_at_level(item.parses, "object"))
        return ImageMatches(self._root(item, scene_emb), tuple(matches), masks)

    def _root(self, item: ImageInput, scene_emb: np.ndarray) -> Segment:
        size = item.image.shape[:2]
        scenes = nouns_at_level(item.parses, "scene")
        if not scenes:
            return root_segment(size, "scene")
        sims = self.embedder.embed_labels([r.noun.lemma for r in scenes]) @ scene_emb
        best = int(np.argmax(sims))
        if sims[best] < self.cfg.similarity_threshold:
            return root_segment(size, "scene")
        ref = scenes[best]
        return root_segment(size, ref.noun.lemma, float(np.clip(sims[best], 0, 1)), float(sims[best]),
                            ref.noun, ref.caption_index)

    def _match_objects(self, masks: MaskBatch, emb: np.ndarray, nouns: list[NounRef]) -> list[Match]:
        if not nouns or len(masks) == 0:
            return []
        labels = [r.noun.lemma for r in nouns] + list(self.cfg.background_labels)
        sims = emb @ self.embedder.embed_labels(labels).T  # (M, L)
        probs = softmax(self.embedder.logit_scale * sims, axis=1)
        candidates = [(float(probs[i, j]), i, j) for j in range(len(nouns)) for i in range(len(masks))
                      if probs[i, j] >= self.cfg.probability_threshold and sims[i, j] >= self.cfg.similarity_threshold]
        taken_masks: set[int] = set()
        taken_nouns: set[int] = set()
        matches = []
        for prob, i, j in sorted(candidates, reverse=True):
            if i in taken_masks or j in taken_nouns:
                continue
            taken_masks.add(i)
            taken_nouns.add(j)
            ref = nouns[j]
            matches.append(Match(mask_index=i, level="object", label=ref.noun.lemma, score=prob,
                                 similarity=float(sims[i, j]), source="caption", noun=ref.noun,
                                 caption_index=ref.caption_index))
        return matches


def label_image(embedder: RegionEmbedder, cfg: MatchingConfig, image: np.ndarray, masks: MaskBatch,
                parses: Sequence[CaptionParse], crop_mode: str = "masked") -> tuple[Segment, ...]:
    """Convenience: label one image."""
    return RegionMatcher(embedder, cfg, crop_mode).label_batch([ImageInput(image, masks, tuple(parses))])[0]


__all__ = ["ImageInput", "NounRef", "RegionMatcher", "label_image", "nouns_at_level"]
