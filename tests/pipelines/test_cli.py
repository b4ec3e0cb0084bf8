"""The CLI's contract for expected failures: exit 2, one readable line, no traceback."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from ovlabel.engine.layout import MARKER
from ovlabel.engine.shipped import config_path
from ovlabel.pipelines.cli import configure_logging, main, split_extra
from ovlabel.schemas import validate_shard
from tests.pipelines.helpers import FAST_MASKS
from tests.support import ManifestWriter, SceneImage


# a progress line, or a line ovlabel logs
PROGRESS_OR_LOG = re.compile(r"ovlabel: \d+/\d+ images|\S+ \S+ (INFO|WARNING) ovlabel\.")


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
    said = [line for line in err.splitlines() if not PROGRESS_OR_LOG.match(line)]  # about the interrupt
    assert len(said) <= 2 and "Traceback" not in err, err
    assert said[0].startswith("ovlabel: interrupted") and "--resume" in said[0]
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
    assert code == 2 and "shipped: alpha-clip-l14, bench, default, demo, ovseg-clip-l14, tiny" in err and err.count("\n") == 1
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


# --- the commands that read a run back: export, preview, eval ---------------------------------------------------


def _labels_run(tmp_path: Path) -> Path:
    from tests.engine.label_runs import write_labels_run

    return write_labels_run(tmp_path, "2")


def test_export_and_preview_write_what_they_say(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    run = _labels_run(tmp_path)
    assert main(["export", "coco", str(run), str(tmp_path / "coco.json"), "--levels", "part"]) == 0
    assert "5 images, 3 annotations" in capsys.readouterr().out
    assert {a["level"] for a in json.loads((tmp_path / "coco.json").read_text())["annotations"]} == {"part"}
    assert main(["preview", str(run), "--out", str(tmp_path / "preview"), "--limit", "3"]) == 0
    assert "3 images" in capsys.readouterr().out and (tmp_path / "preview" / "index.html").is_file()


def _break(run: Path, how: str) -> str:
    """Spoil a run: 'empty' (no shards), 'version' (a shard of version 1), 'image' (an image file gone); returns
    the file an error must name."""
    import pyarrow.parquet as pq

    shard = run / "labels" / "part-00000.parquet"
    if how == "empty":
        shard.unlink()
        return str(run)
    if how == "version":
        table = pq.read_table(shard)
        pq.write_table(table.replace_schema_metadata({b"ovlabel.schema_version": b"1", b"ovlabel.kind": b"labels"}),
                       run / "labels" / "old.parquet")
        return str(run / "labels" / "old.parquet")
    gone = run.parent / "images" / "img3.png"
    gone.unlink()
    return str(gone)


@pytest.mark.parametrize("how", ["empty", "version", "image"])
@pytest.mark.parametrize("command", ["export", "preview", "eval"])
def test_bad_runs_exit_2_with_one_line_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       command: str, how: str) -> None:
    run = _labels_run(tmp_path)
    assert main(["export", "coco", str(run), str(tmp_path / "gt.json")]) == 0
    capsys.readouterr()  # the good export's own lines
    named = _break(run, how)
    if command == "eval" and how == "image":  # eval reads no images: its missing file is the ground truth
        named = str(tmp_path / "missing.json")
    argv = {"export": ["export", "coco", str(run), str(tmp_path / "out.json")],
            "preview": ["preview", str(run), "--out", str(tmp_path / "preview")],
            "eval": ["eval", "--labels", str(run), "--gt", named if how == "image" else str(tmp_path / "gt.json")]}
    code, err = _run(capsys, *argv[command])
    assert code == 2, err
    assert err.startswith("ovlabel: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert repr(named) in err or named in err


# --- preflight: a run that cannot start says so in seconds, in one line, before Beam starts -----------------------

NOT_LISTENING = "http://127.0.0.1:9"  # the discard port: the connection is refused at once
NO_SUCH_HOST = "https://ovlabel-no-such-host.invalid"  # .invalid never resolves (RFC 2606)


FAST_S = 20  # the bound is 10 s (measured 1.3-1.6 s here, quiet); a loaded CI machine gets twice that


def _refused_fast(capsys: pytest.CaptureFixture[str], tmp_path: Path, *overrides: str) -> str:
    """Run tiny.yaml with ``overrides`` through main(): exit 2 within 10 s, one line on stderr, no output made."""
    started = time.monotonic()
    code, err = _run(capsys, "run", "--config", str(config_path("tiny.yaml")), "--input", str(_manifest(tmp_path)),
                     "--output", str(tmp_path / "out"), *overrides)
    elapsed = time.monotonic() - started
    assert code == 2 and elapsed < FAST_S and err.count("\n") == 1 and err.startswith("ovlabel: error: "), (elapsed, err)
    assert "Traceback" not in err and "Retry" not in err and not (tmp_path / "out").exists()
    return err


def test_a_missing_local_checkpoint_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused_fast(capsys, tmp_path, f"masks.sam.checkpoint={tmp_path / 'sam_vit_b.pth'}")
    assert f"checkpoint file '{tmp_path / 'sam_vit_b.pth'}' not found" in err
    assert "set masks.sam.checkpoint=/path/to/sam_vit_b.pth" in err


@pytest.mark.parametrize("base, says", [(NOT_LISTENING, "Cannot connect to host 127.0.0.1:9"),
                                        (NO_SUCH_HOST, "ovlabel-no-such-host.invalid")])
def test_an_unfetchable_checkpoint_url_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch, base: str,
                                                              says: str) -> None:
    monkeypatch.setenv("OVLABEL_CACHE", str(tmp_path / "cache"))
    err = _refused_fast(capsys, tmp_path, f"clip.checkpoint={base}/clip.safetensors")
    assert f"cannot fetch {base}/clip.safetensors (" in err and says in err
    assert "download clip.safetensors by hand and set clip.checkpoint=/path/to/clip.safetensors" in err


def test_missing_hub_weights_are_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import open_clip  # noqa: F401 - its import (seconds, which every run pays) is not what is timed here
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", NOT_LISTENING + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    err = _refused_fast(capsys, tmp_path, "clip.model=ViT-B-16", "clip.pretrained=openai", "clip.checkpoint=null")
    assert "clip.pretrained 'openai' of ViT-B-16: its weights are not in the Hugging Face cache" in err
    assert "set clip.checkpoint=/path/to/open_clip_model.safetensors" in err


def _cli_subprocess(tmp_path: Path, *args: str, code: str = "") -> tuple[subprocess.CompletedProcess[str], float]:
    """``ovlabel run`` in a fresh interpreter (``code`` runs first), with no cache and a model hub that refuses."""
    env = {**os.environ, "OVLABEL_CACHE": str(tmp_path / "cache"), "HF_HUB_CACHE": str(tmp_path / "hub"),
           "HF_ENDPOINT": NOT_LISTENING}
    prelude = f"{code}; " if code else ""
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", f"import sys; {prelude}from ovlabel.pipelines.cli import main; "
                           f"sys.exit(main(sys.argv[1:]))", "run", "--input", str(_manifest(tmp_path)), "--output",
                           str(tmp_path / "out"), *args], capture_output=True, text=True, env=env, timeout=120)
    return proc, time.monotonic() - started


def test_the_default_config_without_weights_fails_in_seconds_with_one_line(tmp_path: Path) -> None:
    """Was: 55 s, 48 lines of the hub client's retry warnings and a traceback from a worker."""
    proc, elapsed = _cli_subprocess(tmp_path, "--config", str(config_path("default.yaml")))
    assert proc.returncode == 2 and elapsed < FAST_S and proc.stderr.count("\n") == 1, (elapsed, proc.stderr)
    assert "masks.sam.checkpoint=/path/to/sam_vit_h_4b8939.pth" in proc.stderr or \
        "clip.checkpoint=/path/to/open_clip_model.safetensors" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_missing_http_backend_names_the_package_to_install(tmp_path: Path) -> None:
    proc, _ = _cli_subprocess(tmp_path, "--config", str(config_path("tiny.yaml")),
                              f"clip.checkpoint={NOT_LISTENING}/clip.safetensors",
                              code="sys.modules['aiohttp'] = None")  # as if aiohttp were not installed
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"ovlabel: error: clip.checkpoint: cannot open {NOT_LISTENING}/clip.safetensors: "
                                  f"fsspec's http:// filesystem is not installed (")
    assert proc.stderr.rstrip().endswith("; pip install aiohttp"), proc.stderr


def test_ovlabel_logs_at_info_and_other_libraries_only_from_error(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(verbose=False)
    logging.getLogger("ovlabel.pipelines.x").info("ours at info")
    logging.getLogger("ovlabel.pipelines.x").debug("ours at debug")
    logging.getLogger("apache_beam.runners.x").info("beam at info")
    logging.getLogger("apache_beam.runners.x").warning("beam at warning")
    logging.info("the root logger at info")  # Beam logs through it too
    logging.getLogger("grpc").warning("grpc at warning")
    err = capsys.readouterr().err
    assert "INFO ovlabel.pipelines.x: ours at info" in err and err.count("\n") == 1, err
    configure_logging(verbose=True)
    logging.getLogger("ovlabel.pipelines.x").debug("ours at debug")
    logging.getLogger("apache_beam.runners.x").info("beam at info")
    logging.getLogger("apache_beam.runners.x").warning("beam at warning")
    err = capsys.readouterr().err
    assert "ours at debug" in err and "beam at warning" in err and "beam at info" not in err
    assert err.count("\n") == 2, err  # one handler, however often main configures it
    configure_logging(verbose=False)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One ``ovlabel run`` as a user types it, stderr not a terminal: 6 images and a missing one."""
    from tests.support import CAPTIONS, draw_scene, write_manifest

    folder = tmp_path_factory.mktemp("cli_run")
    (folder / "images").mkdir()
    for i in range(6):
        Image.fromarray(draw_scene(i)).save(folder / "images" / f"i{i}.png")
    rows = [{"image": f"images/i{i}.png", "captions": CAPTIONS[i], "image_id": f"i{i}"} for i in range(6)]
    manifest = write_manifest(folder, [*rows, {"image": "images/gone.png", "caption": "a dog", "image_id": "gone"}])
    cmd = [sys.executable, "-m", "ovlabel.pipelines.cli", "run", "--config", str(config_path("tiny.yaml")),
           "--input", str(manifest), "--output", str(folder / "out"), *FAST_MASKS]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done, folder / "out"


@pytest.mark.slow
def test_a_run_logs_its_own_info_lines_and_none_of_beams(cli_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    err = cli_run[0].stderr
    assert re.search(r"INFO ovlabel\.pipelines\.pipeline: run \S+: .*manifest\.jsonl -> .*out \(fresh, DirectRunner\)", err)
    logged = [line for line in err.splitlines() if not line.startswith("ovlabel: ")]
    # Beam's chatter is not there (its loggers', nor what it logs through the root logger: 'WARNING:root:...')
    assert logged and all(re.match(r"\S+ \S+ (INFO|WARNING) ovlabel\.", line) for line in logged), logged
    assert "apache_beam" not in err and ":root:" not in err and " root: " not in err and "Traceback" not in err


@pytest.mark.slow
def test_a_run_not_on_a_terminal_prints_plain_progress_lines(cli_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    err = cli_run[0].stderr
    assert "\r" not in err
    found = [tuple(map(int, m)) for m in re.findall(r"^ovlabel: (\d+)/(\d+) images \(\d+%\)", err, re.M)]
    assert len(found) >= 2 and all(total == 7 for _, total in found), err
    assert [done for done, _ in found] == sorted(done for done, _ in found) and found[-1] == (7, 7)
    assert ", 1 error, " in err.splitlines()[-1]


@pytest.mark.slow
def test_a_run_closes_with_the_table(cli_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    out_text, out = cli_run[0].stdout, cli_run[1]
    lines = out_text.splitlines()
    assert re.fullmatch(r"ovlabel: finished in [\d.]+s, [\d.]+ images/s", lines[0])
    assert lines[1].split() == ["inputs", "7"] and lines[2].split() == ["labelled", "6"]
    assert lines[3].split() == ["errors", "1"] and lines[4].split() == ["LoadImages", "1", "ImageLoadError", "1"]
    counts = json.loads((out / "run.json").read_text())["counts"]
    levels = counts["segments_by_level"]
    assert levels["scene"] == 6 and lines[5].split()[:2] == ["segments", str(sum(levels.values()))]
    top = ", ".join(f"{name} {n}" for name, n in counts["top_classes"])
    assert lines[6].split(None, 2) == ["top", "classes", top] and lines[7].startswith("  top scenes")
    assert f"{out}/labels/" in lines[8]
