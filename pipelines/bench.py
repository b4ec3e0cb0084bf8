"""``ovlabel bench``: what a label costs, end to end and per stage, against the naive reference path.

Runs the pipeline ``repeats`` times on the same inputs (each into a fresh folder) and reads its
figures back from run.json: wall seconds, the model compute of the two model stages (RunInference's
own latency metrics) and so the pipeline's overhead, images/s per stage, the share of image-encoder
work spent on padding, and peak resident memory. Then it runs the reference path
(:mod:`ovlabel.engine.benchmark`) on the same inputs, and prints the speed ratio and how many
segments both produced identically. Medians over the repeats.
"""
from __future__ import annotations

import json
import logging
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from ovlabel.engine.benchmark import reference_labels, same_segments
from ovlabel.engine.layout import LABELS, RUN_INFO
from ovlabel.engine.manifest import to_record
from ovlabel.engine.sources import base_dir_of, read_rows as manifest_rows
from ovlabel.engine.errors import InputError
from ovlabel.pipelines.options import RunConfig
from ovlabel.pipelines.output import OutputDir
from ovlabel.pipelines.stages import GENERATE_MASKS, MATCH_REGIONS

log = logging.getLogger(__name__)
MODEL_STAGES = (GENERATE_MASKS, MATCH_REGIONS)


def _metric(metrics: dict[str, Any], stage: str, name: str) -> float:
    """The sum of a stage's metric ``name`` (counter or distribution) over its steps."""
    total = 0.0
    for key, value in metrics.items():
        if key.split("/", 1)[0] == stage and key.rsplit("/", 1)[-1] == name:
            total += value["sum"] if isinstance(value, dict) else value
    return total


def pipeline_figures(info: dict[str, Any], wall: float) -> dict[str, Any]:
    """One run's figures from its run.json (``info``) and its wall seconds."""
    metrics, labelled = info["metrics"], info["counts"]["labeled_rows"]
    compute = {s: _metric(metrics, s, "inference_batch_latency_micro_secs") / 1e6 for s in MODEL_STAGES}
    rows = _metric(metrics, MATCH_REGIONS, f"{MATCH_REGIONS}.encoder_rows")
    padding = _metric(metrics, MATCH_REGIONS, f"{MATCH_REGIONS}.encoder_padding")
    return {"wall_s": wall, "images": labelled, "images_per_s": labelled / wall if wall else 0.0,
            "error_rows": info["counts"].get("error_rows", 0), "errors_by_kind": info["counts"].get("errors_by_kind", {}),
            "model_compute_s": sum(compute.values()),
            "stage_compute_s": compute,
            "stage_images_per_s": {s: labelled / t if t else None for s, t in compute.items()},
            "overhead": wall / sum(compute.values()) if sum(compute.values()) else None,
            "encoder_rows": rows, "padding_fraction": padding / rows if rows else 0.0}


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its finished children (Beam's worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_rss_mib() -> float:
    """The peak resident memory of this process or of its largest finished child (a Beam worker), MiB."""
    return max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024


def _pipeline_once(cfg: RunConfig, manifest: str, folder: Path, beam_args: Sequence[str]) -> tuple[dict[str, Any], str]:
    from ovlabel.pipelines.pipeline import run

    out = folder / f"run-{time.time_ns()}"
    started, cpu = time.perf_counter(), cpu_seconds()
    run(cfg, manifest, str(out), beam_args)
    wall = time.perf_counter() - started
    figures = pipeline_figures(json.loads((out / RUN_INFO).read_text()), wall)
    figures["cpu_use"] = (cpu_seconds() - cpu) / wall if wall else None  # 2.0: two cores busy all the run
    return figures, str(out)


def _labels_of(output: str) -> dict[str, list[dict[str, Any]]]:
    return {r["image_id"]: r["segments"] for r in OutputDir(output).read_columns(LABELS, ["image_id", "segments"])}


def _median(runs: Sequence[dict[str, Any]], key: str) -> Optional[float]:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def bench(cfg: RunConfig, manifest: str, repeats: int = 3, reference: bool = True,
          beam_args: Sequence[str] = ()) -> dict[str, Any]:
    """The figures of ``repeats`` pipeline runs and ``repeats`` reference runs on ``manifest``, medians first.

    The two paths take turns (pipeline, reference, pipeline, ...), so a change in the machine's load weighs on
    both; the speed-up is the median of the pairs' ratios."""
    from ovlabel.engine.memory import keep_freed_memory

    keep_freed_memory(cfg.beam.masks.keep_freed_memory_mib)  # the reference runs in this process, so under it too
    records = _records(cfg, manifest) if reference else []
    runs, refs, ours, theirs = [], [], {}, {}
    with tempfile.TemporaryDirectory(prefix="ovlabel-bench-") as tmp:
        for _ in range(repeats):
            figures, last = _pipeline_once(cfg, manifest, Path(tmp), beam_args)
            runs.append(figures)
            ours = _labels_of(last)
            if reference:
                started = time.perf_counter()
                theirs, times = reference_labels(cfg, records)
                refs.append((time.perf_counter() - started, times.stages))
    report: dict[str, Any] = {"pipeline": {k: _median(runs, k) for k in ("wall_s", "images_per_s", "model_compute_s",
                                                                        "overhead", "padding_fraction", "cpu_use")},
                              "pipeline_runs": runs,
                              "peak_rss_mib": peak_rss_mib()}
    report["failures"] = failures(runs)
    if reference:
        report["reference"] = reference_figures(refs, ours, theirs)
        ratios = [wall / run["wall_s"] for (wall, _), run in zip(refs, runs) if run["wall_s"]]
        report["speedup"] = statistics.median(ratios) if ratios else None
        report["speedups"] = ratios
    return report


def failures(runs: Sequence[dict[str, Any]]) -> list[str]:
    """One line for each pipeline run that wrote error rows: its figures time failures, not labels."""
    return [f"pipeline run {i + 1} labelled {run['images']} image(s) and failed on {run['error_rows']} "
            f"({json.dumps(run['errors_by_kind'], sort_keys=True)}): its figures do not measure labelling; "
            f"run `ovlabel run` with the same config and key=values and read its errors table"
            for i, run in enumerate(runs) if run["error_rows"]]


def _records(cfg: RunConfig, manifest: str) -> list[Any]:
    records = []
    for row in manifest_rows(manifest):
        try:
            records.append(to_record(row, base_dir_of(manifest), cfg.matching.captionless != "vocabulary"))
        except InputError:
            continue
    return records


def reference_figures(refs: Sequence[tuple[float, dict[str, float]]], ours: dict[str, list[dict[str, Any]]],
                      theirs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians of the reference runs ``refs`` (wall seconds, seconds per stage), and how many of their segments
    (``theirs``) equal the pipeline's (``ours``)."""
    walls = [wall for wall, _ in refs]
    same, total = same_segments(ours, theirs)
    return {"wall_s": statistics.median(walls), "walls": walls,
            "stage_s": {k: statistics.median(s[k] for _, s in refs) for k in refs[0][1]},
            "images_per_s": len(theirs) / statistics.median(walls) if walls else 0.0,
            "segments_identical": same, "segments": total}


def format_bench(report: dict[str, Any]) -> str:
    p = report["pipeline"]
    lines = [f"pipeline   {p['wall_s']:.1f} s wall, {p['images_per_s']:.3f} images/s, model compute "
             f"{p['model_compute_s']:.1f} s (wall / compute {p['overhead'] or 0:.2f}), encoder padding "
             f"{100 * p['padding_fraction']:.1f}%, CPU use {100 * (p.get('cpu_use') or 0):.0f}%, "
             f"peak RSS {report['peak_rss_mib']:.0f} MiB"]
    for stage, rate in report["pipeline_runs"][-1]["stage_images_per_s"].items():
        lines.append(f"  {stage:<14} {rate or 0:.3f} images/s of model compute")
    if "reference" in report:
        r = report["reference"]
        lines.append(f"reference  {r['wall_s']:.1f} s wall, {r['images_per_s']:.3f} images/s "
                     f"(" + ", ".join(f"{k} {v:.1f} s" for k, v in r["stage_s"].items()) + ")")
        lines.append(f"speed-up   {report['speedup']:.2f}x (median of the pairs; each pair: "
                     f"{', '.join(f'{x:.2f}' for x in report['speedups'])}); segments identical: {r['segments_identical']} of "
                     f"{r['segments']} ({100 * r['segments_identical'] / max(r['segments'], 1):.1f}%)")
    lines.extend(f"FAILED     {line}" for line in report.get("failures", ()))
    return "\n".join(lines)
