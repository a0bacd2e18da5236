"""Freed memory stays in the process (glibc): the next large frame faults no pages in."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from mixmax_nb import _memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Allocates, touches and frees 64 MB twice; prints the page faults of the second time.
PROBE = """
import resource, numpy as np
from mixmax_nb._memory import keep_freed_memory
print(keep_freed_memory())
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(2):
    before = faults()
    block = np.ones(8 << 20)  # 64 MB, over glibc's largest mmap threshold
    del block
print(faults() - before)
"""


def _probe(**env: str) -> tuple[bool, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_"))}
    clean.pop(_memory.OPT_OUT, None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, "NUMPY_MADVISE_HUGEPAGE": "0", **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.fixture
def untuned(monkeypatch: pytest.MonkeyPatch) -> None:
    """No opt-out and no tuning of the user's in the environment; the decision to tune
    taken afresh, whatever an earlier test decided."""
    for name in (_memory.OPT_OUT, "ARROW_DEFAULT_MEMORY_POOL", "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)
    for name in _memory._USER_TUNING:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_memory, "_state", {})


@pytest.mark.skipif(not GLIBC, reason="tunes glibc's allocator only")
def test_a_freed_large_block_is_reused_without_faulting_pages_in() -> None:
    tuned, faults = _probe()
    assert tuned
    assert faults < 1_000  # 64 MB is 16,384 pages of 4 kB


@pytest.mark.skipif(not GLIBC, reason="tunes glibc's allocator only")
def test_opting_out_leaves_glibc_unmapping_large_blocks() -> None:
    tuned, faults = _probe(MIXMAX_NB_KEEP_MEMORY="0")
    assert not tuned
    assert faults >= 16_000


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, GLIBC),
        ({"MIXMAX_NB_KEEP_MEMORY": "0"}, False),
        ({"MIXMAX_NB_KEEP_MEMORY": "off"}, False),
        ({"MIXMAX_NB_KEEP_MEMORY": "1"}, GLIBC),
        ({"MALLOC_TRIM_THRESHOLD_": "0"}, False),
        ({"GLIBC_TUNABLES": "glibc.malloc.mmap_max=1"}, False),
    ],
)
def test_the_allocator_is_left_alone_when_asked_or_already_tuned(
    environ: dict[str, str], expected: bool
) -> None:
    assert _memory.wanted(environ) is expected


@pytest.mark.skipif(not GLIBC, reason="tunes glibc's allocator only")
def test_inside_kept_pyarrow_allocates_from_the_c_library_and_its_pool_is_put_back(
    untuned: None,
) -> None:
    import pyarrow as pa

    before = pa.default_memory_pool().backend_name
    with _memory.kept():
        assert pa.default_memory_pool().backend_name == "system"
        inside = pa.array(["an address"] * 1000)
    assert pa.default_memory_pool().backend_name == before
    assert inside.to_pylist()[-1] == "an address"  # freed later, through its own pool


def test_a_pool_the_user_names_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa

    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    before = pa.default_memory_pool().backend_name
    with _memory.kept():
        assert pa.default_memory_pool().backend_name == before


@pytest.mark.skipif(not GLIBC, reason="tunes glibc's allocator only")
def test_overlapping_calls_put_the_pool_back_once_the_last_one_ends(untuned: None) -> None:
    import pyarrow as pa

    before = pa.default_memory_pool().backend_name
    outer, inner = _memory.kept(), _memory.kept()
    outer.__enter__()
    inner.__enter__()
    outer.__exit__(None, None, None)  # the first one in ends first
    assert pa.default_memory_pool().backend_name == "system"  # the other still runs
    inner.__exit__(None, None, None)
    assert pa.default_memory_pool().backend_name == before
