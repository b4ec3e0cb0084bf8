"""What a run does to an existing output folder: refuse it, resume it, or replace it without loss.

- A fresh run needs an empty (or absent) folder and writes the marker ``.ovlabel.json`` first: the
  config it labels with (and its hash) and the runs made into the folder. A folder holding only what a
  failed or killed run left before publishing a row (its marker, empty shard folders, ``_staging/``) is
  cleaned and started afresh; one holding an unfinished run's rows is refused with a pointer to ``--resume``.
- ``--resume`` skips every manifest row the folder already has a row for, by (row_index, row_hash);
  it is refused when the config differs from the marker's (the first differing key is named;
  ``--force-resume`` mixes them, recorded in run.json and each row's provenance) or when a manifest
  row the folder accounts for has changed.
- ``--overwrite`` builds the new output in ``_next/<run_id>/`` and swaps it in only when it is
  complete (a journal, ``_swap.json``, lets a killed swap be finished by the next run); only folders
  with ovlabel's marker are ever replaced, and only ovlabel's own entries in them.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Optional

from ovlabel.engine.errors import OutputError
from ovlabel.engine.faults import fault_point
from ovlabel.engine.origins import leaves
from ovlabel.engine.layout import CLASSES, KINDS, LOCK, MARKER, NEXT, PROBE_PREFIX, REPLACED, RUN_INFO, STAGING, SWAP
from ovlabel.engine.sources import input_keys
from ovlabel.pipelines.output import OutputDir, RowKey
from ovlabel.schemas import SCHEMA_VERSION

log = logging.getLogger(__name__)
MODES = ("fresh", "resume", "overwrite")
SWAPPED = (*KINDS, RUN_INFO, MARKER, CLASSES)  # what an overwrite replaces; nothing else in the folder is touched
LEFTOVERS = frozenset({MARKER, *KINDS, STAGING, NEXT, REPLACED, CLASSES})  # what a run that published nothing may leave


@dataclass(frozen=True)
class RunPlan:
    """Where a run publishes (``under``: () for the folder itself, (_next, run_id) for an overwrite) and what
    it skips (``done_files``: the shards present when it started)."""

    under: tuple[str, ...]
    done_files: tuple[str, ...] = ()
    forced: bool = False


def first_difference(old: dict[str, Any], new: dict[str, Any], defaults: Optional[dict[str, Any]] = None
                     ) -> Optional[tuple[str, Any, Any]]:
    """The first dotted key (in sorted order) whose value differs: (key, old value, new value); None if equal.

    A key ``old`` lacks (an older ovlabel's config: the key came later) equals ``new``'s value when that is the
    key's value in ``defaults``, which is what the older ovlabel did."""
    a, b, d = dict(leaves(old)), dict(leaves(new)), dict(leaves(defaults or {}))
    for key in sorted(set(a) | set(b)):
        if key not in a and key in d and b.get(key) == d[key]:
            continue
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            return key, a.get(key, "<absent>"), b.get(key, "<absent>")
    return None


def _default_labelling_config() -> dict[str, Any]:
    from ovlabel.pipelines.options import RunConfig
    from ovlabel.pipelines.provenance import labelling_config

    return labelling_config(RunConfig())


def _run_entry(run_id: str, config_hash: str, forced: bool) -> dict[str, Any]:
    return {"run_id": run_id, "config_sha256": config_hash, "forced": forced,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _start(out: OutputDir, under: tuple[str, ...], config: dict[str, Any], config_hash: str, manifest: str,
           run_id: str) -> RunPlan:
    for kind in KINDS:
        out.fs.makedirs(out.fs_path(*under, kind), exist_ok=True)
    out.write_json(MARKER, {"ovlabel_output": 1, "schema_version": SCHEMA_VERSION, "config": config,
                            "config_sha256": config_hash, "manifest": manifest,
                            "runs": [_run_entry(run_id, config_hash, False)]}, *under)
    return RunPlan(under)


def _legacy(out: OutputDir) -> bool:
    """An output of an ovlabel from before the marker (its run.json names a run and a schema)."""
    info = out.read_json(RUN_INFO) or {}
    return "run_id" in info and "schema_version" in info


def _refuse_foreign(out: OutputDir, entries: list[str], mode: str) -> OutputError:
    if _legacy(out) and mode == "resume":
        return OutputError(f"output folder {out.root!r} was written by an older ovlabel (no {MARKER}; its rows do "
                           f"not name their manifest rows), so --resume cannot tell what is done; use --overwrite")
    return OutputError(f"output folder {out.root!r} is not empty ({', '.join(entries[:5])}) and was not made by "
                       f"ovlabel (no {MARKER}); --{mode} only ever touches ovlabel's own outputs: choose another "
                       f"folder, or empty this one yourself")


def _nothing_published(out: OutputDir, entries: list[str]) -> bool:
    """Whether the folder holds only what a failed or killed run of ovlabel left before it published a row: its
    marker, empty labels/ and errors/ folders, staging and overwrite leftovers (never run.json)."""
    return (set(entries) <= LEFTOVERS and out.marker() is not None
            and not any(out.existing_entries(kind) for kind in KINDS))


def _refuse_fresh(out: OutputDir, entries: list[str]) -> OutputError:
    shards = sum(len(out.shard_files(kind)) for kind in KINDS) if out.marker() is not None else 0
    if shards and RUN_INFO not in entries:
        return OutputError(f"output folder {out.root!r} holds {shards} shards of a run that did not finish; "
                           f"rerun with --resume to finish it (or --overwrite to start again)")
    return OutputError(f"output folder {out.root!r} is not empty ({', '.join(entries[:5])}); "
                       f"pass --overwrite to replace it or --resume to finish it")


def prepare(out: OutputDir, mode: str, config: dict[str, Any], config_hash: str, manifest: str, run_id: str,
            force: bool = False, limit: Optional[int] = None) -> RunPlan:
    """Get the folder ready for a run in ``mode`` (one of :data:`MODES`) on the first ``limit`` rows of
    ``manifest``; raises :class:`OutputError` to refuse."""
    finish_swap(out)
    entries = [e for e in out.existing_entries() if e != LOCK and not e.startswith(PROBE_PREFIX)]
    if entries and mode == "fresh" and _nothing_published(out, entries):
        log.info("removing what an unfinished run left in %s (%s; it published nothing)", out.root, ", ".join(entries))
        for name in entries:
            out.remove(name)
        entries = []
    if not entries:
        return _start(out, (), config, config_hash, manifest, run_id)
    if mode == "fresh":
        raise _refuse_fresh(out, entries)
    marker = out.marker()
    if marker is None and not (mode == "overwrite" and _legacy(out)):
        raise _refuse_foreign(out, entries, mode)
    for name in (STAGING, NEXT, REPLACED):  # what killed runs left; never part of an output
        out.remove(name)
    if mode == "overwrite":
        return _start(out, (NEXT, run_id), config, config_hash, manifest, run_id)
    assert marker is not None
    return _resume(out, marker, config, config_hash, (manifest, limit), run_id, force)


def _resume(out: OutputDir, marker: dict[str, Any], config: dict[str, Any], config_hash: str,
            inputs: tuple[str, Optional[int]], run_id: str, force: bool) -> RunPlan:
    diff = first_difference(marker.get("config") or {}, config, _default_labelling_config())
    if diff is not None and not force:
        key, was, now = diff
        raise OutputError(f"--resume refused: the config differs from the one {out.root!r} was made with, first at "
                          f"{key} ({was!r} there, {now!r} now); resume with the same config, use --overwrite to "
                          f"relabel everything, or --force-resume to mix them (recorded in run.json and each "
                          f"row's provenance)")
    if diff is not None:
        log.warning("resuming %s with a different config (first at %s); recorded in run.json", out.root, diff[0])
    check_manifest(inputs[0], out.row_keys(), out.root, inputs[1])
    marker = {**marker, "runs": [*marker.get("runs", []), _run_entry(run_id, config_hash, diff is not None)]}
    out.write_json(MARKER, marker)
    done = tuple(path for kind in KINDS for path in out.shard_files(kind))
    return RunPlan((), done, forced=diff is not None)


def manifest_keys(manifest: str, limit: Optional[int] = None) -> dict[int, str]:
    """row_index -> row_hash of every input row (the first ``limit``) of a manifest, folder or glob."""
    return input_keys(manifest, limit)


def check_manifest(manifest: str, done: list[RowKey], root: str, limit: Optional[int] = None) -> None:
    """Refuse to resume when an input row the output accounts for is gone (or past ``limit``) or has changed."""
    if not done:
        return
    rows = manifest_keys(manifest, limit)
    for index, digest in sorted(done):
        if index not in rows and limit is not None and index >= limit:
            raise OutputError(f"--resume refused: {root!r} holds a row for input row {index}, past --limit {limit} "
                              f"(input.limit); raise the limit or leave it out")
        if index not in rows:
            raise OutputError(f"--resume refused: {root!r} holds a row for manifest row {index}, which {manifest!r} "
                              f"no longer has; resume with the manifest the output was made from, or --overwrite")
        if rows[index] != digest:
            raise OutputError(f"--resume refused: manifest row {index} of {manifest!r} has changed since {root!r} "
                              f"labelled it; resume with the manifest the output was made from, or --overwrite")


def swap_in(out: OutputDir, run_id: str) -> None:
    """Replace the folder's output by the complete one in ``_next/<run_id>/`` (journalled in ``_swap.json``)."""
    out.write_json(SWAP, {"run_id": run_id})
    fault_point("swap-begun")
    _roll_forward(out, run_id)


def finish_swap(out: OutputDir) -> None:
    """Finish an overwrite whose swap was killed half-way (its new output was complete when it began)."""
    journal = out.read_json(SWAP)
    if journal is not None and isinstance(journal.get("run_id"), str):
        log.warning("finishing the interrupted replacement of %s by run %s", out.root, journal["run_id"])
        _roll_forward(out, journal["run_id"])
    out.remove(SWAP + ".tmp")


def _roll_forward(out: OutputDir, run_id: str) -> None:
    new = (NEXT, run_id)
    for name in SWAPPED:
        if out.exists(*new, name):
            if out.exists(name):
                out.move((name,), (REPLACED, run_id, name))
            fault_point("swap-half-done")
            out.move((*new, name), (name,))
    out.remove(SWAP)
    for name in (REPLACED, NEXT):
        out.remove_run(name, run_id)
