"""One engagement pull: the requests, in the cheapest order, over a client's calls.

The only module of ``data`` that awaits: it calls a :class:`Source` (the client's
own methods, which pace and retry) and never a transport or a process itself.

Order of the requests (why: the first answers are the cheapest and paint first):

1. the sequences page;
2. Mixmax's live-feed ``stats``, one request for the account and one per sequence
   (the KPI table Mixmax itself would show, and the plan's numbers);
3. every chosen sequence's recipients (50 per request): the per-stage counters;
4. the messages sent in the window (300 per request), newest first, stopping at the
   window's start;
5. with ``detail="events"``: the events of each message whose counters show
   engagement and differ from what the store holds, one request each, committed to
   the store every :data:`EVENT_BATCH` messages so a stopped pull keeps its work.

A connection whose ``list-livefeed-events`` takes no ``messageId`` lists the whole
account's events instead (the ``account`` shape): step 5 then reads that feed
incrementally (``feed.py``) and keeps only the engagement types.
"""

from __future__ import annotations

import asyncio
import hashlib
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, Final, Protocol

import pandas as pd

from .. import frames
from .._time import last_day
from ..errors import MixmaxNbError, NotFoundError, ServiceError
from .engagement import (
    ACCOUNT,
    ENGAGEMENT_TYPES,
    Detail,
    EngagementData,
    Shape,
    capped,
    choose_sequences,
    engaged_messages,
    livefeed_search,
    shape_event_runs,
    stale_messages,
    stats_frame,
    stats_row,
)
from .planner import EngagementPlan, engaged_estimate, plan, recipient_requests
from .store import MessageEventStore

NO_EVENTS: Final = b'{"output": {"results": []}}'
"""The answer kept for a message Mixmax no longer has (404)."""
EVENT_BATCH = 100
"""Messages whose events are committed together (a stopped pull keeps each batch)."""
CONCURRENCY = 4
"""Requests in flight at once: the limiter spaces their starts; a call takes longer."""
MESSAGES_MARGIN_MS = 86_400_000
"""Messages are listed by creation; a send can follow its creation by a day (scheduled)."""

ProgressFn = Callable[[str, int, int], None]
"""``(what, done, total)``: called as a pull moves on (the dashboard's bar, a tqdm)."""


class Source(Protocol):
    """What a pull needs of a client (``AsyncClient`` provides it)."""

    @property
    def backend(self) -> str: ...

    async def records(self, key: str, input: Mapping[str, Any] | None = None) -> list[Any]: ...

    async def run_action(self, key: str, input: Mapping[str, Any] | None = None) -> Any: ...

    async def run_action_json(self, key: str, input: Mapping[str, Any] | None = None) -> bytes: ...

    async def request(
        self,
        path: str,
        method: str = "GET",
        query: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any: ...

    async def input_schema(self, key: str) -> tuple[dict[str, Any] | None, str]: ...

    async def team_members(self) -> pd.DataFrame: ...

    async def _account_feed(self, start: Any, *, refresh: bool = True) -> pd.DataFrame: ...


def utc(value: Any) -> pd.Timestamp | None:
    """A date, datetime, ISO string or Timestamp as a UTC Timestamp (naive = UTC)."""
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


async def livefeed_shape(source: Source) -> Shape:
    """``per-message`` when the connection's ``list-livefeed-events`` takes a
    ``messageId`` (as Mixmax documents), ``account`` when it lists the whole account."""
    schema, _ = await source.input_schema("list-livefeed-events")
    schema = schema or {}
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    if "messageId" in required:
        return "per-message"
    account_wide = {"since", "until", "types", "sequenceId"} & set(properties)
    return "account" if account_wide or "messageId" not in properties else "per-message"


class _Counter:
    def __init__(self, progress: ProgressFn | None, total: int) -> None:
        self.progress = progress
        self.total = total
        self.done = 0
        self.by: dict[str, int] = {}

    def add(self, what: str, n: int = 1) -> None:
        self.by[what] = self.by.get(what, 0) + n
        self.done += n
        if self.progress is not None:
            self.progress(what, self.done, max(self.total, self.done))


async def _stats(
    source: Source,
    sequences: pd.DataFrame,
    since: Any,
    until: Any,
    count: _Counter,
    *,
    account: bool = False,
) -> tuple[pd.DataFrame, list[str]]:
    """Mixmax's totals for each sequence (and, with ``account``, for the whole account,
    one-off emails included), one request each."""
    notes: list[str] = []
    queries: list[tuple[str, str, str]] = []
    if account:
        queries.append((ACCOUNT, "All sequences and emails", ""))
    for sid, name in zip(sequences["id"], sequences["name"], strict=True):
        try:
            queries.append((str(sid), str(name), livefeed_search(sequence=str(name))))
        except ValueError as exc:
            notes.append(f"No live-feed stats for {name!r}: {exc}.")
    window = livefeed_search(since=since, until=last_day(utc(until)))

    failed: list[str] = []

    async def one(key: str, label: str, search: str) -> dict[str, Any]:
        text = " ".join(t for t in (search, window) if t)
        query: dict[str, Any] = {"limit": 1}
        if text:
            query["search"] = text
        try:
            answer = await source.request("/livefeed", query=query)
        except ServiceError as exc:
            # Mixmax's own totals are a cross-check and the plan's numbers; the counts
            # come from the recipients, so a pull goes on without them.
            failed.append(f"{label}: {exc.message}")
            answer = None
        count.add("stats")
        body = answer.get("body") if isinstance(answer, Mapping) else None
        return stats_row(key, label, body)

    rows = await _bounded([partial(one, *q) for q in queries])
    if failed:
        notes.append(
            f"Mixmax's live-feed totals could not be read for {len(failed):,} query(ies) "
            f"(first: {failed[0]}); counts come from the recipients' stages."
        )
    return stats_frame(rows), notes


async def _bounded(calls: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run ``calls`` at most :data:`CONCURRENCY` at a time; the first error is raised
    once every call has ended (none is left running, none is cancelled mid-request)."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def run(call: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await call()

    results = await asyncio.gather(*(run(c) for c in calls), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)


async def _recipients(
    source: Source, sequences: pd.DataFrame, count: _Counter
) -> tuple[pd.DataFrame, pd.DataFrame]:
    async def one(sid: str) -> list[Any]:
        with warnings.catch_warnings():
            from ..pages import RecipientsCapWarning

            warnings.simplefilter("ignore", RecipientsCapWarning)
            records = await source.records("get-sequence-recipients", {"sequenceId": sid})
        count.add("recipients", recipient_requests(len(records)))
        return records

    parts = await _bounded([partial(one, str(s)) for s in sequences["id"]])
    records = [r for part in parts for r in part]
    return frames.shape("recipients", records), frames.shape("recipient_stages", records)


def _events_key(since: Any, sequence_ids: Sequence[str]) -> str:
    """Where the store keeps how many messages a window's sequences had engaged."""
    start = utc(since)
    digest = hashlib.sha256("\n".join(sorted(sequence_ids)).encode()).hexdigest()[:16]
    return f"engaged since {start.isoformat() if start is not None else 'the start'} in {digest}"


def _messages_key(since: Any) -> str:
    """Where the store keeps how many messages' pages a window's start cost."""
    start = utc(since)
    return f"list-messages pages since {start.isoformat() if start is not None else 'the start'}"


async def _messages(source: Source, since: Any, count: _Counter) -> pd.DataFrame:
    """Messages created since the window's start (all of them without one), newest first."""
    from ..pages import iter_pages

    start = utc(since)
    floor = int(start.value // 1_000_000) - MESSAGES_MARGIN_MS if start is not None else None
    records: list[Any] = []
    async for page in iter_pages(source.run_action, "list-messages", {}):
        count.add("messages")
        records.extend(page)
        created = [int(c) for r in page if isinstance(c := r.get("created"), int | float)]
        if floor is not None and created and min(created) < floor:
            break
    return frames.shape("messages", records)


async def _events_per_message(
    source: Source,
    store: MessageEventStore,
    stages: pd.DataFrame,
    since: Any,
    count: _Counter,
    stop: Any,
) -> tuple[pd.DataFrame | None, frozenset[str], list[str], int]:
    """The events of every engaged message whose counters the store has not seen;
    returns them (all the window's, stored ones too), the capped messages, notes and
    how many messages are engaged."""
    engaged = engaged_messages(stages)
    start = utc(since)
    if start is not None:
        engaged = engaged.loc[engaged["sent_at"] >= start]
    # One directory listing: what the store covers, and (from memory when this process
    # loaded it before) the window's events. Nothing to fetch: that is the answer.
    window = frozenset(engaged["message_id"].astype(str)) if len(engaged) else None
    coverage, kept = store.snapshot(window)
    todo = stale_messages(engaged, coverage.signatures)
    expected = dict(zip(engaged["message_id"], engaged["signature"], strict=True))
    notes: list[str] = []
    gone: list[str] = []

    async def one(message_id: str) -> bytes:
        # The answer as printed: a batch's answers are shaped in one Arrow pass.
        try:
            printed = await source.run_action_json(
                "list-livefeed-events", {"messageId": message_id}
            )
        except NotFoundError:
            gone.append(message_id)  # Mixmax: 404 for a vanished message; nothing to keep
            printed = NO_EVENTS
        count.add("events")
        return printed

    for first in range(0, len(todo), EVENT_BATCH):
        if stop is not None and stop.is_set():
            notes.append(
                f"Stopped: {len(todo) - first:,} messages' events were not fetched yet; "
                "pull again to go on (what was fetched is kept)."
            )
            break
        batch = todo[first : first + EVENT_BATCH]
        answers = await _bounded([partial(one, m) for m in batch])
        shaped, counts = shape_event_runs(batch, answers)
        hit_cap = [m for m, n in zip(batch, counts, strict=True) if capped(n)]
        store.append(shaped, {m: expected[m] for m in batch}, hit_cap)
    if gone:
        notes.append(f"{len(gone):,} message(s) no longer exist in Mixmax (404): no events.")
    cover = coverage
    if len(todo):
        cover, kept = store.snapshot(window)  # reads the parts just written, no more
    return kept, frozenset(cover.capped & set(engaged["message_id"])), notes, len(engaged)


async def _events_account_feed(source: Source, since: Any) -> pd.DataFrame:
    events = await source._account_feed(since)
    kept: pd.DataFrame = events.loc[events["type"].isin(ENGAGEMENT_TYPES)]
    return kept.reset_index(drop=True)


async def plan_pull(
    source: Source,
    store: MessageEventStore,
    *,
    since: Any = None,
    until: Any = None,
    sequences: Sequence[str] | str | None = None,
    detail: Detail = "summary",
) -> tuple[EngagementPlan, dict[str, Any]]:
    """The plan, and what finding it out fetched (the pull reuses it, at no cost)."""
    count = _Counter(None, 0)
    all_sequences = frames.shape("sequences", await source.records("list-sequences"))
    count.add("sequences")
    chosen = choose_sequences(all_sequences, sequences)
    asked = [sequences] if isinstance(sequences, str) else list(sequences or ())
    missing = sorted(set(asked) - set(chosen["id"].astype(str)) - set(chosen["name"].astype(str)))
    if missing:
        raise NotFoundError(
            f"No sequence {', '.join(map(repr, missing))} in this account.",
            hint="client.sequences() lists them; pass an id or an exact name.",
            key="not_found",
        )
    stats, notes = await _stats(source, chosen, since, until, count)
    per_seq = stats.loc[stats["key"] != ACCOUNT]
    chosen_ids = chosen["id"].astype(str).tolist()
    reached = {
        str(k): int(v)
        for k, v in zip(per_seq["key"], per_seq["recipients"].fillna(0), strict=True)
        if str(k) in chosen_ids
    }
    listed = store.listed_counts()
    # A sequence Mixmax gave no totals for (its name no search can hold) and that was
    # never listed still costs pages: count it as the average of the others.
    unknown = [s for s in chosen_ids if s not in reached and s not in listed]
    if unknown:
        typical = round(sum(reached.values()) / len(reached)) if reached else 0
        reached.update(dict.fromkeys(unknown, typical))
        notes.append(
            f"{len(unknown):,} sequence(s) have no live-feed totals; their recipients' "
            f"pages are estimated from the others' average ({typical:,} people)."
        )
    if not any(k in listed for k in reached):
        notes.append(
            "Recipients not sent to yet are not in Mixmax's totals, so this first plan "
            "can count a few pages short; the next plan counts what this pull listed."
        )
    # Sequence emails only: one-offs add a few listing pages at most.
    sent = int(per_seq["sent"].fillna(0).sum())
    opened = int(per_seq["opened"].fillna(0).sum())
    replied = int(per_seq["replied"].fillna(0).sum())
    delivered = int(per_seq["delivered"].fillna(0).sum())
    cached = len(store.coverage().signatures) if detail == "events" else 0
    shape = await livefeed_shape(source)
    if shape == "account" and detail == "events":
        notes.append(
            "This connection lists the whole account's events (no messageId): they are "
            "read from the live feed incrementally, not per message."
        )
    estimate = engaged_estimate(opened, replied, delivered)
    events_key = _events_key(since, chosen_ids)
    seen, estimated = listed.get(f"{events_key} seen"), listed.get(f"{events_key} estimated")
    engaged: int | None = None
    if shape == "per-message" and seen is not None and estimated is not None:
        # Calibrated by the last pull of the same window: what it found, plus what
        # Mixmax's totals have gained since. Messages engaged again (a second open)
        # are only seen when the recipients are listed, so they are not counted here.
        engaged = max(0, seen + estimate - estimated)
        cached = min(cached, seen)
    else:
        cached = min(cached, estimate)
    made = plan(
        detail=detail,
        sequences=len(chosen),
        reached=reached,
        engaged=engaged,
        sent=sent,
        # The account-wide feed pages 300 events at a time, about 2 per opened email.
        opened=opened if shape == "per-message" else max(1, -(-2 * opened // 300)),
        replied=replied if shape == "per-message" else 0,
        delivered=delivered,
        listed={k: v for k, v in listed.items() if k in chosen_ids},
        messages_pages=listed.get(_messages_key(since)),
        cached_opened=cached,
        stats_done=True,
        sequences_done=True,
        notes=tuple(notes),
        stats=stats,
    )
    return made, {
        "sequences": all_sequences,
        "chosen": chosen,
        "stats": stats,
        "notes": notes,
        "spent": dict(count.by),
        "shape": shape,
        "events_key": events_key,
        "engaged_estimate": estimate,
    }


async def pull(
    source: Source,
    store: MessageEventStore,
    *,
    since: Any = None,
    until: Any = None,
    sequences: Sequence[str] | str | None = None,
    detail: Detail = "summary",
    progress: ProgressFn | None = None,
    stop: Any = None,
    planned: Mapping[str, Any] | None = None,
) -> EngagementData:
    """Run a pull (see the module docstring); ``planned`` is :func:`plan_pull`'s second
    value, whose answers are reused."""
    if planned is None:
        _, planned = await plan_pull(
            source, store, since=since, until=until, sequences=sequences, detail=detail
        )
    chosen: pd.DataFrame = planned["chosen"]
    count = _Counter(progress, 0)
    for what, n in planned["spent"].items():
        count.by[what] = n
    # The whole account's totals (one-off emails too): after the first paint.
    account, more_notes = await _stats(source, chosen.iloc[0:0], since, until, count, account=True)
    stats = pd.concat([account, planned["stats"]], ignore_index=True)
    recipients, stages = await _recipients(source, chosen, count)
    # How many each sequence listed: the next plan's recipients estimate is then exact.
    counts = recipients["sequence_id"].astype(str).value_counts()
    listed = {str(s): int(counts.get(str(s), 0)) for s in chosen["id"]}
    pages_before = count.by.get("messages", 0)
    messages = await _messages(source, since, count)
    listed[_messages_key(since)] = count.by.get("messages", 0) - pages_before
    store.remember_listed(listed)
    events: pd.DataFrame | None = None
    hit_cap: frozenset[str] = frozenset()
    notes = list(planned["notes"]) + more_notes
    if detail == "events":
        if planned["shape"] == "per-message":
            events, hit_cap, more, engaged_now = await _events_per_message(
                source, store, stages, since, count, stop
            )
            notes += more
            key = planned["events_key"]
            store.remember_listed(
                {f"{key} seen": engaged_now, f"{key} estimated": planned["engaged_estimate"]}
            )
        else:
            events = await _events_account_feed(source, since)
    try:
        members: pd.DataFrame | None = await source.team_members()
    except MixmaxNbError:  # names are a nicety: a pull never fails for want of them
        members = None
    source_name = getattr(source, "backend", None)
    return EngagementData(
        sequences=chosen,
        recipients=recipients,
        stages=stages,
        messages=messages,
        stats=stats,
        events=events,
        capped=hit_cap,
        detail=detail,
        shape=planned["shape"],
        since=utc(since),
        until=utc(until),
        source=str(source_name) if source_name else None,
        requests=dict(count.by),
        team_members=members,
        notes=tuple(notes),
    )


__all__ = ["CONCURRENCY", "EVENT_BATCH", "Source", "livefeed_shape", "plan_pull", "pull"]
