"""The Python API: :func:`label` makes one run from a notebook or a script, as ``ovlabel run`` does.

    >>> import ovlabel
    >>> result = ovlabel.label("photos/", "runs/photos", config="demo", limit=10)
    >>> result.summary.labeled_rows, result.summary.error_rows, result.labels

Errors are those of the command line, raised: :class:`~ovlabel.engine.errors.OvlabelError` (a bad config,
a missing input, an output that is not empty...) says what to fix.
"""
from __future__ import annotations

import json
import os
import posixpath
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from ovlabel.engine.config import Overrides
from ovlabel.engine.errors import OvlabelError
from ovlabel.engine.layout import ERRORS, LABELS, RUN_INFO
from ovlabel.pipelines.accounting import RunSummary
from ovlabel.pipelines.options import load_run_config

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class LabelResult:
    """What :func:`label` made: the output folder and run, and the run's accounting (``summary``: inputs,
    labelled rows, error rows and per stage, seconds: what run.json's ``counts`` records)."""

    output: str
    run_id: str
    summary: RunSummary

    @property
    def ok(self) -> bool:
        """Every input is exactly one labels or errors row."""
        return self.summary.balanced

    @property
    def labels(self) -> str:
        return posixpath.join(self.output, LABELS)

    @property
    def errors(self) -> str:
        return posixpath.join(self.output, ERRORS)

    @property
    def run_info(self) -> str:
        return posixpath.join(self.output, RUN_INFO)

    def read_run_info(self) -> dict[str, Any]:
        """run.json: the config, counts, per-stage flows, metrics, versions and models of the run."""
        import fsspec

        with fsspec.open(self.run_info, "rt") as fh:
            return dict(json.load(fh))


def _with_limit(overrides: Optional[Overrides], limit: Optional[int]) -> Overrides:
    if limit is None:
        return overrides or ()
    if isinstance(overrides, Mapping):
        return {**overrides, "input.limit": limit}
    return [*(overrides or ()), f"input.limit={limit}"]


def label(input: Optional[PathLike], output: PathLike, config: Optional[PathLike] = "demo",
          overrides: Optional[Overrides] = None, *, limit: Optional[int] = None, overwrite: bool = False,
          resume: bool = False, force_resume: bool = False, beam_args: Sequence[str] = ()) -> LabelResult:
    """Label ``input`` into the folder ``output`` and return where and how it went.

    ``input``: a manifest (.jsonl, .csv, .parquet), a folder of images or a glob (captions from sidecar .txt or
    .json files, or none); None: the config's ``input.manifest``, else its demo world. ``config``: a YAML path
    or a shipped config's name ('demo', 'tiny', 'default'); None: the defaults. ``overrides``: config keys, as
    ``{"masks.device": "cuda"}`` (values taken as they are) or ``["masks.device=cuda"]`` (values read as YAML).
    ``limit``: only the first that many inputs. ``overwrite`` / ``resume`` / ``force_resume``: as the CLI's
    flags. ``beam_args``: Beam pipeline options (default: the DirectRunner).
    """
    from ovlabel.pipelines.inputs import resolve_input
    from ovlabel.pipelines.pipeline import new_run_id, run

    if force_resume and not resume:
        raise OvlabelError("force_resume goes with resume")
    cfg = load_run_config(config, _with_limit(overrides, limit))
    location = resolve_input(cfg, None if input is None else os.fspath(input))
    run_id = new_run_id()
    summary = run(cfg, location, os.fspath(output), beam_args, overwrite=overwrite, resume=resume, run_id=run_id,
                  force_resume=force_resume)
    return LabelResult(summary.output, run_id, summary)
