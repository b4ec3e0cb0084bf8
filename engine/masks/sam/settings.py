"""The automatic-mask-generation settings shared by both SAM generators, taken from segment-anything itself.

:class:`AmgSettings` has one field per keyword of segment-anything's ``SamAutomaticMaskGenerator``
(``points_per_side``, ``points_per_batch``, ``pred_iou_thresh``, ``stability_score_thresh``,
``stability_score_offset``, ``box_nms_thresh``, ``crop_n_layers``, ``crop_nms_thresh``,
``crop_overlap_ratio``, ``crop_n_points_downscale_factor``, ``min_mask_region_area``), with its
defaults and in its order, read from its signature: the library is the one home of that list.
Both generators take these as keyword arguments and report them in ``describe()`` in this order.
"""
from __future__ import annotations

import dataclasses
import inspect

from segment_anything import SamAutomaticMaskGenerator

# keywords of SamAutomaticMaskGenerator that are not settings: the model, explicit grids, the output format
_NOT_SETTINGS = ("self", "model", "point_grids", "output_mode")


def _fields() -> list[tuple[str, type, object]]:
    params = inspect.signature(SamAutomaticMaskGenerator.__init__).parameters.values()
    return [(p.name, type(p.default), p.default) for p in params if p.name not in _NOT_SETTINGS]


def _as_kwargs(self: object) -> dict[str, object]:
    """The settings as keyword arguments of segment-anything's generator (and provenance)."""
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


AmgSettings = dataclasses.make_dataclass("AmgSettings", _fields(), frozen=True, namespace={"as_kwargs": _as_kwargs})
AmgSettings.__module__ = __name__  # importable by this name (pickling)
