"""What is checked before a run starts, in seconds, so that what would fail on a worker fails in one line.

:func:`preflight` proves the run can start: the manifest is there and its first rows read; the output
folder can be written (a probe file, removed); the spaCy model is installed; the part lexicon and the
labels the CLIP knows can be read (with ``clip.unknown_labels=refuse``, no word outside them is asked
for); the mask generator's own check (SAM: its architecture and checkpoint); the CLIP architecture and
its weights: a local checkpoint is there (with its sha256), a URL is cached or answers, a pretrained
tag's file is in the Hugging Face cache or the hub answers. What asks a server waits at most
:data:`~ovlabel.engine.reach.PROBE_TIMEOUT_S` seconds. Nothing here loads a model. Each failure is an
:class:`~ovlabel.engine.errors.OvlabelError` whose one line names the config key (or flag) and the fix.
"""
from __future__ import annotations

import itertools
import posixpath
import uuid
from typing import Any, Optional

from ovlabel.engine.config import ClipConfig, Config
from ovlabel.engine.errors import ManifestError, OutputError
from ovlabel.engine.known_labels import SAMPLE_ROWS, check_known_labels
from ovlabel.engine.layout import PROBE_PREFIX
from ovlabel.engine.manifest import RawRow, to_record
from ovlabel.engine.reach import PROBE_TIMEOUT_S, filesystem, reason, within
from ovlabel.engine.sources import base_dir_of, check_exists, read_rows
from ovlabel.engine.weights import check_checkpoint


def check_spacy_model(name: str) -> None:
    from ovlabel.engine.captions import find_spacy_model

    find_spacy_model(name)


def check_clip(cfg: ClipConfig) -> None:
    """The CLIP model is one open_clip knows (no weights loaded) and its weights can be had: a local checkpoint
    is there (with its sha256), a URL is cached or answers, a pretrained tag's file is cached or the hub answers."""
    from ovlabel.engine.matching.embedder import check_clip_model
    from ovlabel.engine.matching.pretrained import check_pretrained

    check_checkpoint(cfg.checkpoint, "clip.checkpoint", cfg.checkpoint_sha256)  # first: needs no torch
    check_clip_model(cfg)
    if cfg.checkpoint is None and cfg.pretrained is not None:
        check_pretrained(cfg.model, cfg.pretrained)


def check_dense(cfg: ClipConfig) -> None:
    """``matching.crop_mode=dense``: the CLIP model's image tower is a plain ViT (its open_clip config, no weights)."""
    import open_clip

    from ovlabel.engine.matching.dense import dense_refusal

    refusal = dense_refusal(cfg.model, (open_clip.get_model_config(cfg.model) or {}).get("vision_cfg", {}))
    if refusal is not None:
        raise refusal


def check_region_encoder(cfg: Config) -> None:
    """``matching.crop_mode=alpha`` or ``mask_prompt``: a ViT tower, ``clip.region_checkpoint`` there, and mask
    prompts to load (:func:`ovlabel.engine.matching.region_models.check_mask_input`); other modes: no
    ``clip.region_checkpoint``."""
    from ovlabel.engine.matching.region_models import check_mask_input

    check_mask_input(cfg.clip, cfg.matching.crop_mode)


def check_ensemble(cfg: ClipConfig) -> None:
    """Each ``clip.ensemble`` member as :func:`check_region_encoder` and :func:`check_clip` check the first model,
    an error naming the member."""
    from ovlabel.engine.matching.ensemble import member_errors
    from ovlabel.engine.matching.region_models import check_mask_input

    for index, member in enumerate(cfg.ensemble):
        with member_errors(index, member.crop_mode):
            member_cfg = cfg.member(index)
            check_mask_input(member_cfg, member.crop_mode)
            check_clip(member_cfg)


def check_manifest(manifest: str, rows: int = SAMPLE_ROWS) -> list[RawRow]:
    """The manifest exists and its first ``rows`` rows can be read (returned); :class:`ManifestError` if not.
    Rows that do not parse are not an error here: the run makes them error rows."""
    check_exists(manifest)
    try:
        return list(itertools.islice(read_rows(manifest), rows))
    except ManifestError:
        raise
    except Exception as exc:  # noqa: BLE001 - a truncated Parquet file, a folder, an unreadable file...
        raise ManifestError(f"manifest {manifest!r} cannot be read ({reason(exc)}); pass --input a readable "
                            f".jsonl, .csv or .parquet file") from None


def sample_captions(manifest: str, rows: list[RawRow]) -> list[tuple[str, ...]]:
    """The captions of the rows that validate (the others become error rows in the run)."""
    base = base_dir_of(manifest)
    found = []
    for row in rows:
        try:
            found.append(to_record(row, base).captions)
        except Exception:  # noqa: BLE001 - InputError: an error row of the run, not of preflight
            continue
    return found


def _nearest_folder(fs: Any, path: str) -> str:
    """``path`` when it exists, else the nearest folder above it that does (local filesystems; object stores
    have no folders, so there it is ``path`` itself)."""
    from fsspec.implementations.local import LocalFileSystem

    if not isinstance(fs, LocalFileSystem):
        return path
    while not fs.exists(path) and posixpath.dirname(path) != path:
        path = posixpath.dirname(path)
    return path


def check_output(location: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """The output can be written: a probe file is written in the folder (or, when it does not exist yet, in the
    nearest folder above it) and removed; :class:`OutputError` naming ``--output`` if not. Nothing is created."""
    fs, path = filesystem(location, "--output", OutputError)
    folder = _nearest_folder(fs, path.rstrip("/") or "/")
    if fs.isfile(folder):
        raise OutputError(f"--output {location!r}: {folder!r} is a file, not a folder; name a folder for the run")
    probe = posixpath.join(folder, f"{PROBE_PREFIX}{uuid.uuid4().hex[:12]}")
    try:
        within(timeout, lambda: (fs.pipe_file(probe, b""), fs.rm(probe)))
    except Exception as exc:  # noqa: BLE001 - permission, read-only filesystem, no credentials, no answer
        raise OutputError(f"--output {location!r} cannot be written ({reason(exc)} writing into {folder!r}); "
                          f"choose a folder you can write, or fix its permissions") from None


def preflight(cfg: Config, manifest: Optional[str] = None, output: Optional[str] = None) -> None:
    """Raise the :class:`~ovlabel.engine.errors.OvlabelError` a run would trip on (see the module docstring);
    local checks first, then what asks a server. A local checkpoint with a configured sha256 is hashed here,
    before the output folder is touched."""
    rows = check_manifest(manifest) if manifest is not None else []
    if output is not None:
        check_output(output)
    check_spacy_model(cfg.captions.spacy_model)
    if cfg.vocabulary.file is not None:
        from ovlabel.engine.ontology import load_vocabulary

        load_vocabulary(cfg.vocabulary.file)
    if cfg.matching.lexicon_parts and cfg.matching.part_lexicon is not None:
        from ovlabel.engine.vocab import load_part_lexicon

        load_part_lexicon(cfg.matching.part_lexicon)
    check_known_labels(cfg, sample_captions(manifest, rows) if manifest is not None else ())
    check_region_encoder(cfg)  # local files: before the checks that ask a server
    cfg.masks.spec.check(cfg.masks.settings)
    check_clip(cfg.clip)
    if cfg.matching.crop_mode == "dense":
        check_dense(cfg.clip)
    check_ensemble(cfg.clip)
