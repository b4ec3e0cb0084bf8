"""Fault points: a process kills itself (SIGKILL) at the named point, on its N-th visit, and only then."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ovlabel.engine.faults import ENV, FAULT_POINTS, fault_point

SCRIPT = ("import sys; from ovlabel.engine.faults import fault_point\n"
          "for i in range(5):\n    fault_point('shard-published'); print(i, flush=True)\n")


def _visits(spec: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT], env={**os.environ, ENV: spec}, capture_output=True, text=True)


@pytest.mark.parametrize("spec, printed, code", [("shard-published", "", -9), ("shard-published@3", "0\n1\n", -9),
                                                 ("shard-written", "0\n1\n2\n3\n4\n", 0),
                                                 ("shard-published@9", "0\n1\n2\n3\n4\n", 0)])
def test_the_nth_visit_of_the_named_point_kills(spec: str, printed: str, code: int) -> None:
    proc = _visits(spec)
    assert (proc.stdout, proc.returncode) == (printed, code)


def test_without_the_variable_a_fault_point_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    for name in FAULT_POINTS:
        fault_point(name)
