"""The private store of per-message events, keyed by message (Parquet, append-only).

Mixmax serves events one message at a time (at most 200), so the store remembers,
per message, the counters its events were fetched under (a *signature*, see
``engagement.engaged_messages``). A refresh fetches only messages that are new or
whose counters moved, and writes ONE new part: those messages' events, and in the
same file's metadata their signatures and cap flags. Data and coverage therefore
commit together (a temporary file, then a rename): a crash leaves the earlier parts
as they were. A message's events are those of the newest part that lists it.

A no-op refresh reads only the parts' footers (a few KB each), never the events, so
it costs the same whatever the store's size; past :data:`MAX_PARTS` parts they are
merged into one. A part that cannot be read is set aside with a warning, and the
messages it covered are simply fetched again.

Under ``Settings.home/cache/<backend>/<account>/engagement/``: directories 0700,
files 0600.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .._atomic import write_parquet

MAX_PARTS = 16
LISTED = "listed.json"
"""Recipients per sequence at the last pull: the next plan's page count (a hint only)."""
COVERAGE_KEY = b"mixmax_nb.messages"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class StoreRebuiltWarning(UserWarning):
    """Part of the local event store could not be read; its messages are fetched again."""


def _safe(part: str) -> str:
    return _SAFE.sub("_", part).strip("._")[:80] or "unknown"


@dataclass(frozen=True)
class Coverage:
    """What the store holds: message id -> signature, and the capped messages."""

    signatures: Mapping[str, str]
    capped: frozenset[str]


class MessageEventStore:
    """The per-message events of one account (see the module docstring)."""

    def __init__(self, root: Path, backend: str, account: str) -> None:
        self.dir = Path(root) / "cache" / _safe(backend) / _safe(account) / "engagement"

    def __repr__(self) -> str:
        return f"MessageEventStore({str(self.dir)!r})"

    def parts(self) -> list[Path]:
        return sorted(self.dir.glob("part-*.parquet")) if self.dir.is_dir() else []

    def _footers(self) -> list[tuple[Path, dict[str, Any]]]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        out: list[tuple[Path, dict[str, Any]]] = []
        for path in self.parts():
            try:
                meta = pq.read_schema(path).metadata or {}
                info = json.loads(meta[COVERAGE_KEY])
                if not isinstance(info.get("messages"), dict):
                    raise ValueError("no message coverage")
            except (OSError, pa.ArrowException, KeyError, TypeError, ValueError) as exc:
                self._set_aside(path, exc)
                continue
            out.append((path, info))
        return out

    def coverage(self) -> Coverage:
        """Signatures and cap flags of every stored message (footers only)."""
        signatures: dict[str, str] = {}
        capped: set[str] = set()
        for _path, info in self._footers():
            for message, sig in info["messages"].items():
                signatures[str(message)] = str(sig)
                capped.discard(str(message))
            capped.update(str(m) for m in info.get("capped", ()))
        return Coverage(signatures, frozenset(capped))

    def load(self) -> pd.DataFrame | None:
        """Every stored event (the newest part of each message wins); None if empty."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        footers = self._footers()
        if not footers:
            return None
        newest: dict[str, int] = {}
        for index, (_path, info) in enumerate(footers):
            for message in info["messages"]:
                newest[str(message)] = index
        frames: list[pd.DataFrame] = []
        for index, (path, info) in enumerate(footers):
            own = [m for m in info["messages"] if newest[str(m)] == index]
            if not own:
                continue
            try:
                frame = pq.read_table(path).to_pandas()
            except (OSError, pa.ArrowException) as exc:
                self._set_aside(path, exc)
                continue
            if len(own) < len(info["messages"]):
                frame = frame.loc[frame["message_id"].isin(own)]
            frames.append(frame)
        if not frames:
            return None
        from .. import frames as shaping

        return shaping.concat("events", frames)

    def append(
        self, events: pd.DataFrame, signatures: Mapping[str, str], capped: Iterable[str] = ()
    ) -> Path | None:
        """Commit the events of the messages in ``signatures`` (one new part) atomically."""
        if not signatures:
            return None
        final = self._write_part(events, signatures, capped)
        if len(self.parts()) > MAX_PARTS:
            self.compact()
        return final

    def _write_part(
        self, events: pd.DataFrame, signatures: Mapping[str, str], capped: Iterable[str]
    ) -> Path:
        import pyarrow as pa

        self._private_dirs()
        info = {"messages": dict(signatures), "capped": sorted(set(capped))}
        table = pa.Table.from_pandas(events, preserve_index=False)
        meta = dict(table.schema.metadata or {})
        meta[COVERAGE_KEY] = json.dumps(info).encode()
        table = table.replace_schema_metadata(meta)
        number = max((int(p.stem.split("-")[1]) for p in self.parts()), default=0) + 1
        return write_parquet(table, self.dir / f"part-{number:06d}.parquet")

    def compact(self) -> None:
        """Merge every part into one (the newest data of each message), atomically: the
        merged part is renamed into place before the old ones go."""
        old = self.parts()
        if len(old) < 2:
            return
        coverage = self.coverage()
        events = self.load()
        if events is None:
            return
        merged = self._write_part(events, coverage.signatures, coverage.capped)
        for path in old:
            if path != merged:
                path.unlink(missing_ok=True)

    def clear(self) -> None:
        for path in self.parts():
            path.unlink(missing_ok=True)
        (self.dir / LISTED).unlink(missing_ok=True)

    def listed_counts(self) -> dict[str, int]:
        """What the last pull listed, by sequence id (recipients) and by window start
        (messages' pages): what the next plan counts requests by."""
        try:
            data = json.loads((self.dir / LISTED).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def remember_listed(self, counts: Mapping[str, int]) -> None:
        self._private_dirs()
        merged = {**self.listed_counts(), **{str(k): int(v) for k, v in counts.items()}}
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".listed-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(merged, fh)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.dir / LISTED)

    def _private_dirs(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for level in (self.dir, *list(self.dir.parents)[:3]):
            with contextlib.suppress(OSError):
                os.chmod(level, 0o700)

    def _set_aside(self, path: Path, exc: BaseException) -> None:
        aside = path.with_name(f"unreadable-{int(time.time())}-{path.name}")
        with contextlib.suppress(OSError):
            os.replace(path, aside)
        warnings.warn(
            StoreRebuiltWarning(
                f"Part of the local event store ({path.name}) could not be used "
                f"({type(exc).__name__}); it was moved to {aside.name} and its messages "
                "are fetched again on the next pull."
            ),
            stacklevel=4,
        )


__all__ = ["MAX_PARTS", "Coverage", "MessageEventStore", "StoreRebuiltWarning"]
