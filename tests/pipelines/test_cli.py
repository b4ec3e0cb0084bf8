"""The CLI's contract for expected failures: exit 2, one readable line, no traceback."""
from __future__ import annotations

import hashlib
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


def _manifest(tmp_path: Path) -> Path:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"image": "a.png", "caption": "a dog"}\n')
    return manifest


def test_a_wrong_checkpoint_hash_exits_2_before_the_output_is_made(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    weights = tmp_path / "clip.safetensors"
    weights.write_bytes(b"not the weights")
    code, err = _run(capsys, "run", "--config", str(config_path("tiny.yaml")), "--input", str(_manifest(tmp_path)),
                     "--output", str(tmp_path / "out"), f"clip.checkpoint={weights}",
                     f"clip.checkpoint_sha256={'f' * 64}")
    assert code == 2 and err.strip().count("\n") == 0 and "Traceback" not in err
    assert str(weights) in err and "f" * 64 in err and hashlib.sha256(b"not the weights").hexdigest() in err
    assert not (tmp_path / "out").exists()


def test_an_unknown_clip_model_exits_2_before_the_output_is_made(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "run", "--config", str(config_path("tiny.yaml")), "--input", str(_manifest(tmp_path)),
                     "--output", str(tmp_path / "out"), "clip.model=ViT-Nope-16")
    assert code == 2 and "unknown open_clip model 'ViT-Nope-16'" in err and err.strip().count("\n") == 0
    assert not (tmp_path / "out").exists()
