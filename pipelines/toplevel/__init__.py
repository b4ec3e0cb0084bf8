"""ovlabel: image-caption pairs in, hierarchical open-vocabulary segmentation pseudo-labels out.

The Python API (for notebooks and scripts; the command line is ``ovlabel``)::

    import ovlabel

    result = ovlabel.label("photos/", "runs/photos", config="demo", overrides={"masks.device": "cpu"})
    result.output, result.summary.labeled_rows, result.summary.error_rows

:func:`label` and :class:`LabelResult` live in :mod:`ovlabel.pipelines.api`; importing ``ovlabel`` loads
neither Beam nor torch (they load on first use of :func:`label`). The subpackages: :mod:`ovlabel.engine`
(framework-free logic), :mod:`ovlabel.pipelines` (Beam wiring, CLI), :mod:`ovlabel.schemas` (the output's
Arrow schema), :mod:`ovlabel.configs` (shipped configs, vocabularies, model files). This file lives in
``pipelines/toplevel/`` (see pyproject.toml's package-dir).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ovlabel.pipelines.api import LabelResult, label

__all__ = ["LabelResult", "__version__", "label"]


def __getattr__(name: str) -> Any:
    if name in ("label", "LabelResult"):
        from ovlabel.pipelines import api

        return getattr(api, name)
    if name == "__version__":
        from ovlabel.engine import installed_version

        return installed_version()
    raise AttributeError(f"module 'ovlabel' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, "configs", "engine", "pipelines", "schemas"})
