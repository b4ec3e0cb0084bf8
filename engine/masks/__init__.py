"""Class-agnostic mask sources behind the :class:`MaskGenerator` protocol.

Generators are entries of the registry (:mod:`ovlabel.engine.masks.registry`): each
:class:`GeneratorSpec` owns its settings section, builder, accelerator use, preflight check and
provenance. :func:`build_mask_generator` builds the configured one.
"""
from __future__ import annotations

from ovlabel.engine.masks.base import MaskGenerator
from ovlabel.engine.masks.config import MasksConfig
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.masks.registry import MASK_GENERATORS, GeneratorSpec, generator_spec, register_generator


def build_mask_generator(cfg: MasksConfig, device: str = "cpu") -> MaskGenerator:
    """The configured generator, loaded and ready (call inside a worker, never at pipeline build time)."""
    return cfg.spec.build(cfg.settings, device)


__all__ = ["MASK_GENERATORS", "GeneratorSpec", "MaskBatch", "MaskGenerator", "MasksConfig", "build_mask_generator",
           "generator_spec", "register_generator"]
