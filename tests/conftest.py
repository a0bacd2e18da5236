"""Shared fixtures. Keep this small and generic: module-specific fixtures live in the tests."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FAKE_MEMBRANE = Path(__file__).with_name("fake_membrane.py")

# The one pinned calendar of the whole suite: every sandbox a test opens ends on this
# date and its clock starts at this instant, so no test depends on the day, the zone
# or the machine it runs on. Tests that build an account by hand use these too.
REFERENCE_DATE = "2025-06-02"  # a Monday
SANDBOX_NOW = "2025-06-02T10:00:00Z"

# Variables that would steer the toolkit away from what a test sets up.
_TOOLKIT_ENV = (
    "MIXMAX_NB_BACKEND",
    "MIXMAX_NB_MEMBRANE_BIN",
    "MIXMAX_NB_CALL_STYLE",
    "MIXMAX_NB_CONNECTION_ID",
    "MIXMAX_NB_TIMEOUT",
    "FAKE_MEMBRANE_DIR",
)


@pytest.fixture(scope="session", autouse=True)
def _pinned_calendar() -> Iterator[None]:
    """Session-wide, so module-scoped fixtures (opened before any function fixture)
    and every subprocess (the `mixmax-nb-sandbox` command) see the same calendar."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MIXMAX_NB_SANDBOX_REFERENCE_DATE", REFERENCE_DATE)
        mp.setenv("MIXMAX_NB_SANDBOX_NOW", SANDBOX_NOW)
        yield


@pytest.fixture(autouse=True)
def _clean_toolkit_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's MIXMAX_NB_* settings or writes into their home."""
    for name in _TOOLKIT_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MIXMAX_NB_HOME", str(tmp_path / "mixmax_nb_home"))
    # Machine-wide by default (two homes must meet there); per test here.
    monkeypatch.setenv("MIXMAX_NB_LOCK_DIR", str(tmp_path / "locks"))


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


class FakeMembrane:
    """Handle on the fake `membrane` executable (see tests/fake_membrane.py)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.bin = self.dir / "membrane"
        # A shell wrapper, so the transport runs an ordinary executable file with the
        # venv's interpreter; `exec` keeps one process (its pid is the fake's pid).
        self.bin.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" -S "{FAKE_MEMBRANE}" "$@"\n', encoding="utf-8"
        )
        self.bin.chmod(self.bin.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        self._scenario: dict[str, Any] = {}

    def on(self, command: str, *replies: dict[str, Any]) -> FakeMembrane:
        """Script ``command`` (e.g. ``"action run"``): one reply, or a sequence of them."""
        self._scenario[command] = replies[0] if len(replies) == 1 else list(replies)
        (self.dir / "scenario.json").write_text(json.dumps(self._scenario), encoding="utf-8")
        return self

    def calls(self) -> list[list[str]]:
        """The argv of every call so far, in order."""
        path = self.dir / "argv.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    def pids(self, role: str | None = None) -> list[int]:
        path = self.dir / "pids"
        if not path.exists():
            return []
        rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
        return [int(pid) for pid, r in rows if role is None or r == role]


@pytest.fixture
def fake_membrane(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMembrane]:
    """A fake `membrane` on MIXMAX_NB_MEMBRANE_BIN; script it with ``.on(...)``."""
    fake = FakeMembrane(tmp_path / "fake_membrane")
    monkeypatch.setenv("MIXMAX_NB_MEMBRANE_BIN", str(fake.bin))
    monkeypatch.setenv("FAKE_MEMBRANE_DIR", str(fake.dir))
    yield fake
    # Never leave a fake (or its grandchild) running after a test.
    for pid in fake.pids():
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
