"""Assembling and running the labelling pipeline.

ReadManifest -> ValidateRows -> Deduplicate -> ParseCaptions -> LoadImages -> GenerateMasks -> MatchRegions
-> BuildHierarchy -> WriteShards, with every stage's dead letters flattened into errors/. Shards are published
as the run goes; a resumed run skips the manifest rows its folder already has a row for.
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import replace
from typing import Any, Optional, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from ovlabel.engine.faults import fault_point
from ovlabel.engine.layout import CLASSES, ERRORS, LABELS, RUN_INFO, STAGING, segment_class_counts
from ovlabel.engine.known_labels import known_labels
from ovlabel.engine.ontology import DROP_REASONS, Vocabulary, class_table, load_vocabulary
from ovlabel.engine.sources import absolute_location, base_dir_of
from ovlabel.engine.preflight import preflight
from ovlabel.pipelines import reruns, stages
from ovlabel.pipelines.accounting import RunSummary, account, drop_duplicate_rows
from ovlabel.pipelines.cluster import check_job_endpoint
from ovlabel.pipelines.lock import OutputLock
from ovlabel.pipelines.options import RunConfig, deployment, runner_of
from ovlabel.pipelines.output import OutputDir
from ovlabel.pipelines.progress import Progress, runs_in_process, tracking
from ovlabel.pipelines.provenance import config_sha256, labelling_config, provenance_row, run_metadata
from ovlabel.pipelines.stages import FLOWS, STAGES, DoneRows, ShardTarget
from ovlabel.schemas import SCHEMA_VERSION

log = logging.getLogger(__name__)


def build_pipeline(p: beam.Pipeline, cfg: RunConfig, manifest: str, target: ShardTarget,
                   done: Optional[DoneRows] = None) -> None:
    """Wire all stages into ``p`` for ``manifest`` (a manifest, a folder or a glob of images; the first
    ``input.limit`` rows); shards are published to ``target`` as the run goes.

    With ``done`` (a resumed run), the manifest rows that already have a row there are skipped. The label
    vocabulary (``vocabulary.file``) is read here, on the driver, and travels with the stages that use it.
    """
    vocabulary = configured_vocabulary(cfg)
    captions_required = cfg.matching.captionless != "vocabulary"
    records, e_rows = stages.read_manifest(p, manifest, base_dir_of(manifest), done, captions_required,
                                           cfg.input.limit)
    records, e_dups = stages.deduplicate(records, done)
    bundles, e_parse = stages.parse_captions(records, cfg)
    bundles, e_load = stages.load_images(bundles, cfg)
    bundles, e_masks = stages.generate_masks(bundles, cfg)
    bundles, e_match = stages.match_regions(bundles, cfg, vocabulary)
    rows, e_tree = stages.build_hierarchy(bundles, provenance_row(cfg, target.run_id), cfg, vocabulary)
    run_id = target.run_id
    errors = ((e_rows, e_dups, e_parse, e_load, e_masks, e_match, e_tree)
              | "AllErrors" >> beam.Flatten()
              | "ErrorRows" >> beam.Map(lambda e: e.to_row(run_id)))
    stages.write_shards(rows, LABELS, target)
    stages.write_shards(errors, ERRORS, target)


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


def unknown_labels(cfg: RunConfig, metrics: dict[str, Any]) -> dict[str, Any]:
    """The summary's ``unknown_labels`` and ``warnings``: this run's caption labels outside ``clip.known_labels``,
    warned about once, by whoever shows the summary (the CLI's closing lines; run.json records it)."""
    known = known_labels(cfg.clip)
    total, counts = stages.unknown_label_counts(metrics)
    if known is None or not total:
        return {}
    return {"unknown_labels": {"known": len(known.labels), "source": known.source, "rows": total, "labels": counts},
            "warnings": (known.warning(counts, total),)}
def configured_vocabulary(cfg: RunConfig) -> Optional[Vocabulary]:
    """The label vocabulary ``vocabulary.file`` names (None: a segment's class is its label)."""
    return None if cfg.vocabulary.file is None else load_vocabulary(cfg.vocabulary.file)


def write_classes(out: OutputDir, cfg: RunConfig, *under: str) -> None:
    """``classes.json``: the classes of every labels shard of the output at ``under`` (all its runs)."""
    counts = segment_class_counts(out.fs, out.shard_files(LABELS, *under))
    out.write_json(CLASSES, class_table(configured_vocabulary(cfg), counts, SCHEMA_VERSION), *under)


def vocabulary_summary(cfg: RunConfig, metrics: dict[str, Any]) -> dict[str, Any]:
    """run.json's ``vocabulary``: which one (name, sha256), the unmapped policy, and the segments this run left out
    per reason (BuildHierarchy's ``vocabulary.dropped.<reason>`` counters; a resumed run counts its own rows)."""
    dropped = dict.fromkeys(DROP_REASONS, 0)
    for key, value in metrics.items():
        name = key.rsplit("/", 1)[-1]
        reason = name[len(stages.DROPPED):] if name.startswith(stages.DROPPED) else ""
        if reason in dropped and isinstance(value, int):
            dropped[reason] += value
    vocabulary = configured_vocabulary(cfg)
    ref = vocabulary.ref if vocabulary is not None else {"name": None, "sha256": None}
    return {**ref, "unmapped": cfg.vocabulary.unmapped, "dropped": dropped}


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def _rows_to_do(manifest: str, done: Optional[DoneRows], limit: Optional[int] = None) -> int:
    return len(set(reruns.manifest_keys(manifest, limit).items()) - DoneRows.keys_of(done))


def run(cfg: RunConfig, manifest: str, output: str, beam_args: Sequence[str] = (), overwrite: bool = False,
        resume: bool = False, run_id: Optional[str] = None, force_resume: bool = False,
        checked: bool = False, progress: Optional[Progress] = None) -> RunSummary:
    """Run the pipeline to completion and write ``run.json``; returns the accounting.

    Shards are published as the run goes; with ``overwrite`` the new output replaces the old one only when
    complete (:mod:`ovlabel.pipelines.reruns`). Everything checkable is checked before the folder is touched
    (:func:`ovlabel.engine.preflight.preflight`; ``checked``: the caller has just run it, as the CLI does).
    ``progress`` is ticked as rows are done when the stages run in this process (:mod:`ovlabel.pipelines.progress`).
    """
    manifest = absolute_location(manifest)  # what workers read, whatever their working folder
    check_job_endpoint(beam_args)
    out = OutputDir(output)
    if not checked:
        preflight(cfg, manifest, out.root)
    cfg, args = deployment(cfg, beam_args)
    options = PipelineOptions(args)
    run_id = run_id or new_run_id()
    mode = "overwrite" if overwrite else "resume" if resume else "fresh"
    with OutputLock(out, run_id, cfg.output.lock_stale_after_s):
        plan = reruns.prepare(out, mode, labelling_config(cfg), config_sha256(cfg), manifest, run_id, force_resume,
                               cfg.input.limit)
        log.info("run %s: %s -> %s (%s, %s)", run_id, manifest, output, mode, runner_of(args))
        started = time.time()
        p = beam.Pipeline(options=options)
        done = DoneRows(output, plan.done_files) if plan.done_files else None
        build_pipeline(p, cfg, manifest, ShardTarget(output, plan.under, run_id, cfg.output.policy), done)
        with tracking(progress, run_id, runs_in_process(options), lambda: _rows_to_do(manifest, done, cfg.input.limit)):
            result = p.run()
            result.wait_until_finish()
        drop_duplicate_rows(out, *plan.under)
        out.remove_run(STAGING, run_id)
        metrics = _metrics(result)
        summary = replace(account(out, manifest, time.time() - started, *plan.under, limit=cfg.input.limit),
                          stages=stage_counts(metrics), **unknown_labels(cfg, metrics))
        write_classes(out, cfg, *plan.under)
        runs = (out.marker(*plan.under) or {}).get("runs", [])
        fault_point("before-run-info")
        info = run_metadata(cfg, manifest, run_id, summary, metrics, args, runs, vocabulary_summary(cfg, metrics))
        out.write_json(RUN_INFO, info, *plan.under)
        if plan.under:
            reruns.swap_in(out, run_id)
    return summary


__all__ = ["RunSummary", "STAGES", "build_pipeline", "run", "stage_counts"]
