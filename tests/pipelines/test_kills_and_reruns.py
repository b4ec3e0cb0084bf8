"""Reruns end to end: resume keyed on manifest rows, config and manifest checks, overwrite without loss, one
writer at a time, and real SIGKILLs at every point that changes the folder (resume then equals an
uninterrupted run, row for row)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from PIL import Image

from ovlabel.engine.errors import OutputError
from ovlabel.engine.faults import ENV
from ovlabel.engine.layout import LOCK, MARKER, NEXT, SWAP
from ovlabel.engine.shipped import config_path
from ovlabel.pipelines.options import RunConfig
from ovlabel.pipelines.pipeline import run
from ovlabel.schemas import validate_shard
from tests.pipelines.helpers import FAST_MASKS, TINY_OVERRIDES, comparable, read_rows, tiny_config
from tests.support import ManifestWriter, SceneImage

pytestmark = pytest.mark.slow
ONE_ROW_SHARDS = "output.rows_per_shard=1"


def _cfg(*extra: str) -> RunConfig:
    return tiny_config(*FAST_MASKS, *extra)


def _rows(folder: Path, n: int, scene_image: SceneImage, captions: list[list[str]]) -> list[dict[str, Any]]:
    """n good rows, then rows that fail in validation although they name an image_id, a duplicate of r0's id,
    and a missing file."""
    (folder / "images").mkdir(exist_ok=True)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        Image.fromarray(scene_image(10 + i, (48, 64))).save(folder / "images" / f"r{i}.png")
        rows.append({"image": f"images/r{i}.png", "captions": captions[i % len(captions)], "image_id": f"r{i}"})
    rows += [{"caption": "A dog.", "image_id": "no-image"}, {"image": "images/r0.png", "caption": "A dog.",
                                                             "image_id": True},
             {"image": "images/r0.png", "caption": "A dog.", "image_id": 1.5},
             {"image": "images/r1.png", "caption": "A cat.", "image_id": "r0"},
             {"image": "images/none.png", "caption": "A cat.", "image_id": "gone"}]
    return rows


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, scene_image: SceneImage, captions: list[list[str]],
          manifest_writer: ManifestWriter) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("reruns")
    rows = _rows(folder, 4, scene_image, captions)
    full = manifest_writer(folder, rows, "full.jsonl")
    reference = folder / "reference"
    summary = run(_cfg(), str(full), str(reference))
    assert summary.balanced and summary.input_rows == 9 == summary.labeled_rows + summary.error_rows
    return {"folder": folder, "rows": rows, "full": full, "reference": reference}


def _same_rows(a: Path, b: Path) -> None:
    for kind in ("labels", "errors"):
        assert comparable(read_rows(a, kind)) == comparable(read_rows(b, kind)), kind


def _cli(world: dict[str, Any], out: Path | str, *args: str, fault: str = "") -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "ovlabel.pipelines.cli", "run", "--config", str(config_path("tiny.yaml")),
           "--input", str(world["full"]), "--output", str(out), *args, *TINY_OVERRIDES, *FAST_MASKS]
    env = {**os.environ, ENV: fault} if fault else dict(os.environ)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def _killed(world: dict[str, Any], out: Path, fault: str, *args: str) -> None:
    proc = _cli(world, out, ONE_ROW_SHARDS, *args, fault=fault)
    assert proc.returncode == -9, (fault, proc.returncode, proc.stderr[-2000:])


def _complete_shards(out: Path) -> int:
    shards = [*out.glob("labels/*.parquet"), *out.glob("errors/*.parquet")]
    return sum(validate_shard(s) for s in shards)


def test_resume_of_a_finished_output_adds_nothing(world: dict[str, Any]) -> None:
    out = world["folder"] / "finished"
    run(_cfg(), str(world["full"]), str(out))
    for _ in range(2):  # validation errors with an image_id were emitted again on every resume
        summary = run(_cfg(), str(world["full"]), str(out), resume=True)
        assert summary.balanced and summary.labeled_rows + summary.error_rows == 9
    info = json.loads((out / "run.json").read_text())
    assert info["stages"]["ValidateRows"]["skipped"] == 3 and info["stages"]["Deduplicate"]["skipped"] == 6
    assert [r["forced"] for r in info["runs"]] == [False, False, False]
    _same_rows(out, world["reference"])


def test_resume_after_a_prefix_gives_the_later_duplicate_its_error_row(world: dict[str, Any],
                                                                        manifest_writer: ManifestWriter) -> None:
    out = world["folder"] / "prefix"
    run(_cfg(), str(manifest_writer(world["folder"], world["rows"][:2], "half.jsonl")), str(out))
    summary = run(_cfg(), str(world["full"]), str(out), resume=True)
    info = json.loads((out / "run.json").read_text())
    assert info["stages"]["Deduplicate"]["skipped"] == 2 and info["stages"]["ParseCaptions"]["in"] == 3
    assert summary.balanced and summary.input_rows == 9
    _same_rows(out, world["reference"])


def test_resume_with_another_config_is_refused_unless_forced(world: dict[str, Any],
                                                            manifest_writer: ManifestWriter) -> None:
    out = world["folder"] / "mixed"
    run(_cfg(), str(manifest_writer(world["folder"], world["rows"][:1], "one.jsonl")), str(out))
    other = _cfg("matching.probability_threshold=0.5")
    with pytest.raises(OutputError, match=r"first at matching\.probability_threshold \(0\.0 there, 0\.5 now\)"):
        run(other, str(world["full"]), str(out), resume=True)
    run(_cfg("beam.masks.images_per_batch=1", "output.rows_per_shard=2"),  # deployment only: not a new config
        str(manifest_writer(world["folder"], world["rows"][:2], "two.jsonl")), str(out), resume=True)
    run(other, str(world["full"]), str(out), resume=True, force_resume=True)
    info = json.loads((out / "run.json").read_text())
    assert [r["forced"] for r in info["runs"]] == [False, False, True] and info["accounting_ok"]
    first, forced = info["runs"][0]["config_sha256"], info["runs"][2]["config_sha256"]
    assert forced == info["config_sha256"] != first
    hashes = sorted(r["provenance"]["config_sha256"] == first for r in read_rows(out, "labels"))
    assert hashes == [False, False, True, True]  # every row says which config made it


def test_resume_with_a_changed_manifest_row_is_refused(world: dict[str, Any], manifest_writer: ManifestWriter) -> None:
    out = world["folder"] / "changed"
    run(_cfg(), str(world["full"]), str(out))
    rows = [dict(r) for r in world["rows"]]
    rows[1]["captions"] = ["A blue house."]
    changed = manifest_writer(world["folder"], rows, "changed.jsonl")
    with pytest.raises(OutputError, match="manifest row 1 of .* has changed"):
        run(_cfg(), str(changed), str(out), resume=True)
    shorter = manifest_writer(world["folder"], world["rows"][:3], "shorter.jsonl")
    with pytest.raises(OutputError, match="manifest row 3, which .* no longer has"):
        run(_cfg(), str(shorter), str(out), resume=True)


@pytest.mark.parametrize("fault", ["shard-written@1", "shard-published@2", "shard-published@5", "before-run-info"])
def test_a_sigkill_anywhere_loses_nothing_and_resume_completes(world: dict[str, Any], fault: str) -> None:
    out = world["folder"] / f"killed-{fault.replace('@', '-')}"
    _killed(world, out, fault)
    assert not (out / "run.json").exists()
    published = _complete_shards(out)  # every published shard is whole
    assert published == {"shard-written@1": 0, "shard-published@2": 2, "shard-published@5": 5}.get(fault, 9)
    proc = _cli(world, out, "--resume")
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads((out / "run.json").read_text())
    assert info["accounting_ok"] and sum(s["skipped"] for s in info["stages"].values()) == published
    assert not (out / "_staging").exists() and not (out / LOCK).exists()
    _same_rows(out, world["reference"])


def test_overwrite_keeps_the_old_output_until_the_new_one_is_complete(world: dict[str, Any]) -> None:
    out = world["folder"] / "replaced"
    run(_cfg(), str(world["full"]), str(out))
    old = {kind: read_rows(out, kind) for kind in ("labels", "errors")}
    _killed(world, out, "shard-published@3", "--overwrite")
    assert {kind: read_rows(out, kind) for kind in ("labels", "errors")} == old  # untouched by the killed run
    assert (out / "run.json").exists()
    for fault in ("swap-begun", "swap-half-done@2"):  # killed while swapping: the next run finishes the swap
        _killed(world, out, fault, "--overwrite")
        assert (out / SWAP).exists()
        assert _cli(world, out, "--resume").returncode == 0
        assert not (out / SWAP).exists() and not (out / NEXT).exists()
        assert json.loads((out / "run.json").read_text())["accounting_ok"]
        _same_rows(out, world["reference"])


def test_overwrite_only_replaces_what_ovlabel_made(world: dict[str, Any], tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    (mine / "labels").mkdir(parents=True)
    (mine / "labels" / "photo.parquet").write_text("the user's own")
    with pytest.raises(OutputError, match="was not made by ovlabel"):
        run(_cfg(), str(world["full"]), str(mine), overwrite=True)
    assert (mine / "labels" / "photo.parquet").read_text() == "the user's own"
    out = world["folder"] / "with-notes"
    run(_cfg(), str(world["full"]), str(out))
    (out / "notes.txt").write_text("mine")
    run(_cfg(), str(world["full"]), str(out), overwrite=True)
    assert (out / "notes.txt").read_text() == "mine" and (out / MARKER).exists()
    _same_rows(out, world["reference"])


def test_a_second_run_into_a_busy_folder_is_refused(world: dict[str, Any]) -> None:
    out = world["folder"] / "busy"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / LOCK).write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename, "run_id": "other"}))
        proc = _cli(world, out)
        assert proc.returncode == 2 and "in use by run 'other'" in proc.stderr
        assert sorted(p.name for p in out.iterdir()) == [LOCK]
    finally:
        holder.kill()
        holder.wait()
    proc = _cli(world, out)  # its holder is gone: the lock is stale and taken over
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (out / LOCK).exists()
    _same_rows(out, world["reference"])


def test_two_runs_started_together_into_one_folder_give_one_output(world: dict[str, Any]) -> None:
    out = world["folder"] / "together"
    procs = [subprocess.Popen([sys.executable, "-m", "ovlabel.pipelines.cli", "run", "--config",
                               str(config_path("tiny.yaml")), "--input", str(world["full"]), "--output", str(out),
                               *TINY_OVERRIDES, *FAST_MASKS], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    results = [(p.returncode, err) for p, err in zip(procs, errs)]
    assert sorted(code for code, _ in results) == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "in use by run" in refused or "is not empty" in refused, refused
    _same_rows(out, world["reference"])


def test_an_empty_output_is_refused_before_anything_is_written(world: dict[str, Any]) -> None:
    for output, says in (("", "--output is empty"), ("/", "refusing to write into '/'")):
        proc = _cli(world, output, "--resume")
        assert proc.returncode == 2 and says in proc.stderr, proc.stderr
    assert not Path("/labels").exists() and not Path("/run.json").exists() and not Path(MARKER).exists()


def test_non_empty_output_is_refused_without_a_flag(world: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from ovlabel.pipelines.cli import main

    code = main(["run", "--config", str(config_path("tiny.yaml")), "--input", str(world["full"]),
                 "--output", str(world["reference"])])
    assert code == 2 and "--overwrite" in capsys.readouterr().err


def test_shards_are_published_as_the_run_goes(world: dict[str, Any]) -> None:
    out = world["folder"] / "progressive"
    run(_cfg(ONE_ROW_SHARDS), str(world["full"]), str(out))
    assert len(list(out.glob("labels/*.parquet"))) == 4 and len(list(out.glob("errors/*.parquet"))) == 5
    assert all(pq.read_metadata(p).num_rows == 1 for p in out.glob("*/*.parquet"))
    _same_rows(out, world["reference"])


def test_a_killed_runs_leftovers_never_block_a_plain_rerun(world: dict[str, Any]) -> None:
    """Killed before publishing a row: a plain rerun cleans up and starts. Killed after: it says to --resume
    (one line), and --resume finishes it."""
    clean = world["folder"] / "killed-then-plain"
    _killed(world, clean, "shard-written@1")
    assert (clean / "_staging").exists() and not list(clean.glob("*/*.parquet"))
    proc = _cli(world, clean)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (clean / "_staging").exists() and len(json.loads((clean / MARKER).read_text())["runs"]) == 1
    _same_rows(clean, world["reference"])
    rows = world["folder"] / "killed-then-resume"
    _killed(world, rows, "shard-published@2")
    proc = _cli(world, rows)
    said = [line for line in proc.stderr.splitlines() if " WARNING ovlabel." not in line]  # e.g. a stale lock taken over
    assert proc.returncode == 2 and len(said) == 1, proc.stderr
    assert "holds 2 shards of a run that did not finish; rerun with --resume to finish it" in proc.stderr
    proc = _cli(world, rows, "--resume")
    assert proc.returncode == 0, proc.stderr[-2000:]
    _same_rows(rows, world["reference"])
