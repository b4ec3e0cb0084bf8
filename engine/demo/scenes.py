"""Procedural demo scenes with exact scene/object/part ground truth, for machines with no model hub.

:func:`generate_scene` turns a seed into a :class:`DemoScene`: an (S, S, 3) uint8 RGB image of one of
:data:`SCENE_TYPES`, the visible (S, S) bool mask of every object and part instance (later objects
occlude earlier ones; parts link to their object) and five captions. :func:`write_dataset` and
:func:`ensure_dataset` write ``images/*.png``, ``manifest.jsonl`` and COCO ``instances.json``;
:func:`iter_region_samples` feeds region crops to demo-model training.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence, Union

import numpy as np
from PIL import Image

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.demo.backgrounds import PAINTERS, Layout
from ovlabel.engine.demo.objects import ASPECT, BASE_HEIGHT, BUILDERS, OBJECT_PARTS, Draft, Placement, Shape
from ovlabel.engine.demo.templates import ObjectFacts, PartFacts, make_captions

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1  # bump whenever drawing or captions change: invalidates ensure_dataset caches
SCENE_TYPES: tuple[str, ...] = tuple(PAINTERS)
OBJECT_CATEGORIES: tuple[str, ...] = tuple(BUILDERS)
PART_CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(p for parts in OBJECT_PARTS.values() for p in parts))
CATEGORY_IDS: dict[str, int] = {name: i for i, name in enumerate(OBJECT_CATEGORIES + PART_CATEGORIES, 1)}
MIN_OBJECT_FRACTION = 0.003  # objects with fewer visible pixels (as a fraction of the image) are dropped
MIN_PART_FRACTION = 0.001
IMAGES_DIR, MANIFEST_NAME, COCO_NAME, MARKER_NAME = "images", "manifest.jsonl", "instances.json", ".demo-complete.json"
PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Slot:
    """How one category appears in a scene type: instance counts to draw from (uniformly) and the zone
    its bases lie in."""

    category: str
    counts: tuple[int, ...]
    zone: str


SCENE_SPECS: dict[str, tuple[Slot, ...]] = {
    "beach": (Slot("sun", (0, 1), "sky"), Slot("boat", (1, 1, 2), "sea"), Slot("tree", (0, 1, 2), "ground"),
              Slot("person", (0, 1, 2, 3), "ground"), Slot("dog", (0, 1), "ground")),
    "street": (Slot("sun", (0, 1), "sky"), Slot("house", (1, 2, 3), "sidewalk"), Slot("tree", (0, 1, 2), "sidewalk"),
               Slot("person", (0, 1, 2), "sidewalk"), Slot("dog", (0, 0, 1), "sidewalk"),
               Slot("car", (1, 2, 3), "road")),
    "field": (Slot("sun", (0, 1), "sky"), Slot("house", (0, 1), "ground"), Slot("tree", (1, 2, 3), "ground"),
              Slot("person", (0, 1, 2), "ground"), Slot("dog", (0, 1, 2), "ground")),
    "kitchen": (Slot("refrigerator", (0, 1, 1), "wall_base"), Slot("table", (0, 1, 1), "floor"),
                Slot("cup", (1, 2, 3), "counter"), Slot("person", (0, 1, 1, 2), "floor"), Slot("dog", (0, 1), "floor")),
    "night sky": (Slot("moon", (1,), "sky"), Slot("house", (0, 1, 2), "ground"), Slot("tree", (0, 1, 2, 3), "ground"),
                  Slot("car", (0, 1), "ground"), Slot("person", (0, 1), "ground")),
}


@dataclass(frozen=True, eq=False)
class DemoInstance:
    """One object or part instance. ``mask``: visible pixels, (S, S) bool; ``extent``: the same before occlusion.

    ``parent_id`` is the owning object's ``instance_id`` for parts, None for objects; ``noun`` is the
    word captions use ('woman' for a person); ``colour`` the palette word or None when never named.
    """

    instance_id: int
    category: str
    level: str  # 'object' | 'part'
    parent_id: Optional[int]
    noun: str
    colour: Optional[str]
    mask: np.ndarray = field(repr=False)
    extent: np.ndarray = field(repr=False)

    @property
    def area(self) -> int:
        return int(self.mask.sum())


@dataclass(frozen=True, eq=False)
class DemoScene:
    """A generated scene: ``image`` (S, S, 3) uint8 RGB, instances (objects before their parts), 5 captions."""

    seed: int
    scene: str
    image: np.ndarray = field(repr=False)
    instances: tuple[DemoInstance, ...]
    captions: tuple[str, ...]

    @property
    def size(self) -> int:
        return int(self.image.shape[0])

    @property
    def image_id(self) -> str:
        return demo_image_id(self.seed)

    @property
    def objects(self) -> tuple[DemoInstance, ...]:
        return tuple(i for i in self.instances if i.level == "object")

    @property
    def parts(self) -> tuple[DemoInstance, ...]:
        return tuple(i for i in self.instances if i.level == "part")

    def instance(self, instance_id: int) -> DemoInstance:
        return self.instances[instance_id - 1]

    def categories(self) -> set[str]:
        return {i.category for i in self.instances}


def demo_image_id(seed: int) -> str:
    """'demo-000042': the manifest image_id and PNG stem of a seed."""
    return f"demo-{seed:06d}"


# --- generation --------------------------------------------------------------------------------


def generate_scene(seed: int, size: int = 256, scene: Optional[str] = None) -> DemoScene:
    """The scene for ``seed`` (a non-negative int); the same seed and size always give the same scene.

    The scene type cycles with the seed (``SCENE_TYPES[seed % 5]``) unless ``scene`` names one.
    """
    if seed < 0 or size < 32:
        raise ValueError(f"generate_scene needs seed >= 0 and size >= 32, got seed={seed}, size={size}")
    kind = scene or SCENE_TYPES[seed % len(SCENE_TYPES)]
    if kind not in SCENE_SPECS:
        raise ValueError(f"unknown scene type {kind!r}; choose one of {list(SCENE_TYPES)}")
    rng = np.random.default_rng([seed, size])
    layout = PAINTERS[kind](rng, size)
    drafts = _compose(rng, kind, layout, size)
    image, obj_map, part_map, fulls, part_refs = _render(rng, layout, drafts, size)
    instances = _instances(drafts, obj_map, part_map, fulls, part_refs)
    captions = make_captions(np.random.default_rng([seed, size, 1]), kind, _facts(instances))
    log.debug("demo scene %d: %s, %d instances", seed, kind, len(instances))
    return DemoScene(seed, kind, image, instances, captions)


def _compose(rng: np.random.Generator, kind: str, layout: Layout, size: int) -> list[Draft]:
    """Build every object of the scene, returned far-to-near (the order they are painted)."""
    placed: list[tuple[float, Draft, tuple[float, float, float, float]]] = []
    for slot in SCENE_SPECS[kind]:
        for _ in range(slot.counts[int(rng.integers(len(slot.counts)))]):
            placed.append(_place(rng, kind, slot, layout, size, placed))
    placed.sort(key=lambda item: item[0])
    return [draft for _, draft, _ in placed]


def _place(rng: np.random.Generator, kind: str, slot: Slot, layout: Layout, size: int,
           placed: Sequence[tuple[float, Draft, tuple[float, float, float, float]]]
           ) -> tuple[float, Draft, tuple[float, float, float, float]]:
    """(depth, draft, approximate XYXY box) of one new object; cups may stand on a table."""
    zone = layout.zones[slot.zone]
    tables = [(d, draft.surface) for d, draft, _ in placed if draft.surface is not None]
    if slot.category == "cup" and tables and rng.random() < 0.6:
        depth, (x0, x1, top) = tables[int(rng.integers(len(tables)))]
        base, cx, depth = top, float(rng.uniform(x0, x1)), depth + 0.01
        height = BASE_HEIGHT["cup"] * size * float(rng.uniform(0.8, 1.2))
    else:
        base = float(rng.uniform(zone.y_far, zone.y_near))
        height = BASE_HEIGHT[slot.category] * size * zone.scale_at(base) * float(rng.uniform(0.8, 1.2))
        if slot.zone == "sky":  # sun and moon stay inside the top edge
            base = max(base, height + 2.0)
        cx, depth = _choose_x(rng, height * ASPECT[slot.category], base, height, [b for _, _, b in placed], size), base
    draft = BUILDERS[slot.category](rng, Placement(cx, base, height, size, kind))
    width = height * ASPECT[slot.category]
    return depth, draft, (cx - width / 2, base - height, cx + width / 2, base)


def _choose_x(rng: np.random.Generator, width: float, base: float, height: float,
              boxes: Sequence[tuple[float, float, float, float]], size: int) -> float:
    """Best of four random centres by overlap with earlier objects (sometimes just the first: occlusion)."""
    candidates = rng.uniform(size * 0.06, size * 0.94, 4)
    if rng.random() < 0.3 or not boxes:
        return float(candidates[0])
    costs = [sum(_overlap((c - width / 2, base - height, c + width / 2, base), b) for b in boxes) for c in candidates]
    return float(candidates[int(np.argmin(costs))])


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(w, 0.0) * max(h, 0.0)


# --- rendering ---------------------------------------------------------------------------------


def _render(rng: np.random.Generator, layout: Layout, drafts: Sequence[Draft], size: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray], list[tuple[int, Shape]]]:
    """Paint drafts in order. Returns the (S, S, 3) uint8 image, (S, S) int32 maps of the visible object
    (1-based draft index) and part (1-based index into ``part_refs``, 0 = body or background), each
    object's pre-occlusion mask, and ``part_refs`` = [(object index, part shape)]."""
    canvas = layout.image.copy()
    obj_map = np.zeros((size, size), np.int32)
    part_map = np.zeros((size, size), np.int32)
    fulls: list[np.ndarray] = []
    part_refs: list[tuple[int, Shape]] = []
    for oi, draft in enumerate(drafts, 1):
        full = np.logical_or.reduce([s.mask for s in draft.shapes])
        fulls.append(full)
        obj_map[full], part_map[full] = oi, 0
        for shape in draft.shapes:
            _paint_shape(canvas, shape, layout.dim)
            if shape.part is None:
                part_map[shape.mask] = 0
            else:
                part_refs.append((oi, shape))
                part_map[shape.mask] = len(part_refs)
    _outline(canvas, obj_map, part_map)
    return _finish(rng, canvas), obj_map, part_map, fulls, part_refs


def _paint_shape(canvas: np.ndarray, shape: Shape, dim: float) -> None:
    """Fill with a top-lit vertical shading, then the decorations (in place on the (S, S, 3) canvas)."""
    ys, xs = np.nonzero(shape.mask)
    if len(ys) == 0:
        return
    k = 1.0 if shape.glow else dim
    t = (ys - ys.min()) / max(1, int(ys.max() - ys.min()))
    canvas[ys, xs] = np.asarray(shape.colour.rgb, np.float32) * k * (1.08 - 0.16 * t)[:, None].astype(np.float32)
    for detail, colour in shape.details:
        canvas[detail & shape.mask] = np.asarray(colour.rgb, np.float32) * k


def _outline(canvas: np.ndarray, obj_map: np.ndarray, part_map: np.ndarray) -> None:
    """Darken object pixels on a boundary between instances (a soft cartoon outline)."""
    key = obj_map.astype(np.int64) * 100_000 + part_map
    edge = np.zeros(key.shape, bool)
    dx, dy = key[:, 1:] != key[:, :-1], key[1:] != key[:-1]
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    edge[1:] |= dy
    edge[:-1] |= dy
    canvas[edge & (obj_map > 0)] *= 0.78


def _finish(rng: np.random.Generator, canvas: np.ndarray) -> np.ndarray:
    """Low-frequency lighting and pixel noise; (S, S, 3) float -> uint8."""
    size = canvas.shape[0]
    low = Image.fromarray(rng.normal(0.0, 1.0, (6, 6)).astype(np.float32)).resize((size, size), Image.BILINEAR)
    light = 1.0 + 0.05 * np.asarray(low, dtype=np.float32)
    noisy = canvas * light[:, :, None] + rng.normal(0.0, 3.0, canvas.shape).astype(np.float32)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


# --- ground truth ------------------------------------------------------------------------------


def _instances(drafts: Sequence[Draft], obj_map: np.ndarray, part_map: np.ndarray, fulls: Sequence[np.ndarray],
               part_refs: Sequence[tuple[int, Shape]]) -> tuple[DemoInstance, ...]:
    """Visible instances above the area thresholds, each object followed by its parts, ids 1..N."""
    n_pixels = obj_map.size
    obj_area = np.bincount(obj_map.ravel(), minlength=len(drafts) + 1)
    part_area = np.bincount(part_map.ravel(), minlength=len(part_refs) + 1)
    parts_of: dict[int, list[int]] = {}
    for pi, (oi, _) in enumerate(part_refs, 1):
        parts_of.setdefault(oi, []).append(pi)
    out: list[DemoInstance] = []
    for oi, draft in enumerate(drafts, 1):
        if obj_area[oi] < MIN_OBJECT_FRACTION * n_pixels:
            continue
        oid = len(out) + 1
        out.append(DemoInstance(oid, draft.category, "object", None, draft.noun, draft.colour, obj_map == oi,
                                fulls[oi - 1]))
        for pi in parts_of.get(oi, []):
            if part_area[pi] >= MIN_PART_FRACTION * n_pixels:
                shape = part_refs[pi - 1][1]
                out.append(DemoInstance(len(out) + 1, str(shape.part), "part", oid, str(shape.part), shape.colour.name,
                                        part_map == pi, shape.mask))
    return tuple(out)


def _facts(instances: Sequence[DemoInstance]) -> list[ObjectFacts]:
    """What captions may mention: visible objects with their visible parts grouped by category."""
    facts = []
    for obj in (i for i in instances if i.level == "object"):
        groups: dict[str, list[DemoInstance]] = {}
        for part in (i for i in instances if i.parent_id == obj.instance_id):
            groups.setdefault(part.category, []).append(part)
        parts = tuple(PartFacts(cat, len(ps), ps[0].colour) for cat, ps in groups.items())
        facts.append(ObjectFacts(obj.category, obj.noun, obj.colour, parts))
    return facts


def iter_region_samples(scene: DemoScene, levels: Sequence[str] = ("scene", "object", "part")
                        ) -> Iterator[tuple[np.ndarray, str]]:
    """(mask, label) pairs for crop training: the whole image labelled with the scene type (an all-True
    (S, S) mask), then every object and part instance with its visible (S, S) bool mask and category.

    Crop them with :func:`ovlabel.engine.matching.crops.crop_region` exactly as inference does.
    """
    if "scene" in levels:
        yield np.ones(scene.image.shape[:2], dtype=bool), scene.scene
    for inst in scene.instances:
        if inst.level in levels:
            yield inst.mask, inst.category


# --- writers -----------------------------------------------------------------------------------


def write_dataset(out_dir: PathLike, seeds: Iterable[int], size: int = 256) -> Path:
    """Write ``images/demo-<seed>.png``, ``manifest.jsonl`` and COCO ``instances.json`` under ``out_dir``."""
    out = Path(out_dir)
    (out / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    coco = _coco_skeleton(size)
    rows: list[str] = []
    for index, seed in enumerate(_unique_seeds(seeds), 1):
        scene = generate_scene(seed, size)
        rel = f"{IMAGES_DIR}/{scene.image_id}.png"
        Image.fromarray(scene.image).save(out / rel, compress_level=1)
        rows.append(json.dumps({"image": rel, "captions": list(scene.captions), "image_id": scene.image_id}))
        coco["images"].append(_coco_image(index, rel, scene))
        coco["annotations"].extend(_coco_annotations(scene, index, len(coco["annotations"]) + 1))
    _atomic_write(out / COCO_NAME, json.dumps(coco))
    _atomic_write(out / MANIFEST_NAME, "".join(row + "\n" for row in rows))
    log.info("wrote %d demo scenes (%dpx) to %s", len(rows), size, out)
    return out


def ensure_dataset(cache_dir: PathLike, seeds: Iterable[int], size: int = 256) -> Path:
    """:func:`write_dataset` unless ``cache_dir`` already holds a complete dataset with the same seeds,
    size and generator version (a marker written last, so interrupted runs are redone)."""
    out = Path(cache_dir)
    seed_list = _unique_seeds(seeds)
    params = _marker_params(seed_list, size)
    marker = out / MARKER_NAME
    if _read_json(marker) == params:
        log.info("demo dataset in %s is up to date (%d scenes); skipping generation", out, len(seed_list))
        return out
    marker.unlink(missing_ok=True)
    write_dataset(out, seed_list, size)
    _remove_stale_images(out, seed_list)
    _atomic_write(marker, json.dumps(params))
    return out


def _unique_seeds(seeds: Iterable[int]) -> list[int]:
    out = list(dict.fromkeys(int(s) for s in seeds))
    if any(s < 0 for s in out):
        raise ValueError("demo seeds must be non-negative integers")
    return out


def _marker_params(seeds: Sequence[int], size: int) -> dict[str, Any]:
    digest = hashlib.sha1(json.dumps(list(seeds)).encode("ascii")).hexdigest()
    return {"generator_version": GENERATOR_VERSION, "size": int(size), "count": len(seeds), "seeds_sha1": digest}


def _read_json(path: Path) -> Optional[Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _remove_stale_images(out: Path, seeds: Sequence[int]) -> None:
    keep = {f"{demo_image_id(s)}.png" for s in seeds}
    for png in (out / IMAGES_DIR).glob("demo-*.png"):
        if png.name not in keep:
            png.unlink()


def _coco_skeleton(size: int) -> dict[str, Any]:
    categories = [{"id": CATEGORY_IDS[n], "name": n, "supercategory": "object"} for n in OBJECT_CATEGORIES]
    categories += [{"id": CATEGORY_IDS[n], "name": n, "supercategory": "part"} for n in PART_CATEGORIES]
    info = {"description": "ovlabel procedural demo world", "generator_version": GENERATOR_VERSION,
            "size": size, "scene_types": list(SCENE_TYPES)}
    return {"info": info, "images": [], "annotations": [], "categories": categories}


def _coco_image(index: int, rel: str, scene: DemoScene) -> dict[str, Any]:
    return {"id": index, "file_name": rel, "width": scene.size, "height": scene.size, "scene": scene.scene,
            "image_key": scene.image_id, "seed": scene.seed}


def _coco_annotations(scene: DemoScene, image_index: int, first_id: int) -> list[dict[str, Any]]:
    """One COCO annotation per instance; ``parent_id`` is the parent's annotation id (None for objects)."""
    if not scene.instances:
        return []
    rles = rle_utils.encode_many(np.stack([inst.mask for inst in scene.instances]))
    anns = []
    for k, (inst, rle) in enumerate(zip(scene.instances, rles)):
        parent = None if inst.parent_id is None else first_id + inst.parent_id - 1
        anns.append({"id": first_id + k, "image_id": image_index, "category_id": CATEGORY_IDS[inst.category],
                     "segmentation": rle, "area": inst.area, "bbox": list(rle_utils.bbox_xywh(rle)), "iscrowd": 0,
                     "parent_id": parent, "level": inst.level, "colour": inst.colour})
    return anns
