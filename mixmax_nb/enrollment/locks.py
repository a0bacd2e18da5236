"""One lock per account and sequence, across every process of this machine (file I/O only).

Two notebooks (or a notebook and a Voila app, or two ``MIXMAX_NB_HOME``s) planning
overlapping lists into one sequence must not both send the shared addresses: Mixmax
rejects an exact duplicate, but matches case-sensitively, so ``Ann@x.com`` would go in
next to ``ann@x.com``. Every enroll or cancel into a sequence therefore holds
:class:`SequenceLock` while it writes. The lock file lives in a per-user directory of
the machine (``Settings.lock_dir``), not under the toolkit's home, so separate homes
still meet there.

The file also counts the writes made into the sequence under it. A plan records the
count when it reads the sequence; if the count moved by the time the plan is applied,
someone wrote to the sequence in between, and the apply reads the sequence again
before sending (see ``apply``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import time
from pathlib import Path

from ..errors import MixmaxNbError
from .journal import _safe

LOCK_TIMEOUT_S = 900.0
"""How long an enroll waits for another one into the same sequence to finish."""


class SequenceBusyError(MixmaxNbError):
    """Another run kept writing to the sequence for longer than we were willing to wait."""


def lock_path(directory: Path, backend: str, account: str, sequence_id: str) -> Path:
    return Path(directory) / f"{_safe(backend)}-{_safe(account)}-{_safe(sequence_id)}.lock"


def _parse(text: str) -> int:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return 0
    return int(value.get("writes", 0)) if isinstance(value, dict) else 0


def read_writes(path: Path) -> int:
    """The write count, without taking the lock (a plan reads it before the sequence)."""
    try:
        return _parse(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, OSError, ValueError):
        return 0


def _private_dir(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(directory, 0o700)  # mkdir's mode is cut by the umask; this is not


class SequenceLock:
    """A held lock on one account's sequence. Release with :meth:`release` (or ``with``)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    async def acquire(
        cls,
        path: Path,
        *,
        timeout: float = LOCK_TIMEOUT_S,
        poll: float = 0.1,
        on_wait: object = None,
    ) -> SequenceLock:
        """Wait (without blocking the event loop) until no other run holds the lock.

        ``on_wait``: called once with no argument when the lock is found busy."""
        _private_dir(path.parent)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        told = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return cls(path, fd)
                except BlockingIOError:
                    if not told and callable(on_wait):
                        on_wait()
                    told = True
                    if time.monotonic() >= deadline:
                        raise SequenceBusyError(
                            "Another enrollment into this sequence has been running for "
                            f"over {timeout:g} s.",
                            hint="Let it finish, then run this one again.",
                        ) from None
                    await asyncio.sleep(poll)
        except BaseException:
            os.close(fd)
            raise

    def writes(self) -> int:
        assert self._fd is not None
        return _parse(os.pread(self._fd, 4096, 0).decode("utf-8", "replace"))

    def bump(self) -> None:
        """Count one more write into the sequence (durably, before the lock is released)."""
        assert self._fd is not None
        data = json.dumps({"writes": self.writes() + 1}).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        os.fsync(self._fd)

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> SequenceLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


__all__ = ["SequenceBusyError", "SequenceLock", "lock_path", "read_writes"]
