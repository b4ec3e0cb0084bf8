"""Preflight: what a config names is checked before a run starts."""
from __future__ import annotations

from pathlib import Path

import pytest

from ovlabel.engine.config import Config
from ovlabel.engine.shipped import config_path
from ovlabel.pipelines.options import load_run_config
from ovlabel.engine.errors import ConfigError, ManifestError, ModelWeightsError, OutputError
from ovlabel.engine.captions import missing_model_error
from ovlabel.engine.preflight import check_manifest, check_output, check_spacy_model, preflight
from tests.engine.servers import FileServer


def test_demo_config_passes() -> None:
    preflight(load_run_config(config_path("demo.yaml")))


def test_missing_part_lexicon_fails_before_the_run(tmp_path: Path) -> None:
    missing = tmp_path / "parts.yaml"
    cfg = load_run_config(config_path("demo.yaml"), [f"matching.part_lexicon={missing}"])
    with pytest.raises(ConfigError, match="matching.part_lexicon"):
        preflight(cfg)
    preflight(load_run_config(config_path("demo.yaml"), [f"matching.part_lexicon={missing}", "matching.lexicon_parts=false"]))


def test_a_missing_or_bad_vocabulary_fails_before_the_run_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"vocabulary file .*classes\.yaml' not found"):
        preflight(load_run_config(config_path("demo.yaml"), [f"vocabulary.file={tmp_path / 'classes.yaml'}"]))
    (tmp_path / "classes.yaml").write_text("car: [auto]\ntruck: [auto]\n")
    with pytest.raises(ConfigError, match=r"classes\.yaml.*'auto' under both 'car' and 'truck'"):
        preflight(load_run_config(config_path("demo.yaml"), [f"vocabulary.file={tmp_path / 'classes.yaml'}"]))


def test_missing_clip_checkpoint_names_the_key(tmp_path: Path) -> None:
    cfg = load_run_config(config_path("demo.yaml"), [f"clip.checkpoint={tmp_path / 'clip.safetensors'}"])
    with pytest.raises(ModelWeightsError, match="clip.checkpoint"):
        preflight(cfg)


def test_missing_spacy_model_has_the_loaders_error() -> None:
    with pytest.raises(ConfigError) as err:
        check_spacy_model("not_a_spacy_model")
    assert str(err.value) == str(missing_model_error("not_a_spacy_model"))


def test_missing_sam_checkpoint_names_the_official_file() -> None:
    cfg = load_run_config(config_path("demo.yaml"), ["masks.generator=sam", "masks.sam.model_type=vit_b"])
    with pytest.raises(ModelWeightsError) as err:
        preflight(cfg)
    url = "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth"
    assert str(err.value) == (f"no SAM checkpoint configured; download sam_vit_b_01ec64.pth from {url} "
                              "and set masks.sam.checkpoint=/path/to/sam_vit_b_01ec64.pth")


DEMO_CLIP_SHA = "bcce0020a08e88799598a3e1a9797fd83fc06b2ce9367cce6c1999323731b475"  # configs/demo.yaml's


def test_an_unknown_clip_model_fails_before_the_run() -> None:
    cfg = load_run_config(config_path("demo.yaml"), ["clip.model=ViT-Nope-16"])
    with pytest.raises(ConfigError, match="unknown open_clip model 'ViT-Nope-16'"):
        preflight(cfg)


def test_an_unknown_pretrained_tag_or_no_clip_weights_fail_before_the_run() -> None:
    tag = load_run_config(config_path("demo.yaml"), ["clip.model=ViT-B-16", "clip.checkpoint=null",
                                                     "clip.pretrained=laion_nope"])
    with pytest.raises(ConfigError, match="clip.pretrained 'laion_nope'.*ViT-B-16.*openai"):
        preflight(tag)
    none = load_run_config(config_path("demo.yaml"), ["clip.checkpoint=null", "clip.pretrained=null"])
    with pytest.raises(ModelWeightsError, match="no CLIP weights configured"):
        preflight(none)


def test_a_wrong_clip_checkpoint_hash_names_the_file_and_both_hashes() -> None:
    cfg = load_run_config(config_path("demo.yaml"), [f"clip.checkpoint_sha256={'f' * 64}"])
    with pytest.raises(ModelWeightsError) as err:
        preflight(cfg)
    message = str(err.value)
    assert "ovlabel-tiny-clip-alpha.safetensors" in message and DEMO_CLIP_SHA in message and "f" * 64 in message
    assert "clip.checkpoint_sha256" in message
    preflight(load_run_config(config_path("demo.yaml"), [f"clip.checkpoint_sha256={DEMO_CLIP_SHA.upper()}"]))


def test_a_wrong_sam_checkpoint_hash_or_model_type_fails_before_the_run(tmp_path: Path) -> None:
    weights = tmp_path / "sam.pth"
    weights.write_bytes(b"not really weights")
    sam = ["masks.generator=sam", "masks.sam.model_type=vit_tiny", f"masks.sam.checkpoint={weights}"]
    cfg = load_run_config(config_path("demo.yaml"), [*sam, f"masks.sam.checkpoint_sha256={'f' * 64}"])
    with pytest.raises(ModelWeightsError, match=f"'{weights}' has sha256 [0-9a-f]{{64}}, expected f{{64}} "
                                                 r"\(masks.sam.checkpoint_sha256\)"):
        preflight(cfg)
    odd = load_run_config(config_path("demo.yaml"), ["masks.generator=sam", "masks.sam.model_type=vit_nope",
                                                     "masks.sam.checkpoint=random"])
    with pytest.raises(ConfigError, match="unknown masks.sam.model_type 'vit_nope'"):
        preflight(odd)


def test_dense_mode_needs_a_vit_image_tower() -> None:
    dense = ["matching.crop_mode=dense", "clip.checkpoint=random", "clip.checkpoint_sha256=null", "clip.ensemble=[]"]
    preflight(load_run_config(config_path("demo.yaml"), dense))  # the demo CLIP is a ViT
    cfg = load_run_config(config_path("demo.yaml"), [*dense, "clip.model=RN50"])
    with pytest.raises(ConfigError, match="crop_mode=dense needs a ViT image tower; open_clip model 'RN50' has a ResNet"):
        preflight(cfg)
    preflight(load_run_config(config_path("demo.yaml"), ["clip.model=RN50", "clip.checkpoint=random",
                                                         "clip.checkpoint_sha256=null",
                                                         "matching.crop_mode=masked"]))  # masked crops: any tower


# --- checkpoints by URL and from the model hub: found, cached or reachable, in seconds ---------------------------

REFUSED = "http://127.0.0.1:9"  # nothing listens on the discard port: refused at once
HUB_REPO = "timm/vit_base_patch16_clip_224.openai"  # where open_clip takes ViT-B-16 'openai' from
HUB_FILE = "open_clip_model.safetensors"
PRETRAINED = ["clip.model=ViT-B-16", "clip.pretrained=openai", "clip.checkpoint=null", "clip.checkpoint_sha256=null",
              "clip.model_config_file=null"]


def _sam_at(url: str, *extra: str) -> Config:
    return load_run_config(config_path("demo.yaml"), ["masks.generator=sam", "masks.sam.model_type=vit_tiny",
                                                      f"masks.sam.checkpoint={url}", *extra])


def test_a_checkpoint_url_is_probed_and_a_cached_one_is_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVLABEL_CACHE", str(tmp_path / "cache"))
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "sam.pth").write_bytes(b"weights")
    with FileServer(tmp_path / "served") as server:
        preflight(_sam_at(server.url("sam.pth")))
        with pytest.raises(ModelWeightsError, match=r"^cannot fetch http://127.0.0.1:\d+/gone.pth \(HTTP 404 File not "
                                                     r"found\); download gone.pth by hand and set masks.sam.checkpoint="):
            preflight(_sam_at(server.url("gone.pth")))
    with pytest.raises(ModelWeightsError, match="Cannot connect to host 127.0.0.1:9.*masks.sam.checkpoint=/path/to/sam.pth"):
        preflight(_sam_at(f"{REFUSED}/sam.pth"))
    (tmp_path / "cache" / "checkpoints").mkdir(parents=True)
    (tmp_path / "cache" / "checkpoints" / "sam.pth").write_bytes(b"weights")  # downloaded by an earlier run
    preflight(_sam_at(f"{REFUSED}/sam.pth"))
    with pytest.raises(ModelWeightsError, match=r"has sha256 .* \(masks.sam.checkpoint_sha256\)"):
        preflight(_sam_at(f"{REFUSED}/sam.pth", f"masks.sam.checkpoint_sha256={'f' * 64}"))


def _hub_at(monkeypatch: pytest.MonkeyPatch, base: str, cache: Path) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", base + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))


def test_pretrained_weights_are_found_in_the_hub_cache_or_on_the_hub(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_run_config(config_path("demo.yaml"), PRETRAINED)
    _hub_at(monkeypatch, REFUSED, tmp_path / "hub")
    with pytest.raises(ModelWeightsError) as err:
        preflight(cfg)
    assert str(err.value) == (
        f"clip.pretrained 'openai' of ViT-B-16: its weights are not in the Hugging Face cache ({tmp_path / 'hub'}) and "
        f"cannot be fetched (ClientConnectorError: Cannot connect to host 127.0.0.1:9 ssl:default [Connect call "
        f"failed ('127.0.0.1', 9)]); download {HUB_FILE} from {REFUSED}/{HUB_REPO}/resolve/main/{HUB_FILE} and set "
        f"clip.checkpoint=/path/to/{HUB_FILE}")
    served = tmp_path / "served" / HUB_REPO / "resolve" / "main"
    served.mkdir(parents=True)
    (served / HUB_FILE).write_bytes(b"weights")
    with FileServer(tmp_path / "served") as server:
        _hub_at(monkeypatch, server.url("").rstrip("/"), tmp_path / "hub")
        preflight(cfg)  # the hub answers: open_clip will download it
    snapshot = tmp_path / "hub" / f"models--{HUB_REPO.replace('/', '--')}"
    (snapshot / "refs").mkdir(parents=True)
    (snapshot / "refs" / "main").write_text("abc123")
    (snapshot / "snapshots" / "abc123").mkdir(parents=True)
    (snapshot / "snapshots" / "abc123" / HUB_FILE).write_bytes(b"weights")
    _hub_at(monkeypatch, REFUSED, tmp_path / "hub")
    preflight(cfg)  # cached: no network needed


def test_offline_hub_mode_is_named_when_the_weights_are_not_cached(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    _hub_at(monkeypatch, REFUSED, tmp_path / "hub")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelWeightsError, match=r"cannot be fetched \(HF_HUB_OFFLINE is set\); download "):
        preflight(load_run_config(config_path("demo.yaml"), PRETRAINED))


# --- the manifest reads, the output can be written --------------------------------------------------------------


def test_the_manifests_first_rows_must_read(tmp_path: Path) -> None:
    good = tmp_path / "m.jsonl"
    good.write_text('{"image": "a.png", "caption": "a dog"}\nnot json\n')
    assert [r.index for r in check_manifest(str(good))] == [0, 1]  # an unparseable row is the run's error row
    broken = tmp_path / "m.parquet"
    broken.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(ManifestError, match=r"^manifest '.*m.parquet' cannot be read \(.*\); pass --input a readable"):
        check_manifest(str(broken))
    folder = tmp_path / "rows.jsonl"
    folder.mkdir()
    with pytest.raises(ManifestError, match=r"cannot be opened \(\[Errno 21\] Is a directory"):
        check_manifest(str(folder))


def test_the_output_is_probed_where_it_will_be_written_and_nothing_is_left(tmp_path: Path) -> None:
    check_output(str(tmp_path / "runs" / "first"))  # not there yet: probed in the nearest folder above
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    (tmp_path / "o").mkdir()
    check_output(str(tmp_path / "o"))
    assert list((tmp_path / "o").iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"is a file, not a folder"):
        check_output(str(tmp_path / "file" / "out"))
    with pytest.raises(OutputError, match=r"^--output '/proc/out' cannot be written \(.*\); choose a folder you can "):
        check_output("/proc/out")


@pytest.mark.parametrize(("config", "key", "file"), [
    ("alpha-clip-l14.yaml", "clip.region_checkpoint", "clip_l14_grit20m_fultune_2xe.pth"),
    ("ovseg-clip-l14.yaml", "clip.checkpoint", "ovseg_clip_l_9a1909.pth")])
def test_the_region_encoder_configs_name_the_file_to_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                config: str, key: str, file: str) -> None:
    monkeypatch.chdir(tmp_path)  # relative checkpoint paths: the working directory, then the configs folder
    no_sam = ["masks.generator=superpixel"]  # SAM's weights are a URL: probed (and unreachable) here
    with pytest.raises(ModelWeightsError) as err:
        preflight(load_run_config(config_path(config), no_sam))
    assert str(err.value) == f"checkpoint file '{file}' not found; provide {file} and set {key}=/path/to/{file}"
    (tmp_path / file).write_bytes(b"present")  # preflight only looks for the file (and its sha256 when set)
    try:
        preflight(load_run_config(config_path(config), no_sam))
    except ModelWeightsError as exc:  # what comes next is not this file (e.g. OpenAI's weights from the hub, offline)
        assert file not in str(exc) and key not in str(exc)


def test_region_encoder_settings_fail_before_the_run(tmp_path: Path) -> None:
    weights = tmp_path / "tower.pth"
    weights.write_bytes(b"x")
    with pytest.raises(ConfigError, match="clip.region_checkpoint is only read with matching.crop_mode=alpha or "
                                          "mask_prompt \\(crop_mode is masked\\)"):
        preflight(load_run_config(config_path("demo.yaml"), [f"clip.region_checkpoint={weights}",
                                                             "matching.crop_mode=masked"]))
    preflight(load_run_config(config_path("demo.yaml"), [f"clip.region_checkpoint={weights}"]))  # the demo's alpha
    with pytest.raises(ModelWeightsError, match="region_checkpoint_sha256"):
        preflight(load_run_config(config_path("demo.yaml"), [f"clip.region_checkpoint={weights}", "matching.crop_mode=alpha",
                                                             f"clip.region_checkpoint_sha256={'f' * 64}"]))
    with pytest.raises(ConfigError, match="crop_mode=mask_prompt needs a ViT image tower; open_clip model 'RN50'"):
        preflight(load_run_config(config_path("demo.yaml"), ["matching.crop_mode=mask_prompt", "clip.model=RN50",
                                                             "clip.checkpoint=random", "clip.checkpoint_sha256=null"]))
    with pytest.raises(ModelWeightsError, match="crop_mode=mask_prompt needs OVSeg's learned mask prompts, which "
                                                "clip.pretrained=openai lacks: download ovseg_clip_l_9a1909.pth"):
        preflight(load_run_config(config_path("demo.yaml"), ["matching.crop_mode=mask_prompt", "clip.model=ViT-B-16",
                                                             "clip.pretrained=openai", "clip.checkpoint=null"]))
    preflight(load_run_config(config_path("demo.yaml"), ["matching.crop_mode=mask_prompt", "clip.checkpoint=random",
                                                         "clip.checkpoint_sha256=null"]))


def test_an_ensemble_members_missing_checkpoint_fails_before_the_run_naming_the_member(tmp_path: Path) -> None:
    member = f"clip.ensemble=[{{crop_mode: masked, weight: 0.5, checkpoint: {tmp_path / 'masked.safetensors'}}}]"
    with pytest.raises(ModelWeightsError, match=r"^clip\.ensemble\[0\] \(crop_mode masked\): .*masked\.safetensors"):
        preflight(load_run_config(config_path("demo.yaml"), [member]))
    region = "clip.ensemble=[{crop_mode: masked, weight: 0.5, checkpoint: random, region_checkpoint: /w/a.pth}]"
    with pytest.raises(ConfigError, match=r"^clip\.ensemble\[0\] .*region_checkpoint is only read"):
        preflight(load_run_config(config_path("demo.yaml"), [region]))
