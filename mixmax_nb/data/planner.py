"""What an engagement pull will cost, before it runs (pure).

Mixmax allows 120 requests a minute, so the cost of a pull is its number of
requests. :func:`plan` counts them from what is already known: the sequences page,
Mixmax's own live-feed stats per sequence (how many emails were sent, opened...),
and the local store (which messages' events are already held). The estimate is
exact for the sequences, stats and recipients' pages (the stats say how many people
each sequence reached); for messages' events it counts the opened messages, which
the stats give, minus those the store holds under the same counts.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import pandas as pd

from .. import catalog
from .engagement import Detail

REQUESTS_PER_MINUTE: Final = 120
RECIPIENTS_PAGE: Final = catalog.RECIPIENTS_PAGE_MAX
RECIPIENTS_CAP: Final = catalog.RECIPIENTS_CAP
MESSAGES_PAGE: Final = 300
ASK_ABOVE_S: Final = 60.0
"""A pull longer than this is confirmed first (the dashboard asks)."""


@dataclass(frozen=True)
class EngagementPlan:
    """Requests by source (``sequences``, ``stats``, ``recipients``, ``messages``,
    ``events``), what the store already holds, and the time at Mixmax's rate."""

    detail: Detail
    sequences: int
    requests: Mapping[str, int]
    cached_messages: int = 0
    notes: tuple[str, ...] = field(default=())
    stats: pd.DataFrame | None = field(default=None, compare=False, repr=False)
    """Mixmax's live-feed totals the plan was made from (a first KPI table to show)."""

    @property
    def total(self) -> int:
        return int(sum(self.requests.values()))

    @property
    def seconds(self) -> float:
        return self.total * 60.0 / REQUESTS_PER_MINUTE

    @property
    def needs_confirmation(self) -> bool:
        return self.seconds > ASK_ABOVE_S

    def describe(self) -> str:
        parts = ", ".join(f"{k} {v:,}" for k, v in self.requests.items() if v)
        cached = (
            f"; {self.cached_messages:,} messages' events already stored"
            if self.cached_messages
            else ""
        )
        return (
            f"{self.total:,} requests ({parts}) for {self.sequences:,} sequence(s), about "
            f"{_duration(self.seconds)} at Mixmax's {REQUESTS_PER_MINUTE} requests/minute{cached}."
        )

    def __repr__(self) -> str:
        return f"<EngagementPlan {self.detail}: {self.describe()}>"

    def _repr_html_(self) -> str:
        notes = "".join(f"<br><small>{html.escape(n)}</small>" for n in self.notes)
        what = html.escape(self.describe())
        return f"<div><b>Pull plan</b> ({html.escape(self.detail)}): {what}{notes}</div>"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def recipient_requests(listed: int) -> int:
    """Requests to list ``listed`` recipients of one sequence (exact).

    The recipients' list is a bare array paged by ``offset``: the walk stops at the
    first short page, so a sequence whose last page is full costs one more (empty)
    page; at Mixmax's 10,000 cap the walk stops without asking.
    """
    cap_pages = RECIPIENTS_CAP // RECIPIENTS_PAGE
    return min(max(0, listed) // RECIPIENTS_PAGE + 1, cap_pages)


def engaged_estimate(opened: int, replied: int, delivered: int) -> int:
    """Messages with events, from Mixmax's totals: those opened, and those replied to
    without a tracked open, a share of replies taken as independent of opening."""
    extra = round(replied * (1 - opened / delivered)) if replied and delivered else 0
    return opened + max(0, extra)


def plan(
    *,
    detail: Detail,
    sequences: int,
    reached: Mapping[str, int],
    sent: int,
    opened: int,
    replied: int = 0,
    delivered: int = 0,
    listed: Mapping[str, int] | None = None,
    messages_pages: int | None = None,
    engaged: int | None = None,
    cached_opened: int = 0,
    stats_done: bool = False,
    sequences_done: bool = False,
    notes: tuple[str, ...] = (),
    stats: pd.DataFrame | None = None,
) -> EngagementPlan:
    """The requests of a pull.

    ``reached``: every chosen sequence, with the people it has sent to (its live-feed
    stats' ``recipients``; 0 when Mixmax gave none); ``listed``: how many recipients each
    sequence listed at the last pull (exact, and it counts people not sent to yet),
    which wins over ``reached``. ``messages_pages``: the messages' pages the last pull
    of the same window read (one-off emails included), which wins over ``sent``.
    ``engaged``: messages with events, when known better than :func:`engaged_estimate`
    (the last pull counted them).
    ``sent`` / ``delivered`` / ``opened`` / ``replied``: emails in the window (all chosen
    sequences). A message has events to fetch when it was opened, or replied to
    without a tracked open: that share of replies is estimated as independent of
    opening (``replied * (1 - opened / delivered)``). ``cached_opened``: opened
    messages whose events the store holds; ``stats_done`` / ``sequences_done``: those
    requests were made for the plan itself and the pull reuses their answers."""
    people = {**reached, **(listed or {})}
    recipients = sum(recipient_requests(n) for n in people.values())
    if engaged is None:
        engaged = engaged_estimate(opened, replied, delivered)
    requests = {
        "sequences": 0 if sequences_done else 1,
        # One per sequence (made for the plan when ``stats_done``) and one for the account.
        "stats": 1 if stats_done else sequences + 1,
        "recipients": recipients,
        "messages": messages_pages or max(1, math.ceil(sent / MESSAGES_PAGE)),
        "teams": 1,
        "events": max(0, engaged - cached_opened) if detail == "events" else 0,
    }
    return EngagementPlan(detail, sequences, requests, cached_opened, notes, stats)


__all__ = [
    "ASK_ABOVE_S",
    "REQUESTS_PER_MINUTE",
    "EngagementPlan",
    "engaged_estimate",
    "plan",
    "recipient_requests",
]
