"""The local journal that makes enrollment and cancel never happen twice (file I/O only).

One JSON-lines file per plan id, under
``<home>/journal/<backend>/<account>/<plan id>.jsonl`` (directories 0700, file
0600: it holds prospects' addresses). Every line is flushed and fsync'd before
the caller goes on, so what the file says survives a kernel crash:

``{"t": "plan", ...}``       header: kind, sequence, schedule token, count
``{"t": "pending", ...}``    a batch is about to be sent (written *before* the send)
``{"t": "done", ...}``       the batch's answer: one outcome per address
``{"t": "not_sent", ...}``   the batch was refused before Mixmax did anything (429, input)
``{"t": "reconciled", ...}`` after a lost answer: who the sequence lists (``present``)
                             and who it does not (``absent``, safe to send again)
``{"t": "mark", ...}``       the sequence's write count after this run wrote (``locks``)

:func:`replay` folds the lines into the state apply needs: an outcome per address,
and the addresses whose batch was sent but never answered (``unknown``), which
must be reconciled before anything is re-sent. A torn last line (a crash in the
middle of a write) is ignored; it can only be the last one.

While a plan is being applied its journal is locked (``flock``), so a second run
of the same plan -- another cell, another kernel -- stops instead of racing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import MixmaxNbError
from .result import Outcome

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class JournalBusyError(MixmaxNbError):
    """The same plan is being applied elsewhere right now."""


def _safe(part: str) -> str:
    return _UNSAFE.sub("_", part).strip("._") or "unknown"


def private_dirs(directory: Path, *, levels: int) -> None:
    """Make ``directory`` and its ``levels - 1`` parents, each 0700 whatever the umask
    (``mkdir``'s mode is cut by it): the journal holds prospects' addresses."""
    chain = [directory, *list(directory.parents)[: levels - 1]]
    directory.mkdir(parents=True, exist_ok=True)
    for level in chain:
        with contextlib.suppress(OSError):
            if level.stat().st_mode & 0o777 != 0o700:
                os.chmod(level, 0o700)


def journal_dir(home: Path, backend: str, account: str) -> Path:
    return Path(home) / "journal" / _safe(backend) / _safe(account)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_batch_id() -> str:
    return uuid.uuid4().hex[:12]


def read_lines(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return _parse_lines(text)


@dataclass
class JournalState:
    header: dict[str, Any] | None = None
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)
    """address -> batch id: sent, answer never recorded."""
    sent_at: dict[str, str] = field(default_factory=dict)
    """batch id -> when its ``pending`` line was written (ISO, UTC)."""
    batches: int = 0
    writes: int | None = None
    """The sequence's write count (``locks``) this plan's own last run left."""


class _Replay:
    """The journal's records folded into a :class:`JournalState`, one record at a time,
    so an open journal can go on from where it last read (see :meth:`Journal.state`)."""

    def __init__(self) -> None:
        self.state = JournalState()
        self.members: dict[str, list[str]] = {}

    def feed(self, records: Sequence[Mapping[str, Any]]) -> None:
        state, members = self.state, self.members
        for record in records:
            kind = record.get("t")
            batch = str(record.get("batch") or "")
            if kind == "plan" and state.header is None:
                state.header = dict(record)
            elif kind == "pending":
                emails = [str(e) for e in record.get("emails") or ()]
                members[batch] = emails
                state.sent_at.setdefault(batch, str(record.get("at") or ""))
                state.batches += 1
                for email in emails:
                    if email not in state.outcomes:
                        state.unknown[email] = batch
            elif kind == "done":
                for item in record.get("outcomes") or ():
                    email = str(item.get("email"))
                    state.outcomes[email] = Outcome.from_json({**item, "batch": batch})
                    state.unknown.pop(email, None)
            elif kind == "not_sent":
                for email in members.get(batch, ()):
                    if state.unknown.get(email) == batch:
                        del state.unknown[email]
            elif kind == "mark":
                state.writes = int(record.get("writes") or 0)
            elif kind == "reconciled":
                for item in record.get("present") or ():
                    mapping = isinstance(item, Mapping)
                    email = str(item.get("email")) if mapping else str(item)
                    status = item.get("status", "success") if mapping else "success"
                    state.outcomes[email] = Outcome(
                        status=str(status),
                        detail="confirmed by reading the sequence after a lost answer",
                        reconciled=True,
                        batch=state.unknown.get(email),
                    )
                    state.unknown.pop(email, None)
                for email in record.get("absent") or ():
                    state.unknown.pop(str(email), None)

    def snapshot(self) -> JournalState:
        """A copy the caller may change without changing what later records fold into."""
        s = self.state
        return JournalState(
            header=None if s.header is None else dict(s.header),
            outcomes=dict(s.outcomes),
            unknown=dict(s.unknown),
            sent_at=dict(s.sent_at),
            batches=s.batches,
            writes=s.writes,
        )


def replay(records: Sequence[Mapping[str, Any]]) -> JournalState:
    folded = _Replay()
    folded.feed(records)
    return folded.state


def _parse_lines(text: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn write from a crash: the batch stays pending, i.e. unknown
        if isinstance(record, dict):
            records.append(record)
    return records


class Journal:
    """An open, locked journal file. Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: Any = None
        self._replay = _Replay()
        self._read_to = 0
        """Bytes of the file already folded into ``_replay``."""

    @classmethod
    def open(cls, directory: Path, plan_id: str) -> Journal:
        journal = cls(directory / f"{_safe(plan_id)}.jsonl")
        journal._open()
        return journal

    def _open(self) -> None:
        directory = self.path.parent
        private_dirs(directory, levels=3)
        # O_APPEND: every write lands at the end even if the file is shared;
        # 0600 at creation, never a window where it is world-readable.
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalBusyError(
                "This plan is being applied right now (in another cell or kernel).",
                hint="Wait for it to finish, then run again to see its results.",
            ) from None
        self._fh = os.fdopen(fd, "r+", encoding="utf-8")
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            # A crash tore the last line: start on a fresh one, or our next record
            # would be glued to the torn one and lost with it.
            self._fh.write("\n")
            self._fh.flush()
            os.fsync(fd)
        with contextlib.suppress(OSError):
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # the new file's name survives a crash too
            finally:
                os.close(dir_fd)

    def read(self) -> list[dict[str, Any]]:
        return read_lines(self.path)

    def state(self) -> JournalState:
        """The file's records folded, as a fresh copy. While the journal is open we hold
        its lock and every write appends whole lines, so only what was appended since
        the last call is read: a resumed 50,000-row job replays its journal once, not
        at every step of the restart (each replay was ~0.15 s on the event loop)."""
        if self._fh is None:
            return replay(self.read())
        fd = self._fh.fileno()
        size = os.fstat(fd).st_size
        if size > self._read_to:
            chunk = os.pread(fd, size - self._read_to, self._read_to)
            end = chunk.rfind(b"\n") + 1  # whole lines only; a torn tail waits
            self._replay.feed(_parse_lines(chunk[:end].decode("utf-8")))
            self._read_to += end
        return self._replay.snapshot()

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one record and make it durable before returning."""
        if self._fh is None:
            raise MixmaxNbError("The journal is closed.")
        line = json.dumps({**record, "at": now_iso()}, ensure_ascii=False, separators=(",", ":"))
        self._fh.write(line + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            try:
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            finally:
                self._fh.close()
                self._fh = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_headers(directory: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every journal in ``directory`` with its header (files without one are skipped)."""
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*.jsonl")):
        records = read_lines(path)
        if records and records[0].get("t") == "plan":
            yield path, records[0]


def sequence_history(directory: Path, sequence_id: str) -> dict[str, str]:
    """Case-insensitive key -> note, for addresses earlier enrollments sent to a sequence.

    Covers what Mixmax's list cannot show: drafts, and batches whose answer was
    lost. A plan skips these so a new plan never re-adds them.
    """
    notes: dict[str, str] = {}
    for path, header in iter_headers(directory):
        if header.get("kind") != "enroll" or header.get("sequence") != sequence_id:
            continue
        state = replay(read_lines(path))
        label = f"journal {path.stem}, schedule {header.get('schedule', '?')}"
        for email, outcome in state.outcomes.items():
            if outcome.status == "success":
                notes.setdefault(email.casefold(), f"added earlier by this toolkit ({label})")
        for email in state.unknown:
            notes.setdefault(
                email.casefold(),
                f"sent earlier with an unknown outcome ({label}); run that enrollment "
                "again to settle it",
            )
    return notes
