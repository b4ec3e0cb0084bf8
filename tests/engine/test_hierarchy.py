"""Invariants of the scene -> object -> part tree on many generated cases.

:class:`HashEmbedder` gives every crop and label a pseudo-random unit vector seeded by its bytes,
so similarities are arbitrary but reproducible; masks are random boxes and ellipses, some drawn
inside others so that parts can appear; captions are random nouns with counts, plurals and parts.
"""
from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import pytest

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.config import MatchingConfig
from ovlabel.engine.hierarchy import ROOT_ID, build_tree, root_segment
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.matching import ImageInput, RegionMatcher
from ovlabel.engine.records import CaptionParse, Match, Noun, Segment

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

OBJECTS = ("dog", "cat", "car", "person", "tree", "sky")
PARTS = {"dog": ("tail", "head", "ear"), "cat": ("tail", "paw"), "car": ("wheel", "door"),
         "person": ("hand", "head", "shirt")}
SCENES = ("kitchen", "street", "beach")
N_CASES = 200


class HashEmbedder:
    """A RegionEmbedder with pseudo-random unit vectors seeded by crop bytes / label text."""

    def __init__(self, dim: int = 4, crop_size: int = 8, logit_scale: float = 10.0) -> None:
        self.dim, self.crop_size, self.logit_scale = dim, crop_size, logit_scale

    def _vector(self, data: bytes) -> np.ndarray:
        v = np.random.default_rng(zlib.crc32(data)).normal(size=self.dim)
        return (v / np.linalg.norm(v)).astype(np.float32)

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        return np.stack([self._vector(c.tobytes()) for c in crops]).reshape(len(crops), self.dim)

    def embed_labels(self, labels: Sequence[str]) -> np.ndarray:
        return np.stack([self._vector(label.encode()) for label in labels]).reshape(len(labels), self.dim)

    def describe(self) -> dict[str, object]:
        return {"model": "hash"}


@dataclass(frozen=True)
class Case:
    items: tuple[ImageInput, ...]
    cfg: MatchingConfig


def random_mask(rng: np.random.Generator, h: int, w: int,
                within: Optional[tuple[int, int, int, int]] = None) -> np.ndarray:
    """A box or ellipse, inside the box ``within`` (x0, y0, x1, y1) when given."""
    x0, y0, x1, y1 = within or (0, 0, w, h)
    bw = min(int(rng.integers(max(2, (x1 - x0) // 4), max(3, x1 - x0 + 1))), x1 - x0)
    bh = min(int(rng.integers(max(2, (y1 - y0) // 4), max(3, y1 - y0 + 1))), y1 - y0)
    ox, oy = x0 + rng.integers(0, x1 - x0 - bw + 1), y0 + rng.integers(0, y1 - y0 - bh + 1)
    mask = np.zeros((h, w), bool)
    if rng.random() < 0.5:
        mask[oy:oy + bh, ox:ox + bw] = True
    else:
        yy, xx = np.mgrid[:h, :w]
        mask = ((yy - oy - bh / 2) / (bh / 2)) ** 2 + ((xx - ox - bw / 2) / (bw / 2)) ** 2 <= 1.0
    return mask


def random_masks(rng: np.random.Generator, h: int, w: int) -> MaskBatch:
    """Objects-like masks, smaller masks drawn inside some of them, and a few duplicates."""
    masks: list[np.ndarray] = []
    for _ in range(rng.integers(0, 6)):
        whole = random_mask(rng, h, w)
        masks.append(whole)
        if whole.any():
            ys, xs = np.nonzero(whole)
            box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            masks += [random_mask(rng, h, w, box) & (whole if rng.random() < 0.7 else True)
                      for _ in range(rng.integers(0, 4))]
    if masks and rng.random() < 0.3:
        masks.append(masks[int(rng.integers(len(masks)))].copy())
    masks = [m for m in masks if m.any()]
    return MaskBatch.from_masks(np.stack(masks)) if masks else MaskBatch.empty((h, w))


def random_noun(rng: np.random.Generator, lemma: str, level: str, parent: Optional[int] = None) -> Noun:
    count = int(rng.integers(1, 4)) if rng.random() < 0.3 else None
    plural = count is not None and count > 1 or rng.random() < 0.3
    return Noun(phrase=lemma, lemma=lemma, level=level, char_span=(0, len(lemma)), parent=parent,
                count=count, plural=plural)


def random_parse(rng: np.random.Generator) -> CaptionParse:
    nouns: list[Noun] = []
    if rng.random() < 0.6:
        nouns.append(random_noun(rng, str(rng.choice(SCENES)), "scene"))
    for _ in range(rng.integers(0, 4)):
        whole = str(rng.choice(OBJECTS))
        nouns.append(random_noun(rng, whole, "object"))
        at = len(nouns) - 1
        for part in PARTS.get(whole, ()):
            if rng.random() < 0.5:
                nouns.append(random_noun(rng, part, "part", at))
    if rng.random() < 0.2:  # a dangling part: no whole, or a scene as whole
        nouns.append(random_noun(rng, "tail", "part", 0 if nouns and nouns[0].level == "scene" else None))
    return CaptionParse(" ".join(n.phrase for n in nouns), tuple(nouns))


def random_case(seed: int) -> Case:
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(rng.integers(1, 4)):
        h, w = int(rng.integers(24, 56)), int(rng.integers(24, 56))
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        parses = tuple(random_parse(rng) for _ in range(rng.integers(0, 3)))
        items.append(ImageInput(image, random_masks(rng, h, w), parses))
    cfg = MatchingConfig(
        similarity_threshold=float(rng.choice([-1.0, -0.5, 0.0])),
        probability_threshold=float(rng.choice([0.0, 0.05, 0.2])),
        background_labels=("background", "thing")[: int(rng.integers(0, 3))],
        min_mask_area_fraction=float(rng.choice([0.0, 0.01])),
        part_containment=float(rng.choice([0.8, 0.9])),
        lexicon_parts=bool(rng.random() < 0.5),
        lexicon_part_threshold=float(rng.choice([0.1, 0.3])),
        scene_threshold=float(rng.choice([0.0, 0.3])),
        instance_nms_iou=float(rng.choice([0.3, 0.5])),
    )
    mode = str(rng.choice(["masked", "box", "blend"]))  # drawn last, as it always was: the same cases
    return Case(tuple(items), cfg.model_copy(update={"crop_mode": mode}))


def lexicon(lemma: str) -> tuple[str, ...]:
    return PARTS.get(lemma, ()) + ("leg",)


def label(case: Case) -> list[tuple[Segment, ...]]:
    return RegionMatcher(HashEmbedder(), case.cfg, lexicon=lexicon).label_batch(case.items)


@pytest.fixture(scope="module")
def labelled() -> list[tuple[Case, list[tuple[Segment, ...]]]]:
    return [(case, label(case)) for case in map(random_case, range(N_CASES))]


def _key(segment: Segment) -> str:
    return segment.mask["counts"]


def test_cases_exercise_every_level(labelled: list[tuple[Case, list[tuple[Segment, ...]]]]) -> None:
    seen = {(s.level, s.source) for _, trees in labelled for tree in trees for s in tree}
    assert seen >= {("scene", "image"), ("scene", "caption"), ("object", "caption"), ("part", "caption"),
                    ("part", "lexicon")}


def test_ids_unique_and_root_first(labelled: list[tuple[Case, list[tuple[Segment, ...]]]]) -> None:
    for case, trees in labelled:
        for item, tree in zip(case.items, trees):
            assert [s.segment_id for s in tree] == list(range(len(tree)))
            root = tree[0]
            assert (root.segment_id, root.parent_id, root.level) == (ROOT_ID, None, "scene")
            assert root.area == item.image.shape[0] * item.image.shape[1]
            assert all(s.parent_id is not None for s in tree[1:])


def test_parents_and_containment(labelled: list[tuple[Case, list[tuple[Segment, ...]]]]) -> None:
    for case, trees in labelled:
        for tree in trees:
            by_id = {s.segment_id: s for s in tree}
            for s in tree[1:]:
                parent = by_id[s.parent_id]
                if s.level == "object":
                    assert parent.segment_id == ROOT_ID
                    continue
                assert s.level == "part" and parent.level == "object"
                part, whole = rle_utils.decode(s.mask), rle_utils.decode(parent.mask)
                assert (part & whole).sum() >= case.cfg.part_containment * part.sum() - 1e-9
                assert s.area < parent.area


def test_one_label_per_mask_per_level(labelled: list[tuple[Case, list[tuple[Segment, ...]]]]) -> None:
    for case, trees in labelled:
        matcher = RegionMatcher(HashEmbedder(), case.cfg, lexicon=lexicon)
        for item, tree, found in zip(case.items, trees, matcher.match_batch(case.items)):
            for level in ("object", "part"):
                used = [m.mask_index for m in found.matches if m.level == level]
                assert len(used) == len(set(used))
                # in the tree: a mask shows up at one level no more often than it is among the candidates
                copies = Counter(r["counts"] for r in item.masks.rles)
                assert not Counter(_key(s) for s in tree if s.level == level) - copies


def test_labels_scores_and_provenance(labelled: list[tuple[Case, list[tuple[Segment, ...]]]]) -> None:
    for case, trees in labelled:
        for item, tree in zip(case.items, trees):
            nouns = {(n.level, n.lemma) for p in item.parses for n in p.nouns}
            for s in tree:
                assert 0.0 <= s.score <= 1.0
                assert s.clip_similarity is None or np.isfinite(s.clip_similarity)
                if s.source == "caption" and s.level != "scene":
                    assert s.score >= case.cfg.probability_threshold
                if s.source == "caption":
                    assert (s.level, s.label) in nouns and s.caption_index is not None and s.char_span is not None
                    assert item.parses[s.caption_index].nouns  # the caption it came from exists
                elif s.source == "lexicon":
                    assert s.level == "part" and case.cfg.lexicon_parts and s.caption_index is None
                    parent = tree[s.parent_id]
                    assert s.label in lexicon(parent.label) and s.score >= case.cfg.lexicon_part_threshold
                else:
                    assert s is tree[0] and s.label == "scene"


def test_counts_and_nms(labelled: list[tuple[Case, list[tuple[Segment, ...]]]]) -> None:
    for case, trees in labelled:
        for item, tree in zip(case.items, trees):
            for lemma in {s.label for s in tree if s.level == "object"}:
                mine = [s for s in tree if s.level == "object" and s.label == lemma]
                mentions = [n for p in item.parses for n in p.nouns if n.level == "object" and n.lemma == lemma]
                counts = [n.count for n in mentions if n.count]
                if counts:
                    assert len(mine) <= max(counts)
                elif not any(n.plural for n in mentions):
                    assert len(mine) == 1
                ious = rle_utils.iou_matrix([s.mask for s in mine], [s.mask for s in mine])
                assert (ious[~np.eye(len(mine), dtype=bool)] <= case.cfg.instance_nms_iou + 1e-9).all()


def test_identical_input_identical_output(labelled: list[tuple[Case, list[tuple[Segment, ...]]]]) -> None:
    for seed, (case, trees) in enumerate(labelled[:20]):
        assert label(random_case(seed)) == trees
        rows = [[s.to_row() for s in tree] for tree in trees]
        assert rows == [[s.to_row() for s in tree] for tree in label(case)]


def test_batch_equals_images_alone(labelled: list[tuple[Case, list[tuple[Segment, ...]]]]) -> None:
    for case, trees in labelled[:20]:
        matcher = RegionMatcher(HashEmbedder(), case.cfg, lexicon=lexicon)
        assert [matcher.label_batch([item])[0] for item in case.items] == trees


def test_build_tree_drops_orphan_parts_and_orders_levels() -> None:
    masks = MaskBatch.from_masks(np.stack([np.pad(np.ones((4, 4), bool), ((0, 4), (0, 4))),
                                           np.pad(np.ones((2, 2), bool), ((0, 6), (0, 6)))]))
    part = Match(1, "part", "tail", 0.7, 0.3, "caption", parent_match=1)
    orphan = Match(1, "part", "ear", 0.7, 0.3, "lexicon", parent_match=5)
    obj = Match(0, "object", "dog", 0.9, 0.4, "caption")
    tree = build_tree(root_segment((8, 8), "scene"), [part, obj, orphan], masks)
    assert [(s.segment_id, s.parent_id, s.level, s.label) for s in tree] == [
        (0, None, "scene", "scene"), (1, 0, "object", "dog"), (2, 1, "part", "tail")]
