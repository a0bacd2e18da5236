"""The incremental event store: cost of a refresh, no gap, no duplicate, atomic commits."""

from __future__ import annotations

import asyncio
import math
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mixmax_nb import feed
from mixmax_nb.cache import EventStore

T0 = 1_760_000_000_000  # epoch ms


def event(i: int) -> dict[str, Any]:
    return {
        "_id": f"{i:024x}",
        "type": ["opened", "clicked", "replied", "sent"][i % 4],
        "timestamp": T0 + i * 60_000,
        "messageId": f"m{i % 97:016d}",
        "userId": "U" * 17,
        "recipientEmail": f"p{i}@example.com",
        "recipientName": f"P {i}",
        "subject": "Hello",
        "sequence": {"_id": f"{i % 5:024x}", "name": "S", "stageId": f"{i:024x}", "stageIndex": 0},
    }


class LiveFeed:
    """Newest-first pages of 300 with Mixmax's {results, next, hasNext}; can grow on top."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.requests = 0
        self.fail_after: int | None = None

    def grow(self, k: int) -> None:
        self.n += k

    async def run(self, key: str, params: Mapping[str, Any]) -> Any:
        assert key == "list-livefeed-events"
        self.requests += 1
        if self.fail_after is not None and self.requests > self.fail_after:
            raise KeyboardInterrupt  # an interrupt in the middle of a refresh
        limit = min(int(params["limit"]), 300)
        start = int(params.get("next", "0"))
        ids = list(range(self.n - 1 - start, max(-1, self.n - 1 - start - limit), -1))
        end = start + len(ids)
        return {"results": [event(i) for i in ids], "next": str(end), "hasNext": end < self.n}


def refresh(live: LiveFeed, store: EventStore, since: Any = None) -> feed.RefreshStats:
    return asyncio.run(feed.refresh(live.run, store, since=feed.to_utc(since)))


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    return EventStore(tmp_path, "sandbox", "acct/../1")


def test_first_pull_reads_everything_and_stores_privately(store: EventStore) -> None:
    live = LiveFeed(1000)
    stats = refresh(live, store)
    assert stats.new_events == 1000 and stats.reached_end
    assert live.requests == math.ceil(1000 / 300)
    frame = store.load()
    assert frame is not None and frame["id"].is_unique and len(frame) == 1000
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o700
    assert ".." not in store.dir.parts and "cache" in store.dir.parts


@pytest.mark.parametrize("k", [0, 1, 299, 300, 301, 950])
def test_refresh_after_k_new_events_costs_at_most_ceil_k_300_plus_1(
    store: EventStore, k: int
) -> None:
    live = LiveFeed(2000)
    refresh(live, store)
    live.grow(k)
    live.requests = 0
    stats = refresh(live, store)
    assert stats.new_events == k
    assert live.requests <= math.ceil(k / 300) + 1
    frame = store.load()
    assert frame is not None
    assert len(frame) == 2000 + k and frame["id"].is_unique
    assert frame["timestamp"].is_monotonic_decreasing


def test_interrupted_refresh_leaves_the_store_intact(store: EventStore) -> None:
    live = LiveFeed(600)
    refresh(live, store)
    before = store.load()
    live.grow(900)
    live.requests = 0
    live.fail_after = 2
    with pytest.raises(KeyboardInterrupt):
        refresh(live, store)
    pd.testing.assert_frame_equal(store.load(), before)
    live.fail_after = None
    refresh(live, store)
    frame = store.load()
    assert frame is not None and len(frame) == 1500 and frame["id"].is_unique
    assert not list(store.dir.glob(".events-*"))  # no temporary file left behind


def test_first_pull_with_since_stops_early_then_walks_down_when_asked(store: EventStore) -> None:
    live = LiveFeed(3000)
    since = pd.Timestamp(T0 + 2500 * 60_000, unit="ms", tz="UTC")
    stats = refresh(live, store, since=since)
    assert not stats.reached_end
    assert live.requests <= 3
    live.requests = 0
    stats = refresh(live, store)  # now everything: must walk to the end
    assert stats.reached_end and stats.stored_events == 3000


def test_filter_events(store: EventStore) -> None:
    refresh(LiveFeed(100), store)
    frame = store.load()
    assert frame is not None
    only = feed.filter_events(frame, types=["replied"], sequence_id=f"{2:024x}")
    assert set(only["type"]) <= {"replied"} and (only["sequence_id"] == f"{2:024x}").all()
    since = pd.Timestamp(T0 + 50 * 60_000, unit="ms", tz="UTC")
    assert (feed.filter_events(frame, since=since)["timestamp"] >= since).all()


def test_to_utc_accepts_every_form() -> None:
    want = pd.Timestamp("2026-01-02T03:04:05Z")
    assert feed.to_utc("2026-01-02T03:04:05Z") == want
    assert feed.to_utc("2026-01-02 03:04:05") == want
    assert feed.to_utc(int(want.value // 1_000_000)) == want
    assert feed.to_utc(None) is None


def test_limiter_burst_makes_up_late_starts_but_never_exceeds_the_window() -> None:
    from mixmax_nb.transport.limits import RateLimiter

    now = [0.0]
    lim = RateLimiter(per=60.0, burst=1, clock=lambda: now[0])
    starts: list[float] = []
    for i in range(2000):
        delay = lim.reserve()
        starts.append(now[0] + delay)
        # Every 7th call comes back late (a slow page): the caller arrives after its slot.
        now[0] = starts[-1] + (lim.interval * 2.5 if i % 7 == 0 else 0.01)
    # No sliding 60 s window holds more than 119 starts...
    j = 0
    for i, t in enumerate(starts):
        while starts[j] <= t - 60.0:
            j += 1
        assert i - j + 1 <= 119
    # ...and the late calls cost less than strictly even spacing would.
    even = RateLimiter(per=60.0, burst=0, clock=lambda: now[0])
    now[0] = 0.0
    even_starts: list[float] = []
    for i in range(2000):
        delay = even.reserve()
        even_starts.append(now[0] + delay)
        now[0] = even_starts[-1] + (even.interval * 2.5 if i % 7 == 0 else 0.01)
    assert starts[-1] < even_starts[-1]


def test_penalize_holds_back_even_the_burst() -> None:
    from mixmax_nb.transport.limits import RateLimiter

    now = [100.0]
    lim = RateLimiter(per=60.0, burst=1, clock=lambda: now[0])
    lim.reserve()
    lim.penalize(10.0)
    assert lim.reserve() >= 10.0


def test_chunked_shaping_keeps_dtypes_across_unknown_categories(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed, "SHAPE_CHUNK", 250)
    live = LiveFeed(900)
    original = live.run

    async def odd_types(key: str, params: Mapping[str, Any]) -> Any:
        out = await original(key, params)
        if not params.get("next"):  # only the first page: a type Mixmax never documented
            out["results"][0]["type"] = "rsvp_yes"
        return out

    live.run = odd_types  # type: ignore[method-assign]
    refresh(live, store)
    frame = store.load()
    assert frame is not None and len(frame) == 900
    assert isinstance(frame["type"].dtype, pd.CategoricalDtype)
    assert list(frame["type"].cat.categories[:7]) == list(feed.frames.EVENT_TYPES)
    assert "rsvp_yes" in frame["type"].cat.categories


# -- data and coverage commit together; an unreadable store is rebuilt, never half-used -----


def test_a_partial_pull_is_never_taken_for_a_complete_one(store: EventStore) -> None:
    live = LiveFeed(2431)
    since = pd.Timestamp(T0 + 1831 * 60_000, unit="ms", tz="UTC")
    refresh(live, store, since=since)  # only the newest 600 (two pages) are needed
    stored = store.read()
    assert stored is not None and 600 <= len(stored.frame) < 2431
    assert stored.floor_ms is not None  # the file itself says it is partial
    refresh(live, store)
    assert len(store.load()) == 2431  # type: ignore[arg-type]


def test_a_store_without_its_coverage_is_rebuilt_in_full(store: EventStore) -> None:
    import pyarrow.parquet as pq

    live = LiveFeed(2431)
    refresh(live, store, since=pd.Timestamp(T0 + 1831 * 60_000, unit="ms", tz="UTC"))
    # As an older version (or a hand-edit) would leave it: data with no coverage.
    table = pq.read_table(store.path)
    pq.write_table(table.replace_schema_metadata({}), store.path)
    with pytest.warns(UserWarning, match="could not be used"):
        refresh(live, store)
    assert len(store.load()) == 2431  # type: ignore[arg-type]


def test_a_crash_while_saving_keeps_the_previous_store(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    live = LiveFeed(700)
    refresh(live, store)
    before = store.read()
    live.grow(50)
    real = pq.write_table

    def torn(table: Any, where: Any, **kw: Any) -> None:
        real(table.slice(0, 10), where, **kw)
        raise OSError("disk died mid-write")

    monkeypatch.setattr(pq, "write_table", torn)
    with pytest.raises(OSError, match="disk died"):
        refresh(live, store)
    monkeypatch.setattr(pq, "write_table", real)
    after = store.read()
    assert before is not None and after is not None
    pd.testing.assert_frame_equal(after.frame, before.frame)
    assert after.floor_ms == before.floor_ms
    assert not list(store.dir.glob(".events-*"))  # no temporary left behind
    refresh(live, store)
    assert len(store.load()) == 750  # type: ignore[arg-type]


def test_a_truncated_store_says_so_and_rebuilds(store: EventStore) -> None:
    live = LiveFeed(900)
    refresh(live, store)
    data = store.path.read_bytes()
    store.path.write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match="moved to events.unreadable-"):
        stats = refresh(live, store)
    assert stats.new_events == 900 and len(store.load()) == 900  # type: ignore[arg-type]
