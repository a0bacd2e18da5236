"""The engagement dataset: the data Mixmax really serves, joined once (pure).

Mixmax serves engagement through four sources (reference ``mixmax-api.md`` section 12):

* **sequence recipients** (``get-sequence-recipients``): per recipient and stage, the
  stage's ``messageId`` and Mixmax's own counters (``opens``, ``clicks``,
  ``downloads``, ``replied``, ``bounced``): one request per 50 recipients, and the
  whole of Mixmax's Sequence Insights follows from them;
* **messages** (``list-messages``): subject, sender and send time of every email;
* **live-feed stats** (``GET /livefeed`` through the proxy): Mixmax's totals for a
  search (``sequence:``, ``sent:``...), one request per query;
* **per-message events** (``list-livefeed-events`` with a ``messageId``): the opens,
  clicks, downloads and replies of ONE message, at most 200, for timestamps, devices,
  places and links: one request per message, so they are fetched only for messages
  whose counters show engagement, and again only when those counters change.

:class:`EngagementData` holds the frames; :mod:`mixmax_nb.analytics` computes every
metric from it. The functions here are the rules that decide what to fetch (which
messages are engaged, which changed, which hit the cap) and how to read the answers.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import catalog, frames
from ..errors import BadOutputError

Detail = Literal["summary", "events"]
Shape = Literal["per-message", "account"]

EVENT_CAP: Final = 200
"""Mixmax returns at most this many events of one message (mixmax-api.md §12)."""
ENGAGEMENT_TYPES: Final = catalog.ENGAGEMENT_TYPES
"""The event types the per-message endpoint serves (no ``sent``, no ``bounced``)."""
STAT_COUNTS: Final = (
    "sent",
    "delivered",
    "recipients",
    "opened",
    "clicked",
    "downloaded",
    "replied",
    "bounced",
    "accepted",
    "declined",
    "tentative",
)
STAT_PERCENTAGES: Final = (
    "opened",
    "clicked",
    "downloaded",
    "replied",
    "bounced",
    "delivered",
    "unsubscribed",
)
ACCOUNT: Final = "(all)"
"""The key of the whole-account row of the stats frame."""
_EARLIEST: Final = date(2000, 1, 1)
_LATEST: Final = date(2099, 12, 31)


# -- live-feed searches -----------------------------------------------------------------


def day(value: Any) -> date | None:
    """A date from a date, datetime, Timestamp or ISO string (None stays None)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()


def livefeed_search(
    *, sequence: str | None = None, since: Any = None, until: Any = None, extra: str = ""
) -> str:
    """A live-feed search: ``sequence:"<name>"`` and ``sent:MM/DD/YYYY-MM/DD/YYYY``
    (both dates included, as the live feed's own filter reads them).

    Raises ValueError for a sequence name the grammar cannot quote (it holds ``"``)."""
    terms: list[str] = []
    if sequence is not None:
        if '"' in sequence:
            raise ValueError(
                f"a sequence name with a double quote cannot be searched: {sequence!r}"
            )
        terms.append(f'sequence:"{sequence}"')
    first, last = day(since), day(until)
    if first is not None or last is not None:
        # The grammar takes a closed range only: open ends become dates no data reaches
        # (never "today", which would make the same call differ from day to day).
        start = first or _EARLIEST
        end = last or _LATEST
        terms.append(f"sent:{start:%m/%d/%Y}-{end:%m/%d/%Y}")
    if extra:
        terms.append(extra)
    return " ".join(terms)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def stats_row(key: str, label: str, body: Any) -> dict[str, Any]:
    """One row of the stats frame from a ``/livefeed`` answer's top-level ``stats``."""
    stats = body.get("stats") if isinstance(body, Mapping) else None
    stats = stats if isinstance(stats, Mapping) else {}
    row: dict[str, Any] = {"key": key, "label": label}
    for name in STAT_COUNTS:
        value = _number(stats.get(name))
        row[name] = int(value) if value is not None else None
    percentages = stats.get("percentages")
    percentages = percentages if isinstance(percentages, Mapping) else {}
    for name in STAT_PERCENTAGES:
        row[f"pct_{name}"] = _number(percentages.get(name))
    return row


def stats_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Mixmax's own totals, one row per query: ``key`` (``(all)`` or a sequence id),
    ``label``, the counts of :data:`STAT_COUNTS`, and ``pct_<name>`` percentages as
    Mixmax reports them."""
    columns = ["key", "label", *STAT_COUNTS, *(f"pct_{p}" for p in STAT_PERCENTAGES)]
    frame = pd.DataFrame(list(rows), columns=columns)
    for name in ("key", "label"):
        frame[name] = frame[name].astype("string")
    for name in STAT_COUNTS:
        frame[name] = frame[name].astype("Int64")
    for name in STAT_PERCENTAGES:
        frame[f"pct_{name}"] = frame[f"pct_{name}"].astype("Float64")
    return frame


# -- which messages need their events -------------------------------------------------------


def engaged_messages(stages: pd.DataFrame) -> pd.DataFrame:
    """Sent sequence messages whose counters show engagement: ``message_id``,
    ``signature``, ``expected`` (the number of events the counters promise, opens +
    clicks + downloads + replies) and ``sent_at``. Only these have events to fetch."""
    sent = stages.loc[stages["message_id"].notna() & stages["sent_at"].notna()]
    counters = pd.DataFrame(
        {
            "opens": sent["opens"].fillna(0).astype("int64"),
            "clicks": sent["clicks"].fillna(0).astype("int64"),
            "downloads": sent["downloads"].fillna(0).astype("int64"),
            "replied": sent["replied"].fillna(False).astype("int64"),
        }
    )
    expected = counters.sum(axis=1)
    keep = expected > 0
    out = pd.DataFrame(
        {
            "message_id": sent["message_id"].astype(str).to_numpy()[keep.to_numpy()],
            "signature": [
                f"{o}/{c}/{d}/{r}"
                for o, c, d, r in counters.loc[keep].itertuples(index=False, name=None)
            ],
            "expected": expected[keep].to_numpy(),
            "sent_at": sent["sent_at"].to_numpy()[keep.to_numpy()],
        }
    )
    return out.drop_duplicates("message_id", keep="last").reset_index(drop=True)


def stale_messages(engaged: pd.DataFrame, coverage: Mapping[str, str]) -> list[str]:
    """The engaged messages whose events are not stored, or were stored under other
    counters (new opens since): the only ones a refresh asks for, newest first."""
    if engaged.empty:
        return []
    known = engaged["message_id"].map(coverage)
    changed = known.isna() | (known != engaged["signature"])
    order = engaged.loc[changed].sort_values("sent_at", ascending=False, kind="stable")
    return [str(m) for m in order["message_id"]]


def tag_events(message_id: str, output: Any) -> list[dict[str, Any]]:
    """The events of one message's answer, each with its ``messageId`` (the endpoint
    leaves it out: it answered for one message) and only the types it documents."""
    records = output.get("results") if isinstance(output, Mapping) else output
    if not isinstance(records, list):
        return []
    return [
        {**r, "messageId": message_id}
        for r in records
        if isinstance(r, Mapping) and r.get("type") in ENGAGEMENT_TYPES
    ]


def shape_event_runs(
    message_ids: Sequence[str], runs: Sequence[bytes]
) -> tuple[pd.DataFrame, list[int]]:
    """The events frame of many messages' ``list-livefeed-events`` answers as the CLI
    printed them (``runs[i]`` answered for ``message_ids[i]``), and how many events
    each gave: what :func:`tag_events` + ``frames.shape`` give for the parsed answers,
    read in one Arrow pass when Arrow reads them as ``json.loads`` would.

    Raises :class:`~mixmax_nb.errors.BadOutputError` for an answer that is not JSON
    or has no ``output``, as the transport does for one parsed answer."""
    types = pa.array(ENGAGEMENT_TYPES, pa.large_string())
    ids = pa.array(list(message_ids), pa.large_string())
    shaped = frames.shape_runs(
        "events",
        runs,
        keep=lambda records: pc.is_in(pc.struct_field(records, "type"), value_set=types),
        given=lambda owner: {"messageId": ids.take(pa.array(owner))},
    )
    if shaped is not None:
        frame, owner = shaped
        return frame, np.bincount(owner, minlength=len(runs)).tolist()
    answers = [tag_events(m, _output(raw)) for m, raw in zip(message_ids, runs, strict=True)]
    return frames.shape("events", [e for a in answers for e in a]), [len(a) for a in answers]


def _output(raw: bytes) -> Any:
    """The ``output`` of one printed answer, read as the CLI transport reads it."""
    what = "`membrane action run` for list-livefeed-events"
    text = raw.decode("utf-8", "replace")
    try:
        answer = json.loads(text)
    except json.JSONDecodeError:
        raise BadOutputError(f"{what} printed something that is not JSON.", raw=text) from None
    if not isinstance(answer, Mapping) or "output" not in answer:
        raise BadOutputError(f"{what} returned no `output` field.", raw=text[:2000])
    return answer["output"]


def capped(n_events: int) -> bool:
    """True when an answer stopped at Mixmax's cap of 200 events: more may exist (the
    message's counters then say how many), and the event list is incomplete."""
    return n_events >= EVENT_CAP


# -- the dataset ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngagementData:
    """Everything the analytics, charts and dashboard read, from one pull.

    ``stages`` (kind ``recipient_stages``) is the core: one row per recipient and stage,
    with Mixmax's counters. ``messages`` adds subjects and senders; ``stats`` is
    Mixmax's own live-feed totals per sequence and for the account (``key`` ``(all)``);
    ``events`` holds the per-message events (``detail="events"``; None for a summary),
    each with its ``message_id``; ``capped`` the messages whose events stopped at
    Mixmax's cap of 200 (their counters stay right; their event list is incomplete).
    """

    sequences: pd.DataFrame
    recipients: pd.DataFrame
    stages: pd.DataFrame
    messages: pd.DataFrame
    stats: pd.DataFrame
    events: pd.DataFrame | None = None
    capped: frozenset[str] = frozenset()
    detail: Detail = "summary"
    shape: Shape = "per-message"
    since: pd.Timestamp | None = None
    until: pd.Timestamp | None = None
    source: str | None = None
    requests: Mapping[str, int] = field(default_factory=dict)
    team_members: pd.DataFrame | None = None
    notes: tuple[str, ...] = ()
    """What the pull could not do, in sentences (a stop, vanished messages...)."""

    @property
    def total_requests(self) -> int:
        return int(sum(self.requests.values()))

    def describe(self) -> str:
        st = self.stages
        sent = int((st["sent_at"].notna() & st["message_id"].notna()).sum()) if len(st) else 0
        parts = [
            f"{len(self.sequences):,} sequences",
            f"{len(self.recipients):,} recipients",
            f"{sent:,} sequence emails sent",
            f"{len(self.messages):,} messages",
        ]
        if self.events is not None:
            parts.append(f"{len(self.events):,} events")
        if self.capped:
            parts.append(f"{len(self.capped):,} message(s) at the {EVENT_CAP}-event cap")
        return ", ".join(parts) + f" ({self.total_requests:,} requests)"

    def __repr__(self) -> str:
        return f"<EngagementData {self.detail}: {self.describe()}>"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td style='text-align:right'>{v:,}</td></tr>"
            for k, v in self.requests.items()
        )
        return (
            f"<div><b>Engagement data</b> ({html.escape(self.detail)}): "
            f"{html.escape(self.describe())}<table>{rows}</table></div>"
        )


def enrich_events(data: EngagementData) -> pd.DataFrame:
    """The dataset's events (kind ``events``) with what the per-message endpoint leaves
    out filled from the stages and messages: ``sequence_id``, ``sequence_name``,
    ``stage_id``, ``stage_index``, ``user_id`` (the sender) and ``subject``."""
    from .. import frames

    events = data.events
    if events is None or not len(events):
        return frames.empty("events")
    st = data.stages.loc[data.stages["message_id"].notna()]
    by_message = st.drop_duplicates("message_id", keep="last").set_index("message_id")
    msgs = data.messages.drop_duplicates("id", keep="last").set_index("id")
    names = sequence_names(data.sequences)
    key = pd.Index(events["message_id"].astype(object))
    out = events.copy()
    stage = by_message.reindex(key)
    message = msgs.reindex(key)

    def fill(column: str, values: Any) -> None:
        filled = out[column].where(out[column].notna(), pd.Series(values, index=out.index))
        out[column] = filled.astype(frames.SCHEMAS["events"][column])  # type: ignore[arg-type]

    fill("sequence_id", stage["sequence_id"].to_numpy())
    fill("stage_id", stage["stage_id"].to_numpy())
    fill("stage_index", stage["ordinal"].to_numpy())
    fill(
        "user_id", message["user_id"].where(message["user_id"].notna(), stage["user_id"]).to_numpy()
    )
    fill("subject", message["subject"].to_numpy())
    fill("sequence_name", out["sequence_id"].map(names).to_numpy())
    out.attrs = dict(events.attrs)
    return out


def empty_stats() -> pd.DataFrame:
    return stats_frame([])


def sequence_names(sequences: pd.DataFrame) -> dict[str, str]:
    return {
        str(i): str(n)
        for i, n in zip(sequences["id"], sequences["name"], strict=True)
        if pd.notna(i)
    }


def choose_sequences(sequences: pd.DataFrame, wanted: Sequence[str] | str | None) -> pd.DataFrame:
    """The sequences to pull: all (None), or those named by id or exact name."""
    if wanted is None:
        return sequences
    if isinstance(wanted, str):
        wanted = [wanted]
    chosen = set(wanted)
    mask = sequences["id"].isin(chosen) | sequences["name"].isin(chosen)
    return sequences.loc[mask]


__all__ = [
    "ACCOUNT",
    "ENGAGEMENT_TYPES",
    "EVENT_CAP",
    "STAT_COUNTS",
    "STAT_PERCENTAGES",
    "Detail",
    "EngagementData",
    "Shape",
    "capped",
    "choose_sequences",
    "day",
    "empty_stats",
    "engaged_messages",
    "enrich_events",
    "livefeed_search",
    "sequence_names",
    "stale_messages",
    "stats_frame",
    "stats_row",
    "tag_events",
]
