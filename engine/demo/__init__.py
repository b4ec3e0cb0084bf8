"""Offline demo world: procedural scenes with exact scene/object/part ground truth and captions.

Modules: :mod:`.scenes` (generation, ground truth, dataset writers), :mod:`.objects` (object and part
drawing), :mod:`.backgrounds` (scene layouts), :mod:`.templates` (captions), :mod:`.shapes` (raster
primitives, palette). Framework-free: numpy and Pillow only (pycocotools for RLE).
"""
from __future__ import annotations

from ovlabel.engine.demo.scenes import (
    OBJECT_CATEGORIES,
    PART_CATEGORIES,
    SCENE_TYPES,
    DemoInstance,
    DemoScene,
    ensure_dataset,
    generate_scene,
    iter_region_samples,
    write_dataset,
)

__all__ = [
    "OBJECT_CATEGORIES",
    "PART_CATEGORIES",
    "SCENE_TYPES",
    "DemoInstance",
    "DemoScene",
    "ensure_dataset",
    "generate_scene",
    "iter_region_samples",
    "write_dataset",
]
