"""reruns: refusing, resuming and replacing an output folder (unit level; end to end: test_kills_and_reruns.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ovlabel.engine.errors import OutputError
from ovlabel.engine.layout import ERRORS, LABELS, MARKER, NEXT, REPLACED, RUN_INFO, STAGING, SWAP
from ovlabel.pipelines import reruns
from ovlabel.pipelines.output import OutputDir
from tests.pipelines.test_output import labels, shard
from tests.support import ManifestWriter

CONFIG = {"matching": {"similarity_threshold": 0.2, "crop_mode": "masked"}, "clip": {"model": "m"}}


def _prepare(out: OutputDir, mode: str, manifest: str = "m.jsonl", config: dict = CONFIG, force: bool = False,
             run_id: str = "run-2") -> reruns.RunPlan:
    return reruns.prepare(out, mode, config, "h", manifest, run_id, force)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_first_difference_names_the_first_differing_dotted_key() -> None:
    assert reruns.first_difference(CONFIG, CONFIG) is None
    changed = {**CONFIG, "matching": {**CONFIG["matching"], "similarity_threshold": 0.3}}
    assert reruns.first_difference(CONFIG, changed) == ("matching.similarity_threshold", 0.2, 0.3)
    assert reruns.first_difference(CONFIG, {**CONFIG, "a": {"b": 1}}) == ("a.b", "<absent>", 1)
    # a key an older ovlabel did not have equals its default (what that ovlabel did), and only its default
    assert reruns.first_difference(CONFIG, {**CONFIG, "a": {"b": 1}}, {"a": {"b": 1}}) is None
    assert reruns.first_difference(CONFIG, {**CONFIG, "a": {"b": 2}}, {"a": {"b": 1}}) == ("a.b", "<absent>", 2)
    assert reruns.first_difference({**CONFIG, "a": {"b": 2}}, {**CONFIG, "a": {"b": 1}}, {"a": {"b": 1}}) == \
        ("a.b", 2, 1)


def test_a_fresh_run_writes_the_marker_into_an_empty_folder(tmp_path: Path) -> None:
    out = OutputDir(str(tmp_path / "o"))
    plan = _prepare(out, "fresh")
    assert plan == reruns.RunPlan(()) and _names(tmp_path / "o") == [MARKER, ERRORS, LABELS]
    marker = out.marker()
    assert marker is not None and marker["config"] == CONFIG and marker["config_sha256"] == "h"
    assert [r["run_id"] for r in marker["runs"]] == ["run-2"]


def test_a_non_empty_folder_is_refused_without_a_flag(tmp_path: Path) -> None:
    for name in ("f", "e", "d", "c", "b", "a"):
        (tmp_path / name).write_text("x")
    with pytest.raises(OutputError) as caught:
        _prepare(OutputDir(str(tmp_path)), "fresh")
    assert str(caught.value) == (f"output folder {str(tmp_path)!r} is not empty (a, b, c, d, e); "
                                 f"pass --overwrite to replace it or --resume to finish it")
    assert _names(tmp_path) == ["a", "b", "c", "d", "e", "f"]


@pytest.mark.parametrize("mode", ["overwrite", "resume"])
def test_a_folder_ovlabel_did_not_make_is_never_touched(tmp_path: Path, mode: str) -> None:
    (tmp_path / LABELS).mkdir()
    (tmp_path / LABELS / "mine.parquet").write_text("x")
    with pytest.raises(OutputError, match=f"was not made by ovlabel .*--{mode} only ever touches"):
        _prepare(OutputDir(str(tmp_path)), mode)
    assert _names(tmp_path / LABELS) == ["mine.parquet"]


def test_an_older_ovlabels_output_may_be_overwritten_but_not_resumed(tmp_path: Path) -> None:
    (tmp_path / RUN_INFO).write_text(json.dumps({"run_id": "old", "schema_version": "1"}))
    with pytest.raises(OutputError, match="older ovlabel .* use --overwrite"):
        _prepare(OutputDir(str(tmp_path)), "resume")
    assert _prepare(OutputDir(str(tmp_path)), "overwrite").under == (NEXT, "run-2")


def _previous(root: Path, manifest_writer: ManifestWriter) -> tuple[OutputDir, str]:
    out = OutputDir(str(root))
    manifest = manifest_writer(root.parent, [{"image": "a.png", "caption": "x", "image_id": "a"},
                                             {"image": "b.png", "caption": "y", "image_id": "b"}], "m.jsonl")
    _prepare(out, "fresh", str(manifest), run_id="run-1")
    rows = labels("a")
    rows[0]["row_hash"] = reruns.manifest_keys(str(manifest))[0]  # manifest row 0 is done
    shard(root, LABELS, "run-1-x-00000.parquet", rows)
    (root / STAGING / "run-1").mkdir(parents=True)
    (root / "notes.txt").write_text("mine")
    return out, str(manifest)


def test_resume_keeps_the_shards_drops_what_killed_runs_left_and_records_itself(
        tmp_path: Path, manifest_writer: ManifestWriter) -> None:
    out, manifest = _previous(tmp_path / "o", manifest_writer)
    (tmp_path / "o" / NEXT / "run-0").mkdir(parents=True)
    plan = _prepare(out, "resume", manifest)
    assert plan.under == () and [Path(f).name for f in plan.done_files] == ["run-1-x-00000.parquet"]
    assert _names(tmp_path / "o") == [MARKER, ERRORS, LABELS, "notes.txt"]
    assert [r["run_id"] for r in out.marker()["runs"]] == ["run-1", "run-2"]


def test_resume_refuses_another_config_unless_forced(tmp_path: Path, manifest_writer: ManifestWriter) -> None:
    out, manifest = _previous(tmp_path / "o", manifest_writer)
    other = {**CONFIG, "clip": {"model": "n"}}
    with pytest.raises(OutputError, match=r"first at clip\.model \('m' there, 'n' now\).*--force-resume"):
        _prepare(out, "resume", manifest, other)
    assert _prepare(out, "resume", manifest, other, force=True).forced
    assert [r["forced"] for r in out.marker()["runs"]] == [False, True]
    assert out.marker()["config"] == CONFIG  # later resumes still compare with the output's own config


def test_resume_refuses_a_changed_manifest_row(tmp_path: Path, manifest_writer: ManifestWriter) -> None:
    out, _ = _previous(tmp_path / "o", manifest_writer)
    changed = manifest_writer(tmp_path, [{"image": "a.png", "caption": "z", "image_id": "a"}], "changed.jsonl")
    with pytest.raises(OutputError, match="manifest row 0 of .* has changed"):
        _prepare(out, "resume", str(changed))


def test_overwrite_builds_beside_the_old_output(tmp_path: Path, manifest_writer: ManifestWriter) -> None:
    out, manifest = _previous(tmp_path / "o", manifest_writer)
    plan = _prepare(out, "overwrite", manifest)
    assert plan.under == (NEXT, "run-2")
    assert _names(tmp_path / "o" / NEXT / "run-2") == [MARKER, ERRORS, LABELS]
    assert _names(tmp_path / "o" / LABELS) == ["run-1-x-00000.parquet"]  # the old output stays until the swap


def _staged_overwrite(tmp_path: Path, manifest_writer: ManifestWriter) -> OutputDir:
    out, manifest = _previous(tmp_path / "o", manifest_writer)
    (tmp_path / "o" / RUN_INFO).write_text('{"old": true}')
    _prepare(out, "overwrite", manifest)
    shard(tmp_path / "o" / NEXT / "run-2", LABELS, "run-2-y-00000.parquet", labels("a", "b"))
    out.write_json(RUN_INFO, {"new": True}, NEXT, "run-2")
    return out


def _assert_swapped(root: Path) -> None:
    assert _names(root) == [MARKER, ERRORS, LABELS, "notes.txt", RUN_INFO]
    assert _names(root / LABELS) == ["run-2-y-00000.parquet"]
    assert json.loads((root / RUN_INFO).read_text()) == {"new": True}


def test_the_swap_replaces_ovlabels_entries_and_nothing_else(tmp_path: Path, manifest_writer: ManifestWriter) -> None:
    out = _staged_overwrite(tmp_path, manifest_writer)
    reruns.swap_in(out, "run-2")
    _assert_swapped(tmp_path / "o")


@pytest.mark.parametrize("done", [0, 1, 2, 3])
def test_a_swap_killed_half_way_is_finished_by_the_next_run(tmp_path: Path, manifest_writer: ManifestWriter,
                                                            done: int) -> None:
    out = _staged_overwrite(tmp_path, manifest_writer)
    out.write_json(SWAP, {"run_id": "run-2"})
    for name in reruns.SWAPPED[:done]:  # the renames a killed swap had made
        out.move((name,), (REPLACED, "run-2", name))
        out.move((NEXT, "run-2", name), (name,))
    if done == 3:
        out.move((reruns.SWAPPED[3],), (REPLACED, "run-2", reruns.SWAPPED[3]))  # killed between the two renames
    reruns.finish_swap(out)
    _assert_swapped(tmp_path / "o")


def test_a_plain_rerun_cleans_what_a_run_that_published_nothing_left(tmp_path: Path) -> None:
    out = OutputDir(str(tmp_path / "o"))
    _prepare(out, "fresh", run_id="run-1")  # marker, empty labels/ and errors/
    (tmp_path / "o" / STAGING / "run-1" / LABELS).mkdir(parents=True)
    (tmp_path / "o" / STAGING / "run-1" / LABELS / "part-00000.parquet").write_text("staged, never published")
    (tmp_path / "o" / NEXT / "run-0").mkdir(parents=True)
    plan = _prepare(out, "fresh")
    assert plan == reruns.RunPlan(()) and _names(tmp_path / "o") == [MARKER, ERRORS, LABELS]
    assert [r["run_id"] for r in out.marker()["runs"]] == ["run-2"]  # a fresh start, not a resume


def test_a_plain_rerun_over_an_unfinished_runs_rows_points_to_resume(tmp_path: Path,
                                                                      manifest_writer: ManifestWriter) -> None:
    out, _ = _previous(tmp_path / "o", manifest_writer)
    (tmp_path / "o" / "notes.txt").unlink()
    with pytest.raises(OutputError) as caught:
        _prepare(out, "fresh")
    assert str(caught.value) == (f"output folder {str(tmp_path / 'o')!r} holds 1 shards of a run that did not "
                                 f"finish; rerun with --resume to finish it (or --overwrite to start again)")
    assert _names(tmp_path / "o" / LABELS) == ["run-1-x-00000.parquet"]


def test_leftovers_are_only_cleaned_in_ovlabels_own_folders(tmp_path: Path) -> None:
    (tmp_path / LABELS).mkdir()
    (tmp_path / STAGING).mkdir()  # no marker: not ovlabel's, nothing is removed
    with pytest.raises(OutputError, match="is not empty"):
        _prepare(OutputDir(str(tmp_path)), "fresh")
    out = OutputDir(str(tmp_path / "o"))
    _prepare(out, "fresh", run_id="run-1")
    (tmp_path / "o" / "notes.txt").write_text("mine")  # something of the user's: refused, kept
    with pytest.raises(OutputError, match="is not empty"):
        _prepare(out, "fresh")
    assert (tmp_path / "o" / "notes.txt").read_text() == "mine" and _names(tmp_path) == [STAGING, LABELS, "o"]
