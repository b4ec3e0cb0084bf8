"""Region-noun matching with controlled similarities: the embedder and scene builders the level tests share.

:class:`TableEmbedder` looks each crop up by its exact pixels: a test computes the crop of every
mask with :func:`crop_region` (noise images make every mask's crop unique) and sets that mask's
cosine to each label; label embeddings are one-hot, so ``region @ label`` is exactly that cosine.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

from ovlabel.engine.config import MatchingConfig
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.matching import ImageInput, RegionMatcher
from ovlabel.engine.matching.crops import crop_image, crop_region
from ovlabel.engine.records import CaptionParse, ImageMatches, Noun

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
SIZE = (64, 64)
LEXICON = {"dog": ("ear", "leg", "tail")}


class TableEmbedder:
    """A RegionEmbedder whose cosines are set per crop and label; counts its calls."""

    def __init__(self, crop_size: int = 16, logit_scale: float = 10.0, dim: int = 64) -> None:
        self.crop_size = crop_size
        self.logit_scale = logit_scale
        self.dim = dim
        self._axes: dict[str, int] = {}
        self._crops: dict[bytes, np.ndarray] = {}
        self.crop_calls = 0
        self.label_calls = 0

    def axis(self, label: str) -> int:
        if label not in self._axes:
            self._axes[label] = len(self._axes)
        return self._axes[label]

    def set_crop(self, crop: np.ndarray, sims: Mapping[str, float]) -> None:
        vec = np.zeros(self.dim, np.float32)
        for label, value in sims.items():
            vec[self.axis(label)] = value
        self._crops[crop.tobytes()] = vec

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        self.crop_calls += 1
        missing = [k for k, c in enumerate(crops) if c.tobytes() not in self._crops]
        assert not missing, f"crops {missing} were never registered"
        return np.stack([self._crops[c.tobytes()] for c in crops])

    def embed_labels(self, labels: Sequence[str]) -> np.ndarray:
        self.label_calls += 1
        out = np.zeros((len(labels), self.dim), np.float32)
        for k, label in enumerate(labels):
            out[k, self.axis(label)] = 1.0
        return out

    def describe(self) -> dict[str, object]:
        return {"model": "table"}


def noise_image(seed: int = 0, size: tuple[int, int] = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def box_mask(box: Box, size: tuple[int, int] = SIZE) -> np.ndarray:
    mask = np.zeros(size, bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = True
    return mask


def setup_image(embedder: TableEmbedder, boxes: Sequence[Box], sims: Sequence[Mapping[str, float]],
                scene: Optional[Mapping[str, float]] = None, seed: int = 0,
                mode: str = "masked") -> tuple[np.ndarray, MaskBatch]:
    """A noise image, its box masks, and the embedder taught each mask's (and the image's) cosines."""
    image = noise_image(seed)
    masks = np.stack([box_mask(b) for b in boxes])
    for mask, table in zip(masks, sims):
        embedder.set_crop(crop_region(image, mask, mode, embedder.crop_size), table)
    embedder.set_crop(crop_image(image, embedder.crop_size), scene or {})
    return image, MaskBatch.from_masks(masks)


def noun(lemma: str, level: str = "object", parent: Optional[int] = None, count: Optional[int] = None,
         plural: bool = False, phrase: Optional[str] = None) -> Noun:
    return Noun(phrase=phrase or lemma, lemma=lemma, level=level, char_span=(0, len(phrase or lemma)),
                parent=parent, count=count, plural=plural)


def parse(*nouns: Noun) -> CaptionParse:
    return CaptionParse(" ".join(n.phrase for n in nouns), tuple(nouns))


def config(**changes: object) -> MatchingConfig:
    base: dict[str, object] = {"similarity_threshold": 0.1, "probability_threshold": 0.3,
                               "background_labels": ("background",), "min_mask_area_fraction": 0.0}
    return MatchingConfig(**{**base, **changes})


def match_one(embedder: TableEmbedder, image: np.ndarray, masks: MaskBatch, parses: Iterable[CaptionParse],
              cfg: Optional[MatchingConfig] = None) -> ImageMatches:
    matcher = RegionMatcher(embedder, cfg or config(), lexicon=lambda lemma: LEXICON.get(lemma, ()))
    return matcher.match_batch([ImageInput(image, masks, tuple(parses))])[0]


def picked(found: ImageMatches, level: str = "object", label: Optional[str] = None) -> list[int]:
    return sorted(m.mask_index for m in found.matches if m.level == level and (label is None or m.label == label))

# four separate boxes, one near-duplicate of the first, a big box holding two small ones

class AliasEmbedder(TableEmbedder):
    """Labels in ``aliases`` get the embedding of the label they alias (a perfect synonym)."""

    def __init__(self, aliases: Mapping[str, str]) -> None:
        super().__init__()
        self.aliases = dict(aliases)

    def embed_labels(self, labels: Sequence[str]) -> np.ndarray:
        return super().embed_labels([self.aliases.get(label, label) for label in labels])


# four separate boxes, one near-duplicate of the first, a big box holding two small ones
A, A2, B, C, D = (2, 2, 20, 20), (3, 2, 21, 20), (30, 2, 48, 20), (2, 30, 20, 48), (40, 40, 60, 60)
BIG, IN1, IN2 = (10, 10, 50, 50), (14, 14, 24, 24), (34, 34, 44, 44)
CROWN, TRUNK = (10, 4, 40, 24), (22, 24, 28, 40)  # a tree matched by its crown; the trunk touches it below
