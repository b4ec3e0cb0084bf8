"""Whether a remote file can be had, answered in seconds: fsspec filesystems for a URL, and a probe.

Preflight asks this of every checkpoint URL (and the model hub's files) before a run starts, so an
unreachable host or a missing backend fails in one line instead of on a worker after retries.

- :func:`filesystem`: the fsspec filesystem of a URL; a scheme whose backend is not installed is one
  error naming the package to install (``https`` needs ``aiohttp``, ``gs`` ``gcsfs``, ``s3`` ``s3fs``).
- :func:`probe`: asks for a file's details (HTTP: a HEAD, else a GET of its headers) with a deadline
  (:data:`PROBE_TIMEOUT_S`); the reason a probe failed is the transport's own ("Cannot connect to host
  ...", "404 Not Found"), not fsspec's blanket FileNotFoundError.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Optional, TypeVar
from urllib.parse import urlparse

from ovlabel.engine.errors import ModelWeightsError, OvlabelError

T = TypeVar("T")
PROBE_TIMEOUT_S = 5.0  # how long a probe waits for an answer
# fsspec scheme -> the package its filesystem needs
BACKENDS = {"http": "aiohttp", "https": "aiohttp", "gs": "gcsfs", "gcs": "gcsfs", "s3": "s3fs", "s3a": "s3fs",
            "az": "adlfs", "abfs": "adlfs", "hf": "huggingface_hub"}


def scheme_of(url: str) -> str:
    return urlparse(url).scheme.lower() or "file"


def backend_hint(url: str, exc: BaseException) -> str:
    """What to install for ``url``'s scheme, from fsspec's ImportError ``exc``."""
    scheme = scheme_of(url)
    package = BACKENDS.get(scheme)
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    fix = f"pip install {package}" if package else "install the fsspec backend it names"
    return f"fsspec's {scheme}:// filesystem is not installed ({reason}); {fix}"


def _options(url: str, timeout: Optional[float]) -> dict[str, Any]:
    """fsspec options for ``url``: over HTTP, the proxy settings of the environment and ``timeout`` (None: no total
    limit, but connecting and each read give up after a minute)."""
    if scheme_of(url) not in ("http", "https"):
        return {}
    import aiohttp

    limit = aiohttp.ClientTimeout(total=timeout) if timeout else aiohttp.ClientTimeout(sock_connect=60, sock_read=60)
    return {"client_kwargs": {"timeout": limit, "trust_env": True}}


def filesystem(url: str, key: str, error: type[OvlabelError] = ModelWeightsError,
               timeout: Optional[float] = None) -> tuple[Any, str]:
    """(fsspec filesystem, path) of ``url``; ``error`` naming ``key`` and the package to install when the
    scheme's backend is missing."""
    import fsspec

    try:
        fsspec.get_filesystem_class(scheme_of(url))
        return fsspec.core.url_to_fs(url, **_options(url, timeout))
    except ImportError as exc:
        raise error(f"{key}: cannot open {url}: {backend_hint(url, exc)}") from None
    except ValueError as exc:  # fsspec knows no such protocol
        raise error(f"{key}: cannot open {url} ({exc}); use a local path or an http(s), gs or s3 URL") from None


def within(seconds: float, fn: Callable[[], T]) -> T:
    """``fn()``, or TimeoutError when it has not returned after ``seconds`` (it goes on in a daemon thread)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name="ovlabel-probe", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"no answer in {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def reason(exc: BaseException) -> str:
    """One line saying why a transport call failed: the innermost cause (fsspec's HTTP filesystem turns every
    failure into FileNotFoundError, the real one chained under it)."""
    while exc.__cause__ is not None and isinstance(exc, FileNotFoundError):
        exc = exc.__cause__
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status >= 400:
        return f"HTTP {status} {getattr(exc, 'message', '')}".strip()
    text = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def probe(url: str, key: str, timeout: float = PROBE_TIMEOUT_S) -> Optional[str]:
    """None when ``url`` names a file its server would hand out now, else why not (one line); raises ``error``
    for a missing backend (see :func:`filesystem`)."""
    fs, path = filesystem(url, key, timeout=timeout)
    try:
        info = within(timeout, lambda: fs.info(path))
    except Exception as exc:  # noqa: BLE001 - any failure is an answer: not reachable now
        return reason(exc)
    if info.get("type") == "directory":
        return "it is a folder, not a file"
    return None
