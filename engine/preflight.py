"""Cheap checks made before a run starts, so a missing model fails in one line, not on a worker.

Nothing here loads a model: it only checks that what the config names can be found (and that a
local checkpoint's sha256 is the configured one).
"""
from __future__ import annotations

from ovlabel.engine.config import ClipConfig, Config
from ovlabel.engine.weights import check_local_checkpoint


def check_spacy_model(name: str) -> None:
    from ovlabel.engine.captions import find_spacy_model

    find_spacy_model(name)


def check_clip(cfg: ClipConfig) -> None:
    """The CLIP model is one open_clip knows (no weights loaded) and a local checkpoint is there, with its sha256."""
    from ovlabel.engine.matching.embedder import check_clip_model

    check_clip_model(cfg)
    check_local_checkpoint(cfg.checkpoint, "clip.checkpoint", cfg.checkpoint_sha256)


def check_dense(cfg: ClipConfig) -> None:
    """``matching.crop_mode=dense``: the CLIP model's image tower is a plain ViT (its open_clip config, no weights)."""
    import open_clip

    from ovlabel.engine.matching.dense import dense_refusal

    refusal = dense_refusal(cfg.model, (open_clip.get_model_config(cfg.model) or {}).get("vision_cfg", {}))
    if refusal is not None:
        raise refusal


def preflight(cfg: Config) -> None:
    """Raise :class:`ConfigError` / :class:`ModelWeightsError` for anything a run would trip on: the spaCy
    model, the part lexicon, the label vocabulary, the mask generator's own check (its registry entry's), the CLIP
    architecture and weights (and, for crop_mode dense, a ViT image tower); a local checkpoint with a configured
    sha256 is hashed here, before the output folder is touched."""
    check_spacy_model(cfg.captions.spacy_model)
    if cfg.vocabulary.file is not None:
        from ovlabel.engine.ontology import load_vocabulary

        load_vocabulary(cfg.vocabulary.file)
    if cfg.matching.lexicon_parts and cfg.matching.part_lexicon is not None:
        from ovlabel.engine.vocab import load_part_lexicon

        load_part_lexicon(cfg.matching.part_lexicon)
    cfg.masks.spec.check(cfg.masks.settings)
    check_clip(cfg.clip)
    if cfg.matching.crop_mode == "dense":
        check_dense(cfg.clip)
