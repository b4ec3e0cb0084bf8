"""Named fault points, for testing what a kill leaves behind (real SIGKILL, at a chosen moment).

Code that changes an output folder calls :func:`fault_point` at each moment a kill matters (a shard
written but not yet published, published, an overwrite half swapped...). With ``OVLABEL_FAULT=NAME``
(or ``NAME@N``: the N-th time) in the environment, the process kills itself with SIGKILL there;
without it, a fault point costs one dictionary lookup. The names are :data:`FAULT_POINTS`.
"""
from __future__ import annotations

import os
import signal

ENV = "OVLABEL_FAULT"
FAULT_POINTS = ("shard-written", "shard-published", "before-run-info", "swap-begun", "swap-half-done")
_seen: dict[str, int] = {}


def fault_point(name: str) -> None:
    """SIGKILL this process here if ``$OVLABEL_FAULT`` names this point (and this is its N-th visit)."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, nth = spec.partition("@")
    if point != name:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
