"""Class-agnostic mask sources behind the :class:`MaskGenerator` protocol.

``MASK_GENERATORS`` is a registry of small builder functions (name -> builder(config, device)).
Builders import their heavy dependencies lazily so a CPU-only superpixel run never loads SAM.
"""
from __future__ import annotations

from typing import Callable

from ovlabel.engine.config import MasksConfig
from ovlabel.engine.errors import ConfigError
from ovlabel.engine.masks.base import MaskGenerator
from ovlabel.engine.masks.data import MaskBatch


def _build_sam(cfg: MasksConfig, device: str) -> MaskGenerator:
    from ovlabel.engine.masks.sam import build_sam_generator

    return build_sam_generator(cfg.sam, device)


def _build_superpixel(cfg: MasksConfig, device: str) -> MaskGenerator:
    from ovlabel.engine.masks.superpixel import SuperpixelGenerator

    return SuperpixelGenerator(cfg.superpixel)


def _build_precomputed(cfg: MasksConfig, device: str) -> MaskGenerator:
    from ovlabel.engine.masks.precomputed import PrecomputedMasks

    return PrecomputedMasks(cfg.precomputed)


MASK_GENERATORS: dict[str, Callable[[MasksConfig, str], MaskGenerator]] = {
    "sam": _build_sam,
    "superpixel": _build_superpixel,
    "precomputed": _build_precomputed,
}


def build_mask_generator(cfg: MasksConfig, device: str = "cpu") -> MaskGenerator:
    """The configured generator, loaded and ready (call inside a worker, never at pipeline build time)."""
    try:
        builder = MASK_GENERATORS[cfg.generator]
    except KeyError:
        raise ConfigError(f"unknown masks.generator {cfg.generator!r}; choose one of {sorted(MASK_GENERATORS)}") from None
    return builder(cfg, device)


__all__ = ["MASK_GENERATORS", "MaskBatch", "MaskGenerator", "build_mask_generator"]
