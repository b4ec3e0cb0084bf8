"""The worker allocator setting: large freed blocks are kept for reuse (glibc), the environment's settings win."""
from __future__ import annotations

import platform
import resource

import pytest
import torch

from ovlabel.engine import memory


def _faults_of_a_fresh_block(mib: int) -> int:
    """Page faults of allocating, touching and freeing a block of ``mib`` MiB."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = torch.empty(mib << 20, dtype=torch.uint8)  # plain malloc (numpy asks for huge pages)
    block.fill_(1)
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


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


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="needs glibc")
def test_a_large_freed_block_is_reused_without_page_faults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in memory.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    pages = (64 << 20) // resource.getpagesize()
    assert _faults_of_a_fresh_block(64) > pages // 2  # glibc's default: a 64 MiB block is fresh pages every time
    monkeypatch.setattr(memory, "_applied", None)
    assert memory.keep_freed_memory(256)
    _faults_of_a_fresh_block(64)  # first use from the heap
    assert _faults_of_a_fresh_block(64) < pages // 10  # then the same pages again
