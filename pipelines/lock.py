"""One writer at a time: a lock file in the output folder, held while a run writes there.

The lock (``.ovlabel.lock``) records the holder's pid, host, run id and start time, and is touched
every ``stale_after_s / 10`` seconds while the run lives. A lock is stale, and taken over with a
warning, when its holder is a process of this host that no longer exists, or when nobody has
touched it for ``stale_after_s`` (a holder on another host that died). On a local disk the lock is
created atomically (O_EXCL); on object stores it is best effort.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Any, Optional

from fsspec.implementations.local import LocalFileSystem

from ovlabel.engine.errors import OutputError
from ovlabel.engine.layout import LOCK
from ovlabel.pipelines.output import OutputDir

log = logging.getLogger(__name__)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class OutputLock:
    """``with OutputLock(out, run_id): ...`` holds ``out``'s lock, or raises :class:`OutputError` naming its holder."""

    def __init__(self, out: OutputDir, run_id: str, stale_after_s: float = 600.0) -> None:
        self.out, self.run_id, self.stale_after_s = out, run_id, stale_after_s
        self.path = out.fs_path(LOCK)
        self._stop = threading.Event()
        self._beat: Optional[threading.Thread] = None

    def __enter__(self) -> "OutputLock":
        self.out.fs.makedirs(self.out.path, exist_ok=True)
        if not self._create():
            holder = self._holder()
            if not self._stale(holder):
                raise OutputError(self._busy_message(holder))
            log.warning("taking over the stale lock of %s (run %s, pid %s on %s)", self.out.root,
                        holder.get("run_id"), holder.get("pid"), holder.get("host"))
            self.out.fs.rm(self.path)
            if not self._create():
                raise OutputError(self._busy_message(self._holder()))
        self._beat = threading.Thread(target=self._heartbeat, name="ovlabel-lock", daemon=True)
        self._beat.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        if self._holder().get("run_id") == self.run_id:
            self.out.fs.rm(self.path)

    def _info(self) -> bytes:
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "run_id": self.run_id,
                           "started": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode()

    def _create(self) -> bool:
        if isinstance(self.out.fs, LocalFileSystem):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as fh:
                fh.write(self._info())
            return True
        if self.out.fs.exists(self.path):
            return False
        with self.out.fs.open(self.path, "wb") as fh:
            fh.write(self._info())
        return True

    def _holder(self) -> dict[str, Any]:
        try:
            with self.out.fs.open(self.path, "rb") as fh:
                data = json.loads(fh.read().decode() or "{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _age(self) -> float:
        try:
            modified = self.out.fs.modified(self.path)
        except (OSError, NotImplementedError):
            return 0.0
        return time.time() - modified.timestamp()

    def _stale(self, holder: dict[str, Any]) -> bool:
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
            return not _pid_alive(holder["pid"])
        return self._age() > self.stale_after_s

    def _busy_message(self, holder: dict[str, Any]) -> str:
        return (f"output folder {self.out.root!r} is in use by run {holder.get('run_id')!r} (pid {holder.get('pid')} "
                f"on {holder.get('host')}, since {holder.get('started')}); wait for it to finish, or if that run is "
                f"gone, delete {self.out.join(LOCK)}")

    def _heartbeat(self) -> None:
        every = max(1.0, self.stale_after_s / 10)
        while not self._stop.wait(every):
            try:
                self.out.fs.touch(self.path, truncate=False)
            except (OSError, NotImplementedError, ValueError):
                with self.out.fs.open(self.path, "wb") as fh:
                    fh.write(self._info())
