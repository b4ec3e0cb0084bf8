"""Segment Anything mask generation.

* :mod:`.model`: architectures (configs/models/sam.yaml), checkpoint loading, the no-checkpoint error;
* :mod:`.encoder`, :mod:`.decoder`, :mod:`.postprocess`: the batched path's parts;
* :mod:`.generator`: :class:`SamBatchedGenerator` (ours); :mod:`.reference`: segment-anything's own;
* :mod:`.build`: SamConfig + device -> generator (``build_sam_generator``, used by the registry).
"""
from __future__ import annotations

from ovlabel.engine.masks.sam.build import amg_kwargs, batched_generator, build_sam_generator, reference_generator
from ovlabel.engine.masks.sam.generator import SamBatchedGenerator
from ovlabel.engine.masks.sam.model import (
    build_sam_model,
    check_sam_weights,
    make_random_sam_coherent,
    sam_architecture,
    sam_architectures,
)
from ovlabel.engine.masks.sam.reference import SamReferenceGenerator
from ovlabel.engine.masks.sam.settings import AmgSettings

__all__ = [
    "AmgSettings",
    "SamBatchedGenerator",
    "SamReferenceGenerator",
    "amg_kwargs",
    "batched_generator",
    "build_sam_generator",
    "build_sam_model",
    "check_sam_weights",
    "make_random_sam_coherent",
    "reference_generator",
    "sam_architecture",
    "sam_architectures",
]
