"""The ``MaskGenerator`` protocol: class-agnostic masks for a batch of images."""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from ovlabel.engine.masks.data import MaskBatch


@runtime_checkable
class MaskGenerator(Protocol):
    """Produces class-agnostic masks.

    ``generate`` takes images as (H, W, 3) uint8 RGB arrays (sizes may differ) plus their
    image ids (used by sources keyed by image, such as precomputed masks) and returns one
    :class:`MaskBatch` per image, in order. Raising fails the whole batch; the caller retries
    image by image to isolate a bad input.
    """

    name: str

    def generate(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[MaskBatch]: ...

    def describe(self) -> dict[str, object]:
        """Provenance: model type, checkpoint sha256, thresholds."""
        ...
