"""Run the async core from plain synchronous code: a script, a thread, a notebook cell.

Outside any event loop a call gets its own loop (``asyncio.run``). Inside a
running loop in the same thread -- a Jupyter kernel, where ``asyncio.run`` raises --
the loop is made re-entrant with nest-asyncio2 (the maintained fork ipykernel
itself depends on), applied to that loop on first need and never at import.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# The loops themselves, weakly: an id() could be reused by a later, unpatched loop.
_patched: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
_patch_lock = threading.Lock()


def _make_reentrant(loop: asyncio.AbstractEventLoop) -> None:
    with _patch_lock:
        if loop in _patched:
            return
        import nest_asyncio2

        nest_asyncio2.apply(loop)
        _patched.add(loop)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion and return its result, whatever loop is (or isn't) running."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    _make_reentrant(loop)
    task = asyncio.ensure_future(coro, loop=loop)
    try:
        return loop.run_until_complete(task)
    except BaseException:
        # A kernel interrupt (KeyboardInterrupt) lands here while the task is still
        # pending on the kernel's loop: cancel it and let it clean up (kill its
        # subprocess) now, instead of letting it finish in the background.
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                loop.run_until_complete(task)
        raise
