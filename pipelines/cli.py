"""The ``ovlabel`` command line.

``ovlabel run --config X --input MANIFEST|FOLDER|GLOB --output DIR [--limit N] [key=value ...] [--beam-option ...]``
(``--cluster-local``: on the portable runner, through a job service and worker pool started for the run)

``--config`` takes a YAML path or a shipped config's name (``demo``, ``tiny``, ``default``, ``bench``);
``ovlabel config show [--config X] [key=value ...]`` prints the resolved config, each value with its origin.

Arguments of the form ``key=value`` override config keys; anything starting with ``--`` that
ovlabel does not know passes through to Beam (``--runner=PortableRunner``, ``--job_endpoint=...``).
``ovlabel eval``, ``ovlabel export coco RUN OUT.json`` and ``ovlabel preview RUN --out DIR`` read a run's labels
back (:mod:`ovlabel.engine.evaluation`, :mod:`ovlabel.engine.coco_export`, :mod:`ovlabel.engine.gallery`).
Expected failures (bad config, missing manifest, non-empty output) exit 2 with one line; Ctrl-C
(SIGINT) exits 130 with one line.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import warnings
import threading
from types import FrameType
from typing import Any, Iterator, Optional, Sequence

from ovlabel.engine import installed_version
from ovlabel.engine.errors import OvlabelError
from ovlabel.engine.layout import RUN_INFO
from ovlabel.pipelines.options import load_run_config
from ovlabel.pipelines.progress import Progress, ProgressReporter

log = logging.getLogger("ovlabel")
# other libraries' loggers, quieted by name (their levels may have been set lower than the root logger's)
QUIET_LOGGERS = ("apache_beam", "absl", "grpc", "huggingface_hub", "urllib3", "fsspec", "filelock")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ovlabel", description="Open-vocabulary segmentation pseudo-labels from captions.")
    parser.add_argument("--version", action="version", version=f"ovlabel {installed_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="label a manifest, a folder or a glob of images")
    run.add_argument("--config", required=True, help="a YAML file, or a shipped config's name: demo, tiny, default")
    run.add_argument("--input", help="a manifest (.jsonl, .csv, .parquet), a folder of images or a quoted glob "
                     "('photos/*.jpg'); captions from photo.txt / photo.json next to each image, or none "
                     "(default: input.manifest from the config)")
    run.add_argument("--limit", type=int, help="only the first N inputs (input.limit=N)")
    run.add_argument("--output", required=True, help="output folder (local path or fsspec URI)")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--overwrite", action="store_true", help="replace an existing output")
    mode.add_argument("--resume", action="store_true",
                      help="finish the output: process only the manifest rows with no labels or errors row yet")
    run.add_argument("--force-resume", action="store_true",
                     help="with --resume: go on even though the config differs (recorded in run.json and provenance)")
    run.add_argument("--cluster-local", action="store_true",
                     help="run on the portable runner through a job service and worker pool started here for the "
                          "run (and stopped after it), as a cluster would run it")
    run.add_argument("-v", "--verbose", action="store_true")
    bench = sub.add_parser("bench", help="images/s end to end and per stage, against the naive reference path")
    bench.add_argument("--config", default=None, help="YAML config (default: configs/bench.yaml, real "
                       "architectures with random weights)")
    bench.add_argument("--input", help="a manifest of your images (default: generated demo scenes)")
    bench.add_argument("--images", type=int, default=2, help="generated scenes (default 2)")
    bench.add_argument("--size", type=int, default=512, help="side of the generated scenes in pixels (default 512)")
    bench.add_argument("--repeats", type=int, default=3, help="runs of each path; medians are printed (default 3)")
    bench.add_argument("--no-reference", action="store_true", help="skip the naive reference path")
    bench.add_argument("--json", dest="json_out", help="also write every figure as JSON here")
    bench.add_argument("-v", "--verbose", action="store_true")
    ev = sub.add_parser("eval", help="score pseudo-label shards against COCO-format ground truth")
    ev.add_argument("--labels", required=True, help="a run's output folder (or its labels/ folder)")
    ev.add_argument("--gt", required=True, help="COCO instances JSON (optional parent_id/level per annotation, scene per image)")
    ev.add_argument("--iou", type=float, default=0.5, help="mask IoU for a true positive (default 0.5)")
    ev.add_argument("--vocabulary", help="label vocabulary mapping labels to GT categories: a shipped name (coco, "
                    "lvis, demo) or a YAML file; 'none' compares labels as written (default: the run's own, from "
                    "its classes.json)")
    ev.add_argument("--json", dest="json_out", help="also write the report as JSON here")
    ev.add_argument("--only-labelled", action="store_true",
                    help="score only the GT images the run labelled (a run over a subset of them)")
    ev.add_argument("-v", "--verbose", action="store_true")
    _add_reading_commands(sub)
    _add_config_command(sub)
    return parser


def _add_config_command(sub: Any) -> None:
    """``ovlabel config show``: the resolved config, each value with its origin."""
    show = sub.add_parser("config", help="config tools").add_subparsers(dest="action", required=True).add_parser(
        "show", help="the resolved config, each value with where it came from (default, file, cli)")
    show.add_argument("--config", default=None, help="a YAML file or a shipped config's name (default: none)")
    show.add_argument("-v", "--verbose", action="store_true")


def _add_reading_commands(sub: Any) -> None:
    """``ovlabel export`` and ``ovlabel preview``: what reads a run's labels back."""
    export = sub.add_parser("export", help="write a run's labels in another format")
    export.add_argument("format", choices=["coco"], help="coco: one COCO instances JSON (RLE masks)")
    export.add_argument("labels", metavar="RUN", help="a run's output folder (or its labels/ folder, or one shard)")
    export.add_argument("out", metavar="OUT.json", help="the file to write (local path or fsspec URI)")
    export.add_argument("--levels", default="object,part", help="levels to export (default object,part; or scene)")
    export.add_argument("--no-image-check", dest="check_images", action="store_false",
                        help="export even when image files the labels point at are gone")
    export.add_argument("-v", "--verbose", action="store_true")
    preview = sub.add_parser("preview", help="PNG overlays and an HTML gallery of a run's labels")
    preview.add_argument("labels", metavar="RUN", help="a run's output folder (or its labels/ folder, or one shard)")
    preview.add_argument("--out", required=True, help="folder for index.html and overlays/ (local)")
    preview.add_argument("--limit", type=int, default=None, help="only the first N images (default: all)")
    preview.add_argument("-v", "--verbose", action="store_true")


def split_extra(extra: Sequence[str]) -> tuple[list[str], list[str]]:
    """(config overrides 'key=value', Beam options '--x')."""
    overrides, beam_args = [], []
    for arg in extra:
        (beam_args if arg.startswith("-") else overrides).append(arg)
    return overrides, beam_args


def _cmd_run(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from ovlabel.engine.preflight import preflight
    from ovlabel.pipelines.inputs import resolve_input
    from ovlabel.pipelines.output import OutputDir
    from ovlabel.pipelines.report import format_summary

    overrides, beam_args = split_extra(extra)
    _refuse_stray_paths(overrides)
    if args.limit is not None:
        overrides.append(f"input.limit={args.limit}")
    cfg = load_run_config(args.config, overrides)
    manifest = resolve_input(cfg, args.input)
    if args.force_resume and not args.resume:
        raise OvlabelError("--force-resume goes with --resume")
    _check_cluster_args(args.cluster_local, beam_args)
    preflight(cfg, manifest, OutputDir(args.output).root)  # before Beam is even imported: a failure takes seconds
    from ovlabel.pipelines.pipeline import run

    progress = Progress()
    with _cluster(args.cluster_local, beam_args) as beam_args, ProgressReporter(progress, sys.stderr):
        summary = run(cfg, manifest, args.output, beam_args, overwrite=args.overwrite, resume=args.resume,
                      force_resume=args.force_resume, checked=True, progress=progress)
    sys.stdout.write(format_summary(summary) + "\n")
    for warning in summary.warnings:
        sys.stderr.write(f"ovlabel: warning: {warning}\n")
    if not summary.balanced:
        sys.stderr.write(f"ovlabel: accounting mismatch: {summary.missing_rows} manifest rows without a row, "
                         f"{summary.duplicate_rows} rows too many (see {RUN_INFO})\n")
        return 1
    return 0


def _refuse_stray_paths(overrides: Sequence[str]) -> None:
    """An argument that is no key=value but a file: the shell expanded an unquoted glob into many paths."""
    stray = [arg for arg in overrides if "=" not in arg and os.path.exists(arg)]
    if stray:
        raise OvlabelError(f"unexpected path arguments ({', '.join(stray[:3])}{', ...' if len(stray) > 3 else ''}): "
                           f"did the shell expand a glob? Quote it: --input 'photos/*.jpg'")


def _cmd_config(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from ovlabel.engine.origins import format_resolved, resolve_config
    from ovlabel.pipelines.options import RunConfig

    overrides, beam_args = split_extra(extra)
    if beam_args:
        raise OvlabelError(f"unknown arguments for config show: {' '.join(beam_args)}")
    sys.stdout.write(format_resolved(resolve_config(args.config, overrides, RunConfig)) + "\n")
    return 0


def _check_cluster_args(local: bool, beam_args: Sequence[str]) -> None:
    """With ``--cluster-local``, refuse the Beam options it sets itself (before anything is started or checked)."""
    if not local:
        return
    from ovlabel.pipelines.cluster import CLUSTER_OPTIONS, given_options

    clash = given_options(list(beam_args), CLUSTER_OPTIONS)
    if clash:
        raise OvlabelError(f"--cluster-local sets {', '.join(CLUSTER_OPTIONS)} itself; drop {', '.join(clash)}")


@contextlib.contextmanager
def _cluster(local: bool, beam_args: list[str]) -> Iterator[list[str]]:
    """``beam_args``, or with ``--cluster-local`` the options of a local job service and worker pool (stopped after);
    :func:`_check_cluster_args` has refused clashing options before."""
    if not local:
        yield beam_args
        return
    from ovlabel.pipelines.cluster import local_cluster

    with local_cluster() as cluster:
        yield [*beam_args, *cluster.beam_args]


def _cmd_eval(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from ovlabel.engine.evaluation import eval_vocabulary, evaluate, format_report

    if extra:
        raise OvlabelError(f"unknown arguments for eval: {' '.join(extra)}")
    vocabulary = eval_vocabulary(args.vocabulary, args.labels)
    report = evaluate(args.labels, args.gt, iou_threshold=args.iou, vocabulary=vocabulary,
                      only_labelled=args.only_labelled)
    sys.stdout.write(format_report(report) + "\n")
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(report, fh, indent=2, sort_keys=True)
    return 0


def _cmd_bench(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from ovlabel.engine.config import DemoConfig
    from ovlabel.engine.demo.world import ensure_demo_manifest
    from ovlabel.engine.shipped import config_path
    from ovlabel.pipelines.bench import bench, format_bench

    overrides, beam_args = split_extra(extra)
    cfg = load_run_config(args.config or config_path("bench.yaml"), overrides)
    manifest = args.input or str(ensure_demo_manifest(DemoConfig(num_images=args.images, seed=20_000,
                                                                 image_size=args.size)))
    report = bench(cfg, manifest, args.repeats, not args.no_reference, beam_args)
    sys.stdout.write(format_bench(report) + "\n")
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(report, fh, indent=2, sort_keys=True, default=str)
    return 1 if report.get("failures") else 0


def _cmd_export(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from ovlabel.engine.coco_export import export_coco
    from ovlabel.engine.labelset import level_list

    if extra:
        raise OvlabelError(f"unknown arguments for export: {' '.join(extra)}")
    done = export_coco(args.labels, args.out, level_list(args.levels), require_images=args.check_images)
    sys.stdout.write(f"ovlabel: {done['images']} images, {done['annotations']} annotations, "
                     f"{done['categories']} categories -> {done['out']}\n")
    return 0


def _cmd_preview(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from ovlabel.engine.gallery import write_preview

    if extra:
        raise OvlabelError(f"unknown arguments for preview: {' '.join(extra)}")
    done = write_preview(args.labels, args.out, args.limit)
    sys.stdout.write(f"ovlabel: {done['images']} images, {done['classes']} classes -> {done['index']}\n")
    return 0


COMMANDS = {"run": _cmd_run, "eval": _cmd_eval, "bench": _cmd_bench, "export": _cmd_export, "preview": _cmd_preview,
            "config": _cmd_config}


class _Interrupts:
    """While a command runs, SIGINT is noted and raised as KeyboardInterrupt. Beam hands back an interrupt that
    hit a bundle as another exception (the bundle failed: RuntimeError), so :func:`main` goes by ``seen``.

    Installed only over Python's own handler, in the main thread: an inherited SIG_IGN stays ignored.
    """

    def __init__(self) -> None:
        self.seen = False
        self._previous: Any = None

    def __enter__(self) -> "_Interrupts":
        ours = threading.current_thread() is threading.main_thread()
        if ours and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def _on_sigint(self, signum: int, frame: Optional[FrameType]) -> None:
        self.seen = True
        logging.disable(logging.CRITICAL)  # Beam's reports of the bundle it was running: noise now
        raise KeyboardInterrupt

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        if self.seen:
            logging.disable(logging.NOTSET)


def _interrupted(args: argparse.Namespace) -> int:
    hint = f"; rerun with --resume to finish {args.output}" if args.command == "run" else ""
    sys.stderr.write(f"ovlabel: interrupted{hint}\n")
    return 130


def _failed(args: argparse.Namespace, exc: BaseException) -> int:
    if isinstance(exc, OvlabelError):
        sys.stderr.write(f"ovlabel: error: {exc}\n")
        return 2
    if args.verbose or not isinstance(exc, Exception):
        raise exc
    # a crashed pipeline: one line unless --verbose
    sys.stderr.write(f"ovlabel: error: the pipeline failed: {_first_line(exc)} (rerun with -v for the traceback)\n")
    return 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    args, extra = _parser().parse_known_args(argv)
    configure_logging(args.verbose)
    # Beam's batch-size estimator fits a line to too few points at first and numpy warns on every batch
    warnings.filterwarnings("ignore", message="Polyfit may be poorly conditioned")
    with _Interrupts() as interrupts:
        try:
            return COMMANDS[args.command](args, extra)
        except BaseException as exc:  # noqa: BLE001 - sorted by _failed; an interrupt is one line, exit 130
            if isinstance(exc, KeyboardInterrupt) or interrupts.seen:
                return _interrupted(args)
            return _failed(args, exc)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to whatever ``sys.stderr`` is when a record comes (a test may have swapped it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(verbose: bool) -> None:
    """ovlabel's loggers at INFO (DEBUG with -v) on stderr; everyone else's, Beam's and the root logger's (some
    libraries log through it) only from ERROR (WARNING with -v)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Stderr)]:
        root.removeHandler(handler)
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    quiet = logging.WARNING if verbose else logging.ERROR
    for name in ("", *QUIET_LOGGERS):
        logging.getLogger(name).setLevel(quiet)
    logging.getLogger("ovlabel").setLevel(logging.DEBUG if verbose else logging.INFO)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    lines = [line for line in text.splitlines() if any(c.isalnum() for c in line)]  # not a lone '>' (gRPC's)
    return f"{type(exc).__name__}: {lines[-1] if lines else text}"[:500]


if __name__ == "__main__":
    sys.exit(main())
