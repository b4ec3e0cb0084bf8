"""reach: whether a remote file can be had, answered in seconds, with the transport's own reason."""
from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

from ovlabel.engine.errors import ModelWeightsError, OutputError
from ovlabel.engine.reach import filesystem, probe, within
from tests.engine.servers import FileServer, silent_server

REFUSED = "http://127.0.0.1:9/sam.pth"  # the discard port: nothing listens, the connection is refused at once
NO_HOST = "https://ovlabel-no-such-host.invalid/sam.pth"  # .invalid never resolves (RFC 2606)


def test_a_file_a_server_hands_out_is_reachable_and_a_missing_one_is_a_404(tmp_path: Path) -> None:
    (tmp_path / "w.pth").write_bytes(b"weights")
    with FileServer(tmp_path) as server:
        assert probe(server.url("w.pth"), "k") is None
        assert probe(server.url("nope.pth"), "k") == "HTTP 404 File not found"


def test_a_refused_connection_and_an_unknown_host_answer_fast_with_the_reason() -> None:
    for url, says in ((REFUSED, "Cannot connect to host 127.0.0.1:9"), (NO_HOST, "ovlabel-no-such-host.invalid")):
        started = time.monotonic()
        why = probe(url, "k")
        assert why is not None and says in why and time.monotonic() - started < 5, why


def test_a_server_that_never_answers_is_given_up_on_after_the_timeout() -> None:
    with silent_server() as url:
        started = time.monotonic()
        why = probe(f"{url}/w.pth", "k", timeout=1.0)
        elapsed = time.monotonic() - started
    assert why is not None and "Timeout" in why and 0.9 < elapsed < 3, (why, elapsed)


@pytest.mark.skipif(importlib.util.find_spec("gcsfs") is not None, reason="gcsfs is installed")
def test_a_missing_fsspec_backend_names_the_package_to_install() -> None:
    with pytest.raises(ModelWeightsError, match=r"^masks.sam.checkpoint: cannot open gs://b/sam.pth: fsspec's gs:// "
                                                r"filesystem is not installed \(.*\); pip install gcsfs$"):
        filesystem("gs://b/sam.pth", "masks.sam.checkpoint")
    with pytest.raises(OutputError, match="pip install gcsfs"):
        filesystem("gs://b/out", "--output", OutputError)


def test_within_returns_the_value_raises_the_error_or_times_out() -> None:
    assert within(1, lambda: 7) == 7
    with pytest.raises(KeyError):
        within(1, lambda: {}["x"])
    with pytest.raises(TimeoutError, match="no answer in 0.2 s"):
        within(0.2, lambda: time.sleep(2))
