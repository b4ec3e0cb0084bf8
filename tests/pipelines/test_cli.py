"""The CLI's contract for expected failures: exit 2, one readable line, no traceback."""
from __future__ import annotations

from pathlib import Path

import pytest

from ovlabel.engine.shipped import config_path
from ovlabel.pipelines.cli import main, split_extra


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


def test_unknown_config_key_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"image": "a.png", "caption": "a dog"}\n')
    code, err = _run(capsys, "run", "--config", str(config_path("tiny.yaml")), "--input", str(manifest),
                     "--output", str(tmp_path / "out"), "masks.batchsize=2")
    assert code == 2
    assert err.strip().count("\n") == 0 and "masks.batchsize" in err and "Traceback" not in err


def test_missing_manifest_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "run", "--config", str(config_path("tiny.yaml")), "--input", str(tmp_path / "no.jsonl"),
                     "--output", str(tmp_path / "out"))
    assert code == 2 and "not found" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_missing_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "run", "--config", str(tmp_path / "x.yaml"), "--input", "m.jsonl", "--output", "o")
    assert code == 2 and "config file" in err


def test_extra_arguments_split_into_overrides_and_beam_options() -> None:
    assert split_extra(["beam.masks.images_per_batch=2", "--runner=PortableRunner", "--job_endpoint=localhost:1"]) == (
        ["beam.masks.images_per_batch=2"], ["--runner=PortableRunner", "--job_endpoint=localhost:1"])
