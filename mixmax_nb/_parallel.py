"""Run independent work on a second core while the caller's thread does its own.

Why: ``analytics.prepare`` is two chains of work that never read each other's
results until the end: the message-id join (hash three id columns, look them up)
and the people and names (lowercase and match the addresses, encode the senders
and subjects). Both are numpy, pandas hash tables and Arrow kernels, which release
the GIL over millions of rows, so on a machine with two cores the second chain runs
beside the first: at 1M events those two chains took 0.61 s one after the other and
0.38-0.39 s side by side (``benchmarks/bench_analytics.py``). polars and DuckDB use
every core the same way.

Only above :data:`WORTH_ROWS` rows (below, starting the work costs more than it
saves) and only when the process may run on more than one core. The worker is one
long-lived daemon thread, so its allocations reuse the same C-library arena call
after call (``mixmax_nb._memory`` keeps that memory for the next frame). Results and
exceptions come back through the future, exactly as an inline call would give them.

Pure in effect: which thread runs a function never changes what it returns.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Final, TypeVar

T = TypeVar("T")

WORTH_ROWS: Final = 200_000
"""Below this many rows a second thread costs more than it saves (a few ms of work)."""

_pool: list[ThreadPoolExecutor] = []
_pool_lock = threading.Lock()


def cores() -> int:
    """How many cores this process may run on (its CPU affinity, where the OS says)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def beside(rows: int, fn: Callable[..., T], /, *args: object) -> Future[T]:
    """``fn(*args)`` on the worker thread when ``rows`` make it worth it, else now.

    Either way the caller takes the value (or the exception) from ``.result()``.
    """
    if rows < WORTH_ROWS or cores() < 2:
        done: Future[T] = Future()
        try:
            done.set_result(fn(*args))
        except BaseException as exc:  # handed back through the future, like the pool
            done.set_exception(exc)
        return done
    return _worker().submit(fn, *args)


def _worker() -> ThreadPoolExecutor:
    with _pool_lock:
        if not _pool:
            _pool.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="mixmax-nb"))
        return _pool[0]


def _forget_in_child() -> None:
    """A forked child has no worker thread, only the parent's executor object, which
    believes its (idle) thread exists and would queue work that nothing runs: the
    child starts a worker of its own on first need."""
    global _pool_lock
    _pool.clear()
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
