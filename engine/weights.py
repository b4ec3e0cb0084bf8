"""Model weights: resolve a checkpoint (path or URL), verify its sha256, load it safely.

Checkpoints load from safetensors or with ``torch.load(weights_only=True)``; nothing else is
unpickled. A checkpoint that cannot be found or fetched raises :class:`ModelWeightsError` in one
line naming the file to provide and the config key to set; :func:`check_checkpoint` (preflight) says so
in seconds, before a run starts, probing a URL that is not in the cache (:mod:`ovlabel.engine.reach`).
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Annotated, Any, Optional
from urllib.parse import urlparse

from pydantic import AfterValidator, BeforeValidator

from ovlabel.engine.errors import ConfigError, ModelWeightsError
from ovlabel.engine.reach import PROBE_TIMEOUT_S, filesystem, probe, reason
from ovlabel.engine.shipped import shipped_path

log = logging.getLogger(__name__)
REMOTE_SCHEMES = ("http", "https", "gs", "s3")
RANDOM_WEIGHTS = "random"  # a checkpoint location: seeded random weights (smoke runs, benchmarks), no file


def _valid_location(location: Optional[str]) -> Optional[str]:
    try:
        random_weights_seed(location)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return location


def _valid_sha256(value: object) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):  # all digits: YAML read a number, and dropped any leading zeros
        raise ValueError(f"a sha256 is 64 hexadecimal digits in quotes, got the {type(value).__name__} {value!r}")
    digest = value.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError(f"{value!r} is not a sha256: 64 hexadecimal digits, as `sha256sum FILE` prints them")
    return digest


# the type of a config's checkpoint key: a path or URL, or random weights ('random:SEED' checked when read)
CheckpointLocation = Annotated[Optional[str], AfterValidator(_valid_location)]
# the type of a config's checkpoint_sha256 key: 64 hex digits, kept lower-case
Sha256 = Annotated[Optional[str], BeforeValidator(_valid_sha256)]


def is_random_weights(location: Optional[str]) -> bool:
    """Whether ``location`` asks for seeded random weights (``random`` or ``random:SEED``)."""
    return random_weights_seed(location) is not None


def random_weights_seed(location: Optional[str]) -> Optional[int]:
    """The seed of a random-weights location: ``random`` -> 0, ``random:SEED`` -> SEED; None for anything else.

    Random weights run the real model code with meaningless labels: smoke runs and benchmarks.
    """
    if location is None:
        return None
    name, sep, seed = location.partition(":")
    if name != RANDOM_WEIGHTS:
        return None
    if not sep:
        return 0
    try:
        return int(seed)
    except ValueError:
        raise ConfigError(f"checkpoint {location!r}: random weights take an integer seed, e.g. 'random:0'") from None


def cache_dir() -> Path:
    return Path(os.environ.get("OVLABEL_CACHE", Path.home() / ".cache" / "ovlabel"))


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def local_checkpoint(location: str) -> Path:
    """A local checkpoint path (:func:`ovlabel.engine.shipped.shipped_path`: a relative one may name a
    file in the configs folder)."""
    return shipped_path(location)


def is_remote(location: str) -> bool:
    return urlparse(location).scheme in REMOTE_SCHEMES


def _local_file(location: str, key: str) -> Path:
    path = local_checkpoint(location)
    if not path.is_file():
        raise ModelWeightsError(f"checkpoint file {str(path)!r} not found; provide {path.name} and set {key}=/path/to/{path.name}")
    return path


def check_local_checkpoint(location: Optional[str], key: str, expected_sha256: Optional[str] = None) -> None:
    """Raise :class:`ModelWeightsError` when ``location`` is a local file that does not exist or whose
    sha256 is not ``expected_sha256`` (URLs and None pass). ``key`` is the config key that names it."""
    if location is not None and not is_remote(location) and not is_random_weights(location):
        _verify(_local_file(location, key), key, expected_sha256)


def check_checkpoint(location: Optional[str], key: str, expected_sha256: Optional[str] = None,
                     timeout: float = PROBE_TIMEOUT_S) -> None:
    """The preflight of a checkpoint: a local file is there (with its sha256); a URL is in the cache (with its
    sha256) or its server answers within ``timeout`` seconds. Raises :class:`ModelWeightsError` in one line
    naming ``key`` and the file to provide."""
    if location is None or is_random_weights(location) or not is_remote(location):
        check_local_checkpoint(location, key, expected_sha256)
        return
    cached = cached_checkpoint(location)
    if cached.is_file():
        _verify(cached, key, expected_sha256)
        return
    why = probe(location, key, timeout)
    if why is not None:
        raise ModelWeightsError(f"cannot fetch {location} ({why}); download {cached.name} by hand and set "
                                f"{key}=/path/to/{cached.name}")


def _verify(path: Path, key: str, expected_sha256: Optional[str]) -> None:
    if expected_sha256:
        actual = sha256_file(path)
        if actual != expected_sha256.lower():
            raise ModelWeightsError(f"checkpoint {str(path)!r} has sha256 {actual}, expected {expected_sha256} "
                                    f"({key}_sha256); replace the file or fix the hash")


def checkpoint_sha256(location: Optional[str], configured: Optional[str]) -> Optional[str]:
    """What run.json records of a checkpoint: the configured sha256, else a local file's own, else None."""
    if location is None or is_random_weights(location):
        return None
    if configured:
        return configured
    if urlparse(location).scheme in ("", "file") and local_checkpoint(location).is_file():
        return sha256_file(local_checkpoint(location))
    return None


def cached_checkpoint(url: str) -> Path:
    """Where a checkpoint URL is downloaded to (once): ``<cache>/checkpoints/<its file name>``."""
    return cache_dir() / "checkpoints" / (Path(urlparse(url).path).name or "checkpoint")


def resolve_checkpoint(location: str, key: str, expected_sha256: Optional[str] = None) -> Path:
    """A local path for ``location`` (downloading a URL into the cache once), sha256-verified.

    ``key`` is the config key that names the checkpoint, quoted in error messages.
    """
    if is_remote(location):
        path = cached_checkpoint(location)
        if not path.is_file():
            _download(location, path, key)
    else:
        path = _local_file(location, key)
    _verify(path, key, expected_sha256)
    return path


def verified_checkpoint(location: str, key: str, expected_sha256: Optional[str] = None) -> tuple[Path, str]:
    """(local file, sha256): :func:`resolve_checkpoint`, and the hash provenance records (the configured
    one, which it was checked against, else the file's own)."""
    path = resolve_checkpoint(location, key, expected_sha256)
    return path, expected_sha256 or sha256_file(path)


def _download(url: str, path: Path, key: str) -> None:
    fs, remote = filesystem(url, key)  # a missing backend: the package to install, not a bare ImportError
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    try:
        with fs.open(remote, "rb") as src, open(tmp, "wb") as dst:
            for chunk in iter(lambda: src.read(1 << 22), b""):
                dst.write(chunk)
    except Exception as exc:  # noqa: BLE001 - any transport error means the same thing to the user
        tmp.unlink(missing_ok=True)
        raise ModelWeightsError(f"cannot fetch {url} ({reason(exc)}); download {path.name} by hand and "
                                f"set {key}=/path/to/{path.name}") from None
    tmp.replace(path)


def load_state_dict(path: str | Path) -> dict[str, Any]:
    """Tensors from a .safetensors file or a torch checkpoint, never unpickling code."""
    import torch

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ModelWeightsError(f"checkpoint {str(path)!r} cannot be loaded with weights_only=True ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0][:200]}); convert it to safetensors") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelWeightsError(f"checkpoint {str(path)!r} holds a {type(state).__name__}, not a state dict")
    return state


def uses_bf16(precision: str, device: str) -> bool:
    """Whether a model configured with ``precision`` (:data:`ovlabel.engine.sections.Precision`) runs under bf16
    autocast on ``device``."""
    return precision == "bf16" or (precision == "auto" and device.startswith("cuda"))


def set_torch_threads(threads: Optional[int]) -> None:
    """Use ``threads`` intra-op threads in this process (None: leave torch's default)."""
    import torch

    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def pick_device(requested: str = "auto") -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested
