"""The sync facade: plain code, a worker thread, and inside a real running loop (a kernel)."""

from __future__ import annotations

import _thread
import asyncio
import concurrent.futures
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from conftest import FakeMembrane, pid_alive

from mixmax_nb._sync import run_sync
from mixmax_nb.config import Settings
from mixmax_nb.transport.cli import CliTransport


async def add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


async def boom() -> None:
    await asyncio.sleep(0)
    raise LookupError("inner")


def test_plain_sync_call() -> None:
    assert run_sync(add(1, 2)) == 3
    with pytest.raises(LookupError, match="inner"):
        run_sync(boom())


def test_nest_asyncio2_is_not_applied_at_import_nor_outside_a_loop() -> None:
    code = (
        "import asyncio, mixmax_nb\n"
        "from mixmax_nb._sync import run_sync\n"
        "async def f():\n    return 5\n"
        "assert run_sync(f()) == 5\n"
        "print(hasattr(asyncio, '_nest_patched'), 'nest_asyncio2' in __import__('sys').modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False", "False"]


def test_inside_a_running_loop() -> None:
    async def cell() -> tuple[int, int]:
        # What a notebook cell does: a plain sync call while the kernel's loop runs.
        asyncio.get_running_loop()
        inner = run_sync(add(2, 3))

        async def deeper() -> int:
            return run_sync(add(inner, 10))  # re-entered twice

        return inner, run_sync(deeper())

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(cell()) == (5, 15)
        with pytest.raises(LookupError):
            loop.run_until_complete(_raises_inside())
    finally:
        loop.close()


async def _raises_inside() -> None:
    run_sync(boom())


def test_inside_an_async_test_body_with_asyncio_run() -> None:
    async def body() -> int:
        return run_sync(add(20, 22))

    assert asyncio.run(body()) == 42


def test_loop_running_forever_in_a_thread_like_a_kernel() -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    result: concurrent.futures.Future[int] = concurrent.futures.Future()

    def widget_handler() -> None:  # a sync callback, run by the running loop
        try:
            result.set_result(run_sync(add(40, 2)))
        except BaseException as exc:
            result.set_exception(exc)

    try:
        loop.call_soon_threadsafe(widget_handler)
        assert result.result(timeout=10) == 42
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_from_worker_threads_while_a_loop_runs() -> None:
    async def main() -> list[int]:
        return list(
            await asyncio.gather(
                *(asyncio.to_thread(lambda i=i: run_sync(add(i, 100))) for i in range(8))
            )
        )

    assert asyncio.run(main()) == [100 + i for i in range(8)]


def test_real_subprocess_inside_a_running_loop(fake_membrane: FakeMembrane) -> None:
    transport = CliTransport(Settings.from_env().with_(connection_id="c1"))

    async def cell() -> Any:
        return run_sync(transport.run_action("list-sequences", {"limit": 1}))

    loop = asyncio.new_event_loop()
    try:
        result = loop.run_until_complete(cell())
    finally:
        loop.close()
    assert result["output"]["input"] == {"limit": 1}


def test_interrupting_a_sync_call_in_a_running_loop_kills_the_subprocess(
    fake_membrane: FakeMembrane,
) -> None:
    """A kernel interrupt during a long sync call: the CLI process must not live on."""
    fake_membrane.on("action run", {"sleep": 60, "child": 10})
    transport = CliTransport(Settings.from_env().with_(connection_id="c1"))

    def interrupter() -> None:
        end = time.monotonic() + 20
        # `action list` (once per connection), then the hanging `action run` and its child.
        while len(fake_membrane.pids()) < 3 and time.monotonic() < end:
            time.sleep(0.02)
        _thread.interrupt_main()

    async def tick() -> None:
        for _ in range(100_000):  # a kernel loop is never idle long; lets the interrupt land
            await asyncio.sleep(0.02)

    async def cell() -> Any:
        ticker = asyncio.ensure_future(tick())
        try:
            threading.Thread(target=interrupter, daemon=True).start()
            return run_sync(transport.run_action("list-sequences", {}))
        finally:
            ticker.cancel()

    loop = asyncio.new_event_loop()
    started = time.monotonic()
    main = loop.create_task(cell())
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(main)
    finally:
        if main.done() and not main.cancelled():
            main.exception()  # retrieved: no "never retrieved" noise
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
    assert time.monotonic() - started < 20
    assert len(fake_membrane.pids()) == 3
    for pid in fake_membrane.pids():
        end = time.monotonic() + 5
        while pid_alive(pid) and time.monotonic() < end:
            time.sleep(0.02)
        assert not pid_alive(pid), f"process {pid} outlived the interrupt"
