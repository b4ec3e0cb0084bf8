"""Matching class-agnostic masks to caption nouns with region embeddings: scene, objects, parts.

Modules (a change to how one level is matched is a change to one of them):

- :mod:`~ovlabel.engine.matching.embedder`: the :class:`RegionEmbedder` protocol and open_clip's
  (:class:`OpenClipEmbedder`, :func:`build_clip_model`), pixel normalisation, prompt ensembles;
- :mod:`~ovlabel.engine.matching.crops`: the region crops the embedder sees (inference and training);
- :mod:`~ovlabel.engine.matching.region_encoders`, :mod:`~ovlabel.engine.matching.region_models`: encoders
  that take the mask too (Alpha-CLIP's alpha channel, OVSeg's mask prompts), their checkpoints and embedder
  (:func:`build_region_embedder`, what the pipeline builds for any crop mode);
- :mod:`~ovlabel.engine.matching.ensemble`: several region models as one (``clip.ensemble``): the weighted mean
  of their cosines (:class:`EnsembleEmbedder`);
- :mod:`~ovlabel.engine.matching.context`: one image during matching (:class:`ImageInput`,
  :class:`ImageContext`) and mask geometry (containment, dilation, widened boxes);
- :mod:`~ovlabel.engine.matching.slots`: caption nouns as slots, softmax scores, eligibility and
  greedy best-first assignment;
- :mod:`~ovlabel.engine.matching.scene`, :mod:`~ovlabel.engine.matching.objects`,
  :mod:`~ovlabel.engine.matching.parts`: the rules of each level (documented there);
- :mod:`~ovlabel.engine.matching.matcher`: :class:`RegionMatcher`, which embeds a batch once and
  runs the levels per image.

Thresholds are in :class:`~ovlabel.engine.config.MatchingConfig`. Every decision sorts with
explicit index tie-breaks, so identical input gives identical output.
"""
from ovlabel.engine.matching.context import (ImageContext, ImageInput, candidate_masks, containment, dilate,
                                             fraction_inside, large_enough, widened_box)
from ovlabel.engine.matching.crops import CROP_MODES, crop_image, crop_region, mask_box
from ovlabel.engine.matching.embedder import OpenClipEmbedder, RegionEmbedder, build_clip_model, build_embedder
from ovlabel.engine.matching.ensemble import EnsembleEmbedder
from ovlabel.engine.matching.matcher import RegionMatcher, label_image
from ovlabel.engine.matching.parts import Lexicon, grow_objects
from ovlabel.engine.matching.region_models import OpenClipMaskInputEmbedder, build_region_embedder
from ovlabel.engine.matching.slots import (Candidate, NounRef, Overlaps, Slot, assign, demand_of, eligible, merge_columns,
                                           merged_slot, nouns_at_level, part_nouns, synonym_groups)

__all__ = ["CROP_MODES", "Candidate", "EnsembleEmbedder", "ImageContext", "ImageInput", "Lexicon", "NounRef", "OpenClipEmbedder", "build_embedder",
           "OpenClipMaskInputEmbedder", "build_region_embedder",
           "Overlaps", "RegionEmbedder", "RegionMatcher", "Slot", "assign", "build_clip_model", "candidate_masks",
           "containment", "crop_image", "crop_region", "demand_of", "dilate", "eligible", "fraction_inside",
           "grow_objects", "label_image", "large_enough", "mask_box", "merge_columns", "merged_slot",
           "nouns_at_level", "part_nouns", "synonym_groups", "widened_box"]
