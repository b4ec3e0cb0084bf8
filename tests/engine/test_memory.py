"""The worker allocator setting: large freed blocks are kept for reuse (glibc), the environment's settings win."""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys

import pytest

from ovlabel.engine import memory


def test_zero_leaves_the_allocator_and_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(memory, "_mallopt", lambda: lambda param, value: calls.append((param, value)) or 1)
    monkeypatch.setattr(memory, "_applied", None)
    assert memory.keep_freed_memory(0) is False and calls == []
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert memory.keep_freed_memory(1024) is False and calls == []
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    for name in memory.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    assert memory.keep_freed_memory(1024) is True
    assert calls == [(-3, 1 << 30), (-1, (1 << 31) - 1)]  # mmap threshold 1 GiB, trim threshold capped at INT_MAX
    assert memory.keep_freed_memory(1024) is True and len(calls) == 2  # once per process


def test_no_glibc_means_no_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_mallopt", lambda: None)
    monkeypatch.setattr(memory, "_applied", None)
    for name in memory.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    assert memory.keep_freed_memory(1024) is False


_FAULTS = """
import ctypes, json, resource
from ovlabel.engine.memory import keep_freed_memory

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes, libc.memset.argtypes = [ctypes.c_void_p], [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]

def faults(mib):  # page faults of allocating, touching and freeing a block of mib MiB
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(mib << 20)
    libc.memset(block, 1, mib << 20)
    libc.free(block)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = [faults(64), faults(64)]
applied = keep_freed_memory(256)
kept = [faults(64), faults(64)]
print(json.dumps({"default": default, "applied": applied, "kept": kept}))
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="needs glibc")
def test_a_large_freed_block_is_reused_without_page_faults() -> None:
    """In a fresh process (a long test process's heap may already hold more free memory than it keeps)."""
    env = {k: v for k, v in os.environ.items() if k not in memory.USER_SETTINGS}
    done = subprocess.run([sys.executable, "-c", _FAULTS], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    pages = (64 << 20) // resource.getpagesize()
    assert min(figures["default"]) > pages // 2  # glibc's default: a 64 MiB block is fresh pages every time
    assert figures["applied"] and figures["kept"][1] < pages // 10  # then the same pages again
