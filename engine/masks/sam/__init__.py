"""Segment Anything mask generation.

* :mod:`.model`: architectures (configs/models/sam.yaml), checkpoint loading, the no-checkpoint error;
* :mod:`.encoder`, :mod:`.decoder`, :mod:`.postprocess`: the batched path's parts;
* :mod:`.generator`: :class:`SamBatchedGenerator` (ours); :mod:`.reference`: segment-anything's own;
* :mod:`.build`: SamConfig + device -> generator (``build_sam_generator``, used by the registry).

The names below are imported on first use, so the preflight's :mod:`.model` checks (architecture, checkpoint)
do not import torch and segment-anything (seconds).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ovlabel.engine.masks.sam.build import amg_kwargs, batched_generator, build_sam_generator, reference_generator
    from ovlabel.engine.masks.sam.generator import SamBatchedGenerator
    from ovlabel.engine.masks.sam.model import (build_sam_model, check_sam_weights, make_random_sam_coherent,
                                                sam_architecture, sam_architectures)
    from ovlabel.engine.masks.sam.reference import SamReferenceGenerator
    from ovlabel.engine.masks.sam.settings import AmgSettings

_HOMES = {
    "AmgSettings": "settings",
    "SamBatchedGenerator": "generator",
    "SamReferenceGenerator": "reference",
    "amg_kwargs": "build",
    "batched_generator": "build",
    "build_sam_generator": "build",
    "build_sam_model": "model",
    "check_sam_weights": "model",
    "make_random_sam_coherent": "model",
    "reference_generator": "build",
    "sam_architecture": "model",
    "sam_architectures": "model",
}
__all__ = ["AmgSettings", "SamBatchedGenerator", "SamReferenceGenerator", "amg_kwargs", "batched_generator",
           "build_sam_generator", "build_sam_model", "check_sam_weights", "make_random_sam_coherent",
           "reference_generator", "sam_architecture", "sam_architectures"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
