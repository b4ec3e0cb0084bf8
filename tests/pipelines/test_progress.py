"""Live progress: the thread-safe count, what a line says, when the reporter prints, which runners tick it."""
from __future__ import annotations

import io
import logging
import threading

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from ovlabel.pipelines import progress as progress_module
from ovlabel.pipelines.progress import Progress, ProgressReporter, lookup, runs_in_process, tracking


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rows_done_rate_eta_and_errors() -> None:
    clock = Clock()
    p = Progress(clock)
    assert p.snapshot() is None  # nothing before the run begins
    p.begin(10)
    clock.now += 5  # the models load
    p.tick("labels")
    clock.now += 2
    p.tick("labels")
    p.tick("errors", "LoadImages")
    snap = p.snapshot()
    assert snap is not None
    assert (snap.done, snap.total, snap.errors, snap.elapsed_s) == (3, 10, 1, 7.0)
    assert snap.rate == pytest.approx(1.0) and snap.eta_s == pytest.approx(7.0)  # 2 rows in the 2 s after the first
    assert snap.line() == "ovlabel: 3/10 images (30%), 1.00 images/s, ETA 7s, 1 error, 7s so far"
    assert p.errors_by_stage() == {"LoadImages": 1}


def test_done_never_passes_total_and_long_times_read_as_minutes() -> None:
    clock = Clock()
    p = Progress(clock)
    p.begin(2)
    for _ in range(3):  # a retried bundle emits its rows again
        p.tick("labels")
    clock.now += 3725
    snap = p.snapshot()
    assert snap is not None and snap.done == 2 and "ETA" not in snap.line() and "1h02m so far" in snap.line()


def test_ticks_from_many_threads_all_count() -> None:
    p = Progress()
    p.begin(8000)
    threads = [threading.Thread(target=lambda: [p.tick("labels") for _ in range(1000)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = p.snapshot()
    assert snap is not None and snap.done == 8000


def _reporter(p: Progress, clock: Clock, tty: bool) -> tuple[ProgressReporter, io.StringIO]:
    stream = io.StringIO()
    return ProgressReporter(p, stream, tty=tty, every_s=10.0, clock=clock), stream


def test_plain_lines_at_start_each_tenth_and_every_ten_seconds() -> None:
    clock = Clock()
    p = Progress(clock)
    reporter, stream = _reporter(p, clock, tty=False)
    reporter.report()
    assert stream.getvalue() == ""  # not begun: nothing to say
    p.begin(100)
    reporter.report()  # the first line says the total
    for _ in range(5):
        p.tick("labels")
    reporter.report()  # 5%: not due
    clock.now += 10
    reporter.report()  # ten seconds on: due
    for _ in range(6):
        p.tick("labels")
    reporter.report()  # 11%: a new tenth
    reporter.report()  # nothing new
    lines = stream.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["0/100", "5/100", "11/100"]
    assert all(line.startswith("ovlabel: ") and "\r" not in line for line in lines)
    p.tick("labels")
    reporter.report(final=True)  # the last state is printed even when not due
    reporter.report(final=True)  # but once
    assert stream.getvalue().splitlines()[3:] == [
        "ovlabel: 12/100 images (12%), 1.10 images/s, ETA 1m20s, 0 errors, 10s so far"]


def test_on_a_terminal_one_line_is_redrawn_and_ended() -> None:
    clock = Clock()
    p = Progress(clock)
    reporter, stream = _reporter(p, clock, tty=True)
    p.begin(4)
    reporter.report()
    p.tick("labels")
    reporter.report()
    reporter.report(final=True)
    text = stream.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1
    assert "1/4 images" in text.rsplit("\r", 1)[1]


def test_the_thread_prints_while_the_block_runs_and_stops_after() -> None:
    p, stream = Progress(), io.StringIO()
    with ProgressReporter(p, stream, tty=False, tick_s=0.01):
        p.begin(3)
        p.tick("labels")
        for _ in range(200):
            if stream.getvalue():
                break
            threading.Event().wait(0.01)
    assert stream.getvalue().startswith("ovlabel: ")
    assert not any(t.name == "ovlabel-progress" for t in threading.enumerate())


@pytest.mark.parametrize("args, local", [
    ([], True), (["--runner=DirectRunner"], True), (["--runner=direct"], True),
    (["--runner=DirectRunner", "--direct_running_mode=multi_threading"], True),
    (["--runner=DirectRunner", "--direct_running_mode=multi_processing"], False),
    (["--runner=PortableRunner", "--job_endpoint=localhost:1"], False), (["--runner=DataflowRunner"], False),
])
def test_only_in_process_runners_tick_live(args: list[str], local: bool) -> None:
    assert runs_in_process(PipelineOptions(args)) is local


def test_tracking_registers_the_progress_only_while_the_run_lasts(caplog: pytest.LogCaptureFixture) -> None:
    p = Progress()
    with tracking(p, "run-a", True, lambda: 5):
        assert lookup("run-a") is p and p.total == 5
    assert lookup("run-a") is None and not progress_module._REGISTRY

    def no_total() -> int:
        raise AssertionError("a run with no live progress does not count its rows")

    with caplog.at_level(logging.INFO, logger="ovlabel"), tracking(p, "run-b", False, no_total):
        assert lookup("run-b") is None
    assert "no live progress on this runner" in caplog.text
    with tracking(None, "run-c", True, no_total):
        assert lookup("run-c") is None
