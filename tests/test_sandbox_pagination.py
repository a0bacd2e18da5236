"""Property: any page size walks every record exactly once, newest first."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from mixmax_nb.sandbox import seed
from mixmax_nb.sandbox.mixmax import Mixmax
from mixmax_nb.sandbox.store import Store

_store = Store.open(":memory:")
seed.build(_store, seed=5, size="small", reference_date=date(2025, 6, 2))
API = Mixmax(_store, lambda: 1_748_822_400_000)
API.set_livefeed("account")  # the event walks below are the account-wide profile's
TOTAL = {
    path: len(API.handle("GET", path, {"limit": 300, **extra}).body["results"])
    for path, extra in (("/unsubscribes", {}), ("/sequences", {}), ("/snippets", {}))
}


def walk(path: str, limit: int, truncate: bool = False) -> list[str]:
    ids: list[str] = []
    params: dict[str, object] = {"limit": limit}
    while True:
        page = API.handle("GET", path, params, truncate=truncate).body
        ids += [r["_id"] for r in page["results"]]
        if not page["hasNext"]:
            return ids
        params = {"limit": limit, "next": page["next"]}


@settings(max_examples=40, deadline=None)
@given(
    path=st.sampled_from(sorted(TOTAL)),
    limit=st.integers(min_value=-5, max_value=400),
    truncate=st.booleans(),
)
def test_any_page_size_walks_every_record_once(path: str, limit: int, truncate: bool) -> None:
    ids = walk(path, limit, truncate)
    assert len(ids) == len(set(ids)) == TOTAL[path]


@settings(max_examples=25, deadline=None)
@given(limit=st.integers(min_value=1, max_value=300), since=st.integers(0, 2000))
def test_events_walk_in_time_order(limit: int, since: int) -> None:
    start = 1_748_822_400_000 - since * 3_600_000
    ids: list[str] = []
    times: list[int] = []
    params: dict[str, object] = {"limit": limit, "since": start}
    while True:
        page = API.handle("GET", "/livefeed/events", params).body
        ids += [e["_id"] for e in page["results"]]
        times += [e["timestamp"] for e in page["results"]]
        if not page["hasNext"]:
            break
        params = {"limit": limit, "since": start, "next": page["next"]}
    count = _store.read("SELECT COUNT(*) FROM events WHERE ts >= ?", (start,))[0][0]
    assert len(ids) == len(set(ids)) == count
    assert times == sorted(times, reverse=True)


def test_previous_pages_walk_back() -> None:
    first = API.handle("GET", "/sequences", {"limit": 2}).body
    second = API.handle("GET", "/sequences", {"limit": 2, "next": first["next"]}).body
    back = API.handle("GET", "/sequences", {"limit": 2, "previous": second["previous"]}).body
    assert [r["_id"] for r in back["results"]] == [r["_id"] for r in first["results"]]
    assert second["hasPrevious"] is True


def test_empty_page_has_no_tokens() -> None:
    page = API.handle("GET", "/livefeed/events", {"since": 9_999_999_999_999}).body
    assert page == {"results": [], "hasNext": False, "hasPrevious": False}
