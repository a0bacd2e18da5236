"""Keep freed memory in the process for the next frame, instead of handing it back.

Why: glibc's ``malloc`` gives every block over 32 MB its own ``mmap`` and unmaps it on
``free``. Engagement frames of millions of rows are built from dozens of such blocks
(one per column or temporary), so every :func:`mixmax_nb.analytics.prepare` faulted
gigabytes of fresh pages in again: at 5M events the kernel time was about 10 s of a
15 s call, and 3.9 s of work remained once the memory stayed (``benchmarks/
bench_analytics.py``). polars (jemalloc) and pyarrow (mimalloc) keep freed memory the
same way; numpy, which allocates our columns, uses the C library's ``malloc``.

What it changes, once per process, only on glibc: big blocks come from the heap
(``M_MMAP_MAX=0``) and up to 2 GB of freed heap stays mapped (``M_TRIM_THRESHOLD``;
2 GB is the most ``mallopt`` takes). The process's resident memory therefore stays
near its peak after a large ``prepare`` (as with polars), rather than falling back.

Left alone when ``MIXMAX_NB_KEEP_MEMORY=0`` is set, or when the user already tunes
glibc's allocator (``MALLOC_*_`` or ``GLIBC_TUNABLES`` in the environment).
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Mapping

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
