"""Pagination over every output shape, with a fake action runner (no I/O)."""

from __future__ import annotations

import asyncio
import base64
import math
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixmax_nb import catalog
from mixmax_nb.errors import BadOutputError
from mixmax_nb.pages import RecipientsCapWarning, collect, split_page


class FakeFeed:
    """A list action over ``n`` records, answering in one of the three shapes."""

    def __init__(self, n: int, shape: str, *, echo_next: bool = True) -> None:
        self.rows = [{"_id": f"{i:024x}", "n": i} for i in range(n)]
        self.shape = shape
        self.echo_next = echo_next
        self.calls: list[dict[str, Any]] = []

    async def run(self, key: str, params: Mapping[str, Any]) -> Any:
        self.calls.append(dict(params))
        limit = max(1, min(int(params.get("limit", 50)), 300))
        if self.shape == "array":
            off = int(params.get("offset", 0))
            return self.rows[off : off + limit]
        token = params.get("next") or params.get("cursor")
        start = int(base64.urlsafe_b64decode(token).decode()) if token else 0
        page = self.rows[start : start + limit]
        end = start + len(page)
        more = end < len(self.rows)
        cursor = base64.urlsafe_b64encode(str(end).encode()).decode()
        if self.shape == "results":
            out: dict[str, Any] = {"results": page, "hasNext": more}
            if page and (more or self.echo_next):
                out["next"] = cursor  # Mixmax echoes `next` on the last page too
            return out
        return {"records": page, **({"cursor": cursor} if more else {})}


def walk(feed: FakeFeed, key: str, params: Mapping[str, Any] | None = None) -> list[Any]:
    return asyncio.run(collect(feed.run, key, params))


@pytest.mark.parametrize("shape", ["results", "records"])
@pytest.mark.parametrize("n", [0, 1, 299, 300, 301, 1000])
def test_walks_every_record_once_at_max_page_size(shape: str, n: int) -> None:
    feed = FakeFeed(n, shape)
    rows = walk(feed, "list-livefeed-events")
    assert [r["n"] for r in rows] == list(range(n))
    assert all(c["limit"] == 300 for c in feed.calls)
    assert len(feed.calls) == max(1, math.ceil(n / 300))


def test_stops_on_has_next_not_on_echoed_next() -> None:
    feed = FakeFeed(10, "results", echo_next=True)
    walk(feed, "list-sequences")
    assert len(feed.calls) == 1


def test_recipients_page_by_offset_at_50() -> None:
    feed = FakeFeed(120, "array")
    rows = walk(feed, "get-sequence-recipients", {"sequenceId": "s"})
    assert len(rows) == 120
    assert [c["offset"] for c in feed.calls] == [0, 50, 100]
    assert all(c["limit"] == 50 for c in feed.calls)


def test_recipients_warn_at_the_10000_cap() -> None:
    feed = FakeFeed(10_050, "array")
    with pytest.warns(RecipientsCapWarning, match="10,000"):
        rows = walk(feed, "get-sequence-recipients", {"sequenceId": "s"})
    assert len(rows) == 10_000
    # Mixmax refuses offset + limit beyond the cap: the last call must respect it.
    assert all(c["offset"] + c["limit"] <= catalog.RECIPIENTS_CAP for c in feed.calls)


def test_has_next_without_cursor_is_an_error() -> None:
    with pytest.raises(BadOutputError, match="no `next` cursor"):
        split_page({"results": [], "hasNext": True})


def test_repeating_cursor_stops_instead_of_looping() -> None:
    async def stuck(key: str, params: Mapping[str, Any]) -> Any:
        return {"results": [{"_id": "a"}], "next": "same", "hasNext": True}

    with pytest.raises(BadOutputError, match="twice"):
        asyncio.run(collect(stuck, "list-sequences"))


def test_unknown_shape_is_an_error() -> None:
    with pytest.raises(BadOutputError):
        split_page({"data": []})
    with pytest.raises(BadOutputError):
        split_page("oops")


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 700), limit_shape=st.sampled_from(["results", "records", "array"]))
def test_any_size_walks_each_record_exactly_once(n: int, limit_shape: str) -> None:
    feed = FakeFeed(n, limit_shape)
    key = "get-sequence-recipients" if limit_shape == "array" else "list-messages"
    params = {"sequenceId": "s"} if limit_shape == "array" else None
    rows = walk(feed, key, params)
    ids = [r["_id"] for r in rows]
    assert len(ids) == len(set(ids)) == n
