"""The scene level: the image root, labelled by the best scene noun.

The whole image (:func:`~ovlabel.engine.matching.crops.crop_image`) is scored against the scene
nouns plus background; the best scene noun labels the root when its probability is at least
``scene_threshold`` and its cosine at least ``similarity_threshold``; otherwise the root is the
unlabelled 'scene'.
"""
from __future__ import annotations

import numpy as np

from ovlabel.engine.hierarchy import UNLABELLED_SCENE, root_segment
from ovlabel.engine.matching.context import ImageContext
from ovlabel.engine.matching.slots import Rules, label_scores, nouns_at_level
from ovlabel.engine.records import Segment


def match_scene(ctx: ImageContext, rules: Rules) -> Segment:
    """The scene root: labelled by the best scene noun above the thresholds, else 'scene'."""
    cfg = rules.cfg
    size = ctx.item.image.shape[:2]
    scenes = nouns_at_level(ctx.item.parses, "scene")
    if not scenes:
        return root_segment(size, UNLABELLED_SCENE)
    labels = [r.noun.lemma for r in scenes] + list(cfg.background_labels)
    sims, probs = label_scores(ctx.scene[None, :], ctx.label_matrix(labels), rules.logit_scale)
    best = int(np.argmax(probs[0, :len(scenes)]))  # first on ties
    prob, sim = float(probs[0, best]), float(sims[0, best])
    if prob < cfg.scene_threshold or sim < cfg.similarity_threshold:
        return root_segment(size, UNLABELLED_SCENE)
    ref = scenes[best]
    return root_segment(size, ref.noun.lemma, float(np.clip(prob, 0.0, 1.0)), sim, ref.noun, ref.caption_index)
