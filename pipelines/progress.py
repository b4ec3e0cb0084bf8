"""Live progress of a run: rows done of rows to do, rate, ETA and errors so far.

On the DirectRunner the stages run in this process: the write stage ticks the :class:`Progress` registered under
the run's id as it emits each labels or errors row (each accounts for one manifest row), and a
:class:`ProgressReporter` thread prints it: one updating line on a terminal, a plain line every ``every_s``
seconds or each tenth of the way otherwise. Workers in other processes (PortableRunner, Dataflow, the DirectRunner's
``multi_processing`` mode) find no Progress registered and tick nothing; the run says once that it shows no
live progress there.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, TextIO

log = logging.getLogger(__name__)

# Runners whose stages run in the submitting process (unless --direct_running_mode=multi_processing)
IN_PROCESS_RUNNERS = frozenset({"direct", "directrunner", "switchingdirectrunner", "bundlebaseddirectrunner"})
_REGISTRY: dict[str, "Progress"] = {}
_REGISTRY_LOCK = threading.Lock()


@dataclass(frozen=True)
class Snapshot:
    """Progress at one moment; ``rate`` (rows/s since the first row was done) is None until two rows are."""

    done: int
    total: int
    errors: int
    elapsed_s: float
    rate: Optional[float]

    @property
    def eta_s(self) -> Optional[float]:
        return (self.total - self.done) / self.rate if self.rate else None

    def line(self) -> str:
        pct = f" ({100 * self.done // self.total}%)" if self.total else ""
        rate = f", {self.rate:.2f} images/s" if self.rate else ""
        eta = f", ETA {_duration(self.eta_s)}" if self.eta_s is not None and self.done < self.total else ""
        errors = f", {self.errors} error{'s' if self.errors != 1 else ''}"
        return f"ovlabel: {self.done}/{self.total} images{pct}{rate}{eta}{errors}, {_duration(self.elapsed_s)} so far"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """A thread-safe count of the rows a run has emitted, against the rows it has to do."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.total: Optional[int] = None
        self._started = 0.0
        self._first: Optional[float] = None
        self._rows: Counter[str] = Counter()  # kind -> rows emitted
        self._errors: Counter[str] = Counter()  # stage -> error rows emitted

    def begin(self, total: int) -> None:
        with self._lock:
            self.total, self._started = total, self._clock()

    def tick(self, kind: str, stage: Optional[str] = None) -> None:
        """One row of ``kind`` emitted (an errors row names its ``stage``)."""
        with self._lock:
            self._rows[kind] += 1
            if stage is not None:
                self._errors[stage] += 1
            if self._first is None:
                self._first = self._clock()

    def errors_by_stage(self) -> dict[str, int]:
        with self._lock:
            return dict(self._errors)

    def snapshot(self) -> Optional[Snapshot]:
        """None until :meth:`begin`; ``done`` never passes ``total`` (a retried bundle emits its rows again)."""
        with self._lock:
            if self.total is None:
                return None
            now, emitted = self._clock(), sum(self._rows.values())
            done = min(emitted, self.total)
            since_first = now - self._first if self._first is not None else 0.0
            rate = (emitted - 1) / since_first if emitted > 1 and since_first > 0 else None
            return Snapshot(done, self.total, sum(self._errors.values()), now - self._started, rate)


def lookup(run_id: str) -> Optional[Progress]:
    """The Progress of run ``run_id`` when it was started in this process, else None."""
    with _REGISTRY_LOCK:
        return _REGISTRY.get(run_id)


def runs_in_process(options: Any) -> bool:
    """Whether Beam ``options`` run the stages in this process (the DirectRunner, not multi_processing)."""
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

    runner = options.view_as(StandardOptions).runner
    name = (runner if isinstance(runner, str) else type(runner).__name__ if runner else "direct").rsplit(".", 1)[-1]
    return name.lower() in IN_PROCESS_RUNNERS and options.view_as(DirectOptions).direct_running_mode != "multi_processing"


@contextlib.contextmanager
def tracking(progress: Optional[Progress], run_id: str, live: bool, total: Callable[[], int]) -> Iterator[None]:
    """While the pipeline runs: ``progress`` registered under ``run_id`` for the write stage to tick.

    ``total()`` (the rows to do) is asked only when there is a live progress to show.
    """
    if progress is None:
        yield
        return
    if not live:
        log.info("no live progress on this runner (its workers are other processes); the summary follows at the end")
        yield
        return
    progress.begin(total())
    with _REGISTRY_LOCK:
        _REGISTRY[run_id] = progress
    try:
        yield
    finally:
        with _REGISTRY_LOCK:
            _REGISTRY.pop(run_id, None)


class ProgressReporter:
    """A thread printing ``progress`` to ``stream`` while the ``with`` block runs.

    On a terminal (``tty``) one line, redrawn every ``tick_s``; otherwise a plain line every ``every_s`` seconds
    and each time another tenth of the rows is done. Prints nothing until the run has begun.
    """

    def __init__(self, progress: Progress, stream: TextIO, tty: Optional[bool] = None, every_s: float = 10.0,
                 tick_s: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.progress, self.stream = progress, stream
        self.tty = stream.isatty() if tty is None else tty
        self.every_s, self.tick_s, self._clock = every_s, tick_s, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ovlabel-progress", daemon=True)
        self._last_at: Optional[float] = None
        self._last_tenth = 0
        self._last_done: Optional[int] = None

    def __enter__(self) -> "ProgressReporter":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.report(final=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            self.report()

    def report(self, final: bool = False) -> None:
        """Print the progress if it is due (always on a terminal once the run has begun); ``final``: the last
        state, unless it was printed already, and on a terminal the end of the line."""
        snap = self.progress.snapshot()
        if snap is None:
            return
        if self.tty:
            self.stream.write("\r" + snap.line() + "\x1b[K" + ("\n" if final else ""))
        elif self._due(snap) or (final and snap.done != self._last_done):
            self.stream.write(snap.line() + "\n")
            self._last_done = snap.done
        self.stream.flush()

    def _due(self, snap: Snapshot) -> bool:
        now, tenth = self._clock(), 10 * snap.done // snap.total if snap.total else 10
        due = self._last_at is None or tenth > self._last_tenth or now - self._last_at >= self.every_s
        if due:
            self._last_at, self._last_tenth = now, tenth
        return due
