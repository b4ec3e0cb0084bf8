"""Helpers for pipeline tests: tiny runs, a local portable job service, reading outputs back."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator, Sequence

import pyarrow.parquet as pq

from ovlabel.engine.shipped import config_path
from ovlabel.pipelines.cluster import local_cluster
from ovlabel.pipelines.options import RunConfig, load_run_config

# Extra overrides every pipeline test run uses on top of configs/tiny.yaml (none: the defaults, batched SAM).
TINY_OVERRIDES: tuple[str, ...] = ()
# The weights-free generator, capped: for tests about accounting rather than masks.
FAST_MASKS = ("masks.generator=superpixel", "masks.superpixel.max_proposals=24")


def tiny_config(*overrides: str) -> RunConfig:
    return load_run_config(config_path("tiny.yaml"), [*TINY_OVERRIDES, *overrides])


def read_rows(output: Path, kind: str) -> list[dict[str, Any]]:
    files = sorted((output / kind).glob("*.parquet"))
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    return sorted(rows, key=lambda r: (r["image_id"] or "", r.get("stage", ""), r.get("row_index", -1)))


def comparable(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without the fields that differ between runs by design (run id)."""
    out = []
    for row in rows:
        row = dict(row)
        row.pop("run_id", None)
        if "provenance" in row:
            row["provenance"] = {k: v for k, v in row["provenance"].items() if k != "run_id"}
        out.append(row)
    return out


@contextlib.contextmanager
def portable_services() -> Iterator[list[str]]:
    """Beam's local job service + an external worker pool (what ``ovlabel run --cluster-local`` starts); yields
    the Beam args to use them."""
    with local_cluster() as cluster:
        yield cluster.beam_args
