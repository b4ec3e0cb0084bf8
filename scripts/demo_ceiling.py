"""What a demo run can reach at best: recall ceilings on the held-out demo scenes.

    python scripts/demo_ceiling.py [--config configs/demo.yaml] [key=value ...]

For every ground-truth object and part instance of the config's demo scenes, per level:

- proposal: some superpixel proposal (the config's ``masks.superpixel``, masks below
  ``matching.min_mask_area_fraction``, for parts ``min_part_area_fraction``, dropped as the
  matcher drops them) has mask IoU >= 0.5;
- mentioned: a caption names its category (any caption word of it, singular or plural);
- parsed: the caption parser returns a noun of its category at its level (parts: tied to a whole);
- proposal & parsed: both, the recall a perfect region matcher would reach on caption nouns;
- proposal & (parsed | vocabulary) (objects): or the category is in ``matching.object_vocabulary``;
- lexicon (parts): its object's category is parsed (or in the object vocabulary) and the config's
  part lexicon lists the part for it (what ``matching.lexicon_parts`` can reach without a caption
  naming the part);
- proposal & (parsed | lexicon): the part recall a perfect matcher with lexicon parts would reach.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from typing import Sequence

import numpy as np

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.captions import get_parser
from ovlabel.engine.config import Config
from ovlabel.engine.shipped import config_path
from ovlabel.pipelines.options import load_run_config
from ovlabel.engine.demo.scenes import DemoScene, generate_scene
from ovlabel.engine.demo.world import all_categories, demo_seeds, demo_vocabulary
from ovlabel.engine.evaluation import LabelMap
from ovlabel.engine.masks.superpixel import SuperpixelGenerator
from ovlabel.engine.records import CaptionParse
from ovlabel.engine.vocab import part_lexicon

log = logging.getLogger("demo_ceiling")
LEVELS = ("object", "part")


def parsed_categories(parses: Sequence[CaptionParse]) -> dict[str, set[str]]:
    """Level -> demo categories the parser found at that level (parts only with a whole)."""
    found: dict[str, set[str]] = {level: set() for level in LEVELS}
    for parse in parses:
        for noun in parse.nouns:
            category = demo_vocabulary().class_of(noun.lemma)
            if category and noun.level in found and (noun.level == "object" or noun.parent is not None):
                found[noun.level].add(category)
    return found


def best_proposal_iou(scene: DemoScene, generator: SuperpixelGenerator, object_min: float, part_min: float
                      ) -> np.ndarray:
    """(I,) the best proposal IoU of each instance of ``scene``, over the proposals its level may take
    (at least ``object_min`` / ``part_min`` of the image)."""
    masks = generator.generate_one(scene.image)
    pixels = scene.size * scene.size
    masks = masks.select(masks.areas >= max(1.0, min(object_min, part_min) * pixels))
    gt = rle_utils.encode_many(np.stack([i.mask for i in scene.instances]))
    if not len(masks):
        return np.zeros(len(gt))
    iou = rle_utils.iou_matrix(list(masks.rles), gt)
    big = masks.areas >= max(1.0, object_min * pixels)
    objects = np.array([i.level == "object" for i in scene.instances])
    iou[np.ix_(~big, objects)] = 0.0
    return iou.max(axis=0)


def count(cfg: Config) -> dict[str, Counter]:
    assert cfg.demo is not None, "the config needs a demo section"
    generator = SuperpixelGenerator(cfg.masks.superpixel)
    parser = get_parser(cfg.captions.spacy_model)
    labels = LabelMap(all_categories(), demo_vocabulary())
    parts_of = part_lexicon(cfg.matching.part_lexicon)
    vocabulary = {demo_vocabulary().class_of(w) or w for w in cfg.matching.object_vocabulary}
    counts: dict[str, Counter] = {level: Counter() for level in LEVELS}
    for seed in demo_seeds(cfg.demo):
        scene = generate_scene(seed, cfg.demo.image_size)
        if not scene.instances:
            continue
        best = best_proposal_iou(scene, generator, cfg.matching.min_mask_area_fraction,
                                 cfg.matching.part_area_fraction)
        mentioned = labels.mentioned(scene.captions)
        parsed = parsed_categories(parser.parse_many(list(scene.captions)))
        for inst, iou in zip(scene.instances, best):
            hit, said = bool(iou >= 0.5), inst.category in parsed[inst.level]
            counts[inst.level].update({"gt": 1, "proposal": hit, "mentioned": inst.category in mentioned,
                                       "parsed": said, "proposal & parsed": hit and said})
            if inst.level == "object":
                known = said or inst.category in vocabulary
                counts["object"].update({"proposal & (parsed | vocabulary)": hit and known})
            if inst.level == "part":
                whole = scene.instance(inst.parent_id).category
                lexicon = ((whole in parsed["object"] or whole in vocabulary)
                           and inst.category in parts_of(whole))
                counts["part"].update({"lexicon": lexicon, "proposal & (parsed | lexicon)": hit and (said or lexicon)})
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(config_path("demo.yaml")))
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    counts = count(load_run_config(args.config, args.overrides))
    report = {level: {k: round(v / c["gt"], 4) for k, v in c.items() if k != "gt"} | {"instances": c["gt"]}
              for level, c in counts.items()}
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
