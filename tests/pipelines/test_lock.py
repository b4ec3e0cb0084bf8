"""OutputLock: one writer at a time; a stale lock (dead pid on this host, or untouched too long) is taken over."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ovlabel.engine.errors import OutputError
from ovlabel.engine.layout import LOCK
from ovlabel.pipelines.lock import OutputLock
from ovlabel.pipelines.output import OutputDir


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_lock_is_held_inside_and_gone_after(tmp_path: Path) -> None:
    out = OutputDir(str(tmp_path / "o"))
    with OutputLock(out, "run-1"):
        holder = json.loads((tmp_path / "o" / LOCK).read_text())
        assert (holder["pid"], holder["host"], holder["run_id"]) == (os.getpid(), socket.gethostname(), "run-1")
        with pytest.raises(OutputError, match=r"is in use by run 'run-1' \(pid \d+ on .*delete .*\.ovlabel\.lock"):
            with OutputLock(out, "run-2"):
                pass
    assert not (tmp_path / "o" / LOCK).exists()


def test_a_dead_holders_lock_is_taken_over(tmp_path: Path) -> None:
    (tmp_path / LOCK).write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "run_id": "gone"}))
    with OutputLock(OutputDir(str(tmp_path)), "run-2"):
        assert json.loads((tmp_path / LOCK).read_text())["run_id"] == "run-2"


def test_another_hosts_lock_is_stale_only_when_untouched_for_long(tmp_path: Path) -> None:
    (tmp_path / LOCK).write_text(json.dumps({"pid": 1, "host": "elsewhere", "run_id": "far"}))
    with pytest.raises(OutputError, match="in use by run 'far'"):
        with OutputLock(OutputDir(str(tmp_path)), "run-2", stale_after_s=60):
            pass
    old = time.time() - 120
    os.utime(tmp_path / LOCK, (old, old))
    with OutputLock(OutputDir(str(tmp_path)), "run-2", stale_after_s=60):
        assert json.loads((tmp_path / LOCK).read_text())["run_id"] == "run-2"


def test_a_live_lock_is_kept_fresh(tmp_path: Path) -> None:
    with OutputLock(OutputDir(str(tmp_path)), "run-1", stale_after_s=2):  # touched every second
        old = time.time() - 100
        os.utime(tmp_path / LOCK, (old, old))
        time.sleep(1.5)
        assert time.time() - (tmp_path / LOCK).stat().st_mtime < 2
