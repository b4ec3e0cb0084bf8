"""The ``ovlabel`` command line.

``ovlabel run --config X --input MANIFEST|FOLDER|GLOB --output DIR [--limit N] [key=value ...] [--beam-option ...]``

``--config`` takes a YAML path or a shipped config's name (``demo``, ``tiny``, ``default``, ``bench``);
``ovlabel config show [--config X] [key=value ...]`` prints the resolved config, each value with its origin.

Arguments of the form ``key=value`` override config keys; anything starting with ``--`` that
ovlabel does not know passes through to Beam (``--runner=PortableRunner``, ``--job_endpoint=...``).
Expected failures (bad config, missing manifest, non-empty output) exit 2 with one line; Ctrl-C
(SIGINT) exits 130 with one line.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import warnings
import threading
from types import FrameType
from typing import Any, Optional, Sequence

from ovlabel.engine import installed_version
from ovlabel.engine.errors import OvlabelError
from ovlabel.engine.layout import ERRORS, LABELS, RUN_INFO
from ovlabel.pipelines.options import load_run_config

log = logging.getLogger("ovlabel")


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
    ev.add_argument("--json", dest="json_out", help="also write the report as JSON here")
    ev.add_argument("-v", "--verbose", action="store_true")
    show = sub.add_parser("config", help="config tools").add_subparsers(dest="action", required=True).add_parser(
        "show", help="the resolved config, each value with where it came from (default, file, cli)")
    show.add_argument("--config", default=None, help="a YAML file or a shipped config's name (default: none)")
    show.add_argument("-v", "--verbose", action="store_true")
    return parser


def split_extra(extra: Sequence[str]) -> tuple[list[str], list[str]]:
    """(config overrides 'key=value', Beam options '--x')."""
    overrides, beam_args = [], []
    for arg in extra:
        (beam_args if arg.startswith("-") else overrides).append(arg)
    return overrides, beam_args


def _cmd_run(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from ovlabel.pipelines.inputs import resolve_input
    from ovlabel.pipelines.pipeline import run

    overrides, beam_args = split_extra(extra)
    _refuse_stray_paths(overrides)
    if args.limit is not None:
        overrides.append(f"input.limit={args.limit}")
    cfg = load_run_config(args.config, overrides)
    manifest = resolve_input(cfg, args.input)
    if args.force_resume and not args.resume:
        raise OvlabelError("--force-resume goes with --resume")
    summary = run(cfg, manifest, args.output, beam_args, overwrite=args.overwrite, resume=args.resume,
                  force_resume=args.force_resume)
    log.info("labelled %d of %d inputs, %d error rows %s", summary.labeled_rows, summary.input_rows,
             summary.error_rows, summary.errors_by_stage or "")
    sys.stdout.write(f"ovlabel: {summary.labeled_rows} labelled, {summary.error_rows} errors, "
                     f"{summary.input_rows} inputs in {summary.seconds:.1f}s\n"
                     f"  shards: {summary.output}/{LABELS}/  errors: {summary.output}/{ERRORS}/  "
                     f"run info: {summary.output}/{RUN_INFO}\n")
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


def _cmd_eval(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from ovlabel.engine.demo.world import DEMO_SYNONYMS
    from ovlabel.engine.evaluation import COMMON_SYNONYMS, evaluate, format_report

    if extra:
        raise OvlabelError(f"unknown arguments for eval: {' '.join(extra)}")
    report = evaluate(args.labels, args.gt, iou_threshold=args.iou, synonyms={**COMMON_SYNONYMS, **DEMO_SYNONYMS})
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
    return 0


COMMANDS = {"run": _cmd_run, "eval": _cmd_eval, "bench": _cmd_bench, "config": _cmd_config}


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
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Beam's batch-size estimator fits a line to too few points at first and numpy warns on every batch
    warnings.filterwarnings("ignore", message="Polyfit may be poorly conditioned")
    for noisy in ("apache_beam", "root", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING if args.verbose else logging.ERROR)
    with _Interrupts() as interrupts:
        try:
            return COMMANDS[args.command](args, extra)
        except BaseException as exc:  # noqa: BLE001 - sorted by _failed; an interrupt is one line, exit 130
            if isinstance(exc, KeyboardInterrupt) or interrupts.seen:
                return _interrupted(args)
            return _failed(args, exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    lines = [line for line in text.splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[-1] if lines else text}"[:500]


if __name__ == "__main__":
    sys.exit(main())
