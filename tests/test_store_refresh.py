"""The per-message store on refresh (mixmax_nb.data.store): what it reads, and that
what it reuses from memory equals a fresh read."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
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
    assert set(opened) <= {part.name}  # the part it wrote is taken from memory
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


def test_a_refresh_that_merges_reads_only_the_small_parts(
    tmp_path: Path, opened: list[str]
) -> None:
    """The append that passes MAX_PARTS merges the small parts first, then writes: the
    frame the refresh holds stays valid, and the largest part is never read again (a
    merge after the write made the next load reread the whole store)."""
    store = MessageEventStore(tmp_path, "sandbox", "acct")
    window = {f"m{i}" for i in range(50)}
    store.append(events(*[(f"big{i}", f"m{i}") for i in range(50)]), dict.fromkeys(window, "1"))
    largest = store.parts()[0].name
    for k in range(MAX_PARTS - 1):
        store.append(events((f"x{k}", f"new{k}")), {f"new{k}": "1"})
        window.add(f"new{k}")
        held = store.load(frozenset(window))  # what the notebook holds after a pull
    assert len(store.parts()) == MAX_PARTS
    small = {path.name for path in store.parts()[1:]}
    opened.clear()
    part = store.append(events(("n0", "m0"), ("last", "newest")), {"m0": "2", "newest": "1"})
    window.add("newest")
    got = store.load(frozenset(window))
    assert part is not None and part.name not in small
    assert largest not in opened and set(opened) <= small  # the merge read them once
    assert len(opened) == len(set(opened))
    assert len(store.parts()) == 3  # the largest, the merged small ones, the new part
    assert held is not None and len(held) == 50 + MAX_PARTS - 1  # unchanged
    assert pairs(got) == pairs(fresh(store, frozenset(window)))
    assert "big0" not in set(got["id"].astype(str)) and "n0" in set(got["id"].astype(str))


def test_categoricals_keep_their_dtype_through_parts_and_refreshes(tmp_path: Path) -> None:
    """An all-missing categorical (no open carried a country) comes back categorical,
    and stacking parts whose categories differ keeps every value and the dtype."""
    store = MessageEventStore(tmp_path, "sandbox", "acct")
    first = events(("e1", "m1"))
    assert first["country"].isna().all()
    store.append(first, {"m1": "1/0/0/0"})
    # Stored as text categories, not as Parquet's null column (read back: object, and
    # every later stack would re-encode the column row by row).
    stored = pq.read_schema(store.parts()[0]).field("country").type
    assert pa.types.is_dictionary(stored), stored
    assert pa.types.is_string(stored.value_type) or pa.types.is_large_string(stored.value_type)
    second = frames.shape(
        "events",
        [
            {
                "_id": "e2",
                "type": "opened",
                "timestamp": 1_735_689_600_000,
                "messageId": "m2",
                "country": "DE",
            },
            {
                "_id": "e3",
                "type": "bounced-ish",
                "timestamp": 1_735_689_600_000,
                "messageId": "m2",
                "country": "FR",
            },
        ],
    )
    store.append(second, {"m2": "1/0/0/0"})
    for got in (store.load(), fresh(store)):
        assert got is not None
        expected = frames.empty("events").dtypes
        for name in ("type", "country", "region", "city", "os", "program"):
            assert isinstance(got[name].dtype, pd.CategoricalDtype), name
        assert got["country"].tolist()[0] is pd.NA or pd.isna(got["country"].tolist()[0])
        assert got["country"].tolist()[1:] == ["DE", "FR"]
        assert got["type"].tolist() == ["opened", "opened", "bounced-ish"]
        # The documented types come first, as shape orders them; extras after.
        fixed = list(expected["type"].categories)
        assert list(got["type"].cat.categories) == [*fixed, "bounced-ish"]


def test_concat_unifies_categories_without_losing_values() -> None:
    a = frames.shape(
        "events", [{"_id": "a", "type": "opened", "timestamp": 1, "messageId": "m", "os": "iOS"}]
    )
    b = frames.shape(
        "events", [{"_id": "b", "type": "clicked", "timestamp": 2, "messageId": "m", "os": "BeOS"}]
    )
    out = frames.concat("events", [a, b])
    assert out["os"].tolist() == ["iOS", "BeOS"]
    assert out["type"].tolist() == ["opened", "clicked"]
    assert isinstance(out["os"].dtype, pd.CategoricalDtype)
    assert list(out["os"].cat.categories) == sorted(["iOS", "BeOS"])


def test_the_part_just_written_is_read_from_memory_as_a_copy(
    tmp_path: Path, opened: list[str]
) -> None:
    store = MessageEventStore(tmp_path, "sandbox", "acct")
    store.append(events(("e1", "m1")), {"m1": "1/0/0/0"})
    held = store.load({"m1", "m2"})  # what the notebook holds
    new = events(("e2", "m2"), ("e3", "m3"))
    store.append(new, {"m2": "1/0/0/0", "m3": "1/0/0/0"})
    new.loc[0, "id"] = "changed by the caller"  # after the append: not what was stored
    opened.clear()
    got = store.load({"m1", "m2"})  # m3 is outside the window
    assert opened == []
    assert pairs(got) == [("e1", "m1"), ("e2", "m2")]
    assert pairs(got) == pairs(fresh(store, {"m1", "m2"}))
    assert pairs(held) == [("e1", "m1")]
