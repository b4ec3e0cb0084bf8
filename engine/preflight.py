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


def check_region_encoder(cfg: Config) -> None:
    """``matching.crop_mode=alpha`` or ``mask_prompt``: a ViT tower, ``clip.region_checkpoint`` there, and mask
    prompts to load (:func:`ovlabel.engine.matching.region_models.check_mask_input`); other modes: no
    ``clip.region_checkpoint``."""
    from ovlabel.engine.matching.region_models import check_mask_input

    check_mask_input(cfg.clip, cfg.matching.crop_mode)


def preflight(cfg: Config) -> None:
    """Raise :class:`ConfigError` / :class:`ModelWeightsError` for anything a run would trip on: the spaCy
    model, the part lexicon, the mask generator's own check (its registry entry's), the CLIP architecture and
    weights (and, for crop_mode dense, alpha and mask_prompt, a ViT image tower; for the latter two their
    region weights, :func:`check_region_encoder`); a local checkpoint with a configured sha256 is
    hashed here, before the output folder is touched."""
    check_spacy_model(cfg.captions.spacy_model)
    if cfg.matching.lexicon_parts and cfg.matching.part_lexicon is not None:
        from ovlabel.engine.vocab import load_part_lexicon

        load_part_lexicon(cfg.matching.part_lexicon)
    cfg.masks.spec.check(cfg.masks.settings)
    check_clip(cfg.clip)
    if cfg.matching.crop_mode == "dense":
        check_dense(cfg.clip)
    check_region_encoder(cfg)
