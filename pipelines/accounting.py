"""Accounting of an output folder: every manifest row ends as exactly one labels or errors row."""
from __future__ import annotations

import logging
import posixpath
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from ovlabel.engine import layout
from ovlabel.engine.layout import ERRORS, KINDS, LABELS, STAGING
from ovlabel.pipelines.output import OutputDir, RowKey, count_by
from ovlabel.pipelines.reruns import manifest_keys
from ovlabel.schemas import SCHEMAS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSummary:
    """Accounting of a whole output folder (all runs into it, resumed ones included).

    ``missing_rows``: manifest rows with no row in the folder; ``duplicate_rows``: rows beyond the first for one
    manifest row, or for a row the manifest does not have. ``stages`` is this run's flow per stage, from Beam
    counters: ``{stage: {in, out, errors, skipped}}`` (``skipped``: inputs a resumed run found already done).
    """

    output: str
    input_rows: int
    labeled_rows: int
    error_rows: int
    errors_by_stage: dict[str, int]
    seconds: float
    stages: dict[str, dict[str, int]] = field(default_factory=dict)
    missing_rows: int = 0
    duplicate_rows: int = 0

    @property
    def stages_balanced(self) -> bool:
        return all(s["in"] == s["out"] + s["errors"] + s["skipped"] for s in self.stages.values())

    @property
    def balanced(self) -> bool:
        return (self.input_rows == self.labeled_rows + self.error_rows and self.stages_balanced
                and self.missing_rows == 0 and self.duplicate_rows == 0)


def drop_duplicate_rows(out: OutputDir, *under: str) -> int:
    """Drop the rows published more than once for one manifest row (a retried bundle publishes again what its
    first attempt had published), keeping the first (labels before errors, shards in name order); each shard
    that held one is rewritten whole and renamed over itself. Returns how many rows were dropped."""
    seen: set[RowKey] = set()
    dropped = 0
    for kind in KINDS:
        for path in out.shard_files(kind, *under):
            keys = [(r["row_index"], r["row_hash"]) for r in layout.read_rows(out.fs, [path], ["row_index", "row_hash"])]
            keep = [key not in seen and not seen.add(key) for key in keys]  # type: ignore[func-returns-value]
            if not all(keep):
                _rewrite(out, kind, path, keep)
                dropped += keep.count(False)
    if dropped:
        log.warning("dropped %d rows published twice (a retried bundle) from %s", dropped, out.root)
    return dropped


def _rewrite(out: OutputDir, kind: str, path: str, keep: list[bool]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with out.fs.open(path, "rb") as fh:
        table = pq.read_table(fh).filter(pa.array(keep))
    scratch = out.fs_path(STAGING, posixpath.basename(path))
    out.fs.makedirs(posixpath.dirname(scratch), exist_ok=True)
    with out.fs.open(scratch, "wb") as fh:
        pq.write_table(table.cast(SCHEMAS[kind]), fh)
    out.fs.mv(scratch, path)


def account(out: OutputDir, manifest: str, seconds: float, *under: str, limit: Optional[int] = None) -> RunSummary:
    """Count the rows of the output at ``under`` against the input's rows (the first ``limit``)."""
    wanted = set(manifest_keys(manifest, limit).items())
    found = Counter(out.row_keys(*under))
    missing = len(wanted - set(found))
    duplicates = sum(n - 1 for n in found.values()) + sum(n for key, n in found.items() if key not in wanted)
    labeled = len(out.read_column(LABELS, "image_id", *under))
    stages_of_errors = out.read_column(ERRORS, "stage", *under)
    return RunSummary(out.root, len(wanted), labeled, len(stages_of_errors), count_by(stages_of_errors), seconds,
                      missing_rows=missing, duplicate_rows=duplicates)
