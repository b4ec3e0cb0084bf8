"""Where open_clip gets the weights of a pretrained tag (``clip.pretrained``), and whether they can be had now.

``open_clip.create_model(model, pretrained=TAG)`` takes a tag's file from the Hugging Face hub when the
tag has a hub entry and ``huggingface_hub`` is installed (its safetensors file first), else from the tag's
URL into ``~/.cache/clip``. :func:`check_pretrained` looks where open_clip will: in the local cache first,
then whether the hub (or the URL) answers within a few seconds (:func:`ovlabel.engine.reach.probe`), so
a run that cannot get its CLIP fails in one line before it starts, not on a worker after the hub
client's retries.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ovlabel.engine.errors import ModelWeightsError
from ovlabel.engine.reach import PROBE_TIMEOUT_S, probe

HUB_WEIGHTS = "open_clip_pytorch_model.bin"  # open_clip's default file of a hub entry without one
HUB_SAFE_WEIGHTS = "open_clip_model.safetensors"
URL_CACHE = Path("~/.cache/clip")  # where open_clip downloads a tag's URL


@dataclass(frozen=True)
class PretrainedSource:
    """Where a tag's weights come from: a hub repository's files (in the order open_clip tries them), else a URL,
    else a local file open_clip's registry names."""

    model: str
    tag: str
    hub_repo: Optional[str] = None
    hub_files: tuple[str, ...] = ()
    url: Optional[str] = None
    file: Optional[str] = None


def _hub_files(filename: str) -> tuple[str, ...]:
    """The files open_clip asks the hub for, in order: the safetensors version of ``filename`` first."""
    if filename == HUB_WEIGHTS:
        return HUB_SAFE_WEIGHTS, filename
    if filename.endswith((".bin", ".pth")):
        return filename[:-4] + ".safetensors", filename
    return (filename,)


def pretrained_source(model: str, tag: str) -> Optional[PretrainedSource]:
    """Where open_clip would load ``model``'s weights ``tag`` from; None when its registry has no such tag."""
    import open_clip
    from open_clip.pretrained import has_hf_hub

    cfg = open_clip.get_pretrained_cfg(model, tag) or {}
    if not cfg:
        return None
    if "file" in cfg:
        return PretrainedSource(model, tag, file=str(cfg["file"]))
    hub = cfg.get("hf_hub") or ""
    if hub and has_hf_hub():
        repo, filename = posixpath.split(hub)
        return PretrainedSource(model, tag, hub_repo=repo, hub_files=_hub_files(filename or HUB_WEIGHTS))
    return PretrainedSource(model, tag, url=cfg.get("url") or None)


def _hub_cached(source: PretrainedSource) -> bool:
    from huggingface_hub import try_to_load_from_cache

    assert source.hub_repo is not None
    return any(isinstance(try_to_load_from_cache(source.hub_repo, name), str) for name in source.hub_files)


def _hub_reachable(source: PretrainedSource, timeout: float) -> tuple[Optional[str], str]:
    """(None, url) when one of the tag's hub files answers, else (why not, the first file's URL)."""
    from huggingface_hub import constants, hf_hub_url

    assert source.hub_repo is not None
    urls = [hf_hub_url(source.hub_repo, name) for name in source.hub_files]
    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set", urls[0]
    why: Optional[str] = None
    for url in urls:
        why = probe(url, "clip.pretrained", timeout)
        if why is None or not why.startswith("HTTP 404"):  # a missing file: the next name; anything else: stop
            break
    return why, urls[0]


def _missing(source: PretrainedSource, where: str, url: Optional[str], why: str) -> ModelWeightsError:
    name = posixpath.basename(url) if url else HUB_SAFE_WEIGHTS
    fetch = f"download {name} from {url}" if url else f"download {name} for {source.model} ({source.tag})"
    return ModelWeightsError(f"clip.pretrained {source.tag!r} of {source.model}: its weights are not in {where} and "
                             f"cannot be fetched ({why}); {fetch} and set clip.checkpoint=/path/to/{name}")


def check_pretrained(model: str, tag: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raise :class:`ModelWeightsError` (one line: the file to download, the key to set) unless open_clip can have
    ``model``'s weights ``tag`` now: cached, or its source answering within ``timeout`` seconds. A tag open_clip
    does not know passes (:func:`ovlabel.engine.matching.embedder.check_clip_model` refuses it)."""
    source = None if Path(tag).is_file() else pretrained_source(model, tag)
    if source is None:
        return
    if source.file is not None:
        if not Path(source.file).is_file():
            raise _missing(source, "the file open_clip names", None, f"{source.file} not found")
        return
    if source.hub_repo is not None:
        if not _hub_cached(source):
            why, url = _hub_reachable(source, timeout)
            if why is not None:
                from huggingface_hub import constants

                raise _missing(source, f"the Hugging Face cache ({constants.HF_HUB_CACHE})", url, why)
        return
    if source.url:
        cached = URL_CACHE.expanduser() / posixpath.basename(source.url)
        why = None if cached.is_file() else probe(source.url, "clip.pretrained", timeout)
        if why is not None:
            raise _missing(source, str(URL_CACHE), source.url, why)
