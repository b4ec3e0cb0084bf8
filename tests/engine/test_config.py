from __future__ import annotations

from pathlib import Path

import pytest

from ovlabel.engine.config import OVSEG_TEMPLATES, Config, MatchingConfig, load_config, parse_override
from ovlabel.engine.shipped import config_path
from ovlabel.pipelines.options import RunConfig, load_run_config
from ovlabel.engine.errors import ConfigError


def test_defaults_follow_sam_and_ovseg() -> None:
    cfg = Config()
    assert (cfg.masks.sam.points_per_side, cfg.masks.sam.pred_iou_thresh, cfg.masks.sam.stability_score_thresh,
            cfg.masks.sam.box_nms_thresh, cfg.masks.sam.crop_n_layers) == (32, 0.88, 0.95, 0.7, 0)
    assert len(OVSEG_TEMPLATES) == 14 and cfg.clip.templates == OVSEG_TEMPLATES


def test_precedence_cli_over_file_over_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("masks:\n  device: cuda\n  sam:\n    points_per_side: 16\n")
    cfg = load_config(path, ["masks.device=cpu"])
    assert cfg.masks.device == "cpu"  # CLI beats file
    assert cfg.masks.sam.points_per_side == 16  # file beats default
    assert cfg.masks.sam.pred_iou_thresh == 0.88  # default


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("masks:\n  batchsize: 3\n")
    with pytest.raises(ConfigError, match="'masks.batchsize'"):
        load_config(path)
    with pytest.raises(ConfigError, match="'clip.modle'"):
        load_config(None, ["clip.modle=x"])


def test_bad_values_and_files_are_one_readable_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="masks.sam.points_per_side"):
        load_config(None, ["masks.sam.points_per_side=0"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("masks: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("masks.device")


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("masks: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_override_values_are_typed() -> None:
    assert parse_override("clip.templates=['a {}.', 'the {}.']") == ("clip.templates", ["a {}.", "the {}."])
    assert parse_override("matching.lexicon_parts=true") == ("matching.lexicon_parts", True)


@pytest.mark.parametrize("name", ["default.yaml", "tiny.yaml", "alpha-clip-l14.yaml", "ovseg-clip-l14.yaml"])
def test_shipped_configs_validate(name: str) -> None:
    assert isinstance(load_run_config(config_path(name)), RunConfig)


def test_dense_crop_mode_and_its_resolution_are_settings() -> None:
    cfg = load_config(None, ["matching.crop_mode=dense", "clip.dense_resolution=448"])
    assert (cfg.matching.crop_mode, cfg.clip.dense_resolution) == ("dense", 448)
    assert load_config(None).clip.dense_resolution is None


def test_vocabulary_and_captionless_settings() -> None:
    cfg = load_config(None)
    assert (cfg.vocabulary.file, cfg.vocabulary.unmapped, cfg.matching.captionless) == (None, "keep", "error")
    cfg = load_config(None, ["vocabulary.file=coco", "vocabulary.unmapped=drop", "matching.captionless=vocabulary"])
    assert (cfg.vocabulary.file, cfg.vocabulary.unmapped, cfg.matching.captionless) == ("coco", "drop", "vocabulary")
    assert load_config(None, ["matching.captionless=vocabulary", "matching.object_vocabulary=[cat]"]).matching.captionless
    assert load_run_config(config_path("default.yaml")).vocabulary.file == "coco"
    assert load_run_config(config_path("demo.yaml")).vocabulary.file == "demo"


def test_part_area_fraction_falls_back_to_the_object_floor() -> None:
    assert MatchingConfig(min_mask_area_fraction=0.01).part_area_fraction == 0.01
    assert MatchingConfig(min_mask_area_fraction=0.01, min_part_area_fraction=0.002).part_area_fraction == 0.002


# every value has its range, checked when the config is read: one line naming the key
REFUSED = [
    ("matching.similarity_threshold=5", "matching.similarity_threshold"),  # a cosine: [-1, 1]
    ("matching.similarity_threshold=-1.5", "matching.similarity_threshold"),
    ("matching.probability_threshold=1.5", "matching.probability_threshold"),  # probabilities: [0, 1]
    ("matching.probability_threshold=-0.1", "matching.probability_threshold"),
    ("matching.scene_threshold=2", "matching.scene_threshold"),
    ("matching.lexicon_part_threshold=-1", "matching.lexicon_part_threshold"),
    ("matching.min_mask_area_fraction=1.5", "matching.min_mask_area_fraction"),
    ("matching.min_mask_area_fraction=-0.1", "matching.min_mask_area_fraction"),
    ("matching.background_labels=['']", "matching.background_labels.0"),
    ("matching.object_vocabulary=[car, ' ']", "matching.object_vocabulary.1"),
    ("matching.part_lexicon=''", "matching.part_lexicon"),
    ("clip.templates=[]", "clip.templates"),
    ("clip.templates=['a photo']", "clip.templates.0"),  # no '{}' for the label
    ("clip.templates=['a {} and a {}']", "clip.templates.0"),  # one label only
    ("clip.templates=['a {label}']", "clip.templates.0"),
    ("clip.checkpoint_sha256=abc", "clip.checkpoint_sha256"),
    (f"clip.checkpoint_sha256={'z' * 64}", "clip.checkpoint_sha256"),
    (f"clip.checkpoint_sha256={'0' * 64}", "clip.checkpoint_sha256"),  # YAML reads 0: the digits must be quoted
    ("clip.model=''", "clip.model"),
    ("clip.pretrained=''", "clip.pretrained"),
    ("clip.model_config_file=''", "clip.model_config_file"),
    ("clip.device=gpu", "clip.device"),
    ("masks.device=gpu", "masks.device"),
    ("input.allowed_schemes=[]", "input.allowed_schemes"),
    ("input.allowed_schemes=['s 3']", "input.allowed_schemes.0"),
    ("input.manifest=''", "input.manifest"),
    ("captions.spacy_model=''", "captions.spacy_model"),
    ("demo.seed=-1", "demo.seed"),
    ("demo.cache_dir=''", "demo.cache_dir"),
    ("masks.sam.pred_iou_thresh=1.5", "masks.sam.pred_iou_thresh"),
    ("masks.sam.stability_score_thresh=-0.1", "masks.sam.stability_score_thresh"),
    ("masks.sam.stability_score_offset=-1", "masks.sam.stability_score_offset"),
    ("masks.sam.box_nms_thresh=0", "masks.sam.box_nms_thresh"),
    ("masks.sam.crop_nms_thresh=1.5", "masks.sam.crop_nms_thresh"),
    ("masks.sam.crop_overlap_ratio=1", "masks.sam.crop_overlap_ratio"),
    ("masks.sam.crop_n_points_downscale_factor=0", "masks.sam.crop_n_points_downscale_factor"),
    ("masks.sam.min_mask_region_area=-1", "masks.sam.min_mask_region_area"),
    ("masks.sam.model_type=''", "masks.sam.model_type"),
    ("masks.sam.checkpoint_sha256=xyz", "masks.sam.checkpoint_sha256"),
    ("masks.superpixel.scale=0", "masks.superpixel.scale"),
    ("masks.superpixel.sigma=-1", "masks.superpixel.sigma"),
    ("masks.superpixel.min_size=-1", "masks.superpixel.min_size"),
    ("masks.superpixel.min_area_fraction=2", "masks.superpixel.min_area_fraction"),
    ("masks.superpixel.scale_factors=[1.0, 0]", "masks.superpixel.scale_factors.1"),
    ("masks.superpixel.seed=-1", "masks.superpixel.seed"),
    ("masks.precomputed.path=''", "masks.precomputed.path"),
    ("clip.dense_resolution=8", "clip.dense_resolution"),
    ("vocabulary.file=''", "vocabulary.file"),
    ("vocabulary.unmapped=ignore", "vocabulary.unmapped"),
    ("vocabulary.unmapped=drop", "vocabulary.unmapped"),  # drop needs a vocabulary.file
    ("matching.captionless=maybe", "matching.captionless"),
    ("matching.captionless=vocabulary", "matching.captionless"),  # needs object_vocabulary or vocabulary.file
]


@pytest.mark.parametrize("override,key", REFUSED, ids=[o for o, _ in REFUSED])
def test_a_value_out_of_its_range_is_refused_naming_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    message = str(err.value)
    assert message.startswith(f"bad config value for {key!r} in defaults + overrides: ") and "\n" not in message


def test_the_ends_of_each_range_are_allowed_and_hashes_and_schemes_normalised() -> None:
    sha = "AB" * 32
    assert load_config(None, [f"clip.checkpoint_sha256='{'0' * 64}'"]).clip.checkpoint_sha256 == "0" * 64
    cfg = load_config(None, ["matching.similarity_threshold=-1", "matching.probability_threshold=1",
                             "matching.scene_threshold=0", "matching.min_mask_area_fraction=0",
                             f"clip.checkpoint_sha256={sha}", f"masks.sam.checkpoint_sha256={sha}",
                             "input.allowed_schemes=[FILE, gs]", "clip.templates=['a {}.']",
                             "clip.device=cuda:1", "masks.device=cuda", "masks.sam.crop_overlap_ratio=0"])
    assert cfg.matching.similarity_threshold == -1 and cfg.matching.probability_threshold == 1
    assert cfg.clip.checkpoint_sha256 == cfg.masks.sam.checkpoint_sha256 == "ab" * 32
    assert cfg.input.allowed_schemes == ("file", "gs") and cfg.clip.templates == ("a {}.",)
    assert load_config(None, ["matching.similarity_threshold=1"]).matching.similarity_threshold == 1


BLOW_UPS = {
    # a valid config once expanded: run.json would hold the 2 KB label 1000 times
    "one long label": "matching:\n  background_labels: [&w {word}]\n  object_vocabulary: [{refs}]\n",
    "a list in a list": "matching:\n  object_vocabulary: &ws [{words}]\n  background_labels: [{refs}]\n",
}


@pytest.mark.parametrize("shape", sorted(BLOW_UPS))
def test_yaml_aliases_that_blow_the_document_up_are_refused(tmp_path: Path, shape: str) -> None:
    path = tmp_path / "aliases.yaml"
    alias = "*w" if shape == "one long label" else "*ws"
    path.write_text(BLOW_UPS[shape].format(word="x" * 2000, words=", ".join(f"w{i}" for i in range(100)),
                                           refs=", ".join([alias] * 1000)))
    with pytest.raises(ConfigError, match=r"aliases.yaml'.*YAML aliases expand it to \d+ characters") as err:
        load_config(path)
    assert "\n" not in str(err.value)


def test_yaml_aliases_used_plainly_are_allowed(tmp_path: Path) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text("clip:\n  templates: &t ['a photo of a {}.', 'a {}.']\n"
                    "matching:\n  background_labels: [background, other]\n  object_vocabulary: &v [car, dog]\n"
                    "demo:\n  num_images: &n 4\n  image_size: 64\n  seed: *n\n")
    cfg = load_config(path)
    assert cfg.clip.templates == ("a photo of a {}.", "a {}.") and cfg.demo is not None and cfg.demo.seed == 4


def test_a_recursive_yaml_alias_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("matching:\n  object_vocabulary: &loop [car, *loop]\n")
    with pytest.raises(ConfigError, match="loop.yaml'.*recursive"):
        load_config(path)


def test_overrides_as_a_mapping_take_values_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("masks:\n  device: cuda\n")
    cfg = load_config(path, {"masks.device": "cpu", "clip.templates": ["a {}: yes"], "input.limit": 3})
    assert (cfg.masks.device, cfg.clip.templates, cfg.input.limit) == ("cpu", ("a {}: yes",), 3)
    assert load_config(None, "input.limit=2").input.limit == 2  # one 'key=value' text is one override
    with pytest.raises(ConfigError, match="is gone: use 'matching.crop_mode'"):
        load_config(None, {"clip.crop_mode": "box"})
    with pytest.raises(ConfigError, match="input.limit"):
        load_config(None, {"input.limit": 0})


def test_a_config_by_its_shipped_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_run_config("demo") == load_run_config(config_path("demo.yaml"))
    assert load_run_config("tiny.yaml", ["masks.device=cpu"]) == load_run_config(config_path("tiny.yaml"))


def test_an_ensemble_member_takes_its_own_weights_and_clips_encoding_settings() -> None:
    member = "clip.ensemble=[{crop_mode: masked, weight: 0.3, checkpoint: /w/masked.safetensors}]"
    cfg = load_config(None, [member, "clip.region_checkpoint=/w/alpha.pth", "clip.flip_average=true",
                             "matching.crop_mode=alpha"])
    assert cfg.clip.primary_weight == pytest.approx(0.7)
    one = cfg.clip.member(0)
    assert (one.model, one.pretrained, one.checkpoint, one.region_checkpoint, one.flip_average, one.ensemble) == (
        "ViT-B-16", None, "/w/masked.safetensors", None, True, ())
    assert one.templates == cfg.clip.templates and one.crops_per_batch == cfg.clip.crops_per_batch
    other = load_config(None, ["clip.ensemble=[{crop_mode: box, weight: 0.5, model: RN50, pretrained: yfcc15m, "
                               "flip_average: false}]", "clip.flip_average=true"]).clip.member(0)
    assert (other.model, other.pretrained, other.flip_average) == ("RN50", "yfcc15m", False)


@pytest.mark.parametrize("overrides, message", [
    (["clip.ensemble=[{crop_mode: masked, weight: 0.6}, {crop_mode: box, weight: 0.4}]"],
     r"clip\.ensemble.*weights sum to 1; they must leave the first model a share"),
    (["clip.ensemble=[{crop_mode: masked, weight: 1.5}]"], r"clip\.ensemble\.0\.weight"),
    (["clip.ensemble=[{crop_mode: dense, weight: 0.5}]"], r"clip\.ensemble\.0\.crop_mode"),
    (["clip.ensemble=[{crop_mode: masked, weight: 0.5}]", "matching.crop_mode=dense"],
     r"clip\.ensemble.*crop_mode=dense cannot be ensembled"),
    (["clip.ensemble=[{crop_mode: masked, weight: 0.5, templates: ['a {}']}]"], r"clip\.ensemble\.0\.templates"),
])
def test_a_bad_ensemble_is_refused_naming_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)
