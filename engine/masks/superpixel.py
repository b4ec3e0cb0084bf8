"""Weights-free class-agnostic mask proposals: selective search over Felzenszwalb regions.

For CPU runs and offline use. The image is shrunk to at most ``max_side`` and, for every colour
space x Felzenszwalb scale, over-segmented once. Each over-segmentation is then grouped
hierarchically once per similarity (colour / texture / size / fill terms, as in Uijlings et al.,
"Selective Search for Object Recognition", IJCV 2013): the most similar adjacent pair is merged
until one region is left, and every region of the hierarchy (leaves and merges) is a proposal, so
both parts and wholes appear.

Bookkeeping stays on label images: the leaves of a hierarchy are numbered in depth-first order,
so every hierarchy node is an interval ``[lo, hi)`` of leaf positions and its mask is
``lo <= position_image < hi`` (no per-region pixel lists). Deduplication compares such masks on a
subsampled grid, only for pairs whose area ratio and box overlap allow the IoU threshold.

Proposals of all hierarchies are ranked selective-search style (position from the top of the
hierarchy times a seeded random jitter, which interleaves the strategies), deduplicated
(IoU > ``dedupe_iou``), capped at ``max_proposals`` and upsampled (nearest) to the image size.
Scores are unknown: predicted_iou, stability_score and points are NaN.

The defaults (HSV + Lab, k = 100 and 300, fill-only similarity, 320 px) come from
``scripts/eval_superpixel.py`` on 80 COCO images: recall@0.5 of instances >= 1% of the image
0.72 with 300 proposals, against 0.54 for the classic CTSF + TSF pair at k = 50/100, and about
0.5 s of CPU per 640x480 image.
"""
from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from scipy import ndimage
from skimage.color import rgb2hsv, rgb2lab
from skimage.segmentation import felzenszwalb

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.masks.settings import SuperpixelConfig
from ovlabel.engine.errors import InputError
from ovlabel.engine.masks.data import MaskBatch

log = logging.getLogger(__name__)

COLOUR_BINS = 25
ORIENTATION_BINS = 8
MAGNITUDE_EDGES = (0.02, 0.08, 0.2)  # gradient magnitude bins (channels in [0, 1])
DEDUPE_PIXELS = 20_000  # deduplication compares masks on a grid of at most this many cells
ENCODE_CHUNK = 32  # masks encoded per pycocotools call (bounds the full-size bool stack)

# weights of the (colour, texture, size, fill) similarity terms
SIMILARITY_WEIGHTS: dict[str, tuple[float, float, float, float]] = {
    "ctsf": (1.0, 1.0, 1.0, 1.0),
    "tsf": (0.0, 1.0, 1.0, 1.0),
    "cs": (1.0, 0.0, 1.0, 0.0),
    "ts": (0.0, 1.0, 1.0, 0.0),
    "f": (0.0, 0.0, 0.0, 1.0),
    "s": (0.0, 0.0, 1.0, 0.0),
}


@dataclass(frozen=True)
class _Regions:
    """Felzenszwalb leaves of one segmentation and their features (n leaves).

    labels (h, w) int64 in [0, n); sizes (n,) float64 pixel counts; boxes (n, 4) float64
    y0, x0, y1, x1 (exclusive); colour (n, c * COLOUR_BINS) and texture (n, c * T) float64
    histograms of the c colour channels, rows L1-normalised, or (n, 0) when no similarity uses
    them; pairs (E, 2) int64 adjacent leaves, a < b.
    """

    labels: np.ndarray
    sizes: np.ndarray
    boxes: np.ndarray
    colour: np.ndarray
    texture: np.ndarray
    pairs: np.ndarray

    @property
    def n(self) -> int:
        return len(self.sizes)


@dataclass(frozen=True)
class _Hierarchy:
    """One grouping of one segmentation; m = 2n - r nodes (n leaves, then the merges in order).

    region: index of the segmentation; order (n,) the leaves in depth-first order;
    lo, hi (m,) leaf-position interval of every node; area (m,) pixels; boxes (m, 4) float64
    y0, x0, y1, x1 (exclusive); priority (m,) float64, 1 for the last merge and larger further
    down (selective search's hierarchy position).
    """

    region: int
    order: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    area: np.ndarray
    boxes: np.ndarray
    priority: np.ndarray


# ----------------------------------------------------------------------------------- image prep


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) -> (H, W, 3) uint8."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise InputError(f"superpixel masks need an (H, W, 3) RGB image, got an array of shape {img.shape}")
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


def _working_image(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (h, w, 3) uint8 with max(h, w) <= max_side (never enlarged)."""
    h, w = rgb.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return rgb
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))


def _colour_image(rgb: np.ndarray, space: str) -> np.ndarray:
    """(h, w, 3) uint8 RGB -> (h, w, c) float64 in [0, 1] in the named colour space."""
    f = rgb.astype(np.float64) / 255.0
    if space == "rgb":
        return f
    if space == "hsv":
        return rgb2hsv(rgb)
    if space == "hue":
        return rgb2hsv(rgb)[:, :, :1]
    if space == "intensity":
        return f.mean(axis=2, keepdims=True)
    if space == "lab":
        lab = rgb2lab(rgb)
        return np.clip(np.stack([lab[..., 0] / 100.0, (lab[..., 1] + 128.0) / 255.0,
                                 (lab[..., 2] + 128.0) / 255.0], axis=2), 0.0, 1.0)
    if space == "rgi":
        total = f.sum(axis=2, keepdims=True)
        rg = np.divide(f[:, :, :2], total, out=np.full_like(f[:, :, :2], 1 / 3), where=total > 0)
        return np.concatenate([rg, total / 3.0], axis=2)
    raise ValueError(f"unknown colour space {space!r}")


def _texture_bins(colour: np.ndarray) -> np.ndarray:
    """(h, w, c) float -> (h, w, c) int64 texture bin per pixel and channel.

    Bin = gradient orientation (ORIENTATION_BINS) x gradient magnitude (len(MAGNITUDE_EDGES) + 1),
    from Gaussian derivatives (sigma 1), standing in for selective search's oriented filter bank.
    """
    out = np.empty(colour.shape, dtype=np.int64)
    n_mag = len(MAGNITUDE_EDGES) + 1
    for c in range(colour.shape[2]):
        ch = colour[:, :, c]
        gy = ndimage.gaussian_filter(ch, 1.0, order=(1, 0))
        gx = ndimage.gaussian_filter(ch, 1.0, order=(0, 1))
        ori = ((np.arctan2(gy, gx) + np.pi) / (2 * np.pi) * ORIENTATION_BINS).astype(np.int64) % ORIENTATION_BINS
        mag = np.searchsorted(np.asarray(MAGNITUDE_EDGES), np.hypot(gx, gy))
        out[:, :, c] = ori * n_mag + mag
    return out


# ------------------------------------------------------------------------------------ leaves


def _histograms(labels: np.ndarray, bins: np.ndarray, n_bins: int, n: int) -> np.ndarray:
    """labels (h, w), bins (h, w, c) in [0, n_bins) -> (n, c * n_bins) L1-normalised rows."""
    flat = labels.reshape(-1)
    hists = [np.bincount(flat * n_bins + bins[:, :, c].reshape(-1), minlength=n * n_bins).reshape(n, n_bins)
             for c in range(bins.shape[2])]
    h = np.concatenate(hists, axis=1).astype(np.float64)
    return h / np.maximum(h.sum(axis=1, keepdims=True), 1.0)


def _boxes(labels: np.ndarray, n: int) -> np.ndarray:
    """(h, w) labels in [0, n) -> (n, 4) float64 y0, x0, y1, x1 (exclusive)."""
    slices = ndimage.find_objects(labels + 1, max_label=n)
    return np.asarray([[s[0].start, s[1].start, s[0].stop, s[1].stop] for s in slices], dtype=np.float64)


def _adjacent_pairs(labels: np.ndarray, n: int) -> np.ndarray:
    """(h, w) labels -> (E, 2) int64 unique pairs a < b of 8-connected neighbouring leaves."""
    views = [(labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :]),
             (labels[:-1, :-1], labels[1:, 1:]), (labels[:-1, 1:], labels[1:, :-1])]
    codes = []
    for a, b in views:
        diff = a != b
        lo, hi = np.minimum(a[diff], b[diff]), np.maximum(a[diff], b[diff])
        codes.append(lo * n + hi)
    code = np.unique(np.concatenate(codes)) if codes else np.zeros(0, np.int64)
    return np.stack([code // n, code % n], axis=1).astype(np.int64)


def _dense(labels: np.ndarray) -> np.ndarray:
    """(h, w) non-negative labels -> (h, w) int64 labels renumbered 0..n-1 in label order."""
    labels = labels.astype(np.int64, copy=False)
    present = np.bincount(labels.reshape(-1)) > 0
    if present.all():
        return labels
    return (np.cumsum(present) - 1)[labels]


def _regions(colour: np.ndarray, texture_bins: np.ndarray | None, scale: float, sigma: float,
             min_size: int, colour_histograms: bool) -> _Regions:
    """One Felzenszwalb over-segmentation of a (h, w, c) [0, 1] image and its leaf features.

    Colour histograms are computed only when ``colour_histograms`` and texture histograms only when
    ``texture_bins`` (h, w, c) is given, i.e. when a similarity uses them; otherwise they are (n, 0).
    """
    labels = _dense(felzenszwalb(colour, scale=scale, sigma=sigma, min_size=min_size, channel_axis=-1))
    n = int(labels.max()) + 1
    colour_hist = texture_hist = np.zeros((n, 0))
    if colour_histograms:
        colour_bins = np.minimum((colour * COLOUR_BINS).astype(np.int64), COLOUR_BINS - 1)
        colour_hist = _histograms(labels, colour_bins, COLOUR_BINS, n)
    if texture_bins is not None:
        texture_hist = _histograms(labels, texture_bins, ORIENTATION_BINS * (len(MAGNITUDE_EDGES) + 1), n)
    return _Regions(labels=labels, sizes=np.bincount(labels.reshape(-1), minlength=n).astype(np.float64),
                    boxes=_boxes(labels, n), colour=colour_hist, texture=texture_hist,
                    pairs=_adjacent_pairs(labels, n))


# ---------------------------------------------------------------------------------- grouping


class _Grouping:
    """Greedy hierarchical grouping of one segmentation under one similarity (node arrays of size 2n)."""

    def __init__(self, regions: _Regions, weights: tuple[float, float, float, float]) -> None:
        n = regions.n
        self.n = n
        self.weights = weights
        self.image_area = float(regions.sizes.sum())
        self.sizes = np.zeros(2 * n)
        self.sizes[:n] = regions.sizes
        self.boxes = np.zeros((2 * n, 4))
        self.boxes[:n] = regions.boxes
        self.colour = np.zeros((2 * n, regions.colour.shape[1]))
        self.colour[:n] = regions.colour
        self.texture = np.zeros((2 * n, regions.texture.shape[1]))
        self.texture[:n] = regions.texture
        self.children = np.zeros((n, 2), dtype=np.int64)  # children of merge node n + i
        self.neighbours: list[set[int]] = [set() for _ in range(2 * n)]
        for a, b in regions.pairs.tolist():
            self.neighbours[a].add(b)
            self.neighbours[b].add(a)

    def similarity(self, a: np.ndarray | int, b: np.ndarray) -> np.ndarray:
        """Similarity of node(s) ``a`` to nodes ``b`` (E,) -> (E,) float64."""
        wc, wt, ws, wf = self.weights
        sim = np.zeros(len(b))
        if wc:
            sim += wc * np.minimum(self.colour[a], self.colour[b]).sum(axis=-1)
        if wt:
            sim += wt * np.minimum(self.texture[a], self.texture[b]).sum(axis=-1)
        both = self.sizes[a] + self.sizes[b]
        if ws:
            sim += ws * (1.0 - both / self.image_area)
        if wf:
            ba, bb = self.boxes[a], self.boxes[b]
            box = ((np.maximum(ba[..., 2], bb[..., 2]) - np.minimum(ba[..., 0], bb[..., 0]))
                   * (np.maximum(ba[..., 3], bb[..., 3]) - np.minimum(ba[..., 1], bb[..., 1])))
            sim += wf * (1.0 - (box - both) / self.image_area)
        return sim

    def _merge(self, a: int, b: int, t: int) -> None:
        sa, sb = self.sizes[a], self.sizes[b]
        self.sizes[t] = sa + sb
        self.colour[t] = (sa * self.colour[a] + sb * self.colour[b]) / (sa + sb)
        self.texture[t] = (sa * self.texture[a] + sb * self.texture[b]) / (sa + sb)
        self.boxes[t, :2] = np.minimum(self.boxes[a, :2], self.boxes[b, :2])
        self.boxes[t, 2:] = np.maximum(self.boxes[a, 2:], self.boxes[b, 2:])
        self.children[t - self.n] = (a, b)
        nb = (self.neighbours[a] | self.neighbours[b]) - {a, b}
        for x in nb:
            self.neighbours[x] -= {a, b}
            self.neighbours[x].add(t)
        self.neighbours[t] = nb
        self.neighbours[a] = self.neighbours[b] = set()

    def run(self) -> int:
        """Merge until no adjacent pair is left; returns the number of nodes (n + merges)."""
        n = self.n
        pairs = [(a, b) for a in range(n) for b in sorted(self.neighbours[a]) if a < b]
        if pairs:
            arr = np.asarray(pairs, dtype=np.int64)
            sims = self.similarity(arr[:, 0], arr[:, 1])
            heap = [(-s, a, b) for s, (a, b) in zip(sims.tolist(), pairs)]
        else:
            heap = []
        heapq.heapify(heap)
        alive = np.ones(2 * n, dtype=bool)
        t = n
        while heap:
            _, a, b = heapq.heappop(heap)
            if not (alive[a] and alive[b]):
                continue
            self._merge(a, b, t)
            alive[a] = alive[b] = False
            nb = np.asarray(sorted(self.neighbours[t]), dtype=np.int64)
            for s, x in zip(self.similarity(t, nb).tolist(), nb.tolist()):
                heapq.heappush(heap, (-s, x, t))
            t += 1
        return t


def _hierarchy(regions: _Regions, region_index: int, weights: tuple[float, float, float, float]) -> _Hierarchy:
    """Group one segmentation; number leaves depth-first so every node is a leaf interval."""
    grouping = _Grouping(regions, weights)
    m = grouping.run()
    n = regions.n
    children = grouping.children[: m - n]
    is_child = np.zeros(m, dtype=bool)
    is_child[children.reshape(-1)] = True
    roots = np.nonzero(~is_child)[0]
    order: list[int] = []
    stack = roots[::-1].tolist()
    while stack:
        x = stack.pop()
        if x < n:
            order.append(x)
        else:
            a, b = children[x - n]
            stack.extend((int(b), int(a)))
    lo = np.zeros(m, dtype=np.int64)
    lo[np.asarray(order, dtype=np.int64)] = np.arange(n)
    hi = lo + 1
    for i, (a, b) in enumerate(children.tolist()):
        lo[n + i], hi[n + i] = min(lo[a], lo[b]), max(hi[a], hi[b])
    return _Hierarchy(region=region_index, order=np.asarray(order, dtype=np.int64), lo=lo, hi=hi,
                      area=grouping.sizes[:m].copy(), boxes=grouping.boxes[:m].copy(),
                      priority=np.arange(m, 0, -1, dtype=np.float64))


# ------------------------------------------------------------------------------- selection


class _DedupeMasks:
    """Node masks on a subsampled working grid (at most DEDUPE_PIXELS cells): every ``stride``-th
    pixel of every ``stride``-th row, from (0, 0)."""

    def __init__(self, regions: Sequence[_Regions], hierarchies: Sequence[_Hierarchy]) -> None:
        self.regions = regions
        self.hierarchies = hierarchies
        h, w = regions[0].labels.shape
        self.stride = max(1, int(np.ceil(np.sqrt(h * w / DEDUPE_PIXELS))))
        self._positions: dict[int, np.ndarray] = {}

    def _position(self, s: int) -> np.ndarray:
        """(h', w') int64 depth-first leaf position of every grid cell in hierarchy ``s``."""
        if s not in self._positions:
            hier = self.hierarchies[s]
            self._positions[s] = _leaf_positions(hier)[self.regions[hier.region].labels[::self.stride, ::self.stride]]
        return self._positions[s]

    def mask(self, s: int, u: int) -> np.ndarray:
        """(h', w') bool grid mask of node ``u`` of hierarchy ``s``."""
        p, hier = self._position(s), self.hierarchies[s]
        return (p >= hier.lo[u]) & (p < hier.hi[u])

    def cells(self, boxes: np.ndarray) -> np.ndarray:
        """(K,) grid cells inside each of (K, 4) boxes y0, x0, y1, x1 (exclusive; empty boxes allowed)."""
        first = np.ceil(boxes / self.stride)
        return np.maximum(first[:, 2] - first[:, 0], 0) * np.maximum(first[:, 3] - first[:, 1], 0)


def _leaf_positions(hier: _Hierarchy) -> np.ndarray:
    """(n,) int64 depth-first position of every leaf."""
    pos = np.empty(len(hier.order), dtype=np.int64)
    pos[hier.order] = np.arange(len(hier.order))
    return pos


def _ranked_candidates(hierarchies: Sequence[_Hierarchy], min_area: float, seed: int) -> np.ndarray:
    """(K, 2) int64 (hierarchy, node) of every node >= min_area, best first.

    Selective-search ranking: hierarchy position (1 = top) times a seeded uniform jitter, which
    interleaves the hierarchies; ties broken by hierarchy then node for determinism.
    """
    rng = np.random.default_rng(seed)
    rows, keys = [], []
    for s, h in enumerate(hierarchies):
        nodes = np.nonzero(h.area >= min_area)[0]
        rows.append(np.stack([np.full(len(nodes), s), nodes], axis=1))
        keys.append(h.priority[nodes] * rng.random(len(nodes)))
    cand = np.concatenate(rows).astype(np.int64)
    return cand[np.argsort(np.concatenate(keys), kind="stable")]


def _select(candidates: np.ndarray, hierarchies: Sequence[_Hierarchy], grid: _DedupeMasks,
            cap: int, dedupe_iou: float) -> list[tuple[int, int]]:
    """Walk ranked candidates, skipping any with grid IoU > dedupe_iou to a kept one; at most ``cap``.

    Only kept proposals that could pass are compared: area ratio above ``dedupe_iou`` and, on the
    grid, cells in the two boxes' overlap over the larger mask's cells above it (both upper bounds
    of the IoU).
    """
    kept: list[tuple[int, int]] = []
    kept_masks: list[np.ndarray] = []
    kept_area, kept_cells, kept_boxes = np.zeros(cap), np.zeros(cap), np.zeros((cap, 4))
    for s, u in candidates.tolist():
        hier = hierarchies[s]
        area, box = hier.area[u], hier.boxes[u]
        n = len(kept)
        near = np.nonzero((kept_area[:n] >= dedupe_iou * area) & (dedupe_iou * kept_area[:n] <= area))[0]
        mask = grid.mask(s, u)
        cells = float(np.count_nonzero(mask))
        if len(near):
            other = kept_boxes[near]
            overlap = np.concatenate([np.maximum(other[:, :2], box[:2]), np.minimum(other[:, 2:], box[2:])], axis=1)
            bound = grid.cells(overlap) / np.maximum(np.maximum(kept_cells[near], cells), 1.0)
            near = near[(bound > dedupe_iou) | ((kept_cells[near] == 0) & (cells == 0))]
            if any(_iou(mask, kept_masks[k]) > dedupe_iou for k in near.tolist()):
                continue
        kept_area[n], kept_cells[n], kept_boxes[n] = area, cells, box
        kept.append((s, u))
        kept_masks.append(mask)
        if len(kept) == cap:
            break
    return kept


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two bool masks (1.0 when both are empty)."""
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


def _upsample_index(full: int, work: int) -> np.ndarray:
    """Nearest-neighbour source index (full,) into an axis of length ``work``."""
    return np.minimum(((np.arange(full) + 0.5) * work / full).astype(np.int64), work - 1)


def _encode(kept: Sequence[tuple[int, int]], regions: Sequence[_Regions], hierarchies: Sequence[_Hierarchy],
            size: tuple[int, int]) -> list[dict[str, Any]]:
    """Full-size (H, W) RLEs of the kept nodes.

    Per hierarchy, the leaf-position image is upsampled (nearest) once, transposed to (W, H) so that
    each mask is written straight into pycocotools' Fortran-ordered (H, W, N) uint8 input; a node is
    the single unsigned test ``position - lo < hi - lo``.
    """
    h, w = size
    positions: dict[int, np.ndarray] = {}
    rles: list[dict[str, Any]] = []
    for start in range(0, len(kept), ENCODE_CHUNK):
        chunk = kept[start:start + ENCODE_CHUNK]
        stack = np.empty((h, w, len(chunk)), dtype=np.uint8, order="F")
        planes = stack.transpose(2, 1, 0).view(bool)  # (N, W, H), C-contiguous
        for i, (s, u) in enumerate(chunk):
            if s not in positions:
                positions[s] = _full_positions(regions[hierarchies[s].region].labels, hierarchies[s], size)
            lo, hi = hierarchies[s].lo[u], hierarchies[s].hi[u]
            np.less(positions[s] - np.uint32(lo), np.uint32(hi - lo), out=planes[i])
        rles.extend(rle_utils.as_text(r) for r in mask_utils.encode(stack))
    return rles


def _full_positions(labels: np.ndarray, hier: _Hierarchy, size: tuple[int, int]) -> np.ndarray:
    """(W, H) uint32 depth-first leaf position of every full-size pixel (transposed), nearest upsampling."""
    rows, cols = _upsample_index(size[0], labels.shape[0]), _upsample_index(size[1], labels.shape[1])
    pos = _leaf_positions(hier).astype(np.uint32)
    return np.ascontiguousarray(pos[labels.T[cols][:, rows]])


# ---------------------------------------------------------------------------------- generator


class SuperpixelGenerator:
    """Selective-search proposals (no weights): see the module docstring. Deterministic."""

    name = "superpixel"

    def __init__(self, cfg: SuperpixelConfig) -> None:
        self.cfg = cfg

    def generate(self, images: Sequence[np.ndarray], image_ids: Sequence[str] = ()) -> list[MaskBatch]:
        """One MaskBatch per (H, W, 3) uint8 image, masks at (H, W), best-ranked first."""
        return [self.generate_one(image) for image in images]

    def generate_one(self, image: np.ndarray) -> MaskBatch:
        rgb = _as_rgb(image)
        size = (int(rgb.shape[0]), int(rgb.shape[1]))
        work = _working_image(rgb, self.cfg.max_side)
        regions, hierarchies = self._hierarchies(work)
        min_area = max(1.0, self.cfg.min_area_fraction * work.shape[0] * work.shape[1])
        candidates = _ranked_candidates(hierarchies, min_area, self.cfg.seed)
        kept = _select(candidates, hierarchies, _DedupeMasks(regions, hierarchies),
                       self.cfg.max_proposals, self.cfg.dedupe_iou)
        log.debug("superpixel: %d hierarchies, %d candidates, %d kept", len(hierarchies), len(candidates), len(kept))
        if not kept:
            return MaskBatch.empty(size, source=self.name)
        return MaskBatch.from_rles(size, _encode(kept, regions, hierarchies, size), source=self.name)

    def _hierarchies(self, work: np.ndarray) -> tuple[list[_Regions], list[_Hierarchy]]:
        """All segmentations (colour space x scale) and their groupings (x similarity)."""
        weights = [SIMILARITY_WEIGHTS[sim] for sim in self.cfg.similarities]
        colour_hist = any(wc for wc, _, _, _ in weights)
        texture_hist = any(wt for _, wt, _, _ in weights)
        regions: list[_Regions] = []
        hierarchies: list[_Hierarchy] = []
        for space in self.cfg.colour_spaces:
            colour = _colour_image(work, space)
            texture = _texture_bins(colour) if texture_hist else None
            for factor in self.cfg.scale_factors:
                regions.append(_regions(colour, texture, self.cfg.scale * factor, self.cfg.sigma, self.cfg.min_size,
                                        colour_hist))
                hierarchies.extend(_hierarchy(regions[-1], len(regions) - 1, w) for w in weights)
        return regions, hierarchies

    def describe(self) -> dict[str, object]:
        return {"generator": self.name, **self.cfg.model_dump(mode="json")}
