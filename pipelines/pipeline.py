"""Assembling and running the labelling pipeline.

ReadManifest -> ValidateRows -> Deduplicate -> ParseCaptions -> LoadImages -> GenerateMasks -> MatchRegions
-> BuildHierarchy -> WriteShards, with every stage's dead letters flattened into errors/.
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from ovlabel.engine.layout import ERRORS, LABELS, RUN_INFO, SHARD_SUFFIX, shard_prefix
from ovlabel.engine.manifest import base_dir_of, check_exists, read_rows
from ovlabel.engine.preflight import preflight
from ovlabel.pipelines import stages
from ovlabel.pipelines.options import OutputOptions, RunConfig
from ovlabel.pipelines.output import OutputDir, count_by
from ovlabel.pipelines.provenance import provenance_row, run_metadata
from ovlabel.pipelines.stages import FLOWS, STAGES
from ovlabel.schemas import SCHEMAS

log = logging.getLogger(__name__)


def _write(rows: beam.PCollection, staging: str, kind: str, options: OutputOptions, label: str) -> None:
    rows | label >> beam.io.WriteToParquet(
        shard_prefix(staging, kind), schema=SCHEMAS[kind], codec=options.compression, num_shards=options.num_shards,
        file_name_suffix=SHARD_SUFFIX, record_batch_size=options.rows_per_row_group, row_group_buffer_size=1)


def build_pipeline(p: beam.Pipeline, cfg: RunConfig, manifest: str, staging: str, run_id: str,
                   resume_from: Optional[str] = None) -> None:
    """Wire all stages into ``p``; shards go under ``staging``.

    With ``resume_from`` (an output folder), inputs that already have a row there are skipped.
    """
    records, e_rows = stages.read_manifest(p, manifest, base_dir_of(manifest), resume_from)
    records, e_dups = stages.deduplicate(records)
    bundles, e_parse = stages.parse_captions(records, cfg)
    bundles, e_load = stages.load_images(bundles, cfg)
    bundles, e_masks = stages.generate_masks(bundles, cfg)
    bundles, e_match = stages.match_regions(bundles, cfg)
    rows, e_tree = stages.build_hierarchy(bundles, provenance_row(cfg, run_id))
    errors = ((e_rows, e_dups, e_parse, e_load, e_masks, e_match, e_tree)
              | "AllErrors" >> beam.Flatten()
              | "ErrorRows" >> beam.Map(lambda e: e.to_row(run_id)))
    _write(rows, staging, LABELS, cfg.output, "WriteLabelShards")
    _write(errors, staging, ERRORS, cfg.output, "WriteErrorShards")


@dataclass(frozen=True)
class RunSummary:
    """Accounting of a whole output folder (all runs into it, resumed ones included).

    ``stages`` is this run's flow per stage, from Beam counters: ``{stage: {in, out, errors, skipped}}``
    (``skipped``: inputs a resumed run found already done).
    """

    output: str
    input_rows: int
    labeled_rows: int
    error_rows: int
    errors_by_stage: dict[str, int]
    seconds: float
    stages: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def stages_balanced(self) -> bool:
        return all(s["in"] == s["out"] + s["errors"] + s["skipped"] for s in self.stages.values())

    @property
    def balanced(self) -> bool:
        return self.input_rows == self.labeled_rows + self.error_rows and self.stages_balanced


def _metrics(result: Any) -> dict[str, Any]:
    try:
        found = result.metrics().query()
    except Exception:  # noqa: BLE001 - some runners expose no metrics
        return {}
    out: dict[str, Any] = {}
    for counter in found.get("counters", []):
        out[f"{counter.key.step}/{counter.key.metric.name}"] = counter.committed or counter.attempted
    for dist in found.get("distributions", []):
        value = dist.committed or dist.attempted
        if value is not None:
            out[f"{dist.key.step}/{dist.key.metric.name}"] = {"count": value.count, "sum": value.sum,
                                                              "min": value.min, "max": value.max}
    return out


def stage_counts(metrics: dict[str, Any]) -> dict[str, dict[str, int]]:
    """``{stage: {in, out, errors, skipped}}`` from the ``<stage>.<what>`` counters, summed over steps."""
    flows: dict[str, dict[str, int]] = {}
    for key, value in metrics.items():
        name = key.rsplit("/", 1)[-1]
        stage, _, what = name.partition(".")
        if stage in STAGES and what in FLOWS and isinstance(value, int):
            flows.setdefault(stage, dict.fromkeys(FLOWS, 0))[what] += value
    return {stage: flows[stage] for stage in STAGES if stage in flows}


def run(cfg: RunConfig, manifest: str, output: str, beam_args: Sequence[str] = (), overwrite: bool = False,
        resume: bool = False, run_id: Optional[str] = None) -> RunSummary:
    """Run the pipeline to completion, publish its shards and write ``run.json``; returns the accounting."""
    check_exists(manifest)
    preflight(cfg)
    out = OutputDir(output)
    out.prepare(overwrite=overwrite, resume=resume)
    run_id = run_id or time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    options = PipelineOptions(list(beam_args) or ["--runner=DirectRunner"])
    started = time.time()
    p = beam.Pipeline(options=options)
    build_pipeline(p, cfg, manifest, out.staging(run_id), run_id, resume_from=output if resume else None)
    result = p.run()
    result.wait_until_finish()
    out.publish(run_id)
    metrics = _metrics(result)
    summary = replace(_account(out, manifest, time.time() - started), stages=stage_counts(metrics))
    out.write_json(RUN_INFO, run_metadata(cfg, manifest, run_id, summary, metrics, beam_args))
    return summary


def _account(out: OutputDir, manifest: str, seconds: float) -> RunSummary:
    input_rows = sum(1 for _ in read_rows(manifest))
    labeled = len(out.read_column(LABELS, "image_id"))
    stages_of_errors = out.read_column(ERRORS, "stage")
    return RunSummary(out.root, input_rows, labeled, len(stages_of_errors), count_by(stages_of_errors), seconds)


__all__ = ["RunSummary", "STAGES", "build_pipeline", "run", "stage_counts"]
