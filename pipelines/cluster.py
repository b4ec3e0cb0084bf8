"""The portable runner, locally: Beam's job service and an EXTERNAL worker pool, and the check of a job endpoint.

:func:`local_cluster` starts both from the current interpreter (so the workers import this very ovlabel and its
environment), waits until their ports accept, and stops them when the ``with`` block ends, however it ends.
:func:`check_job_endpoint` makes an unreachable ``--job_endpoint`` one early line instead of a silent wait.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Optional, Sequence

from ovlabel.engine.errors import RunnerError

log = logging.getLogger(__name__)

JOB_SERVICE = "apache_beam.runners.portability.local_job_service_main"
WORKER_POOL = "apache_beam.runners.worker.worker_pool_main"
# Beam options --cluster-local sets itself: given as well, they would contradict it
CLUSTER_OPTIONS = ("--runner", "--job_endpoint", "--environment_type", "--environment_config")


@dataclass(frozen=True)
class LocalCluster:
    """A running job service (``job_port``) and worker pool (``pool_port``); their output goes to ``log_dir``."""

    job_port: int
    pool_port: int
    log_dir: Path
    processes: tuple[subprocess.Popen, ...]

    @property
    def beam_args(self) -> list[str]:
        """The Beam options that run a pipeline on this cluster."""
        return ["--runner=PortableRunner", f"--job_endpoint=localhost:{self.job_port}",
                "--environment_type=EXTERNAL", f"--environment_config=localhost:{self.pool_port}"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def accepts(host: str, port: int, timeout_s: float) -> Optional[str]:
    """None when ``host:port`` accepts a connection within ``timeout_s``, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as exc:
        return str(exc) or type(exc).__name__


def _tail(path: Path, lines: int = 5) -> str:
    text = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return " | ".join(line.strip() for line in text[-lines:]) or "(no output)"


def _wait_for(name: str, port: int, proc: subprocess.Popen, log_file: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RunnerError(f"the local {name} exited with {proc.returncode} before it listened on port {port}: "
                              f"{_tail(log_file)} (full output: {log_file})")
        if accepts("localhost", port, 1.0) is None:
            return
        time.sleep(0.2)
    raise RunnerError(f"the local {name} does not listen on port {port} after {timeout_s:.0f}s "
                      f"(its output: {log_file}); is the machine very busy?")


def python_on_path(folder: Path) -> dict[str, str]:
    """An environment whose ``python`` is this interpreter: Beam's worker pool starts each SDK worker as plain
    ``python`` from PATH, which outside an activated venv is another Python (the workers die on import)."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    wrapper = bin_dir / "python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # exec by its own path: a venv stays one
    wrapper.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def _start(module: str, args: Sequence[str], out: IO[bytes], env: dict[str, str]) -> subprocess.Popen:
    # a session of its own: Ctrl-C reaches ovlabel, which stops the service and the workers it spawned
    return subprocess.Popen([sys.executable, "-m", module, *args], stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True, env=env)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)  # the group the service leads (start_new_session): it and its SDK workers


def _stop(procs: Sequence[subprocess.Popen], grace_s: float = 10.0) -> None:
    """SIGTERM to each service and the SDK workers it spawned; after ``grace_s``, SIGKILL to what is left."""
    for proc in procs:
        _signal_group(proc, signal.SIGTERM)
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
    for proc in procs:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def local_cluster(startup_timeout_s: float = 60.0) -> Iterator[LocalCluster]:
    """Start Beam's job service and an EXTERNAL worker pool from ``sys.executable``; stop both on the way out.

    Their output goes to a temporary folder, removed when the block ends normally or is interrupted, and kept
    (and named in the log) when it raises anything else.
    """
    job_port, pool_port = free_port(), free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="ovlabel-cluster-"))
    procs: list[subprocess.Popen] = []
    ok = False
    try:
        env = python_on_path(log_dir)
        with open(log_dir / "job_service.log", "wb") as job_out, open(log_dir / "worker_pool.log", "wb") as pool_out:
            procs.append(_start(JOB_SERVICE, ["--port", str(job_port)], job_out, env))
            procs.append(_start(WORKER_POOL, [f"--service_port={pool_port}"], pool_out, env))
        _wait_for("job service", job_port, procs[0], log_dir / "job_service.log", startup_timeout_s)
        _wait_for("worker pool", pool_port, procs[1], log_dir / "worker_pool.log", startup_timeout_s)
        log.info("local cluster: job service on localhost:%d, worker pool on localhost:%d (%s)", job_port,
                 pool_port, sys.executable)
        try:
            yield LocalCluster(job_port, pool_port, log_dir, tuple(procs))
        except KeyboardInterrupt:
            ok = True  # the user stopped it: nothing in the services' output to read
            raise
        ok = True
    finally:
        _stop(procs)
        if ok:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            log.info("the local job service's and worker pool's output is kept in %s", log_dir)


def given_options(beam_args: Sequence[str], names: Sequence[str]) -> list[str]:
    """Which of the options ``names`` (``--x``) ``beam_args`` set."""
    return [name for name in names for arg in beam_args if arg == name or arg.startswith(name + "=")]


def job_service_answers(endpoint: str, timeout_s: float) -> Optional[str]:
    """None when a Beam job service answers at ``endpoint`` within ``timeout_s`` (a listing of its jobs), else
    why not. A TCP connect alone proves little: a proxy may accept any connection."""
    import grpc
    from apache_beam.portability.api import beam_job_api_pb2, beam_job_api_pb2_grpc

    channel = grpc.insecure_channel(endpoint)
    try:
        beam_job_api_pb2_grpc.JobServiceStub(channel).GetJobs(beam_job_api_pb2.GetJobsRequest(), timeout=timeout_s)
        return None
    except grpc.RpcError as exc:
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        details = exc.details() if callable(getattr(exc, "details", None)) else ""
        reason = f"{getattr(code, 'name', 'error')}: {details}" if details else getattr(code, "name", "error")
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return reason
        return f"something answers, but not as a Beam job service: {reason}"
    finally:
        channel.close()


def check_job_endpoint(beam_args: Sequence[str], timeout_s: float = 5.0) -> None:
    """A portable run's ``--job_endpoint`` must answer within ``timeout_s``; else a RunnerError saying what to do."""
    from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions, StandardOptions

    options = PipelineOptions(list(beam_args))
    runner = str(options.view_as(StandardOptions).runner or "").rsplit(".", 1)[-1]
    endpoint = options.view_as(PortableOptions).job_endpoint
    if runner == "PortableRunner" and not endpoint:
        raise RunnerError("--runner=PortableRunner needs --job_endpoint=HOST:PORT of a running job service; "
                          "or run on a local one with --cluster-local")
    if not endpoint or endpoint == "embed":
        return
    host, _, port = endpoint.rpartition(":")
    if not host or not port.isdigit():
        raise RunnerError(f"--job_endpoint={endpoint} is not HOST:PORT (e.g. --job_endpoint=localhost:8099)")
    why = job_service_answers(endpoint, timeout_s)
    if why is not None:
        raise RunnerError(f"no Beam job service answers at --job_endpoint={endpoint} within {timeout_s:.0f}s "
                          f"({why}); start one there first, or run on a local one with --cluster-local")
