"""The contract suite runs every test twice: in process and through the command.

``sandbox`` gives a :class:`Harness`: ``transport`` is either a SandboxTransport or
the real CliTransport running `mixmax-nb-sandbox` (through a small wrapper) on the
same database file, and ``control`` is an Emulator on that file for what a person
or a test does outside Membrane (fake login page, connect page, faults).
"""

from __future__ import annotations

import asyncio
import shutil
import stat
import sys
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from conftest import REFERENCE_DATE

from mixmax_nb.config import Settings
from mixmax_nb.sandbox import seed
from mixmax_nb.sandbox.membrane import Emulator, SandboxTransport
from mixmax_nb.sandbox.store import Store
from mixmax_nb.transport.base import Transport
from mixmax_nb.transport.cli import CliTransport

T = TypeVar("T")
REFERENCE = REFERENCE_DATE
SEED = 11


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@dataclass
class Harness:
    mode: str
    transport: Transport
    control: Emulator
    settings: Settings

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return run(coro)

    def action(self, key: str, input: dict[str, Any] | None = None) -> Any:
        return run(self.transport.run_action(key, input or {}))["output"]

    def direct(self, key: str, input: dict[str, Any] | None = None) -> Any:
        """The same action straight from the emulator (no transport, no process):
        the truth a test compares the transport's answers with."""
        ready = [c for c in self.control.list_connections() if c["state"] == "READY"]
        return self.control.run_action(key, input or {}, ready[0]["id"], by="key")["output"]


@pytest.fixture(scope="session")
def small_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One seeded small account per session; each test copies it."""
    path = tmp_path_factory.mktemp("sandbox") / "template.sqlite"
    store = Store.open(path)
    from datetime import date

    seed.build(store, seed=SEED, size="small", reference_date=date.fromisoformat(REFERENCE))
    with store.lock:
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path


@pytest.fixture(scope="session")
def wrapper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bin") / "membrane"
    path.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" -m mixmax_nb.sandbox.cli "$@"\n', encoding="utf-8"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def make_harness(
    mode: str,
    tmp_path: Path,
    template: Path,
    wrapper: Path,
    monkeypatch: pytest.MonkeyPatch,
    start: str = "ready",
) -> Harness:
    db = tmp_path / "account.sqlite"
    shutil.copyfile(template, db)
    monkeypatch.setenv("MIXMAX_NB_SANDBOX_DB", str(db))
    settings = Settings.from_env().with_(timeout=20.0)
    control = Emulator.open(settings, db=str(db), start=start)
    transport: Transport
    if mode == "inprocess":
        transport = SandboxTransport.open(settings, db=str(db))
    else:
        ready = (
            [c for c in control.list_connections() if c["state"] == "READY"]
            if start != "logged-out"
            else []
        )
        transport = CliTransport(
            settings, binary=str(wrapper), connection_id=ready[0]["id"] if ready else None
        )
    return Harness(mode, transport, control, settings)


@pytest.fixture(params=["inprocess", "cli"])
def sandbox(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    small_template: Path,
    wrapper: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Harness]:
    harness = make_harness(request.param, tmp_path, small_template, wrapper, monkeypatch)
    yield harness
    run(harness.transport.aclose())
    harness.control.store.close()


@pytest.fixture(params=["inprocess", "cli"])
def logged_out(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    small_template: Path,
    wrapper: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Harness]:
    harness = make_harness(
        request.param, tmp_path, small_template, wrapper, monkeypatch, start="logged-out"
    )
    yield harness
    run(harness.transport.aclose())
    harness.control.store.close()


@pytest.fixture(params=["inprocess", "cli"])
def feed_shape(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    small_template: Path,
    wrapper: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[str], Harness]]:
    """``feed_shape("per-message")`` or ``feed_shape("account")``: the harness on a
    database whose live feed has that shape (stored in the database, so the command
    sees it too), whatever the default shape is. Once per test: the command finds
    its database through the environment."""
    made: list[Harness] = []

    def make(shape: str) -> Harness:
        assert not made, "one harness per test"
        harness = make_harness(request.param, tmp_path, small_template, wrapper, monkeypatch)
        harness.control.set_livefeed(shape)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        run(harness.transport.aclose())
        harness.control.store.close()


# Through the command every request is a process: these whole-account walks take
# 8-12 s each there. The in-process run of the same test stays in `make test`; the
# command's run goes to `make faults` (marked slow).
_SLOW_THROUGH_THE_COMMAND = frozenset(
    {
        "test_livefeed_search_keys[cli]",
        "test_four_sources_agree_on_the_whole_account[cli]",
    }
)


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.name in _SLOW_THROUGH_THE_COMMAND:
            item.add_marker(pytest.mark.slow)
