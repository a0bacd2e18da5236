"""The per-message store on refresh (mixmax_nb.data.store): what it reads, and that
what it reuses from memory equals a fresh read."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from mixmax_nb import frames
from mixmax_nb.data import store as store_mod
from mixmax_nb.data.store import MAX_PARTS, MessageEventStore, StoreRebuiltWarning


def events(*rows: tuple[str, str]) -> pd.DataFrame:
    return frames.shape(
        "events",
        [
            {"_id": i, "type": "opened", "timestamp": 1_735_689_600_000, "messageId": m}
            for i, m in rows
        ],
    )


def pairs(frame: pd.DataFrame | None) -> list[tuple[str, str]]:
    assert frame is not None
    return sorted(zip(frame["id"].astype(str), frame["message_id"].astype(str), strict=True))


def fresh(store: MessageEventStore, messages: Any = None) -> pd.DataFrame | None:
    store_mod._SEEN.clear()
    return store.load(messages)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The Parquet files read (footers and data) while the test runs."""
    seen: list[str] = []
    schema, table = pq.read_schema, pq.read_table

    def read_schema(path: Any, *a: Any, **k: Any) -> Any:
        seen.append(Path(path).name)
        return schema(path, *a, **k)

    def read_table(path: Any, *a: Any, **k: Any) -> Any:
        seen.append(Path(path).name)
        return table(path, *a, **k)

    monkeypatch.setattr(pq, "read_schema", read_schema)
    monkeypatch.setattr(pq, "read_table", read_table)
    return seen


def test_a_no_op_refresh_opens_no_file(tmp_path: Path, opened: list[str]) -> None:
    store = MessageEventStore(tmp_path, "sandbox", "acct")
    store.append(events(("e1", "m1"), ("e2", "m2")), {"m1": "1/0/0/0", "m2": "1/0/0/0"})
    store.append(events(("e3", "m1")), {"m1": "2/0/0/0"})
    cover, first = store.snapshot({"m1", "m2"})
    assert pairs(first) == [("e2", "m2"), ("e3", "m1")]
    assert cover.signatures == {"m1": "2/0/0/0", "m2": "1/0/0/0"}
    opened.clear()
    again_cover, again = store.snapshot({"m1", "m2"})
    assert opened == []
    assert again is first and again_cover == cover


def test_k_new_events_read_only_the_new_part(tmp_path: Path, opened: list[str]) -> None:
    store = MessageEventStore(tmp_path, "sandbox", "acct")
    store.append(events(("e1", "m1"), ("e2", "m2")), {"m1": "1/0/0/0", "m2": "1/0/0/0"})
    held = store.load({"m1", "m2"})
    opened.clear()
    # m1 refetched (e1 gone, e4 new), m3 is new: the window grows by m3.
    part = store.append(events(("e4", "m1"), ("e5", "m3")), {"m1": "2/0/0/0", "m3": "1/0/0/0"})
    assert part is not None
    got = store.load({"m1", "m2", "m3"})
    assert set(opened) == {part.name}
    assert pairs(got) == [("e2", "m2"), ("e4", "m1"), ("e5", "m3")]
    assert pairs(got) == pairs(fresh(store, {"m1", "m2", "m3"}))
    assert held is not None  # what the earlier pull returned is unchanged
    assert pairs(held) == [("e1", "m1"), ("e2", "m2")]
    # A narrower window drops messages without reading anything either.
    assert pairs(store.load({"m2"})) == [("e2", "m2")]


def test_a_part_rewritten_in_place_is_read_again(tmp_path: Path) -> None:
    store = MessageEventStore(tmp_path, "sandbox", "acct")
    store.append(events(("e1", "m1")), {"m1": "1/0/0/0"})
    store.append(events(("e2", "m2")), {"m2": "1/0/0/0"})
    held = store.load()
    assert pairs(held) == [("e1", "m1"), ("e2", "m2")]
    part = store.parts()[-1]
    pq.write_table(pq.read_table(part).replace_schema_metadata({}), part)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        cover, got = store.snapshot()
    assert any(issubclass(w.category, StoreRebuiltWarning) for w in seen)
    assert set(cover.signatures) == {"m1"}
    assert pairs(got) == [("e1", "m1")]


def test_compaction_keeps_each_messages_newest_events(tmp_path: Path) -> None:
    store = MessageEventStore(tmp_path, "sandbox", "acct")
    store.append(
        events(*[(f"big{i}", f"m{i}") for i in range(50)]),
        {f"m{i}": "1/0/0/0" for i in range(50)},
    )
    held = store.load()
    for k in range(MAX_PARTS + 2):
        store.append(
            events((f"n{k}", f"m{k}"), (f"x{k}", f"new{k}")), {f"m{k}": "2", f"new{k}": "1"}
        )
    assert len(store.parts()) <= MAX_PARTS
    got = store.load()
    assert held is not None and got is not None
    assert pairs(got) == pairs(fresh(store))
    ids = set(got["id"].astype(str))
    assert "big0" not in ids and "n0" in ids and "big49" in ids and "x3" in ids
    assert store.coverage().signatures["m0"] == "2"
