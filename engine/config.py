"""Typed, validated configuration of the engine: what is labelled and how.

Precedence: ``key=value`` overrides (CLI) > the YAML file > the defaults below. Every section
forbids unknown keys, so a typo is an error that names the key; a key that was renamed is an
error that names its new name (:attr:`Config.renamed_keys`). Every value has its range (a
cosine in [-1, 1], a probability or fraction in [0, 1], a count >= 1, a sha256 of 64 hex digits,
a prompt template with one '{}'...), checked when the config is read. YAML is read with
``yaml.safe_load``, a file whose aliases blow it up refused (:func:`read_yaml`); override values are parsed as YAML scalars/lists (``masks.device=cpu``,
``clip.templates=['a {}.']``). How a run is deployed (batch sizes per worker call, accelerator
hints, shards) is the pipeline's: ``ovlabel.pipelines.options`` extends :class:`Config`.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Mapping, Optional, Sequence, TypeVar

import yaml
from pydantic import AfterValidator, Field, ValidationError, model_validator

from ovlabel.engine import images
from ovlabel.engine.errors import ConfigError
from ovlabel.engine.masks.config import MasksConfig
from ovlabel.engine.shipped import find_config
from ovlabel.engine.sections import Cosine, Device, Fraction, NonEmptyStr, Precision, Section, describe_error, nested
from ovlabel.engine.weights import CheckpointLocation, Sha256

OVSEG_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.", "This is a photo of a {}", "There is a {} in the scene",
    "There is the {} in the scene", "a photo of a {} in the scene", "a photo of a small {}.",
    "a photo of a medium {}.", "a photo of a large {}.", "This is a photo of a small {}.",
    "This is a photo of a medium {}.", "This is a photo of a large {}.",
    "There is a small {} in the scene.", "There is a medium {} in the scene.",
    "There is a large {} in the scene.",
)

_LABEL = "\x00label\x00"  # what a template's '{}' is filled with when it is checked


def _template(text: str) -> str:
    try:
        filled = text.format(_LABEL)
    except (IndexError, KeyError, ValueError):
        filled = ""
    if filled.count(_LABEL) != 1:
        raise ValueError(f"prompt template {text!r} must hold '{{}}' once, where the label goes (e.g. 'a photo of a {{}}.')")
    return text


def _scheme(text: str) -> str:
    scheme = text.strip().lower()
    if not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
        raise ValueError(f"{text!r} is not a URI scheme (e.g. file, gs, s3)")
    return scheme


Template = Annotated[str, AfterValidator(_template)]  # a CLIP prompt: '{}' once, filled with the label
Scheme = Annotated[str, AfterValidator(_scheme)]  # a URI scheme, kept lower-case


class InputConfig(Section):
    manifest: Optional[NonEmptyStr] = Field(None, description="a manifest, a folder of images or a glob (--input)")
    limit: Optional[int] = Field(None, ge=1, description="only the first this many input rows (--limit)")
    allowed_schemes: tuple[Scheme, ...] = Field(("file", "gs", "s3"), min_length=1)
    allow_http: bool = False
    root: Optional[str] = Field(
        None, description="when set, every image must lie inside this folder (local paths compared after "
        "os.path.realpath, so symlinks are followed) or, for a URI with a scheme, start with it; None: anywhere")


class CaptionsConfig(Section):
    spacy_model: NonEmptyStr = "en_core_web_sm"
    captions_per_batch: int = Field(64, ge=1, description="captions per spaCy pipe batch")
    max_chars: int = Field(2000, ge=1)


class ImagesConfig(Section):
    """Per-image bounds, all checked before an image is decoded (engine/images.py)."""

    max_pixels: int = Field(images.MAX_PIXELS, ge=1, description="decompression-bomb guard (PIL's pixel cap)")
    min_side: int = Field(8, ge=1)
    max_side: int = Field(images.MAX_SIDE, ge=1, description="the longest side an image may have (pixels)")
    max_aspect: float = Field(images.MAX_ASPECT, ge=1, description="the largest long side / short side ratio")
    max_bytes: int = Field(images.MAX_BYTES, ge=1, description="the largest image file read (bytes)")
    read_timeout_s: float = Field(images.READ_TIMEOUT_S, gt=0, description="seconds one image's read may take")


MemberCropMode = Literal["masked", "box", "blend", "alpha", "mask_prompt"]  # crop modes an ensemble member may use


class EnsembleMember(Section):
    """A second region model whose similarities are averaged with the first's (``clip.ensemble``): its weights, the
    crop mode it was trained for and its share of the score. Architecture keys left out are ``clip``'s own (its
    ``model``, ``model_config_file``); weights are the member's own; how crops are encoded (templates, device,
    precision, crops_per_batch) is ``clip``'s, ``flip_average`` too unless set here."""

    crop_mode: MemberCropMode
    weight: float = Field(gt=0, lt=1, description="its share of every cosine; the first model (clip.*) keeps 1 - the sum")
    model: Optional[NonEmptyStr] = None
    model_config_file: Optional[NonEmptyStr] = None
    pretrained: Optional[NonEmptyStr] = None
    checkpoint: CheckpointLocation = None
    checkpoint_sha256: Sha256 = None
    region_checkpoint: Optional[NonEmptyStr] = None
    region_checkpoint_sha256: Sha256 = None
    flip_average: Optional[bool] = None


class ClipConfig(Section):
    model: NonEmptyStr = "ViT-B-16"
    pretrained: Optional[NonEmptyStr] = "openai"
    checkpoint: CheckpointLocation = Field(
        None, description="a path or URL (wins over pretrained); 'random' or 'random:SEED': seeded random weights")
    checkpoint_sha256: Sha256 = None
    model_config_file: Optional[NonEmptyStr] = None  # a custom open_clip architecture (JSON)
    flip_average: bool = Field(False, description="average each crop's embedding with its mirror image's")
    templates: tuple[Template, ...] = Field(OVSEG_TEMPLATES, min_length=1)
    crops_per_batch: Optional[int] = Field(
        None, ge=1, description="crops per image-encoder call (fixed, so a crop's embedding does not depend on its "
        "batch; the batch's last call is padded); None: 4 on a CPU (a ViT-B/16 crop costs the same alone as in 4, "
        "more per crop in 8 or 16), 64 on CUDA")
    precision: Precision = Field("auto", description="bf16 autocast on CUDA ('auto'), everywhere ('bf16'), or fp32")
    cpu_kernels: Literal["onednn", "torch"] = Field(
        "onednn", description="on a CPU: the image tower's linear layers packed for oneDNN (faster; with bf16 only "
        "the matmuls in bf16), or torch's own kernels (with bf16 the whole model cast to bf16)")
    dense_resolution: Optional[int] = Field(
        None, ge=16, le=4096, description="matching.crop_mode=dense: the long side (pixels) an image is run at, "
        "the short side padded to whole patches; None: 2x the model's input size (448 for ViT-B-16)")
    region_checkpoint: Optional[NonEmptyStr] = Field(
        None, description="matching.crop_mode=alpha or mask_prompt: weights of the image tower alone, loaded over "
        "it after clip.checkpoint / clip.pretrained (an Alpha-CLIP visual checkpoint, e.g. "
        "clip_l14_grit20m_fultune_2xe.pth; or an OVSeg image tower holding visual.mask_embedding)")
    region_checkpoint_sha256: Sha256 = None
    mask_prompt_depth: int = Field(
        3, ge=1, description="matching.crop_mode=mask_prompt: the layers whose fully masked patch tokens are "
        "replaced by learned prompts (OVSeg's MASK_PROMPT_DEPTH, 3); a checkpoint's visual.mask_embedding has this many")
    device: Device = "auto"
    known_labels: Optional[NonEmptyStr | tuple[NonEmptyStr, ...]] = Field(
        None, description="the labels this CLIP was trained on: a YAML file (a list, or `labels:` and a list; a "
        "relative path not found is looked up in the configs folder) or the list itself; None: any word")
    unknown_labels: Literal["warn", "refuse"] = Field(
        "warn", description="caption nouns outside known_labels: labelled and counted, warned about once a run "
        "(warn); or refused (refuse): at preflight when the config's own words or the first manifest rows' "
        "captions name one, and each later row naming one becomes a ParseCaptions error row")
    ensemble: tuple[EnsembleMember, ...] = Field(
        (), description="more region models: a region's cosine with a label is the weighted mean of each model's "
        "(this one's weight 1 - the members'); each member embeds the regions as its own crop_mode asks")

    @model_validator(mode="after")
    def _ensemble_weights_leave_a_share(self) -> "ClipConfig":
        total = sum(m.weight for m in self.ensemble)
        if self.ensemble and total >= 1:
            raise nested("ensemble", "value_error", f"the members' weights sum to {total:g}; they must leave the "
                         f"first model a share (sum < 1, e.g. one member of weight 0.5)")
        return self

    @property
    def primary_weight(self) -> float:
        """The first model's share of every cosine: 1 - the ensemble members' weights."""
        return 1.0 - sum(m.weight for m in self.ensemble)

    def member(self, index: int) -> "ClipConfig":
        """The ClipConfig ensemble member ``index`` is built from: its weights and architecture, ``clip``'s
        encoding settings; no ensemble of its own."""
        m = self.ensemble[index]
        own = m.model is not None
        return self.model_copy(update={
            "ensemble": (), "model": m.model or self.model,
            "model_config_file": m.model_config_file if own else (m.model_config_file or self.model_config_file),
            "pretrained": m.pretrained, "checkpoint": m.checkpoint, "checkpoint_sha256": m.checkpoint_sha256,
            "region_checkpoint": m.region_checkpoint, "region_checkpoint_sha256": m.region_checkpoint_sha256,
            "flip_average": self.flip_average if m.flip_average is None else m.flip_average})

    def without_ensemble(self) -> "ClipConfig":
        return self.model_copy(update={"ensemble": ()})


class MatchingConfig(Section):
    crop_mode: Literal["masked", "box", "blend", "dense", "alpha", "mask_prompt"] = Field(
        "masked", description="how a mask becomes a CLIP crop (ovlabel.engine.matching.crops.CROP_MODES); dense: "
        "no crops, one image forward per image and patch features pooled per mask (ovlabel.engine.matching.dense); "
        "alpha (Alpha-CLIP) and mask_prompt (OVSeg's mask prompts): the image encoder takes the mask too "
        "(ovlabel.engine.matching.region_encoders)")
    alpha_context: Optional[float] = Field(
        2.0, ge=1, description="crop_mode=alpha: the region's box is enlarged this many times for the context "
        "crop the encoder sees with the mask as alpha (clipped to the image); None: the whole image")
    similarity_threshold: Cosine = 0.2
    probability_threshold: Fraction = 0.3
    count_fill_threshold: Optional[float] = Field(
        None, ge=0, le=1, description="caption objects that got fewer masks than the captions say ('two trees': 2, "
        "'a dog': 1; not an uncounted plural) take their next most probable masks down to this probability, same "
        "other rules (background, overlaps); None: every mask needs probability_threshold")
    background_labels: tuple[NonEmptyStr, ...] = ("background", "other", "thing", "stuff")
    min_mask_area_fraction: Fraction = 0.001
    min_part_area_fraction: Optional[float] = Field(
        None, ge=0, le=1, description="part candidates may be this small (fraction of the image); None: as objects")
    part_containment: float = Field(0.8, ge=0, le=1)
    part_reach: Optional[float] = Field(
        None, ge=0, description="parts may reach outside their object's mask: a mask touching it (within "
        "part_touch_px) and at least part_containment inside its box widened by this fraction of the box on "
        "each side; the object then grows to take the parts outside it, and its former mask may itself be a "
        "part (a tree matched by its crown). None: parts lie inside the object's mask")
    part_touch_px: int = Field(3, ge=0, description="with part_reach: how near (pixels) a part must come to its object")
    object_vocabulary: tuple[NonEmptyStr, ...] = Field(
        (), description="object labels to look for beyond the captions' nouns (source 'vocabulary'): on the "
        "masks the caption nouns left free, a softmax over these, the image's object nouns and background, "
        "kept at vocabulary_threshold; a word as close to a caption noun as merge_similarity is left to it")
    vocabulary_threshold: float = Field(0.9, ge=0, le=1)
    lexicon_parts: bool = False
    lexicon_part_threshold: Fraction = 0.6
    part_lexicon: Optional[NonEmptyStr] = Field(
        None, description="the lexicon lexicon_parts proposes parts from: a YAML file in the format of "
        "configs/vocab/parts.yaml (a relative path not found from the working directory is looked up in the "
        "configs folder); None: configs/vocab/parts.yaml. The caption parser always uses parts.yaml")
    scene_threshold: Fraction = 0.3
    instance_nms_iou: float = Field(0.5, gt=0, le=1, description="masks of one plural noun overlap at most this much")
    object_swap_margin: Optional[float] = Field(
        None, ge=0, le=1, description="objects: after the greedy best-first pass, a noun's mask left out because "
        "one mask labelled with another noun overlaps it (a mask holding the fridge and the man, labelled fridge) "
        "takes that one's place when the other noun has another mask that fits beside it, at most this much less "
        "probable (one match more); None: greedy only")
    level_overlap: Optional[float] = Field(
        None, gt=0, le=1, description="two masks labelled at one level (objects; parts) share at most this "
        "fraction of the smaller one; None: no limit")
    merge_similarity: Optional[float] = Field(
        None, gt=0, le=1, description="object nouns of one image whose label embeddings have at least this cosine "
        "('car', 'automobile') are one class: probabilities summed, one label; None: never merged")
    captionless: Literal["error", "vocabulary"] = Field(
        "error", description="a row with no captions, or none with a noun: 'error' (an error row) or 'vocabulary' "
        "(labelled from object_vocabulary, or when that is empty from the classes of vocabulary.file)")

    @property
    def part_area_fraction(self) -> float:
        """The smallest part candidate (fraction of the image): ``min_part_area_fraction``, else the objects' floor."""
        part = self.min_part_area_fraction
        return self.min_mask_area_fraction if part is None else part


class VocabularyConfig(Section):
    """The label vocabulary: the canonical class of every caption word (ovlabel.engine.ontology)."""

    file: Optional[NonEmptyStr] = Field(
        None, description="a shipped vocabulary (coco, lvis, demo: configs/vocab/classes/) or a YAML file of "
        "'class: [synonyms...]'; None: a segment's class is its caption word")
    unmapped: Literal["keep", "drop"] = Field(
        "keep", description="a label the vocabulary does not list: 'keep' (its class is the caption word) or "
        "'drop' (the segment is left out, an object with its parts; counted per reason in run.json)")


class DemoConfig(Section):
    num_images: int = Field(200, ge=1)
    seed: int = Field(10_000, ge=0)
    image_size: int = Field(256, ge=32)
    cache_dir: Optional[NonEmptyStr] = None


class Config(Section):
    """The engine's settings. ``renamed_keys``: old dotted key -> what to write instead, for the error message;
    ``unknown_section_hint``: added to the error for a top-level section this schema does not know."""

    unknown_section_hint: ClassVar[str] = (" (a whole run's config, with its beam and output sections, is read by "
                                           "ovlabel.pipelines.options.load_run_config)")
    renamed_keys: ClassVar[dict[str, str]] = {
        "clip.crop_mode": "matching.crop_mode",
        "captions.batch_size": "captions.captions_per_batch",
        "clip.batch_size": "clip.crops_per_batch",
        "masks.sam.image_batch_size": "masks.sam.encoder_batch_size",
        "clip.random_weights": "clip.checkpoint: random (or random:SEED)",
        "clip.seed": "clip.checkpoint: random:SEED",
        "masks.sam.random_weights": "masks.sam.checkpoint: random (or random:SEED)",
        "masks.sam.seed": "masks.sam.checkpoint: random:SEED",
    }

    input: InputConfig = InputConfig()
    captions: CaptionsConfig = CaptionsConfig()
    images: ImagesConfig = ImagesConfig()
    masks: MasksConfig = MasksConfig()
    clip: ClipConfig = ClipConfig()
    matching: MatchingConfig = MatchingConfig()
    vocabulary: VocabularyConfig = VocabularyConfig()
    demo: Optional[DemoConfig] = None

    @model_validator(mode="after")
    def _vocabulary_is_there_when_needed(self) -> "Config":
        if self.vocabulary.unmapped == "drop" and self.vocabulary.file is None:
            raise nested("vocabulary.unmapped", "value_error", "'drop' needs a vocabulary: set vocabulary.file "
                         "(e.g. coco), or keep unmapped labels with 'keep'")
        if self.clip.ensemble and self.matching.crop_mode == "dense":
            raise nested("clip.ensemble", "value_error", "matching.crop_mode=dense cannot be ensembled (it pools "
                         "patch features, no crops); use another crop_mode or clear clip.ensemble")
        if self.matching.captionless == "vocabulary" and not (self.matching.object_vocabulary or self.vocabulary.file):
            raise nested("matching.captionless", "value_error", "'vocabulary' needs words to label captionless rows "
                         "with: set matching.object_vocabulary or vocabulary.file")
        return self


C = TypeVar("C", bound=Config)


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
    """'masks.sam.points_per_side=16' -> ('masks.sam.points_per_side', 16)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not key=value (e.g. masks.sam.points_per_side=16)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


Overrides = Sequence[str] | Mapping[str, Any]  # 'key=value' texts (the CLI's) or {dotted key: value} (the API's)


def override_items(overrides: Overrides) -> list[tuple[str, Any, str]]:
    """(dotted key, value, as written) of each override: ``key=value`` texts, values read as YAML, or a mapping
    of dotted keys to values, taken as they are."""
    if isinstance(overrides, Mapping):
        return [(str(key), value, f"{key}={value!r}") for key, value in overrides.items()]
    return [(*parse_override(text), text) for text in ([overrides] if isinstance(overrides, str) else overrides)]


def has_key(tree: dict[str, Any], key: str) -> bool:
    """Whether the nested mapping ``tree`` holds the dotted ``key``."""
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _gone(old: str, where: str, new: str) -> ConfigError:
    """The one message for a key that was renamed or replaced: what to write instead."""
    instead = repr(new) if " " not in new else new
    return ConfigError(f"config key {old!r} in {where} is gone: use {instead} instead (see configs/default.yaml)")


def _refuse_renamed(tree: dict[str, Any], renamed: dict[str, str], origin: str) -> None:
    for old, new in renamed.items():
        if has_key(tree, old):
            raise _gone(old, origin, new)


MAX_ALIAS_EXPANSION = 10  # YAML aliases may make a config file at most this many times larger...
MAX_EXPANDED_CHARS = 100_000  # ...once it is expanded to more than this many characters


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """Characters of ``node`` with every alias written out (scalars' text, plus one per node); ValueError for
    a node that contains itself. ``sizes`` memoises shared (anchored) nodes, so the walk is linear in the file."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise ValueError("a recursive YAML alias (a node that contains itself)")
    open_nodes.add(key)
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    size = 1 + (len(node.value) if isinstance(node, yaml.ScalarNode) else 0)
    size += sum(_expanded_size(child, sizes, open_nodes) for child in children)
    open_nodes.discard(key)
    sizes[key] = size
    return size


def _load_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load``, refusing aliases that expand the document more than :data:`MAX_ALIAS_EXPANSION` times
    to over :data:`MAX_EXPANDED_CHARS` characters (a few anchors reused pass; a 'billion laughs' does not), and
    recursive aliases."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            size = _expanded_size(node, {}, set())
        except ValueError as exc:
            raise ConfigError(f"config file {where!r} holds {exc}; write the value out instead") from None
        if size > MAX_EXPANDED_CHARS and size > MAX_ALIAS_EXPANSION * max(len(text), 1):
            raise ConfigError(f"config file {where!r}: its YAML aliases expand it to {size} characters, over "
                              f"{MAX_ALIAS_EXPANSION}x its {len(text)}; use fewer aliases (*name)")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in the YAML file at ``path`` (safe types only; aliases bounded, see :func:`_load_yaml`)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} not found; pass --config with an existing YAML file (see configs/)")
    try:
        data = _load_yaml(p.read_text(), str(p)) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(p)!r} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping of sections, got {type(data).__name__}")
    return data


def load_config(path: Optional[str | Path] = None, overrides: Overrides = (),
                schema: type[C] = Config) -> C:  # type: ignore[assignment]
    """Defaults < YAML file < overrides, validated by ``schema`` (:class:`Config` or an extension of it); raises
    :class:`ConfigError` with one readable line. ``path``: a YAML file or a shipped config's name
    (:func:`~ovlabel.engine.shipped.find_config`); ``overrides``: see :func:`override_items`."""
    found = find_config(path) if path is not None else None
    tree: dict[str, Any] = read_yaml(found) if found is not None else {}
    origin = str(found) if found is not None else "defaults"
    _refuse_renamed(tree, schema.renamed_keys, origin)
    for key, value, text in override_items(overrides):
        if key in schema.renamed_keys:
            raise _gone(key, f"override {text!r}", schema.renamed_keys[key])
        _set_dotted(tree, key, value)
    if overrides:
        origin += " + overrides"
    try:
        return schema.model_validate(tree)
    except ValidationError as err:
        loc = err.errors()[0]["loc"]  # () for a check across sections (Config's own validator)
        hint = schema.unknown_section_hint if loc and loc[0] not in schema.model_fields else ""
        raise ConfigError(describe_error(err, origin) + hint) from None
