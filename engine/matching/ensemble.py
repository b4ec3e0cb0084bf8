"""Ensembles of region models (``clip.ensemble``): a region's cosine with a label is the weighted mean of the
members' cosines.

Each member embeds a region as its own crop mode asks (an Alpha-CLIP context crop with the mask, an OVSeg masked
crop...) and embeds labels with its own text tower. Member ``i``'s L2-normalised rows are scaled by
``sqrt(w_i)`` and the members' rows concatenated (:func:`combine`), so with weights summing to 1 the joined rows
are L2-normalised again and the dot product of a joined region row with a joined label row is
``sum_i w_i cos_i``: everything downstream (softmax over labels with the first member's temperature, thresholds,
label merging by cosine) sees one embedding space and needs no change.

Shapes: per member (N, D_i) float32 rows; joined (N, sum_i D_i).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from ovlabel.engine.errors import ConfigError, OvlabelError
from ovlabel.engine.matching.embedder import EncoderWork, RegionEmbedder


@dataclass(frozen=True)
class Member:
    """One model of an ensemble: its embedder, the crop mode it embeds regions in, its share of every cosine."""

    embedder: RegionEmbedder
    crop_mode: str
    weight: float


def combine(rows: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Each member's (N, D_i) L2-normalised rows scaled by sqrt(weight) and concatenated -> (N, sum D_i)."""
    if len(rows) != len(weights):
        raise ValueError(f"{len(rows)} members' rows for {len(weights)} weights")
    return np.concatenate([np.sqrt(w, dtype=np.float32) * r.astype(np.float32, copy=False)
                           for r, w in zip(rows, weights)], axis=1)


class EnsembleEmbedder:
    """A :class:`~.embedder.RegionEmbedder` over several members (:class:`Member`, the first the config's own
    ``clip`` model, whose ``crop_size`` and ``logit_scale`` it reports). The matcher embeds regions member by
    member (:func:`members_of`) and joins them with :func:`combine`; labels are joined here (:meth:`join`)."""

    def __init__(self, members: Sequence[Member]) -> None:
        if len(members) < 2:
            raise ConfigError("an ensemble needs at least two members; leave clip.ensemble empty for one model")
        total = sum(m.weight for m in members)
        if any(m.weight <= 0 for m in members) or abs(total - 1.0) > 1e-6:
            raise ConfigError(f"ensemble weights {[m.weight for m in members]} must be positive and sum to 1")
        self.members = tuple(members)
        self.crop_size = members[0].embedder.crop_size
        self.logit_scale = members[0].embedder.logit_scale

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(m.weight for m in self.members)

    def join(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        """Each member's rows for the same N regions (in member order) -> the joined (N, sum D_i) rows."""
        return combine(rows, self.weights)

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 plain crops -> joined rows; every member must take crops of this size."""
        sizes = {m.embedder.crop_size for m in self.members}
        if sizes != {crops.shape[1]}:
            raise ValueError(f"ensemble members take crops of sizes {sorted(sizes)}, not {crops.shape[1]}; embed "
                             f"regions member by member (members_of)")
        return self.join([m.embedder.embed_crops(crops) for m in self.members])

    def embed_labels(self, labels: Sequence[str]) -> np.ndarray:
        """(L,) labels -> (L, sum D_i) joined prompt-ensemble embeddings (each member caches its own)."""
        if not labels:
            return np.zeros((0, 0), np.float32)
        return self.join([m.embedder.embed_labels(labels) for m in self.members])

    @property
    def work(self) -> EncoderWork:
        """The members' image-encoder work, summed."""
        total = EncoderWork()
        for m in self.members:
            done = getattr(m.embedder, "work", None)
            if done is not None:
                total.crops, total.rows, total.padding = (total.crops + done.crops, total.rows + done.rows,
                                                          total.padding + done.padding)
        return total

    def describe(self) -> dict[str, object]:
        first = dict(self.members[0].embedder.describe())
        return {**first, "ensemble": [{**m.embedder.describe(), "crop_mode": m.crop_mode, "weight": m.weight}
                                      for m in self.members]}


def members_of(embedder: RegionEmbedder, crop_mode: str) -> tuple[Member, ...]:
    """The members whose region embeddings a matcher joins: an ensemble's (its first member's crop mode must be
    ``matching.crop_mode``), else ``embedder`` alone in ``crop_mode``."""
    if not isinstance(embedder, EnsembleEmbedder):
        return (Member(embedder, crop_mode, 1.0),)
    first = embedder.members[0].crop_mode
    if first != crop_mode:
        raise ConfigError(f"the ensemble's first model was built for crop_mode {first}, the matcher asks for "
                          f"{crop_mode}; build the embedder from the same config (build_region_embedder)")
    return embedder.members


@contextmanager
def member_errors(index: int, crop_mode: str) -> Iterator[None]:
    """An :class:`OvlabelError` raised for ensemble member ``index`` says which member it is about (its keys are
    written ``clip.*`` there: they are ``clip.ensemble[index].*``)."""
    try:
        yield
    except OvlabelError as exc:
        raise type(exc)(f"clip.ensemble[{index}] (crop_mode {crop_mode}): {exc}") from None
