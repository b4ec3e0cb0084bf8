"""The table ``ovlabel run`` closes with, from the run's :class:`RunSummary` (what run.json's ``counts`` hold)."""
from __future__ import annotations

from typing import Sequence

from ovlabel.engine.layout import ERRORS, LABELS, RUN_INFO
from ovlabel.pipelines.accounting import RunSummary
from ovlabel.pipelines.stages import BUILD_HIERARCHY


def _counts(pairs: Sequence[tuple[str, int]]) -> str:
    return ", ".join(f"{name} {n}" for name, n in pairs) or "-"


def labelled_this_run(summary: RunSummary) -> int:
    """Images this run labelled (a resumed run's folder holds earlier runs' rows too)."""
    return summary.stages.get(BUILD_HIERARCHY, {}).get("out", summary.labeled_rows)


def format_summary(summary: RunSummary) -> str:
    """inputs, labelled, errors per stage and kind, segments per level, top classes, wall time and images/s."""
    s = summary
    this_run = labelled_this_run(s)
    rate = this_run / s.seconds if s.seconds > 0 else 0.0
    earlier = f" ({this_run} by this run)" if this_run != s.labeled_rows else ""
    lines = [f"ovlabel: finished in {s.seconds:.1f}s, {rate:.2f} images/s",
             f"  {'inputs':<14}{s.input_rows:>8}",
             f"  {'labelled':<14}{s.labeled_rows:>8}{earlier}",
             f"  {'errors':<14}{s.error_rows:>8}"]
    for stage, n in s.errors_by_stage.items():
        kinds = s.errors_by_kind.get(stage, {})
        lines.append(f"    {stage:<12}{n:>8}  {_counts(sorted(kinds.items(), key=lambda kv: -kv[1]))}")
    lines.append(f"  {'segments':<14}{sum(s.segments_by_level.values()):>8}  {_counts(list(s.segments_by_level.items()))}")
    lines.append(f"  {'top classes':<14}{'':>8}  {_counts(s.top_classes)}")
    lines.append(f"  {'top scenes':<14}{'':>8}  {_counts(s.top_scenes)}")
    lines.append(f"  shards: {s.output}/{LABELS}/  errors: {s.output}/{ERRORS}/  run info: {s.output}/{RUN_INFO}")
    return "\n".join(lines)
