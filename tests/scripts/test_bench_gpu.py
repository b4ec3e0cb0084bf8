"""scripts/bench_gpu.py: the --smoke preset runs on CPU and prints / writes every figure, sane; the SAM
image-encoder FLOP count agrees with torch's FlopCounterMode at full size; missing packages stop it with
one line; it runs from a checkout where ovlabel is not installed."""
from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pytest

pytest.importorskip("segment_anything")
pytest.importorskip("open_clip")

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_gpu.py"


@pytest.fixture(scope="module")
def bench(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("bench_gpu")


@pytest.fixture(scope="module")
def smoke(bench: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(stdout, main's result, the --json file) of one ``--smoke --device cpu`` run."""
    out = tmp_path_factory.mktemp("bench_gpu") / "gpu.json"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = bench.main(["--smoke", "--device", "cpu", "--json", str(out)])
    return printed.getvalue(), result, json.loads(out.read_text())


@pytest.mark.slow
def test_smoke_json_has_every_figure_and_they_are_sane(smoke: tuple[str, dict[str, Any], dict[str, Any]],
                                                       bench: ModuleType) -> None:
    import torch

    _, result, data = smoke
    assert data == json.loads(json.dumps(result, default=str))
    runs = data["seconds_per_pass"]["runs"]
    assert len(runs) == 2 and all(t > 0 for t in runs)  # --smoke: 2 timed passes after 1 warm-up
    assert data["images_per_s"] > 0 and data["images_per_s"] == pytest.approx(2 / statistics.median(runs))
    stages = data["stage_seconds"]
    assert set(stages) == set(bench.STAGES)
    for stage in ("mask_encoder", "mask_decoder_postprocess", "match_crops", "match_clip_image_encoder"):
        assert 0 < stages[stage] < max(runs), stage
    assert 0 <= stages["match_clip_text_encoder"] < max(runs) and 0 <= stages["match_rules"] < max(runs)
    env = data["environment"]
    assert env["torch_version"] == torch.__version__ and env["device"] == "cpu" and env["gpu_name"] is None
    assert "peak_gpu_memory_bytes" in data and data["peak_gpu_memory_bytes"] is None  # CPU: no GPU memory
    work = data["workload"]
    assert work["images"] == 2 and work["sam_masks_per_image"] >= 0
    assert work["candidate_regions_per_image"] > 0 and work["crops_per_image"] >= work["candidate_regions_per_image"]
    assert data["settings"]["sam"]["model_type"] == "vit_tiny" and data["settings"]["clip"]["random_weights"]


@pytest.mark.slow
def test_smoke_encoder_flops_and_rates(smoke: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    enc = smoke[2]["sam_encoder"]
    assert enc["flops_per_image_counted"] > 0
    assert enc["flops_per_image_counted"] == enc["flops_per_image_analytic"]  # fp32, written-out attention
    assert enc["peak_tflops"] == 790.0
    for where in ("in_pipeline", "isolated"):
        assert enc[f"tflops_{where}"] > 0
        assert enc[f"fraction_of_peak_{where}"] == pytest.approx(enc[f"tflops_{where}"] / 790.0)
    assert enc["isolated_seconds_per_call"] > 0 and enc["isolated_batch"] == 2


@pytest.mark.slow
def test_smoke_prints_every_figure(smoke: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    import torch

    printed, _, data = smoke
    for text in ("images/s end to end:", "masks: encoder", "decoder+postprocess", "matching: crops",
                 "CLIP image encoder", "CLIP text encoder", "rules", "TFLOP/image counted", "analytic",
                 "TFLOP/s in the pipeline", "TFLOP/s alone", "fraction of the 790 TFLOP/s peak",
                 "peak GPU memory: n/a", f"torch {torch.__version__}", "SAM vit_tiny", "CLIP ovlabel-tiny-clip",
                 "SAM masks", "CLIP crops"):
        assert text in printed, text
    assert f"{data['images_per_s']:.4f}" in printed


@pytest.mark.parametrize("model_type", ["vit_b", "vit_h"])
def test_analytic_encoder_flops_match_the_flop_counter_at_full_size(bench: ModuleType, model_type: str) -> None:
    import torch
    from segment_anything.build_sam import _build_sam
    from torch.utils.flop_counter import FlopCounterMode

    from ovlabel.engine.masks.sam import sam_architecture
    from ovlabel.engine.masks.sam.encoder import encode_images

    arch = sam_architecture(model_type)
    with torch.device("meta"):  # shapes only: no weights, no arithmetic
        model = _build_sam(arch["encoder_embed_dim"], arch["encoder_depth"], arch["encoder_num_heads"],
                           list(arch["encoder_global_attn_indexes"]), checkpoint=None)
        counter = FlopCounterMode(display=False)
        with counter, torch.inference_mode():
            encode_images(model, torch.empty(1, 3, 1024, 1024), False)
    assert bench.analytic_encoder_flops(model) == counter.get_total_flops()
    if model_type == "vit_h":  # SAM ViT-H's image encoder: about 2.98e12 multiply-adds at 1024 px
        assert bench.analytic_encoder_flops(model) == pytest.approx(2 * 2.98e12, rel=0.01)


def test_a_missing_package_stops_it_with_one_line(bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "segment_anything", None)  # find_spec -> None, as when not installed
    with pytest.raises(SystemExit) as stop:
        bench.main(["--smoke", "--device", "cpu"])
    message = str(stop.value)
    assert "segment-anything" in message and "open_clip" not in message and "\n" not in message


def test_cuda_without_a_gpu_stops_it_with_one_line(bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as stop:
        bench.main(["--smoke"])  # --device defaults to cuda
    assert "--device cuda" in str(stop.value) and "\n" not in str(stop.value)


def test_it_runs_from_a_checkout_where_ovlabel_is_not_installed(tmp_path: Path) -> None:
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('bench_gpu', {str(SCRIPT)!r})\n"
            "module = importlib.util.module_from_spec(spec); sys.modules['bench_gpu'] = module\n"
            "spec.loader.exec_module(module)\n"
            "module.ensure_ovlabel()\n"
            "import pathlib, ovlabel.engine\n"
            "from ovlabel.engine.shipped import shipped\n"
            "print(pathlib.Path(ovlabel.engine.__file__).resolve()); print(shipped('models', 'sam.yaml').resolve())\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # -S: no site-packages, so no installed (or editable) ovlabel; the script's imports are stdlib only
    done = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    engine, sam_yaml = (Path(line) for line in done.stdout.split())
    assert engine == SCRIPT.parents[1] / "engine" / "__init__.py"
    assert sam_yaml == SCRIPT.parents[1] / "configs" / "models" / "sam.yaml"
