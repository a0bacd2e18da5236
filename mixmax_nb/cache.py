"""A local, incremental store of pulled live-feed events (Parquet on disk).

Mixmax has no "changed since" filter and allows 120 requests a minute, so a naive
refresh re-reads everything. The live feed is read newest first; a refresh stops
at the first page that contains an event already stored, so K new events cost
ceil(K/300) pages plus at most one page of overlap.

One store per backend and account (sandbox and real data never mix), under
``Settings.home / "cache"``: directories 0700, files 0600. A refresh is committed
atomically (temporary file, then rename) only when the walk reached stored data or
the end of the feed, so an interrupted refresh leaves the previous store intact:
no gap and no duplicate. Events that arrive late with an older timestamp than the
newest stored one are not seen by an incremental refresh (``clear()`` then pull
to rebuild).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pandas as pd

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _safe(part: str) -> str:
    cleaned = _SAFE.sub("_", part).strip("._")
    return cleaned[:80] or "unknown"


class EventStore:
    """The Parquet file of one account's events."""

    def __init__(self, root: Path, backend: str, account: str) -> None:
        self.dir = Path(root) / "cache" / _safe(backend) / _safe(account)
        self.path = self.dir / "events.parquet"

    def __repr__(self) -> str:
        return f"EventStore({str(self.path)!r})"

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> pd.DataFrame | None:
        if not self.path.exists():
            return None
        return pd.read_parquet(self.path)

    def save(self, frame: pd.DataFrame) -> None:
        """Replace the store with ``frame`` atomically, readable by the user only."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for d in (self.dir, self.dir.parent, self.dir.parent.parent):
            os.chmod(d, 0o700)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".events-", suffix=".parquet")
        os.close(fd)
        try:
            os.chmod(tmp, 0o600)
            frame.to_parquet(tmp, index=False)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def merge_events(stored: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """New events on top of the stored ones, one row per event id, newest first."""
    from . import frames

    merged = frames.concat("events", [p for p in (new, stored) if p is not None])
    merged = merged.drop_duplicates(subset="id", keep="first")
    return merged.sort_values("timestamp", ascending=False, kind="stable").reset_index(drop=True)
