"""Keep freed memory in the process for the next frame, instead of handing it back.

Why: glibc's ``malloc`` gives every block over 32 MB its own ``mmap`` and unmaps it on
``free``. Engagement frames of millions of rows are built from dozens of such blocks
(one per column or temporary), so every :func:`mixmax_nb.analytics.prepare` faulted
gigabytes of fresh pages in again: at 5M events the kernel time was about 10 s of a
15 s call, and 3.9 s of work remained once the memory stayed (``benchmarks/
bench_analytics.py``). polars (jemalloc) and pyarrow (mimalloc) keep freed memory the
same way; numpy, which allocates our columns, uses the C library's ``malloc``.

What it changes, only on glibc: once per process, big blocks come from the heap
(``M_MMAP_MAX=0``) and up to 2 GB of freed heap stays mapped (``M_TRIM_THRESHOLD``;
2 GB is the most ``mallopt`` takes). And inside :func:`kept` (around ``prepare``),
pyarrow allocates from the C library too (its system pool) instead of its bundled
mimalloc, which hands freed pages back to the kernel within milliseconds and so cost
~1.4 s of kernel time per 5M-event ``prepare`` even with the heap kept (3.3 s of work
in all, from 15 s with neither). Arrays keep the pool they came from: the swap ends
with the call. The process's resident memory stays near its peak after a large
``prepare`` (as with polars), rather than falling back.

Left alone when ``MIXMAX_NB_KEEP_MEMORY=0`` is set, or when the user already tunes
glibc's allocator (``MALLOC_*_`` or ``GLIBC_TUNABLES`` in the environment); pyarrow's
pool is left alone too when ``ARROW_DEFAULT_MEMORY_POOL`` names one.
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

# glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
KEEP_UP_TO = 2**31 - 1  # bytes: mallopt takes an int
OPT_OUT = "MIXMAX_NB_KEEP_MEMORY"
_USER_TUNING = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")

_state: dict[str, bool] = {}


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether to tune the allocator: glibc, not opted out, not tuned by the user."""
    if environ.get(OPT_OUT, "1").strip().lower() in {"0", "false", "no", "off"}:
        return False
    if "GLIBC_TUNABLES" in environ or any(name in environ for name in _USER_TUNING):
        return False
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def keep_freed_memory() -> bool:
    """Tune glibc's allocator as the module doc says, once; whether it is tuned."""
    if "done" not in _state:
        _state["done"] = wanted() and _mallopt()
    return _state["done"]


@contextmanager
def kept() -> Iterator[None]:
    """Within: freed memory kept for reuse, pyarrow's allocations included.

    Calls may overlap (a dashboard's worker thread and a cell): the pool is swapped
    by the first one in and put back by the last one out, never left swapped.
    """
    if not keep_freed_memory() or "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        yield
        return
    import pyarrow as pa

    with _swap_lock:
        if _swap["depth"] == 0:
            _swap["before"] = pa.default_memory_pool()
            pa.set_memory_pool(pa.system_memory_pool())
        _swap["depth"] += 1
    try:
        yield
    finally:
        with _swap_lock:
            _swap["depth"] -= 1
            if _swap["depth"] == 0:
                pa.set_memory_pool(_swap.pop("before"))


_swap_lock = threading.Lock()
_swap: dict[str, Any] = {"depth": 0}


def _mallopt() -> bool:
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt answers 1 on success. The trim threshold first: with it set, glibc stops
    # adapting the thresholds on its own.
    return bool(mallopt(M_TRIM_THRESHOLD, KEEP_UP_TO)) and bool(mallopt(M_MMAP_MAX, 0))
