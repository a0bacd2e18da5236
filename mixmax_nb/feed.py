"""Incremental pulls of the live feed into the event store.

The feed is read newest first (how Mixmax pages). A refresh:

* stops at the first page holding an event that is already stored, when the store
  is complete below it -- so K new events cost ceil(K/300) pages, plus one page of
  overlap at most;
* walks further down only when asked for events older than what the store holds
  (``since`` below the store's floor);
* commits atomically at the end (see ``cache``), so an interrupted refresh changes
  nothing.

The store's *floor* is the oldest instant below which it may be incomplete (None
once the walk has reached the end of the feed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from . import frames
from .cache import EventStore, merge_events
from .pages import RunFn, iter_pages

FEED_ACTION = "list-livefeed-events"
SHAPE_CHUNK = 30_000  # raw events held before they are shaped into typed columns


@dataclass(frozen=True)
class RefreshStats:
    new_events: int
    requests: int
    stored_events: int
    reached_end: bool


def to_utc(value: Any) -> pd.Timestamp | None:
    """A datetime, date, ISO string, epoch ms number or Timestamp as a UTC Timestamp."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return pd.Timestamp(int(value), unit="ms", tz="UTC")
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _record_ms(record: Mapping[str, Any]) -> int | None:
    value = record.get("timestamp")
    if value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


async def refresh(
    run: RunFn, store: EventStore, *, since: pd.Timestamp | None = None, progress: Any = None
) -> RefreshStats:
    """Bring ``store`` up to date with the feed (and down to ``since`` when given)."""
    found = store.read()
    exists = found is not None
    stored = found.frame if found is not None else None
    floor = found.floor_ms if found is not None else None
    known: set[str] = set(stored["id"].astype(str)) if stored is not None else set()
    since_ms = int(since.value // 1_000_000) if since is not None else None
    if not exists:
        wanted_floor: int | None = since_ms  # first pull: as deep as asked, else everything
    elif floor is None:
        wanted_floor = None  # complete store: the new events on top are all we need
    elif since_ms is None:
        wanted_floor = None  # asked for everything: walk to the end
    else:
        wanted_floor = min(floor, since_ms)
    must_walk_down = exists and floor is not None and (wanted_floor is None or wanted_floor < floor)

    # Raw JSON costs ~2 KB an event; typed columns a fraction of that. Shape in chunks
    # as pages arrive so a first pull of a million events stays bounded in memory.
    chunks: list[pd.DataFrame] = []
    new_records: list[dict[str, Any]] = []
    requests = 0
    reached_end = True
    oldest_seen: int | None = None
    async for page in iter_pages(run, FEED_ACTION, {}, progress=progress):
        requests += 1
        fresh = [r for r in page if str(r.get("_id")) not in known]
        new_records.extend(fresh)
        if len(new_records) >= SHAPE_CHUNK:
            chunks.append(frames.shape("events", new_records))
            new_records = []
        stamps = [t for t in (_record_ms(r) for r in page) if t is not None]
        if stamps:
            oldest_seen = min(stamps) if oldest_seen is None else min(oldest_seen, *stamps)
        if len(fresh) < len(page) and not must_walk_down:
            reached_end = False
            break
        if wanted_floor is not None and oldest_seen is not None and oldest_seen < wanted_floor:
            reached_end = False
            break
    chunks.append(frames.shape("events", new_records))
    new = frames.concat("events", chunks)
    merged = merge_events(stored, new)
    if reached_end:
        new_floor: int | None = None
    elif not exists:
        new_floor = oldest_seen
    elif must_walk_down:
        new_floor = min(floor or 0, oldest_seen) if oldest_seen is not None else floor
    else:
        new_floor = floor
    store.save(merged, floor_ms=new_floor)
    return RefreshStats(len(new), requests, len(merged), reached_end)


def filter_events(
    frame: pd.DataFrame,
    *,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    types: list[str] | None = None,
    sequence_id: str | None = None,
) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    if since is not None:
        mask &= frame["timestamp"] >= since
    if until is not None:
        mask &= frame["timestamp"] < until
    if types:
        mask &= frame["type"].isin(types)
    if sequence_id is not None:
        mask &= frame["sequence_id"] == sequence_id
    return frame.loc[mask.fillna(False).astype(bool)].reset_index(drop=True)
