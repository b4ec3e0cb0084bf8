"""ovlabel bench: figures read back from run.json, and a whole bench on the tiny config."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from ovlabel.engine.shipped import config_path
from ovlabel.pipelines.bench import failures, format_bench, pipeline_figures
from ovlabel.pipelines.cli import main
from tests.pipelines.helpers import FAST_MASKS
from tests.support import ManifestWriter, SceneImage

RI = "BeamML_RunInference/ParDo(_RunInferenceDoFn)/ParDo(_RunInferenceDoFn)/inference_batch_latency_micro_secs"


def test_figures_come_from_the_model_stages_metrics() -> None:
    metrics = {f"GenerateMasks/{RI}": {"count": 2, "sum": 3_000_000, "min": 1, "max": 2},
               f"MatchRegions/{RI}": {"count": 2, "sum": 1_000_000, "min": 1, "max": 2},
               "MatchRegions/MatchRegions.encoder_rows": 40, "MatchRegions/MatchRegions.encoder_padding": 2}
    figures = pipeline_figures({"metrics": metrics, "counts": {"labeled_rows": 8}}, wall=5.0)
    assert figures["model_compute_s"] == pytest.approx(4.0) and figures["overhead"] == pytest.approx(1.25)
    assert figures["stage_images_per_s"] == {"GenerateMasks": pytest.approx(8 / 3), "MatchRegions": pytest.approx(8.0)}
    assert figures["padding_fraction"] == pytest.approx(0.05) and figures["images_per_s"] == pytest.approx(1.6)


def test_a_run_that_wrote_error_rows_is_reported_as_failed(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    errors = {"MatchRegions": {"NotImplementedError": 1}}
    info = {"metrics": {}, "counts": {"labeled_rows": 0, "error_rows": 1, "errors_by_kind": errors}}
    failed, fine = pipeline_figures(info, wall=2.0), pipeline_figures({"metrics": {}, "counts": {"labeled_rows": 1}}, 2.0)
    assert (failed["error_rows"], failed["errors_by_kind"], fine["error_rows"]) == (1, errors, 0)
    assert failures([fine]) == []
    [line] = failures([fine, failed])
    assert line.startswith("pipeline run 2 labelled 0 image(s) and failed on 1") and "NotImplementedError" in line
    report = {"pipeline": {"wall_s": 2.0, "images_per_s": 0.0, "model_compute_s": 1.0, "overhead": 2.0,
                           "padding_fraction": 0.0, "cpu_use": 1.0},
              "pipeline_runs": [failed], "peak_rss_mib": 1.0, "failures": [line]}
    assert format_bench(report).splitlines()[-1] == f"FAILED     {line}"
    import ovlabel.pipelines.bench as bench_module

    monkeypatch.setattr(bench_module, "bench", lambda *args, **kwargs: report)
    assert main(["bench", "--config", str(config_path("tiny.yaml")), "--no-reference", "--images", "1"]) == 1
    assert "FAILED" in capsys.readouterr().out


@pytest.mark.slow
def test_a_bench_compares_the_pipeline_with_the_reference_path(tmp_path: Path, scene_image: SceneImage,
                                                               captions: list[list[str]],
                                                               manifest_writer: ManifestWriter,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    rows = []
    for i in range(2):
        Image.fromarray(scene_image(20 + i, (48, 64))).save(tmp_path / f"b{i}.png")
        rows.append({"image": f"b{i}.png", "captions": captions[i], "image_id": f"b{i}"})
    manifest = manifest_writer(tmp_path, rows, "bench.jsonl")
    code = main(["bench", "--config", str(config_path("tiny.yaml")), "--input", str(manifest), "--repeats", "1",
                 "--json", str(tmp_path / "bench.json"), *FAST_MASKS])
    assert code == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["pipeline"]["images_per_s"] > 0 and report["pipeline"]["model_compute_s"] > 0
    assert 0 <= report["pipeline"]["padding_fraction"] < 1 and report["peak_rss_mib"] > 0
    ref = report["reference"]
    assert ref["segments"] > 0 and ref["segments_identical"] == ref["segments"]  # same masks, same rules
    assert report["speedup"] > 0
    assert "speed-up" in capsys.readouterr().out
