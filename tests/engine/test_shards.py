"""ShardWriter: shards cut every N rows or M seconds, written whole in scratch, then renamed into place."""
from __future__ import annotations

from pathlib import Path

import fsspec
import pyarrow.parquet as pq

from ovlabel.engine.hierarchy import root_segment
from ovlabel.engine.layout import labels_row
from ovlabel.engine.records import InputRecord
from ovlabel.engine.shards import ShardPolicy, ShardWriter
from ovlabel.schemas import validate_shard


def _row(i: int) -> dict:
    record = InputRecord(f"id{i}", f"/x/{i}.png", ("a dog",), f'{{"n": {i}}}', row_index=i)
    return labels_row(record, (4, 6), (root_segment((4, 6), "scene"),), {"run_id": "r"})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _writer(tmp_path: Path, clock: Clock, rows: int = 3, seconds: float = 10.0) -> ShardWriter:
    return ShardWriter(fsspec.filesystem("file"), "labels", str(tmp_path / "scratch"), str(tmp_path / "labels"),
                       "run1", ShardPolicy(rows, seconds, "zstd", 2), clock=clock)


def test_a_shard_is_published_every_n_rows_and_on_flush(tmp_path: Path) -> None:
    writer = _writer(tmp_path, Clock())
    published = [writer.add(_row(i)) for i in range(7)]
    assert [p is not None for p in published] == [False, False, True, False, False, True, False]
    last = writer.flush()
    assert last is not None and writer.flush() is None  # nothing left
    shards = sorted((tmp_path / "labels").glob("*.parquet"))
    assert [pq.read_metadata(s).num_rows for s in shards] == [3, 3, 1]
    assert sum(validate_shard(s) for s in shards) == 7
    assert [s.name for s in shards] == [f"{writer.name}-{n:05d}.parquet" for n in range(3)]
    assert writer.name.startswith("run1-") and list((tmp_path / "scratch").iterdir()) == []
    rows = [r for s in shards for r in pq.read_table(s).to_pylist()]
    assert [(r["row_index"], r["image_id"]) for r in rows] == [(i, f"id{i}") for i in range(7)]


def test_a_shard_is_published_when_its_first_row_has_waited_m_seconds(tmp_path: Path) -> None:
    clock = Clock()
    writer = _writer(tmp_path, clock, rows=100, seconds=10.0)
    assert writer.add(_row(0)) is None
    clock.now = 9.0
    assert writer.add(_row(1)) is None
    clock.now = 10.5
    assert writer.add(_row(2)) is not None
    clock.now = 11.0
    assert writer.add(_row(3)) is None  # a new shard's clock starts at its first row


def test_two_writers_of_one_run_never_share_a_name(tmp_path: Path) -> None:
    a, b = _writer(tmp_path, Clock(), rows=1), _writer(tmp_path, Clock(), rows=1)
    assert a.add(_row(0)) != b.add(_row(1))
    assert len(list((tmp_path / "labels").glob("*.parquet"))) == 2
