"""The CLI's contract for expected failures: exit 2, one readable line, no traceback."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from ovlabel.engine.layout import MARKER
from ovlabel.engine.shipped import config_path
from ovlabel.pipelines.cli import main, split_extra
from ovlabel.schemas import validate_shard
from tests.support import ManifestWriter, SceneImage


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


def _slow_manifest(folder: Path, scene_image: SceneImage, manifest_writer: ManifestWriter) -> Path:
    """Enough images that tiny.yaml's random SAM is still at work seconds after the run starts."""
    (folder / "images").mkdir()
    for i in range(12):
        Image.fromarray(scene_image(i, (96, 128))).save(folder / "images" / f"i{i}.png")
    return manifest_writer(folder, [{"image": f"images/i{i}.png", "caption": "a red car", "image_id": f"i{i}"}
                                    for i in range(12)])


@pytest.mark.slow
def test_ctrl_c_exits_130_with_one_line_and_resume_finishes(tmp_path: Path, scene_image: SceneImage,
                                                            manifest_writer: ManifestWriter) -> None:
    out, manifest = tmp_path / "out", str(_slow_manifest(tmp_path, scene_image, manifest_writer))
    cmd = [sys.executable, "-m", "ovlabel.pipelines.cli", "run", "--config", str(config_path("tiny.yaml")),
           "--input", manifest, "--output", str(out)]
    # SIGINT as a terminal sends it (a shell's background job would inherit it ignored); Beam's batch-size
    # estimator warns through numpy on its own, which is not what this test is about
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not (out / MARKER).exists() and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(3)  # inside the pipeline: the models load and the first bundles run
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert len(err.splitlines()) <= 2 and "Traceback" not in err, err
    assert err.startswith("ovlabel: interrupted") and "--resume" in err
    assert all(validate_shard(s) for s in out.glob("*/*.parquet"))  # what it published is whole
    code = main(["run", "--config", str(config_path("tiny.yaml")), "--input", manifest, "--output", str(out),
                 "--resume"])
    assert code == 0 and len(list((out / "labels").glob("*.parquet"))) > 0


def test_version_is_the_package_metadatas(capsys: pytest.CaptureFixture[str]) -> None:
    from ovlabel.engine import installed_version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"ovlabel {installed_version()}"


def test_config_show_gives_each_value_and_its_origin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # a shipped config by name, from outside the checkout
    assert main(["config", "show", "--config", "tiny", "masks.sam.points_per_side=2", "input.limit=3"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"# config file: {config_path('tiny.yaml')}"
    lines = {line.split(":")[0].strip(): line for line in out.splitlines() if not line.startswith("#")}
    assert lines["points_per_side"].endswith("# cli") and ": 2 " in lines["points_per_side"]
    assert lines["limit"].endswith("# cli") and lines["model_type"].endswith("# file")
    assert lines["pred_iou_thresh"].endswith("# file") and lines["read_timeout_s"].endswith("# default")
    assert lines["rows_per_shard"].endswith("# file")  # the run's own sections (beam, output) too


def test_config_show_without_a_config_and_with_a_bad_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "# config file: none (defaults only)" in out and "# file" not in out and "# cli" not in out
    code, err = _run(capsys, "config", "show", "--config", "dmeo")
    assert code == 2 and "shipped: bench, default, demo, tiny" in err and err.count("\n") == 1
    code, err = _run(capsys, "config", "show", "masks.sam.points_per_side=0")
    assert code == 2 and "masks.sam.points_per_side" in err


def test_run_takes_a_shipped_config_by_name_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("demo", "demo.yaml"):
        code, err = _run(capsys, "run", "--config", name, "--input", "photos", "--output", "out")
        assert code == 2 and err == "ovlabel: error: input 'photos' not found; pass a manifest (.jsonl, .csv or " \
                                    ".parquet), a folder of images or a glob such as 'photos/*.jpg'\n"
    assert not (tmp_path / "out").exists()


def test_an_unquoted_glob_and_a_bad_limit_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / name).write_bytes(b"")
    # what `ovlabel run --input *.jpg` becomes after the shell expanded it
    code, err = _run(capsys, "run", "--config", "tiny", "--input", "a.jpg", "b.jpg", "c.jpg", "--output", "out")
    assert code == 2 and "did the shell expand a glob? Quote it: --input 'photos/*.jpg'" in err and "b.jpg" in err
    code, err = _run(capsys, "run", "--config", "tiny", "--input", ".", "--output", "out", "--limit", "0")
    assert code == 2 and "input.limit" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
