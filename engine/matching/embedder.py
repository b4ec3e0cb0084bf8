"""Region and text embeddings with open_clip, behind the :class:`RegionEmbedder` protocol.

Model and preprocessing are built together: crops are made by :mod:`ovlabel.engine.matching.crops`
at the model's input size and normalised with the model's own mean/std (:func:`normalise_crops`).
Text embeddings are the L2-normalised mean over a prompt ensemble of L2-normalised template
embeddings (:func:`template_features`, :func:`prompt_ensemble`), cached per label for the life of
the embedder (labels repeat heavily across images), least recently used first out past
:data:`TEXT_CACHE_SIZE` labels. ``scripts/train_demo_clip.py`` trains with these same functions,
so training sees the pixels and texts inference sees.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from ovlabel.engine.config import ClipConfig
from ovlabel.engine.shipped import shipped, shipped_path
from ovlabel.engine.errors import ConfigError, ModelWeightsError
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.weights import (is_random_weights, load_state_dict, random_weights_seed, uses_bf16,
                                    verified_checkpoint)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
CPU_CROPS_PER_CALL, CUDA_CROPS_PER_CALL = 4, 64  # clip.crops_per_batch's defaults (bench figures in README)
LABELS_PER_CALL = 16  # labels per text-encoder call (fixed, padded: batch-independent results)
TEXT_CACHE_SIZE = 8192  # labels whose prompt-ensemble embedding an embedder keeps (LRU)
# OpenAI CLIP's pixel mean and std (RGB, in [0, 1]; open_clip's OPENAI_DATASET_MEAN/STD): what a model
# naming none in its preprocess_cfg is normalised with, and the crops' fill colour
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@runtime_checkable
class RegionEmbedder(Protocol):
    """Embeds square crops and labels into one space.

    ``crop_size``: the side S of the (N, S, S, 3) uint8 crops :meth:`embed_crops` takes.
    Both methods return L2-normalised float32 rows; ``logit_scale`` is the model's temperature.
    """

    crop_size: int
    logit_scale: float

    def embed_crops(self, crops: np.ndarray) -> np.ndarray: ...

    def embed_labels(self, labels: Sequence[str]) -> np.ndarray: ...

    def describe(self) -> dict[str, object]: ...


def _model_config_file(cfg: ClipConfig) -> Optional[Path]:
    """The open_clip architecture JSON: ``clip.model_config_file`` (found by the shipped-file rule), else the
    shipped ``models/<clip.model>.json`` when there is one (else open_clip's own registry)."""
    if cfg.model_config_file is None:
        bundled = shipped("models", f"{cfg.model}.json")
        return bundled if bundled.is_file() else None
    path = shipped_path(cfg.model_config_file, "models")
    if not path.is_file():
        raise ConfigError(f"clip.model_config_file {cfg.model_config_file!r} not found; point it at an open_clip model JSON")
    return path


def _strip_prefix(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` without a DataParallel ``module.`` prefix, when every key has one.

    Not open_clip's ``factory.load_state_dict``: it cuts 7 characters off every key when the first
    key starts with 'module' (no dot, the other keys unchecked) and fails on an empty state dict.
    """
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def check_clip_model(cfg: ClipConfig) -> None:
    """Raise :class:`ConfigError` / :class:`ModelWeightsError` for what :func:`build_clip_model` would refuse,
    loading no weights: an architecture open_clip does not know (registering ``clip.model``'s JSON, see
    :func:`_model_config_file`), no weights configured, a pretrained tag open_clip has none of for the model."""
    import open_clip

    config_file = _model_config_file(cfg)
    if config_file is not None:
        open_clip.add_model_config(config_file)
    if cfg.model not in open_clip.list_models():
        raise ConfigError(f"unknown open_clip model {cfg.model!r}; see open_clip.list_models() or set clip.model_config_file")
    if cfg.checkpoint is not None:
        return
    if cfg.pretrained is None:
        raise ModelWeightsError(f"no CLIP weights configured for {cfg.model!r}; set clip.pretrained=TAG or "
                                f"clip.checkpoint=/path/to/open_clip_model.safetensors")
    tags = open_clip.list_pretrained_tags_by_model(cfg.model)
    if cfg.pretrained not in tags and not Path(cfg.pretrained).is_file():  # open_clip also takes a file here
        raise ConfigError(f"clip.pretrained {cfg.pretrained!r}: open_clip has no such weights for {cfg.model!r}; "
                          f"choose one of {tags} or set clip.checkpoint=/path/to/open_clip_model.safetensors")


@runtime_checkable
class TowerPatch(Protocol):
    """What a region encoder (:mod:`ovlabel.engine.matching.region_encoders`) adds to an open_clip model:
    ``attach`` adds its parameters to the freshly built model, before any weights load; ``convert`` turns the
    state dict of ``clip.checkpoint`` (read from ``path``) into open_clip's keys; ``optional``: the keys of the
    added parameters a checkpoint may lack (they keep their initial values)."""

    optional: tuple[str, ...]

    def attach(self, model: Any) -> None: ...

    def convert(self, state: dict[str, Any], path: Path) -> dict[str, Any]: ...


def build_clip_model(cfg: ClipConfig, device: str = "cpu",
                     patch: Optional[TowerPatch] = None) -> tuple[Any, Any, Optional[str]]:
    """(open_clip model in eval mode, tokenizer, checkpoint sha256 or None); ``patch``: a region encoder's
    additions, attached before the weights load (:class:`TowerPatch`).

    A checkpoint is loaded with :func:`ovlabel.engine.weights.load_state_dict`, not
    ``open_clip.load_checkpoint``: that one retries ``torch.load`` without ``weights_only`` on a
    TypeError, and converts and resizes what does not fit (positional embeddings) where we refuse it.
    """
    import open_clip
    import torch

    check_clip_model(cfg)
    seed = random_weights_seed(cfg.checkpoint)
    torch.manual_seed(seed or 0)
    sha: Optional[str] = None
    if seed is not None:
        model = open_clip.create_model(cfg.model, pretrained=None)
    elif cfg.checkpoint is not None:
        with _without_random_init_warning():  # the checkpoint loads below; open_clip cannot know
            model = open_clip.create_model(cfg.model, pretrained=None)
    else:  # check_clip_model made sure there is a pretrained tag
        model = _create_pretrained(cfg)
    if patch is not None:
        patch.attach(model)
    if seed is None and cfg.checkpoint is not None:
        path, sha = verified_checkpoint(cfg.checkpoint, "clip.checkpoint", cfg.checkpoint_sha256)
        state = _strip_prefix(load_state_dict(path))
        fit_state_dict(model, patch.convert(state, path) if patch else state, f"checkpoint {str(path)!r}",
                       f"open_clip model {cfg.model!r}", patch.optional if patch else ())
    return model.to(device).eval(), open_clip.get_tokenizer(cfg.model), sha


class _RandomInitWarning(logging.Filter):
    """Drops open_clip's 'No pretrained weights loaded ... Model initialized randomly.' warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()


@contextmanager
def _without_random_init_warning() -> Iterator[None]:
    """While building a model whose checkpoint ovlabel loads next: open_clip's root-logger warning that it has
    random weights is false there, and every worker would print it."""
    quiet = _RandomInitWarning()
    logging.getLogger().addFilter(quiet)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(quiet)


def fit_state_dict(module: Any, state: dict[str, Any], what: str, into: str, optional: Sequence[str] = ()) -> None:
    """Load ``state`` into ``module``: every key must fit, and only ``optional`` keys may be missing, else a
    :class:`ModelWeightsError` naming ``what`` was loaded ``into`` what."""
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of the wrong shape
        raise ModelWeightsError(f"{what} does not fit {into} ({_first_error(exc)}); check clip.model") from None
    missing = [k for k in result.missing_keys if k not in optional]
    if missing or result.unexpected_keys:
        found = (f"missing {missing[:3]}" if missing else "") + (" " if missing and result.unexpected_keys else "") + (
            f"unexpected {list(result.unexpected_keys)[:3]}" if result.unexpected_keys else "")
        raise ModelWeightsError(f"{what} does not fit {into} ({found}); check clip.model")


def _first_error(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else lines[0])[:160]


def _create_pretrained(cfg: ClipConfig) -> Any:
    import open_clip

    try:
        return open_clip.create_model(cfg.model, pretrained=cfg.pretrained, require_pretrained=True)
    except Exception as exc:  # noqa: BLE001 - hub/network/format errors all mean: provide the file
        log.debug("open_clip pretrained load failed", exc_info=True)
        raise ModelWeightsError(
            f"cannot fetch open_clip weights {cfg.model}/{cfg.pretrained} ({type(exc).__name__}); download "
            f"open_clip_model.safetensors for {cfg.model} ({cfg.pretrained}) and set clip.checkpoint=/path/to/it") from None


def crop_size_of(model: Any) -> int:
    """The side S of the square crops an open_clip ``model`` takes."""
    size = model.visual.image_size
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def pixel_stats(model: Any, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std), both (1, 3, 1, 1) float32 tensors in 0..255 units: the model's preprocess_cfg's,
    else :data:`CLIP_MEAN` / :data:`CLIP_STD`."""
    import torch

    pp = getattr(model.visual, "preprocess_cfg", {}) or {}
    mean = torch.tensor(pp.get("mean", CLIP_MEAN), device=device).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(pp.get("std", CLIP_STD), device=device).view(1, 3, 1, 1) * 255.0
    return mean, std


def normalise_crops(crops: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(N, S, S, 3) uint8 tensor -> (N, 3, S, S) float32, normalised with :func:`pixel_stats`."""
    return (crops.permute(0, 3, 1, 2).float() - mean) / std


def prompt_tokens(tokenizer: Any, labels: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """(L, T, context) token ids of every label in every template."""
    prompts = [t.format(label) for label in labels for t in templates]
    return tokenizer(prompts).view(len(labels), len(templates), -1)


def template_features(model: Any, tokens: torch.Tensor) -> torch.Tensor:
    """(L, T, context) token ids -> (L, T, D) float32 text embeddings, each L2-normalised."""
    import torch

    n, t, context = tokens.shape
    feats = model.encode_text(tokens.reshape(n * t, context)).float()
    return torch.nn.functional.normalize(feats, dim=-1).view(n, t, -1)


def prompt_ensemble(features: torch.Tensor) -> torch.Tensor:
    """(L, T, D) template embeddings -> (L, D): their L2-normalised mean over the T templates."""
    import torch

    return torch.nn.functional.normalize(features.mean(dim=1), dim=-1)


@dataclass
class EncoderWork:
    """What the image encoder did: ``crops`` asked for, ``rows`` encoded, ``padding`` of them padding rows
    (a mirror image of a real crop, with ``clip.flip_average``, is work, not padding)."""

    crops: int = 0
    rows: int = 0
    padding: int = 0

    def add(self, crops: int, size: int, passes: int) -> None:
        """One chunk of ``size`` rows holding ``crops`` real crops, encoded ``passes`` times."""
        self.crops += crops
        self.rows += size * passes
        self.padding += (size - crops) * passes

    @property
    def padding_fraction(self) -> float:
        return 0.0 if self.rows == 0 else self.padding / self.rows


def precision_name(bf16: bool, device: str, model: Any) -> str:
    """What ``model``'s image encoder computes in: 'bf16-autocast' (CUDA), 'bf16-matmuls' (a CPU: packed bf16
    matmuls in an fp32 model, :mod:`ovlabel.engine.packed`), 'bf16-weights' (a CPU: the model cast to bf16) or
    'fp32'."""
    from ovlabel.engine.packed import packed_dtype

    if bf16 and device.startswith("cuda"):
        return "bf16-autocast"
    if getattr(model, "visual", None) is not None and str(packed_dtype(model.visual)) == "torch.bfloat16":
        return "bf16-matmuls"
    return "fp32" if str(next(model.parameters()).dtype) == "torch.float32" else "bf16-weights"


def crops_per_call(cfg: ClipConfig, device: str) -> int:
    """Crops per image-encoder call: ``clip.crops_per_batch``, else the device's default."""
    if cfg.crops_per_batch is not None:
        return cfg.crops_per_batch
    return CUDA_CROPS_PER_CALL if device.startswith("cuda") else CPU_CROPS_PER_CALL


def _padded(chunk: np.ndarray, size: int) -> np.ndarray:
    """``chunk`` (n <= size rows) padded with zeros to exactly ``size`` rows."""
    if len(chunk) == size:
        return np.ascontiguousarray(chunk)
    pad = np.zeros((size - len(chunk), *chunk.shape[1:]), dtype=chunk.dtype)
    return np.concatenate([chunk, pad])


def _mirrored(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each (N, S, S, ...) array mirrored left to right."""
    return [np.ascontiguousarray(a[:, :, ::-1]) for a in arrays]


def encode_in_chunks(embedder: "OpenClipEmbedder", arrays: Sequence[np.ndarray],
                     encode: Callable[..., "torch.Tensor"]) -> np.ndarray:
    """(N, D) float32 L2-normalised rows of ``encode(*chunk)``, the N rows of ``arrays`` (crops, and masks
    alongside them) cut into chunks of exactly ``embedder.crops_per_call`` (the last one zero-padded: results
    do not depend on batching); with ``clip.flip_average`` the normalised mean with the mirror images' rows.
    Runs under inference mode and the embedder's autocast, and counts its work in ``embedder.work``."""
    import torch

    size, n, flip = embedder.crops_per_call, len(arrays[0]), embedder.cfg.flip_average
    out = []
    with torch.inference_mode(), embedder._autocast():
        for start in range(0, n, size):
            chunk, real = [_padded(a[start:start + size], size) for a in arrays], min(size, n - start)
            embedder.work.add(real, size, 2 if flip else 1)
            feats = torch.nn.functional.normalize(encode(*chunk).float(), dim=-1)
            if flip:
                feats = feats + torch.nn.functional.normalize(encode(*_mirrored(chunk)).float(), dim=-1)
            out.append(torch.nn.functional.normalize(feats, dim=-1).cpu().numpy()[:real])
    return np.concatenate(out) if out else np.zeros((0, embedder.embed_dim), np.float32)


class OpenClipEmbedder:
    """:class:`RegionEmbedder` over an open_clip ``model`` (eval mode, on ``device``) and its ``tokenizer``;
    ``cfg`` says how to use them (prompt templates, crops per call, flip averaging). bf16 autocast on CUDA.
    :func:`build_embedder` builds model and embedder together from the config."""

    def __init__(self, model: Any, tokenizer: Any, cfg: ClipConfig, device: str = "cpu",
                 checkpoint_sha256: Optional[str] = None) -> None:
        self.cfg = cfg
        self.device = device
        self.model, self.tokenizer, self.checkpoint_sha256 = model, tokenizer, checkpoint_sha256
        self.crop_size = crop_size_of(self.model)
        self._mean, self._std = pixel_stats(self.model, device)
        self.logit_scale = float(self.model.logit_scale.exp().item())
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._text_lock = threading.Lock()  # Beam may share one embedder between threads
        self.bf16 = uses_bf16(cfg.precision, device)
        self._dtype = next(self.model.parameters()).dtype  # bf16 when build_embedder cast the weights (CPU)
        self.work = EncoderWork()
        self.crops_per_call = crops_per_call(cfg, device)

    def _autocast(self) -> Any:
        """bf16 autocast on CUDA; on a CPU, bf16 means bf16 weights (autocast there is slower than fp32)."""
        import torch

        on_cuda = self.device.startswith("cuda")
        return torch.autocast("cuda" if on_cuda else "cpu", dtype=torch.bfloat16, enabled=self.bf16 and on_cuda)

    def _pixels(self, crops: np.ndarray) -> Any:
        """(N, S, S, 3) uint8 -> (N, 3, S, S) normalised, in the weights' dtype, on the device."""
        import torch

        return normalise_crops(torch.from_numpy(crops).to(self.device), self._mean, self._std).to(self._dtype)

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 -> (N, D) float32, L2-normalised.

        Crops go through the model in chunks of exactly :func:`crops_per_call` (the last one padded),
        so a crop's embedding does not depend on which other crops share its batch: the same
        image gives the same labels whatever Beam batched it with. With ``clip.flip_average`` a
        crop's embedding is the normalised mean of its own and its mirror image's (test-time
        augmentation, twice the image encoder work).
        """
        return encode_in_chunks(self, (crops,), lambda chunk: self.model.encode_image(self._pixels(chunk)))

    @property
    def dense_resolution(self) -> int:
        """The long side images are run at in dense mode: ``clip.dense_resolution``, else DENSE_SCALE x crop_size."""
        from ovlabel.engine.matching.dense import DENSE_SCALE

        return self.cfg.dense_resolution or DENSE_SCALE * self.crop_size

    def embed_masks(self, image: np.ndarray, masks: MaskBatch) -> np.ndarray:
        """(H, W, 3) uint8 image and its M masks -> (M, D) float32 dense region embeddings, L2-normalised:
        one image forward (with ``clip.flip_average`` the image and its mirror in one), patch embeddings
        pooled per mask (:mod:`ovlabel.engine.matching.dense`)."""
        from ovlabel.engine.matching import dense

        return dense.embed_masks(self, image, masks)

    @property
    def embed_dim(self) -> int:
        return int(self.model.text_projection.shape[-1]) if hasattr(self.model, "text_projection") else 0

    def embed_labels(self, labels: Sequence[str]) -> np.ndarray:
        """(L,) labels -> (L, D) prompt-ensemble embeddings, cached per label (LRU, ``TEXT_CACHE_SIZE``)."""
        if not labels:
            return np.zeros((0, 0), np.float32)
        found: dict[str, np.ndarray] = {}
        with self._text_lock:
            for label in dict.fromkeys(labels):
                if label in self._text_cache:
                    self._text_cache.move_to_end(label)
                    found[label] = self._text_cache[label]
        missing = [label for label in dict.fromkeys(labels) if label not in found]
        if missing:
            found.update(zip(missing, self._encode_labels(missing)))
            with self._text_lock:
                for label in missing:
                    self._text_cache[label] = found[label]
                while len(self._text_cache) > TEXT_CACHE_SIZE:
                    self._text_cache.popitem(last=False)
        return np.stack([found[label] for label in labels])

    def _encode_labels(self, labels: Sequence[str]) -> np.ndarray:
        """Prompt ensembles, LABELS_PER_CALL labels per model call (padded) so results don't depend on batching."""
        import torch

        templates = self.cfg.templates
        chunks = []
        with torch.inference_mode(), self._autocast():
            for start in range(0, len(labels), LABELS_PER_CALL):
                group = list(labels[start:start + LABELS_PER_CALL])
                group += [""] * (LABELS_PER_CALL - len(group))
                tokens = prompt_tokens(self.tokenizer, group, templates).to(self.device)
                chunks.append(template_features(self.model, tokens))
        return prompt_ensemble(torch.cat(chunks)[:len(labels)]).cpu().numpy()

    def describe(self) -> dict[str, object]:
        return {"model": self.cfg.model, "pretrained": self.cfg.pretrained, "checkpoint": self.cfg.checkpoint,
                "precision": precision_name(self.bf16, self.device, self.model),
                "checkpoint_sha256": self.checkpoint_sha256,
                "templates": len(self.cfg.templates), "crops_per_call": self.crops_per_call, "random_weights": is_random_weights(self.cfg.checkpoint)}


def cast_for_cpu(model: Any, cfg: ClipConfig, device: str) -> Any:
    """``model`` (modified in place) for ``clip.precision`` on a CPU: its image tower's linear layers packed for
    oneDNN (``clip.cpu_kernels: onednn``, :mod:`ovlabel.engine.packed`), with bf16 matmuls when the precision asks
    for bf16 (as fast as a bf16 model, a tenth of its error); with plain torch kernels (or no oneDNN) bf16 casts
    the whole model to bf16. On CUDA ``model`` as it is (bf16 autocast there)."""
    import torch

    from ovlabel.engine.packed import pack_linears, packing_available

    if device.startswith("cuda"):
        return model
    dtype = torch.bfloat16 if uses_bf16(cfg.precision, device) else torch.float32
    if cfg.cpu_kernels == "onednn" and packing_available(dtype):
        pack_linears(model.visual, dtype)
        return model
    return model.to(dtype)


def build_embedder(cfg: ClipConfig, device: str = "cpu") -> OpenClipEmbedder:
    """The configured open_clip model (:func:`build_clip_model`) and its embedder, built together."""
    model, tokenizer, sha = build_clip_model(cfg, device)
    return OpenClipEmbedder(cast_for_cpu(model, cfg, device), tokenizer, cfg, device, sha)
