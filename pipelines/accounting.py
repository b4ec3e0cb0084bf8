"""Accounting of an output folder: every manifest row ends as exactly one labels or errors row."""
from __future__ import annotations

import logging
import posixpath
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

from ovlabel.engine import layout
from ovlabel.engine.layout import ERRORS, KINDS, LABELS, STAGING
from ovlabel.pipelines.output import OutputDir, RowKey, count_by
from ovlabel.pipelines.reruns import manifest_keys
from ovlabel.schemas import LEVELS, SCHEMA_VERSION, SCHEMAS, VERSION_KEY

log = logging.getLogger(__name__)
TOP = 10  # classes RunSummary lists
# what the counts of segments read: a segment's class is its class_name where the labels have one, else its label
SEGMENT_FIELDS = ("level", "label", "class_name")


@dataclass(frozen=True)
class RunSummary:
    """Accounting of a whole output folder (all runs into it, resumed ones included).

    ``missing_rows``: manifest rows with no row in the folder; ``duplicate_rows``: rows beyond the first for one
    manifest row, or for a row the manifest does not have. ``stages`` is this run's flow per stage, from Beam
    counters: ``{stage: {in, out, errors, skipped}}`` (``skipped``: inputs a resumed run found already done).
    What the rows hold: ``errors_by_kind`` ``{stage: {error_type: rows}}``, ``segments_by_level``
    ``{level: segments}``, and the :data:`TOP` most frequent classes of objects and parts (``top_classes``) and of
    scenes (``top_scenes``) as ``[(class, segments)]``, most frequent first.
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
    # this run's caption labels outside clip.known_labels: {known, source, rows, labels: {label: rows}}; {} if none
    unknown_labels: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # said once at the end of the run (the CLI prints them)
    errors_by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    segments_by_level: dict[str, int] = field(default_factory=dict)
    top_classes: list[tuple[str, int]] = field(default_factory=list)
    top_scenes: list[tuple[str, int]] = field(default_factory=list)

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
    version = (table.schema.metadata or {}).get(VERSION_KEY, b"").decode()
    schema = SCHEMAS[kind] if version == SCHEMA_VERSION else table.schema  # an older shard keeps its own schema
    scratch = out.fs_path(STAGING, posixpath.basename(path))
    out.fs.makedirs(posixpath.dirname(scratch), exist_ok=True)
    with out.fs.open(scratch, "wb") as fh:
        pq.write_table(table.cast(schema), fh)
    out.fs.mv(scratch, path)


def account(out: OutputDir, manifest: str, seconds: float, *under: str, limit: Optional[int] = None) -> RunSummary:
    """Count the rows of the output at ``under`` against the input's rows (the first ``limit``)."""
    wanted = set(manifest_keys(manifest, limit).items())
    found = Counter(out.row_keys(*under))
    missing = len(wanted - set(found))
    duplicates = sum(n - 1 for n in found.values()) + sum(n for key, n in found.items() if key not in wanted)
    labeled = len(out.read_column(LABELS, "image_id", *under))
    errors = out.read_columns(ERRORS, ["stage", "error_type"], *under)
    return RunSummary(out.root, len(wanted), labeled, len(errors), count_by(e["stage"] for e in errors), seconds,
                      missing_rows=missing, duplicate_rows=duplicates, **contents(out, errors, *under))


def contents(out: OutputDir, errors: list[dict[str, Any]], *under: str) -> dict[str, Any]:
    """What the rows hold (:class:`RunSummary`'s ``errors_by_kind`` .. ``top_scenes``): ``errors`` are the errors
    rows' stage and error_type; of the labels, only the segments' level and class are read."""
    by_kind: dict[str, Counter[str]] = {}
    for error in errors:
        by_kind.setdefault(error["stage"], Counter())[error["error_type"]] += 1
    levels: Counter[str] = Counter()
    classes: dict[bool, Counter[str]] = {True: Counter(), False: Counter()}  # scene or not
    for segments in out.segment_fields(LABELS, SEGMENT_FIELDS, *under):
        for segment in segments:
            levels[segment["level"]] += 1
            classes[segment["level"] == "scene"][segment.get("class_name") or segment["label"]] += 1
    return {"errors_by_kind": {stage: dict(sorted(kinds.items())) for stage, kinds in sorted(by_kind.items())},
            "segments_by_level": {level: levels[level] for level in LEVELS if levels[level]},
            "top_classes": classes[False].most_common(TOP), "top_scenes": classes[True].most_common(TOP)}
