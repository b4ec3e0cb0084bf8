"""Score caption object nouns against the COCO categories present in each image.

    python scripts/eval_captions.py --data ../shared/data/coco-mini-train [--show-errors]

For every image, the object nouns of its captions (level 'object'; scenes and parts are not
objects) are mapped to COCO categories through SYNONYMS, the words of the COCO label vocabulary
(``configs/vocab/classes/coco.yaml``; kept apart from the parser's own word lists on purpose: the
yardstick is not the system under test); nouns outside it are not scored.

- precision: predicted (image, category) pairs that the image's instance annotations contain;
- recall: (image, category) pairs with an instance covering >= --min-fraction of the image
  that some caption noun names; instance recall counts those instances one by one.

The baseline is spaCy's plain noun chunks: the lowercase lemma of every chunk root, unfiltered,
through the same table on the same captions.
"""
from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ovlabel.engine.captions import DEFAULT_MODEL, CaptionParser, load_spacy
from ovlabel.engine.ontology import load_vocabulary

# noun lemma -> COCO category name: every word of the shipped COCO label vocabulary (configs/vocab/classes/coco.yaml,
# the yardstick's table; the caption parser never reads it), as written there: no plurals added
SYNONYMS: dict[str, str] = {w: c for c, words in load_vocabulary("coco").entries for w in (c, *words)}


@dataclass(frozen=True)
class Image:
    """One COCO image: its captions, the categories present and those with a large instance."""

    image_id: int
    captions: tuple[str, ...]
    present: frozenset[str]
    large: frozenset[str]
    large_instances: tuple[str, ...]  # category of each instance over the size threshold


@dataclass(frozen=True)
class Scores:
    nouns: int
    mapped: int
    precision: float
    recall: float
    instance_recall: float

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def load_images(data: Path, min_fraction: float) -> list[Image]:
    captions = json.loads((data / "captions_train2017.json").read_text())
    instances = json.loads((data / "instances_train2017.json").read_text())
    names = {c["id"]: c["name"] for c in instances["categories"]}
    sizes = {im["id"]: im["width"] * im["height"] for im in instances["images"]}
    by_image: dict[int, list[str]] = {}
    for ann in captions["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann["caption"].strip())
    anns: dict[int, list[dict[str, Any]]] = {}
    for ann in instances["annotations"]:
        anns.setdefault(ann["image_id"], []).append(ann)
    return [_image(i, caps, anns.get(i, []), names, sizes[i], min_fraction) for i, caps in sorted(by_image.items())]


def _image(image_id: int, caps: list[str], anns: list[dict[str, Any]], names: dict[int, str],
           size: int, min_fraction: float) -> Image:
    large = tuple(names[a["category_id"]] for a in anns if a["area"] >= min_fraction * size)
    return Image(image_id, tuple(caps), frozenset(names[a["category_id"]] for a in anns),
                 frozenset(large), large)


def ours(parser: CaptionParser) -> Callable[[Sequence[str]], list[list[str]]]:
    def lemmas(texts: Sequence[str]) -> list[list[str]]:
        return [[n.lemma for n in p.nouns if n.level == "object"] for p in parser.parse_many(texts)]
    return lemmas


def noun_chunk_baseline(nlp: Any) -> Callable[[Sequence[str]], list[list[str]]]:
    def lemmas(texts: Sequence[str]) -> list[list[str]]:
        return [[c.root.lemma_.lower() for c in doc.noun_chunks] for doc in nlp.pipe(texts)]
    return lemmas


def score(images: Sequence[Image], lemmas_of: Callable[[Sequence[str]], list[list[str]]],
          errors: Counter | None = None) -> Scores:
    texts = [c for im in images for c in im.captions]
    lemmas = iter(lemmas_of(texts))
    nouns = mapped = tp = predicted = recalled = relevant = inst_hit = inst_total = 0
    for im in images:
        words = [w for _ in im.captions for w in next(lemmas)]
        cats = {SYNONYMS[w] for w in words if w in SYNONYMS}
        nouns, mapped = nouns + len(words), mapped + sum(w in SYNONYMS for w in words)
        tp, predicted = tp + len(cats & im.present), predicted + len(cats)
        recalled, relevant = recalled + len(cats & im.large), relevant + len(im.large)
        inst_hit += sum(c in cats for c in im.large_instances)
        inst_total += len(im.large_instances)
        if errors is not None:
            _count_errors(errors, im, words, cats)
    return Scores(nouns, mapped, tp / max(predicted, 1), recalled / max(relevant, 1), inst_hit / max(inst_total, 1))


def _count_errors(errors: Counter, im: Image, words: Iterable[str], cats: set[str]) -> None:
    for w in set(words):
        if w in SYNONYMS and SYNONYMS[w] not in im.present:
            errors[f"false positive: {w} -> {SYNONYMS[w]}"] += 1
    for c in im.large - cats:
        errors[f"missed: {c}"] += 1


def print_table(rows: Sequence[tuple[str, Scores]]) -> None:
    print(f"{'method':<22}{'nouns':>7}{'mapped':>8}{'precision':>11}{'recall':>8}{'F1':>7}{'inst.recall':>13}")
    for name, s in rows:
        print(f"{name:<22}{s.nouns:>7}{s.mapped:>8}{s.precision:>11.3f}{s.recall:>8.3f}{s.f1:>7.3f}"
              f"{s.instance_recall:>13.3f}")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="folder with captions_/instances_train2017.json")
    ap.add_argument("--spacy-model", default=DEFAULT_MODEL)
    ap.add_argument("--min-fraction", type=float, default=0.02, help="instance area / image area for recall")
    ap.add_argument("--show-errors", action="store_true", help="list the most frequent misses and false positives")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    images = load_images(args.data, args.min_fraction)
    parser = CaptionParser(args.spacy_model)
    errors: Counter = Counter()
    rows = [("ours", score(images, ours(parser), errors)),
            ("noun-chunk baseline", score(images, noun_chunk_baseline(load_spacy(args.spacy_model))))]
    print(f"{len(images)} images, {sum(len(im.captions) for im in images)} captions, "
          f"recall over instances >= {args.min_fraction:.0%} of the image")
    print_table(rows)
    if args.show_errors:
        for what, n in errors.most_common(30):
            print(f"{n:>4}  {what}")


if __name__ == "__main__":
    main()
