"""A local, incremental store of pulled live-feed events (Parquet on disk).

Mixmax has no "changed since" filter and allows 120 requests a minute, so a naive
refresh re-reads everything. The live feed is read newest first; a refresh stops
at the first page that contains an event already stored, so K new events cost
ceil(K/300) pages plus at most one page of overlap.

One store per backend and account (sandbox and real data never mix), under
``Settings.home / "cache"``: directories 0700, files 0600. A refresh is committed
atomically (temporary file, then rename) only when the walk reached stored data or
the end of the feed, so an interrupted refresh leaves the previous store intact:
no gap and no duplicate. How far down the feed the store is complete (its *floor*)
is written into the same Parquet file's metadata, so data and coverage commit
together; a file that is unreadable or lacks it is set aside and rebuilt. Events
that arrive late with an older timestamp than the newest stored one are not seen by
an incremental refresh (``clear()`` then pull to rebuild).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ._atomic import write_parquet

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _safe(part: str) -> str:
    cleaned = _SAFE.sub("_", part).strip("._")
    return cleaned[:80] or "unknown"


COVERAGE_KEY = b"mixmax_nb.coverage"
"""Parquet schema metadata: how far down the feed the file is complete. Kept inside the
data file so the two can never disagree (one rename commits both)."""


class CacheRebuiltWarning(UserWarning):
    """The local event store could not be read; it is rebuilt by the next pull."""


@dataclass(frozen=True)
class Stored:
    """What the store holds: the events, and the instant (epoch ms) below which they may
    be incomplete (None: complete down to the oldest event of the feed)."""

    frame: pd.DataFrame
    floor_ms: int | None


class EventStore:
    """The Parquet file of one account's events, with its coverage in the same file."""

    def __init__(self, root: Path, backend: str, account: str) -> None:
        self.dir = Path(root) / "cache" / _safe(backend) / _safe(account)
        self.path = self.dir / "events.parquet"

    def __repr__(self) -> str:
        return f"EventStore({str(self.path)!r})"

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> Stored | None:
        """The stored events and their coverage; None when there is no usable store.

        A file that cannot be read (truncated, corrupt) or that does not say how far it
        is complete is set aside with a warning, and the next pull rebuilds it: a partial
        pull is never taken for a complete one."""
        if not self.path.exists():
            return None
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(self.path)
            coverage = json.loads((table.schema.metadata or {})[COVERAGE_KEY])
            floor = coverage["floor_ms"]
            frame = table.to_pandas()
        except (OSError, pa.ArrowException, KeyError, TypeError, ValueError) as exc:
            self._set_aside(exc)
            return None
        return Stored(frame, int(floor) if floor is not None else None)

    def load(self) -> pd.DataFrame | None:
        stored = self.read()
        return stored.frame if stored is not None else None

    def _set_aside(self, exc: BaseException) -> None:
        aside = self.path.with_name(f"events.unreadable-{int(time.time())}.parquet")
        with contextlib.suppress(OSError):
            os.replace(self.path, aside)
        warnings.warn(
            CacheRebuiltWarning(
                f"The local event cache {self.path} could not be used "
                f"({type(exc).__name__}); it was moved to {aside.name} and the next pull "
                "reads the live feed again in full."
            ),
            stacklevel=3,
        )

    def save(self, frame: pd.DataFrame, *, floor_ms: int | None) -> None:
        """Replace the store with ``frame`` and its coverage in one atomic rename,
        readable by the user only."""
        import pyarrow as pa

        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for d in (self.dir, self.dir.parent, self.dir.parent.parent):
            os.chmod(d, 0o700)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        metadata = dict(table.schema.metadata or {})
        metadata[COVERAGE_KEY] = json.dumps({"floor_ms": floor_ms}).encode()
        write_parquet(table.replace_schema_metadata(metadata), self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def merge_events(stored: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """New events on top of the stored ones, one row per event id, newest first."""
    from . import frames

    merged = frames.concat("events", [p for p in (new, stored) if p is not None])
    merged = merged.drop_duplicates(subset="id", keep="first")
    return merged.sort_values("timestamp", ascending=False, kind="stable").reset_index(drop=True)
