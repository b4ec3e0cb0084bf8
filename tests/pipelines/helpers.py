"""Helpers for pipeline tests: tiny runs, a local portable job service, reading outputs back."""
from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import pyarrow.parquet as pq

from ovlabel.engine.shipped import config_path
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service on port {port} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("localhost", port), timeout=1):
            return
        time.sleep(0.3)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


@contextlib.contextmanager
def portable_services() -> Iterator[list[str]]:
    """Beam's local job service + an external worker pool; yields the Beam args to use them."""
    job_port, pool_port = free_port(), free_port()
    procs = [
        subprocess.Popen([sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
                          "--port", str(job_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                          "--service_port", str(pool_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        _wait_for_port(job_port, procs[0])
        _wait_for_port(pool_port, procs[1])
        yield ["--runner=PortableRunner", f"--job_endpoint=localhost:{job_port}", "--environment_type=EXTERNAL",
               f"--environment_config=localhost:{pool_port}"]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
