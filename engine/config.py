"""Typed, validated run configuration.

Precedence: ``key=value`` overrides (CLI) > the YAML file > the defaults below. Every section
forbids unknown keys, so a typo is an error that names the key. YAML is read with
``yaml.safe_load``; override values are parsed as YAML scalars/lists (``masks.batch_size=8``,
``clip.templates=['a {}.']``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ovlabel.engine.errors import ConfigError

OVSEG_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.", "This is a photo of a {}", "There is a {} in the scene",
    "There is the {} in the scene", "a photo of a {} in the scene", "a photo of a small {}.",
    "a photo of a medium {}.", "a photo of a large {}.", "This is a photo of a small {}.",
    "This is a photo of a medium {}.", "This is a photo of a large {}.",
    "There is a small {} in the scene.", "There is a medium {} in the scene.",
    "There is a large {} in the scene.",
)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputConfig(_Section):
    manifest: Optional[str] = None
    allowed_schemes: tuple[str, ...] = ("file", "gs", "s3")
    allow_http: bool = False


class CaptionsConfig(_Section):
    spacy_model: str = "en_core_web_sm"
    batch_size: int = Field(64, ge=1)
    max_chars: int = Field(2000, ge=1)


class ImagesConfig(_Section):
    max_pixels: int = Field(64_000_000, ge=1, description="decompression-bomb guard (PIL's pixel cap)")
    min_side: int = Field(8, ge=1)


class SamConfig(_Section):
    model_type: str = "vit_h"
    checkpoint: Optional[str] = None
    checkpoint_sha256: Optional[str] = None
    random_weights: bool = False  # tests and benchmarks only
    seed: int = 0
    points_per_side: int = Field(32, ge=1)
    points_per_batch: int = Field(256, ge=1)
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = Field(0, ge=0)
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    min_mask_region_area: int = 0
    image_batch_size: int = Field(4, ge=1)
    implementation: Literal["batched", "reference"] = "batched"


class SuperpixelConfig(_Section):
    max_proposals: int = Field(300, ge=1)
    scale: float = 100.0
    sigma: float = 0.8
    min_size: int = 20
    max_side: int = Field(320, ge=16, description="images are segmented at most this large")
    min_area_fraction: float = 0.0005
    colour_spaces: tuple[Literal["rgb", "hsv", "lab", "rgi", "hue", "intensity"], ...] = Field(
        ("hsv", "lab"), min_length=1, description="one Felzenszwalb over-segmentation per colour space and scale")
    scale_factors: tuple[float, ...] = Field(
        (1.0, 3.0), min_length=1, description="Felzenszwalb k values, as multiples of `scale`")
    similarities: tuple[Literal["ctsf", "tsf", "cs", "ts", "f", "s"], ...] = Field(
        ("f",), min_length=1,
        description="merge similarities: c(olour) t(exture) s(ize) f(ill) terms, one hierarchy each")
    dedupe_iou: float = Field(0.9, gt=0, le=1, description="drop a proposal this similar to a better-ranked one")
    seed: int = 0  # the ranking's random jitter (selective search); fixed, so output is deterministic


class PrecomputedConfig(_Section):
    path: Optional[str] = None
    format: Literal["sa1b", "shards"] = "sa1b"


class MasksConfig(_Section):
    generator: Literal["sam", "superpixel", "precomputed"] = "sam"
    batch_size: int = Field(4, ge=1, description="images per RunInference batch")
    device: str = "auto"
    accelerator: Optional[str] = None  # Beam resource hint, e.g. 'type:nvidia-l4;count:1;install-nvidia-driver'
    sam: SamConfig = SamConfig()
    superpixel: SuperpixelConfig = SuperpixelConfig()
    precomputed: PrecomputedConfig = PrecomputedConfig()


class ClipConfig(_Section):
    model: str = "ViT-B-16"
    pretrained: Optional[str] = "openai"
    checkpoint: Optional[str] = None
    checkpoint_sha256: Optional[str] = None
    random_weights: bool = False  # tests and benchmarks only
    seed: int = 0
    model_config_file: Optional[str] = None  # a custom open_clip architecture (JSON)
    crop_mode: Literal["masked", "box", "blend"] = "masked"
    flip_average: bool = Field(False, description="average each crop's embedding with its mirror image's")
    templates: tuple[str, ...] = OVSEG_TEMPLATES
    batch_size: int = Field(64, ge=1)
    image_batch_size: int = Field(4, ge=1, description="images per RunInference batch")
    device: str = "auto"
    accelerator: Optional[str] = None


class MatchingConfig(_Section):
    similarity_threshold: float = 0.2
    probability_threshold: float = 0.3
    background_labels: tuple[str, ...] = ("background", "other", "thing", "stuff")
    min_mask_area_fraction: float = 0.001
    min_part_area_fraction: Optional[float] = Field(
        None, ge=0, le=1, description="part candidates may be this small (fraction of the image); None: as objects")
    part_containment: float = Field(0.8, ge=0, le=1)
    part_reach: Optional[float] = Field(
        None, ge=0, description="parts may reach outside their object's mask: a mask touching it (within "
        "part_touch_px) and at least part_containment inside its box widened by this fraction of the box on "
        "each side; the object then grows to take the parts outside it, and its former mask may itself be a "
        "part (a tree matched by its crown). None: parts lie inside the object's mask")
    part_touch_px: int = Field(3, ge=0, description="with part_reach: how near (pixels) a part must come to its object")
    object_vocabulary: tuple[str, ...] = Field(
        (), description="object labels to look for beyond the captions' nouns (source 'vocabulary'): on the "
        "masks the caption nouns left free, a softmax over these, the image's object nouns and background, "
        "kept at vocabulary_threshold; a word as close to a caption noun as merge_similarity is left to it")
    vocabulary_threshold: float = Field(0.9, ge=0, le=1)
    lexicon_parts: bool = False
    lexicon_part_threshold: float = 0.6
    part_lexicon: Optional[str] = Field(
        None, description="the lexicon lexicon_parts proposes parts from: a YAML file in the format of "
        "configs/vocab/parts.yaml (a relative path not found from the working directory is looked up in the "
        "configs folder); None: configs/vocab/parts.yaml. The caption parser always uses parts.yaml")
    scene_threshold: float = 0.3
    instance_nms_iou: float = Field(0.5, gt=0, le=1, description="masks of one plural noun overlap at most this much")
    level_overlap: Optional[float] = Field(
        None, gt=0, le=1, description="two masks labelled at one level (objects; parts) share at most this "
        "fraction of the smaller one; None: no limit")
    merge_similarity: Optional[float] = Field(
        None, gt=0, le=1, description="object nouns of one image whose label embeddings have at least this cosine "
        "('car', 'automobile') are one class: probabilities summed, one label; None: never merged")

    @property
    def part_area_fraction(self) -> float:
        """The smallest part candidate (fraction of the image): ``min_part_area_fraction``, else the objects' floor."""
        part = self.min_part_area_fraction
        return self.min_mask_area_fraction if part is None else part


class OutputConfig(_Section):
    num_shards: int = Field(4, ge=1)
    compression: str = "zstd"
    rows_per_row_group: int = Field(16, ge=1)


class DemoConfig(_Section):
    num_images: int = Field(200, ge=1)
    seed: int = 10_000
    image_size: int = Field(256, ge=32)
    cache_dir: Optional[str] = None


class Config(_Section):
    input: InputConfig = InputConfig()
    captions: CaptionsConfig = CaptionsConfig()
    images: ImagesConfig = ImagesConfig()
    masks: MasksConfig = MasksConfig()
    clip: ClipConfig = ClipConfig()
    matching: MatchingConfig = MatchingConfig()
    output: OutputConfig = OutputConfig()
    demo: Optional[DemoConfig] = None


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """'masks.batch_size=8' -> ('masks.batch_size', 8)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not key=value (e.g. masks.batch_size=8)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def _format_validation(err: ValidationError, origin: str) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"unknown config key {loc!r} in {origin}; check the spelling against configs/default.yaml"
    return f"bad config value for {loc!r} in {origin}: {first['msg']}"


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} not found; pass --config with an existing YAML file (see configs/)")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(p)!r} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping of sections, got {type(data).__name__}")
    return data


def load_config(path: Optional[str | Path] = None, overrides: Sequence[str] = ()) -> Config:
    """Defaults < YAML file < ``key=value`` overrides; raises :class:`ConfigError` with one readable line."""
    tree: dict[str, Any] = read_yaml(path) if path is not None else {}
    origin = str(path) if path is not None else "defaults"
    for text in overrides:
        key, value = parse_override(text)
        _set_dotted(tree, key, value)
    if overrides:
        origin += " + overrides"
    try:
        return Config.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(_format_validation(err, origin)) from None


def config_path(name: str) -> Path:
    """A config shipped with ovlabel, e.g. ``config_path('demo.yaml')``."""
    return CONFIG_DIR / name


def shipped_path(location: str | Path) -> Path:
    """A local file path; a relative one that is not found from the working directory is looked up in
    the configs folder, so shipped configs can name shipped files (``models/ovlabel-tiny-clip.safetensors``,
    ``vocab/demo_parts.yaml``)."""
    path = Path(location).expanduser()
    if not path.is_absolute() and not path.is_file() and (CONFIG_DIR / path).is_file():
        return CONFIG_DIR / path
    return path
