"""One rule for dates and lists in every public helper (issue: the input contract)."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

import mixmax_nb as mx
from mixmax_nb._time import one_or_many, to_utc, window
from mixmax_nb.errors import InputError, NotFoundError


def test_dates_are_iso_or_date_objects_and_naive_is_utc() -> None:
    assert to_utc("2026-11-15", field="since") == pd.Timestamp("2026-11-15", tz="UTC")
    assert to_utc("2026-11-15T09:30+01:00", field="since") == pd.Timestamp(
        "2026-11-15T08:30", tz="UTC"
    )
    assert to_utc(date(2026, 11, 15), field="since") == pd.Timestamp("2026-11-15", tz="UTC")
    assert to_utc(datetime(2026, 11, 15, 9), field="s") == pd.Timestamp(
        "2026-11-15 09:00", tz="UTC"
    )
    for bad in ("11/01/2026", "last tuesday", "2026-13-45", 1_700_000_000_000, ["2026-01-01"]):
        with pytest.raises(InputError):
            to_utc(bad, field="since")  # type: ignore[arg-type]


def test_until_is_inclusive_and_since_must_come_first() -> None:
    _start, end = window("2026-11-01", "2026-11-15")
    assert end == pd.Timestamp("2026-11-16", tz="UTC")  # all of Nov 15
    _, exact = window(None, "2026-11-15T12:00Z")
    assert exact == pd.Timestamp("2026-11-15 12:00", tz="UTC")  # a time is that instant
    with pytest.raises(InputError, match="not before"):
        window("2026-11-16", "2026-11-15")


def test_a_single_string_is_one_value() -> None:
    assert one_or_many("replied", field="types") == ["replied"]
    assert one_or_many(["opened", "clicked"], field="types") == ["opened", "clicked"]
    with pytest.raises(InputError):
        one_or_many(["opened", 3], field="types")  # type: ignore[list-item]


def test_events_follow_the_rule() -> None:
    client = mx.connect("sandbox", size="small", db=":memory:")
    replied = client.events(types="replied")
    assert set(replied["type"].dropna()) <= {"replied"}
    with pytest.raises(InputError, match="since"):
        client.events(since="last tuesday")
    with pytest.raises(InputError, match="not before"):
        client.events(since="2025-06-02", until="2025-05-01")
    with pytest.raises(NotFoundError, match="'nope'"):
        client.events(sequence_id="nope")
