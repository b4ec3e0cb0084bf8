"""The matcher: embeds a batch once, then labels each image's scene, objects and parts.

For each image: masks -> crops (:mod:`ovlabel.engine.matching.crops`) -> region embeddings;
nouns -> prompt-ensemble text embeddings; similarity matrices masks x labels then decide which
masks each noun takes (:mod:`~ovlabel.engine.matching.scene`, :mod:`~ovlabel.engine.matching.objects`,
:mod:`~ovlabel.engine.matching.parts`; thresholds in :class:`~ovlabel.engine.config.MatchingConfig`).
The scene crops and regions of all images in a batch are embedded in one call (one stream through the
encoder), and the labels of the batch in one call (the embedder caches them across batches).
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import numpy as np

from ovlabel.engine.config import MatchingConfig
from ovlabel.engine.errors import ConfigError
from ovlabel.engine.hierarchy import tree_of
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.matching.context import ImageContext, ImageInput, candidate_masks
from ovlabel.engine.matching.crops import crop_image, crop_region, crop_with_mask, image_with_mask
from ovlabel.engine.matching.dense import DENSE_MODE, DenseEmbedder
from ovlabel.engine.matching.embedder import RegionEmbedder
from ovlabel.engine.matching.ensemble import combine, members_of
from ovlabel.engine.matching.objects import match_objects
from ovlabel.engine.matching.region_encoders import MASK_INPUT_MODES, MaskInputEmbedder
from ovlabel.engine.matching.parts import Lexicon, PartLexicon, grow_objects, match_parts
from ovlabel.engine.matching.scene import match_scene
from ovlabel.engine.matching.slots import Rules, caption_labels, nouns_at_level
from ovlabel.engine.records import CaptionParse, ImageMatches, Segment
from ovlabel.engine.vocab import part_lexicon

log = logging.getLogger(__name__)


class RegionMatcher:
    """Labels the masks of a batch of images; returns each image's matches or segment tree.

    ``lexicon`` (object lemma -> part lemmas) defaults to the part lexicon ``cfg.part_lexicon``
    names (``configs/vocab/parts.yaml`` when None); it is only consulted when ``cfg.lexicon_parts``
    is set. ``captionless_words``: the object words an image whose captions name no object is labelled
    from when ``cfg.object_vocabulary`` is empty (``matching.captionless: vocabulary``: the label
    vocabulary's classes).
    """

    def __init__(self, embedder: RegionEmbedder, cfg: MatchingConfig, lexicon: Optional[Lexicon] = None,
                 captionless_words: Sequence[str] = ()) -> None:
        self.embedder = embedder
        self.cfg = cfg
        self._lexicon = PartLexicon(lexicon or part_lexicon(cfg.part_lexicon))
        self.captionless_words = tuple(captionless_words)

    @property
    def _min_area_fraction(self) -> float:
        """The smallest mask (fraction of the image) any level may label."""
        return min(self.cfg.part_area_fraction, self.cfg.min_mask_area_fraction)

    def label_batch(self, items: Sequence[ImageInput]) -> list[tuple[Segment, ...]]:
        """Each image's segment tree (root, objects, parts)."""
        return [tree_of(found) for found in self.match_batch(items)]

    def match_batch(self, items: Sequence[ImageInput]) -> list[ImageMatches]:
        """Each image's root and matches; all regions and all labels of the batch embedded in one call each."""
        if not items:
            return []
        kept = [candidate_masks(item.masks, self._min_area_fraction) for item in items]
        scenes, regions = self._embed_regions(items, kept)
        text = self._embed_labels(items)
        rules = Rules(self.cfg, self.embedder.logit_scale)
        return [self._match_image(ImageContext(item, masks, emb, scene, text), rules)
                for item, masks, emb, scene in zip(items, kept, regions, scenes)]

    def _embed_regions(self, items: Sequence[ImageInput],
                       kept: Sequence[MaskBatch]) -> tuple[np.ndarray, list[np.ndarray]]:
        """(K, D) scene embeddings and, per image, (M_k, D) embeddings of its kept masks' crops. Per model (an
        ensemble's members joined, :func:`~.ensemble.combine`), the scene crops and all region crops of the batch
        go through the encoder as one stream (one call), so only its last chunk is padded; each mask is decoded
        once, for every model's crop. crop_mode dense: the scene crops alone, and each image's masks pooled from
        its patch embeddings (:meth:`DenseEmbedder.embed_masks`); alpha and mask_prompt: crops and their masks
        (:func:`crop_with_mask`)."""
        if self.cfg.crop_mode == DENSE_MODE:  # no region crops: one image forward per image (dense.py)
            return self._embed_dense(items, kept)
        members = members_of(self.embedder, self.cfg.crop_mode)
        context = self.cfg.alpha_context
        inputs = [[_scene_input(item.image, m.crop_mode, m.embedder.crop_size, context) for item in items]
                  for m in members]
        for item, masks in zip(items, kept):
            for i in range(len(masks)):
                mask = masks.decode(i)
                for m, rows in zip(members, inputs):
                    rows.append(_region_input(item.image, mask, m.crop_mode, m.embedder.crop_size, context))
        done = [_split(_encode(m.embedder, m.crop_mode, rows), len(items), kept) for m, rows in zip(members, inputs)]
        if len(done) == 1:
            return done[0]
        weights = [m.weight for m in members]
        return (combine([d[0] for d in done], weights),
                [combine([d[1][k] for d in done], weights) for k in range(len(items))])

    def _embed_dense(self, items: Sequence[ImageInput],
                     kept: Sequence[MaskBatch]) -> tuple[np.ndarray, list[np.ndarray]]:
        dense = _dense_embedder(self.embedder)
        scenes = np.stack([crop_image(item.image, self.embedder.crop_size) for item in items])
        return self.embedder.embed_crops(scenes), [dense.embed_masks(item.image, masks)
                                                   for item, masks in zip(items, kept)]

    def _batch_labels(self, items: Sequence[ImageInput]) -> list[str]:
        """Every label any level of the batch may score, in a fixed order (background first)."""
        labels: dict[str, None] = dict.fromkeys(self.cfg.background_labels)
        vocabulary = list(self.cfg.object_vocabulary)
        if any(not nouns_at_level(item.parses, "object") for item in items):
            vocabulary += self._fallback_words
        labels.update(dict.fromkeys(vocabulary))
        for item in items:
            labels.update(dict.fromkeys(caption_labels(item.parses)))
        if self.cfg.lexicon_parts:
            objects = [r.noun.lemma for item in items for r in nouns_at_level(item.parses, "object")]
            for lemma in [*vocabulary, *objects]:
                labels.update(dict.fromkeys(self._lexicon(lemma)))
        return list(labels)

    @property
    def _fallback_words(self) -> list[str]:
        """What an image whose captions name no object is labelled from (beyond object_vocabulary)."""
        return [] if self.cfg.object_vocabulary else list(self.captionless_words)

    def _embed_labels(self, items: Sequence[ImageInput]) -> dict[str, np.ndarray]:
        labels = self._batch_labels(items)
        return dict(zip(labels, self.embedder.embed_labels(labels))) if labels else {}

    def _match_image(self, ctx: ImageContext, rules: Rules) -> ImageMatches:
        objects = match_objects(ctx, rules, self._fallback_words)
        parts = match_parts(ctx, rules, objects, self._lexicon)
        masks = ctx.masks
        if self.cfg.part_reach is not None:
            objects, parts, masks = grow_objects(ctx, objects, parts, self.cfg.part_containment)
        log.debug("matched %d masks: %d objects, %d parts", len(ctx.masks), len(objects), len(parts))
        return ImageMatches(match_scene(ctx, rules), tuple(objects + parts), masks)


def _split(flat: np.ndarray, scenes: int, kept: Sequence[MaskBatch]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Rows of ``scenes`` scene crops, then each image's kept masks -> (scene rows, per-image region rows)."""
    bounds = np.cumsum([scenes] + [len(m) for m in kept])
    return flat[:scenes], [flat[bounds[k]:bounds[k + 1]] for k in range(len(kept))]


Inputs = tuple[np.ndarray, ...]  # what one region is encoded from: its crop (and, MASK_INPUT_MODES, its mask)


def _scene_input(image: np.ndarray, mode: str, size: int, context: Optional[float]) -> Inputs:
    """The whole image as crop ``mode``'s encoder takes it (a MASK_INPUT_MODES mode: with a mask covering it)."""
    return image_with_mask(image, mode, size, context) if mode in MASK_INPUT_MODES else (crop_image(image, size),)


def _region_input(image: np.ndarray, mask: np.ndarray, mode: str, size: int, context: Optional[float]) -> Inputs:
    if mode in MASK_INPUT_MODES:
        return crop_with_mask(image, mask, mode, size, context)
    return (crop_region(image, mask, mode, size),)


def _encode(embedder: RegionEmbedder, mode: str, rows: Sequence[Inputs]) -> np.ndarray:
    """(N, D): the N regions' inputs through ``embedder`` in one stream (``embed_regions`` with their masks for a
    MASK_INPUT_MODES mode, else ``embed_crops``)."""
    arrays = [np.stack(column) for column in zip(*rows)]
    if mode in MASK_INPUT_MODES:
        return _mask_input_embedder(embedder, mode).embed_regions(*arrays)
    return embedder.embed_crops(arrays[0])


def _mask_input_embedder(embedder: RegionEmbedder, mode: str) -> MaskInputEmbedder:
    if not isinstance(embedder, MaskInputEmbedder) or embedder.crop_mode != mode:
        built = getattr(embedder, "crop_mode", None)
        raise ConfigError(f"matching.crop_mode={mode} needs an embedder built for it (build_region_embedder); "
                          f"{type(embedder).__name__} is built for {built or 'plain crops'}")
    return embedder


def _dense_embedder(embedder: RegionEmbedder) -> DenseEmbedder:
    if not isinstance(embedder, DenseEmbedder):
        raise ConfigError(f"matching.crop_mode=dense needs an embedder with embed_masks(image, masks); "
                          f"{type(embedder).__name__} has none: use OpenClipEmbedder or another crop_mode")
    return embedder


def label_image(embedder: RegionEmbedder, cfg: MatchingConfig, image: np.ndarray, masks: MaskBatch,
                parses: Sequence[CaptionParse], lexicon: Optional[Lexicon] = None) -> tuple[Segment, ...]:
    """Convenience: label one image."""
    matcher = RegionMatcher(embedder, cfg, lexicon)
    return matcher.label_batch([ImageInput(image, masks, tuple(parses))])[0]
