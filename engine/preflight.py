"""Cheap checks made before a run starts, so a missing model fails in one line, not on a worker.

Nothing here loads a model: it only checks that what the config names can be found.
"""
from __future__ import annotations

from ovlabel.engine.config import Config
from ovlabel.engine.weights import check_local_checkpoint


def check_spacy_model(name: str) -> None:
    from ovlabel.engine.captions import find_spacy_model

    find_spacy_model(name)


def preflight(cfg: Config) -> None:
    """Raise :class:`ConfigError` / :class:`ModelWeightsError` for anything a run would trip on."""
    check_spacy_model(cfg.captions.spacy_model)
    cfg.masks.spec.check(cfg.masks.settings)
    check_local_checkpoint(cfg.clip.checkpoint, "clip.checkpoint")
    if cfg.matching.lexicon_parts and cfg.matching.part_lexicon is not None:
        from ovlabel.engine.vocab import load_part_lexicon

        load_part_lexicon(cfg.matching.part_lexicon)
