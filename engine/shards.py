"""Writing shards as a run goes: each one whole under a scratch name, then renamed into place.

A :class:`ShardWriter` buffers the rows of one kind (labels or errors) and publishes a shard every
``rows_per_shard`` rows or ``seconds_per_shard`` seconds (and on :meth:`ShardWriter.flush`). A shard
is written completely in a scratch folder and then moved into its folder, which is atomic on a local
disk (and a single object write on object stores): a killed run leaves complete shards or none, and
what it published stays accounted for (every row names its manifest row: ``row_index``, ``row_hash``).
"""
from __future__ import annotations

import logging
import posixpath
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Optional

import fsspec

from ovlabel.engine.faults import fault_point
from ovlabel.engine.layout import SHARD_SUFFIX
from ovlabel.schemas import SCHEMAS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardPolicy:
    """How shards are cut and encoded."""

    rows_per_shard: int = 1000
    seconds_per_shard: float = 300.0
    compression: str = "zstd"
    rows_per_row_group: int = 16


class ShardWriter:
    """Publishes ``kind`` rows as shards ``<folder>/<prefix>-<writer>-<NNNNN>.parquet`` (``fs`` paths).

    ``scratch`` is a folder on the same filesystem where shards are written before they are moved.
    """

    def __init__(self, fs: fsspec.AbstractFileSystem, kind: str, scratch: str, folder: str, prefix: str,
                 policy: ShardPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.fs, self.kind, self.scratch, self.folder = fs, kind, scratch, folder
        self.name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.policy = policy
        self.clock = clock
        self.rows: list[dict[str, Any]] = []
        self.first_at = 0.0
        self.published: list[str] = []

    def add(self, row: dict[str, Any]) -> Optional[str]:
        """Buffer one row; returns the shard's path when this row completed one."""
        if not self.rows:
            self.first_at = self.clock()
        self.rows.append(row)
        full = len(self.rows) >= self.policy.rows_per_shard
        if full or self.clock() - self.first_at >= self.policy.seconds_per_shard:
            return self.flush()
        return None

    def flush(self) -> Optional[str]:
        """Publish the buffered rows as one shard (None when there are none)."""
        if not self.rows:
            return None
        import pyarrow as pa
        import pyarrow.parquet as pq

        name = f"{self.name}-{len(self.published):05d}{SHARD_SUFFIX}"
        scratch, final = posixpath.join(self.scratch, name), posixpath.join(self.folder, name)
        self.fs.makedirs(self.scratch, exist_ok=True)
        table = pa.Table.from_pylist(self.rows, schema=SCHEMAS[self.kind])
        with self.fs.open(scratch, "wb") as fh:
            pq.write_table(table, fh, compression=self.policy.compression,
                           row_group_size=self.policy.rows_per_row_group)
        fault_point("shard-written")
        self.fs.makedirs(self.folder, exist_ok=True)
        self.fs.mv(scratch, final)
        fault_point("shard-published")
        log.debug("published %s (%d rows)", final, len(self.rows))
        self.rows = []
        self.published.append(final)
        return final
