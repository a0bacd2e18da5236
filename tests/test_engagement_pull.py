"""The engagement pull and its plan (mixmax_nb.data.pull / planner / store), counted
request by request against the sandbox's small account."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

import mixmax_nb as mx
from mixmax_nb.client import Client
from mixmax_nb.data.engagement import engaged_messages
from mixmax_nb.data.planner import plan, recipient_requests
from mixmax_nb.transport.limits import NoLimit


class Counted:
    """A transport that counts action runs by key and proxy requests by path."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def run_action(self, key: str, input: Any) -> Any:
        self.calls[key] += 1
        return await self.inner.run_action(key, input)

    async def run_action_json(self, key: str, input: Any) -> Any:
        self.calls[key] += 1
        return await self.inner.run_action_json(key, input)

    async def request(self, path: str, **kw: Any) -> Any:
        self.calls[f"GET {path}"] += 1
        return await self.inner.request(path, **kw)

    def take(self) -> Counter[str]:
        out, self.calls = self.calls, Counter()
        return out


@pytest.fixture
def counted() -> tuple[Client, Counted]:
    transport = mx.connect("sandbox", size="small", db=":memory:", livefeed="per-message").transport
    wrapped = Counted(transport)
    return Client(wrapped, limiter=NoLimit()), wrapped  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("listed", "requests"),
    [
        (0, 1),
        (1, 1),
        (49, 1),
        (50, 2),
        (99, 2),
        (100, 3),
        (9_949, 199),
        (9_950, 200),
        (10_000, 200),
        (25_000, 200),
    ],
)
def test_recipient_pages_are_counted_as_the_offset_walk_makes_them(
    listed: int, requests: int
) -> None:
    # A full last page costs one more (empty) page; the 10,000 cap stops the walk.
    assert recipient_requests(listed) == requests


def test_a_plan_adds_its_sources_and_its_time_at_120_a_minute() -> None:
    made = plan(
        detail="events",
        sequences=2,
        reached={"a": 120, "b": 0},
        sent=650,
        opened=300,
        replied=40,
        delivered=600,
        listed={"b": 50},
        cached_opened=100,
    )
    assert dict(made.requests) == {
        "sequences": 1,
        "stats": 3,
        "recipients": 3 + 2,
        "messages": 3,
        "teams": 1,
        # opened 300 + replied without an open 40 * (1 - 300/600) = 20, minus 100 held
        "events": 220,
    }
    assert made.total == 233
    assert made.seconds == pytest.approx(116.5)
    assert made.needs_confirmation
    assert "233 requests" in made.describe()


def test_the_plan_is_exact_the_second_time(counted: tuple[Client, Counted]) -> None:
    client, wrapped = counted
    names = client.sequences()["name"]
    wrapped.take()
    client.plan_engagement(detail="summary")
    # The sequences page, and Mixmax's totals for each sequence a search can name.
    searchable = int((~names.str.contains('"', regex=False)).sum())
    assert dict(wrapped.take()) == {"list-sequences": 1, "GET /livefeed": searchable}
    client.engagement(detail="summary")
    made = wrapped.take()
    assert made["list-livefeed-events"] == 0  # a summary makes no per-message call
    again = client.plan_engagement(detail="summary")
    wrapped.take()
    client.engagement(detail="summary")
    made_again = wrapped.take()
    by_source = {
        "recipients": made_again["get-sequence-recipients"],
        "messages": made_again["list-messages"],
        "teams": made_again["list-teams"],
        "stats": made_again["GET /livefeed"],  # the account's, after the first paint
    }
    assert {k: again.requests[k] for k in by_source} == by_source


def test_events_are_read_for_engaged_messages_only_and_once(
    counted: tuple[Client, Counted],
) -> None:
    client, wrapped = counted
    planned = client.plan_engagement(detail="events")
    wrapped.take()
    data = client.engagement(detail="events")
    made = wrapped.take()
    engaged = engaged_messages(data.stages)
    assert made["list-livefeed-events"] == len(engaged)
    # The first plan estimates from Mixmax's totals (replies without an open are a
    # share); within the 5% the plan promises on this account: 661 for 637.
    assert planned.requests["events"] == 661 and len(engaged) == 637
    assert len(engaged) < len(data.messages)  # never one call per message
    assert data.events is not None
    assert set(data.events["message_id"]) <= set(engaged["message_id"])
    # Nothing changed: a second pull reads no message's events again.
    client.engagement(detail="events")
    assert wrapped.take()["list-livefeed-events"] == 0
    assert client.plan_engagement(detail="events").requests["events"] == 0


def test_a_refresh_rereads_only_the_messages_whose_counters_moved(
    counted: tuple[Client, Counted],
) -> None:
    client, wrapped = counted
    before = client.engagement(detail="events")
    old = engaged_messages(before.stages).set_index("message_id")["signature"]
    client.transport.sandbox_add_activity(40, seed=3)
    wrapped.take()
    after = client.engagement(detail="events")
    new = engaged_messages(after.stages).set_index("message_id")["signature"]
    index = old.index.union(new.index)
    moved = int((old.reindex(index) != new.reindex(index)).sum())
    assert moved > 0
    assert wrapped.take()["list-livefeed-events"] == moved


def test_a_stopped_pull_keeps_what_it_fetched_and_the_next_goes_on(
    counted: tuple[Client, Counted],
) -> None:
    client, wrapped = counted
    stop = threading.Event()
    seen: list[int] = []

    def progress(what: str, done: int, total: int) -> None:
        if what == "events":
            seen.append(done)
            stop.set()  # after the first batch

    partial = client.engagement(detail="events", progress=progress, stop=stop)
    first = wrapped.take()["list-livefeed-events"]
    assert any("Stopped" in n for n in partial.notes)
    total = client.plan_engagement(detail="events").requests["events"]
    wrapped.take()
    client.engagement(detail="events")
    rest = wrapped.take()["list-livefeed-events"]
    assert first > 0 and rest == total
    full = client.engagement(detail="events")
    assert wrapped.take()["list-livefeed-events"] == 0
    assert full.events is not None and len(full.events) > 0


def test_the_store_outlives_the_client(counted: tuple[Client, Counted]) -> None:
    client, _ = counted
    client.engagement(detail="events")
    # Same account, new client: the events are served from the store.
    again = Client(Counted(client.transport.inner), limiter=NoLimit())  # type: ignore[attr-defined]
    assert again.plan_engagement(detail="events").requests["events"] == 0


def test_an_unknown_sequence_is_refused_before_any_pull(counted: tuple[Client, Counted]) -> None:
    client, wrapped = counted
    with pytest.raises(mx.NotFoundError, match="No sequence 'nope'"):
        client.plan_engagement(sequences="nope")
    assert wrapped.take()["get-sequence-recipients"] == 0
