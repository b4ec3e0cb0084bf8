"""Small hand-made runs for the readers' tests: real images and labels shards of today's schema (version 2:
caption words only) or of tomorrow's (version 3: segments carry ``class_name``), with known masks.

Run layout: ``folder/images/NAME.png`` and ``folder/out/labels/part-00000.parquet`` (rows in row groups of
two, so a stream can be split by row group), optionally ``folder/out/classes.json``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from ovlabel.engine import rle as rle_utils
from ovlabel.schemas import KIND_KEY, LABELS_SCHEMA, SEGMENT_TYPE, VERSION_KEY

H, W = 48, 64
# per image: caption, scene word, objects (word, class, box), parts (word, class, box, index of its object)
IMAGES = [
    ("A puppy with a tail on the grass.", "grass", [("puppy", "dog", (4, 8, 30, 40))],
     [("tail", "tail", (4, 30, 12, 40), 0)]),
    ("A car and a dog on a street.", "street", [("car", "car", (34, 4, 62, 30)), ("dog", "dog", (2, 10, 20, 44))],
     [("wheel", "wheel", (36, 22, 46, 30), 0)]),
    ("An automobile near a house.", "street", [("automobile", "car", (10, 10, 50, 40))], []),
    ("A house.", "field", [("house", "house", (0, 0, 40, 30))], [("door", "door", (10, 15, 20, 30), 0)]),
    ("A dog.", "grass", [("dog", "dog", (20, 12, 44, 40))], []),
]


def box_mask(box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    mask = np.zeros((H, W), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _segment(sid: int, parent: Optional[int], level: str, word: str, cls: str, mask: np.ndarray, caption: str,
             score: float) -> dict[str, Any]:
    rle = rle_utils.encode(mask)
    start = caption.lower().find(word)
    return {"segment_id": sid, "parent_id": parent, "level": level, "label": word, "class_name": cls,
            "phrase": word, "caption_index": 0 if start >= 0 else None,
            "char_span": [start, start + len(word)] if start >= 0 else None, "score": score, "clip_similarity": 0.3,
            "source": "caption" if start >= 0 else "lexicon", "mask": rle, "bbox_xywh": list(rle_utils.bbox_xywh(rle)),
            "area": int(mask.sum()), "predicted_iou": None, "stability_score": None}


def image_segments(k: int) -> list[dict[str, Any]]:
    """The segment tree of image ``k``: root, objects, parts (ids in that order)."""
    caption, scene, objects, parts = IMAGES[k]
    segments = [_segment(0, None, "scene", scene, scene, np.ones((H, W), bool), caption, 1.0)]
    for word, cls, box in objects:
        segments.append(_segment(len(segments), 0, "object", word, cls, box_mask(box), caption, 0.9 - 0.1 * len(segments)))
    for word, cls, box, parent in parts:
        segments.append(_segment(len(segments), parent + 1, "part", word, cls, box_mask(box), caption, 0.7))
    return segments


COLOURS = {"dog": (200, 120, 40), "car": (40, 90, 220), "house": (230, 230, 60), "tail": (120, 40, 20),
           "wheel": (20, 20, 20), "door": (160, 30, 160)}


def draw_image(k: int) -> np.ndarray:
    """Image ``k``: a grey background with its objects, then its parts, painted in their class colour (so a toy
    model has something to learn)."""
    img = np.full((H, W, 3), 90, np.uint8)
    for _, cls, box in IMAGES[k][2]:
        img[box_mask(box)] = COLOURS[cls]
    for _, cls, box, _ in IMAGES[k][3]:
        img[box_mask(box)] = COLOURS[cls]
    return img


def schema(version: str) -> pa.Schema:
    """The labels schema as schema ``version`` writes it: 2 has no class_name, 3 adds it to segments (built from
    today's LABELS_SCHEMA either way, so these stay what they say when the shipped version moves on)."""
    fields = [f for f in SEGMENT_TYPE if f.name != "class_name"]
    if version == "3":
        fields.append(pa.field("class_name", pa.string()))
    seg = pa.field("segments", pa.list_(pa.field("item", pa.struct(fields), nullable=False)), nullable=False)
    out = pa.schema([seg if f.name == "segments" else f for f in LABELS_SCHEMA])
    return out.with_metadata({VERSION_KEY: version.encode(), KIND_KEY: b"labels"})


def labels_rows(folder: Path, version: str = "2", count: int = len(IMAGES)) -> list[dict[str, Any]]:
    rows = []
    for k in range(count):
        segments = image_segments(k)
        if version != "3":
            segments = [{key: v for key, v in s.items() if key != "class_name"} for s in segments]
        rows.append({"image_id": f"img{k}", "image_uri": str(folder / "images" / f"img{k}.png"), "width": W,
                     "height": H, "captions": [IMAGES[k][0]], "scene": IMAGES[k][1], "segments": segments,
                     "provenance": {"run_id": "r", "schema_version": version}, "row_index": k, "row_hash": str(k)})
    return rows


def write_labels_run(folder: Path, version: str = "2", count: int = len(IMAGES),
                     classes: Optional[dict[str, int]] = None) -> Path:
    """A run of ``count`` images under ``folder``; returns its output folder."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for k in range(count):
        Image.fromarray(draw_image(k)).save(folder / "images" / f"img{k}.png")
    out = folder / "out"
    (out / "labels").mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(labels_rows(folder, version, count), schema=schema(version))
    pq.write_table(table, out / "labels" / "part-00000.parquet", row_group_size=2)
    if classes is not None:
        listed = [{"id": i, "name": n, "counts": {}} for n, i in classes.items()]
        (out / "classes.json").write_text(json.dumps({"classes": listed, "vocabulary": "test"}))
    return out


def classes_v3() -> set[str]:
    return {cls for _, scene, objects, parts in IMAGES for cls in [scene, *(o[1] for o in objects),
                                                                    *(p[1] for p in parts)]}


def classes_v2() -> set[str]:
    return {word for _, scene, objects, parts in IMAGES for word in [scene, *(o[0] for o in objects),
                                                                      *(p[0] for p in parts)]}
