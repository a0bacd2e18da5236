"""Run the async core from plain synchronous code: a script, a thread, a notebook cell.

Outside any event loop a call gets its own loop (``asyncio.run``). Inside a
running loop in the same thread -- a Jupyter kernel, where ``asyncio.run`` raises --
the loop is made re-entrant with nest-asyncio2 (the maintained fork ipykernel
itself depends on), applied to that loop on first need and never at import.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_patched: set[int] = set()
_patch_lock = threading.Lock()


def _make_reentrant(loop: asyncio.AbstractEventLoop) -> None:
    with _patch_lock:
        if id(loop) in _patched:
            return
        import nest_asyncio2

        nest_asyncio2.apply(loop)
        _patched.add(id(loop))


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion and return its result, whatever loop is (or isn't) running."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    _make_reentrant(loop)
    return loop.run_until_complete(coro)
