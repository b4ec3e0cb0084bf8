"""The portable runner, locally: an unreachable job endpoint is one early line; the local cluster starts, answers and
always stops; ``ovlabel run --cluster-local``, the README's recipe, labels through it."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from ovlabel.engine.errors import RunnerError
from ovlabel.engine.shipped import config_path
from ovlabel.pipelines.cli import main
from ovlabel.pipelines.cluster import (accepts, check_job_endpoint, free_port, given_options, job_service_answers,
                                       local_cluster)
from tests.pipelines.helpers import FAST_MASKS, read_rows
from tests.support import ManifestWriter


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (not a job service)."""
    server = socket.socket()
    server.bind(("localhost", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_closed_job_endpoint_is_refused_at_once() -> None:
    endpoint = f"localhost:{free_port()}"
    started = time.monotonic()
    with pytest.raises(RunnerError, match=f"no Beam job service answers at --job_endpoint={endpoint}.*--cluster-local"):
        check_job_endpoint(["--runner=PortableRunner", f"--job_endpoint={endpoint}"])
    assert time.monotonic() - started < 5


def test_an_endpoint_that_accepts_but_is_no_job_service_is_refused_within_the_timeout(silent_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(RunnerError, match=f"localhost:{silent_port} within 1s"):
        check_job_endpoint(["--runner=PortableRunner", f"--job_endpoint=localhost:{silent_port}"], timeout_s=1.0)
    assert time.monotonic() - started < 5
    assert accepts("localhost", silent_port, 1.0) is None  # a TCP connect alone would have let it through


@pytest.mark.parametrize("args, message", [
    (["--runner=PortableRunner"], "needs --job_endpoint=HOST:PORT"),
    (["--runner=PortableRunner", "--job_endpoint=nowhere"], "is not HOST:PORT"),
])
def test_a_portable_run_without_a_usable_endpoint_is_refused(args: list[str], message: str) -> None:
    with pytest.raises(RunnerError, match=message):
        check_job_endpoint(args)


def test_local_runs_need_no_endpoint() -> None:
    check_job_endpoint([])
    check_job_endpoint(["--runner=DirectRunner"])
    check_job_endpoint(["--runner=PortableRunner", "--job_endpoint=embed"])  # Beam starts one in process


def test_the_cli_says_so_in_one_line_exit_2_before_the_output_is_made(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"image": "a.png", "caption": "a dog"}\n')
    endpoint = f"localhost:{free_port()}"
    started = time.monotonic()
    code = main(["run", "--config", str(config_path("tiny.yaml")), "--input", str(manifest), "--output",
                 str(tmp_path / "out"), "--runner=PortableRunner", f"--job_endpoint={endpoint}"])
    err = capsys.readouterr().err
    assert code == 2 and time.monotonic() - started < 10
    assert err.startswith("ovlabel: error: no Beam job service answers") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_cluster_local_refuses_runner_options_of_its_own(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--cluster-local", "--config", str(config_path("tiny.yaml")), "--input", "m.jsonl",
                 "--output", str(tmp_path / "out"), "--runner=DirectRunner", "--environment_type=LOOPBACK"])
    assert code == 2 and "drop --runner, --environment_type" in capsys.readouterr().err
    assert given_options(["--job_endpoint=x", "--job_endpoints=y"], ["--job_endpoint"]) == ["--job_endpoint"]


def _stopped(procs: Any) -> bool:
    return all(proc.poll() is not None for proc in procs)


@pytest.mark.slow
def test_the_local_cluster_answers_as_a_job_service_and_stops_on_the_way_out() -> None:
    with local_cluster() as cluster:
        assert job_service_answers(f"localhost:{cluster.job_port}", 5.0) is None
        assert accepts("localhost", cluster.pool_port, 1.0) is None
        assert (cluster.log_dir / "bin" / "python").exists()
        check_job_endpoint(cluster.beam_args)
    assert _stopped(cluster.processes) and not cluster.log_dir.exists()
    assert accepts("localhost", cluster.job_port, 1.0) is not None


@pytest.mark.slow
def test_the_local_cluster_stops_when_the_run_fails_and_keeps_the_services_output() -> None:
    with pytest.raises(RuntimeError), local_cluster() as cluster:
        raise RuntimeError("the job failed")
    assert _stopped(cluster.processes)
    kept = sorted(p.name for p in cluster.log_dir.iterdir())  # kept for the user to read
    shutil.rmtree(cluster.log_dir)
    assert kept == ["bin", "job_service.log", "worker_pool.log"]


@pytest.mark.slow
def test_the_local_cluster_stops_when_the_run_is_interrupted() -> None:
    with pytest.raises(KeyboardInterrupt), local_cluster() as cluster:
        raise KeyboardInterrupt
    assert _stopped(cluster.processes) and not cluster.log_dir.exists()


@pytest.mark.slow
def test_the_readme_recipe_labels_through_the_portable_runner(image_folder: Path, good_rows: list[dict[str, Any]],
                                                              manifest_writer: ManifestWriter) -> None:
    """``ovlabel run --cluster-local``, as the README gives it, from a shell whose PATH has no venv on it: the
    worker pool's SDK workers must still be this interpreter."""
    manifest = manifest_writer(image_folder, [*good_rows[:3], {"image": "images/none.png", "caption": "a dog"}])
    out = image_folder / "out"
    cmd = [sys.executable, "-m", "ovlabel.pipelines.cli", "run", "--cluster-local", "--config",
           str(config_path("tiny.yaml")), "--input", str(manifest), "--output", str(out), *FAST_MASKS]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=540,
                          env={**os.environ, "PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(read_rows(out, "labels")) == 3 and len(read_rows(out, "errors")) == 1
    info = json.loads((out / "run.json").read_text())
    assert "--runner=PortableRunner" in info["beam_args"] and "--environment_type=EXTERNAL" in info["beam_args"]
    assert info["accounting_ok"] and "LoadImages" in done.stdout and done.stdout.startswith("ovlabel: finished")
    assert "no live progress on this runner" in done.stderr
    ports = re.search(r"job service on localhost:(\d+), worker pool on localhost:(\d+)", done.stderr)
    assert ports, done.stderr
    assert all(accepts("localhost", int(port), 1.0) is not None for port in ports.groups())  # both stopped
