"""The fast shaping paths give exactly the frames of the per-field path.

``frames.shape`` reads plain fields in one Arrow pass (``_columnar.read_leaves``) and
``frames.shape_json`` parses raw JSON with Arrow's reader (``_columnar.parse_json``);
both must fall back whenever they would read a value differently. Hypothesis throws
mostly well-typed records with the odd stray value at them, kind by kind.
"""

from __future__ import annotations

import gc
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_frames import event, mixed_events

from mixmax_nb import _columnar, frames
from mixmax_nb.errors import InputError

# -- strategies ------------------------------------------------------------------------

_INT64 = 2**63 - 1
odd_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-_INT64, max_value=_INT64),
    st.integers(min_value=2**63, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=False),
    st.sampled_from(["true", "0", "1503988216000", "2017-08-29T06:30:16.123Z", "\ud800x", ""]),
    st.text(max_size=8),
)
odd_values = st.recursive(
    odd_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=4,
)


def natural(kind: frames.ColumnKind) -> st.SearchStrategy[Any]:
    """Values of the type the column expects on the wire, or missing."""
    by_kind: dict[str, st.SearchStrategy[Any]] = {
        "string": st.text(max_size=12),
        "category": st.sampled_from([*frames.EVENT_TYPES, "active", "rsvp"]),
        "Int64": st.integers(min_value=-(2**40), max_value=2**40),
        "Float64": st.integers(-100, 100) | st.floats(-1e6, 1e6),
        "datetime": st.integers(min_value=0, max_value=4_102_444_800_000),
        "boolean": st.booleans(),
        "object": st.dictionaries(st.text(max_size=4), st.integers()),
    }
    return st.none() | by_kind[kind]


@st.composite
def records_for(draw: st.DrawFn, kind: str) -> list[dict[str, Any]]:
    """Records of ``kind``: each field mostly natural, sometimes odd, sometimes absent."""
    columns = [c for c in frames._SPECS[kind].columns if c.path]
    extra_keys = st.sampled_from(["customField", "zeta", "sequence", "results"])
    # A column's "habit" for this example: how its values look across all records.
    habits = {
        c.path: draw(st.sampled_from(["natural", "natural", "missing", "odd"])) for c in columns
    }
    count = draw(st.integers(min_value=0, max_value=12))
    records: list[dict[str, Any]] = []
    for _ in range(count):
        record: dict[str, Any] = {}
        for column in columns:
            habit = habits[column.path]
            if habit == "missing" or draw(st.integers(0, 9)) == 0:
                continue
            strange = habit == "odd" and draw(st.booleans())
            value = draw(odd_values if strange else natural(column.kind))
            node = record
            for key in column.path[:-1]:
                child = node.setdefault(key, {})
                if not isinstance(child, dict):
                    break
                node = child
            else:
                node[column.path[-1]] = value
        if draw(st.integers(0, 4)) == 0:
            record.setdefault(draw(extra_keys), draw(st.none() | st.text(max_size=5)))
        if draw(st.integers(0, 9)) == 0:
            parent = record.get("sequence")
            if isinstance(parent, dict):
                parent["extraKey"] = draw(st.none() | st.text(max_size=5) | st.integers())
        records.append(record)
    return records


def per_field_shape(kind: str, records: list[dict[str, Any]]) -> pd.DataFrame:
    return frames.shape_per_field(kind, records)


PLAIN_KINDS = [k for k in frames.KINDS if frames._is_plain(frames._SPECS[k])]


# -- one Arrow pass over parsed records -------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), kind=st.sampled_from(frames.KINDS))
def test_one_pass_equals_per_field_for_every_kind(data: st.DataObject, kind: str) -> None:
    records = data.draw(records_for(kind))
    pd.testing.assert_frame_equal(frames.shape(kind, records), per_field_shape(kind, records))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=records_for("events"))
def test_one_pass_equals_per_field_on_events(records: list[dict[str, Any]]) -> None:
    pd.testing.assert_frame_equal(
        frames.shape("events", records), per_field_shape("events", records)
    )


@pytest.mark.slow  # make faults: the same property, eight times the examples
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=records_for("events"))
def test_one_pass_equals_per_field_on_events_deep(records: list[dict[str, Any]]) -> None:
    pd.testing.assert_frame_equal(
        frames.shape("events", records), per_field_shape("events", records)
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), kind=st.sampled_from(frames.KINDS))
def test_one_pass_in_chunks_equals_per_field(data: st.DataObject, kind: str) -> None:
    # Records are read a chunk at a time (dictionaries and key unions per chunk).
    records = data.draw(records_for(kind))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_columnar, "READ_CHUNK", 3)
        pd.testing.assert_frame_equal(frames.shape(kind, records), per_field_shape(kind, records))


def test_chunks_see_late_categories_and_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [event(i) for i in range(40)]
    records[33]["type"] = "rsvp"  # an undocumented type, in one late chunk only
    records[35]["os"] = None
    records[38]["zeta"] = "z"  # an extra field in the last chunk only
    records[37]["sequence"] = {"_id": "s", "extraKey": "x"}
    monkeypatch.setattr(_columnar, "READ_CHUNK", 16)
    keys: dict[tuple[str, ...], set[str]] = {}
    arrays = frames._one_pass(records, frames._SPECS["events"], {}, keys)
    assert arrays is not None
    assert arrays[("_id",)].num_chunks == 3
    assert "zeta" in keys[()] and "extraKey" in keys[("sequence",)]
    frame = frames.shape("events", records)
    pd.testing.assert_frame_equal(frame, per_field_shape("events", records))
    assert list(frame["type"].cat.categories[-1:]) == ["rsvp"]
    assert {"zeta", "sequence_extra_key"} <= set(frame.columns)


def test_one_pass_reads_every_plain_event_field_on_clean_records() -> None:
    records = [event(i) for i in range(200)]
    spec = frames._SPECS["events"]
    arrays = frames._one_pass(records, spec, {})
    assert arrays is not None
    assert set(arrays) == {c.path for c in spec.columns}


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"timestamp": "2017-08-29T06:30:16Z"}, "an ISO string after integer timestamps"),
        ({"_id": 7}, "a number in a text field"),
        ({"isMobile": "true"}, "text among 0/1 flags"),
        ({"sequence": ["a", "b", "c", "d"]}, "a list read as a positional struct"),
        ({"subject": "lone \ud800"}, "a lone surrogate"),
        ({"stageIndex": 2**64}, "an int beyond 64 bits"),
    ],
)
def test_a_late_stray_value_abandons_the_one_pass(change: dict[str, Any], why: str) -> None:
    records = [event(i) for i in range(1_500)]  # past the sample the types come from
    last = records[-1]
    if "stageIndex" in change:
        last["sequence"] = {"_id": "s", "stageIndex": change["stageIndex"]}
    else:
        last.update(change)
    assert frames._one_pass(records, frames._SPECS["events"], {}) is None, why
    pd.testing.assert_frame_equal(
        frames.shape("events", records), per_field_shape("events", records)
    )


@pytest.mark.parametrize(
    ("field", "missing"),
    [
        ("recipientEmail", pd.NA),
        ("recipientEmail", pd.NaT),
        ("recipientEmail", float("nan")),
        ("type", pd.NA),
        ("timestamp", pd.NaT),
        ("timestamp", float("nan")),
        ("isMobile", pd.NA),
        ("isMobile", float("nan")),
    ],
)
def test_pandas_missing_markers_are_missing_on_every_path(field: str, missing: Any) -> None:
    # Records taken from a frame (to_dict) carry pandas' markers, not None: a marker
    # outside a float leaf makes the one pass give up, and the per-field path reads
    # it as missing too, never as the text "<NA>" or "NaT".
    records = [event(i) for i in range(1_500)]
    records[-1][field] = missing
    frame = frames.shape("events", records)
    pd.testing.assert_frame_equal(frame, per_field_shape("events", records))
    assert frame[frames.snake(field)].isna().tolist() == [False] * 1_499 + [True]


def test_non_integral_numbers_truncate_toward_zero_on_every_path() -> None:
    late_float = [event(i) for i in range(1_500)]
    late_float[-1]["timestamp"] = 1_503_988_216_000.9  # Arrow truncates it, as we do
    one_pass = frames.shape("events", late_float)
    pd.testing.assert_frame_equal(one_pass, per_field_shape("events", late_float))
    assert one_pass["timestamp"].iloc[-1] == pd.Timestamp(1_503_988_216_000, unit="ms", tz="UTC")
    records = [{"createdAt": v} for v in (1_503_988_216_000.9, -1.5, 2.5)]
    df = frames.shape("unsubscribes", records)
    assert list(df["created_at"].astype("int64")) == [1_503_988_216_000, -1, 2]
    stages = frames.shape("recipients", [{"lastStageSentOrdinal": v} for v in (2.7, -2.7, "3.9")])
    assert list(stages["last_stage_sent_ordinal"]) == [2, -2, 3]
    naive = frames.naive_events([event(0, timestamp=1_503_988_216_000.9)])
    assert naive.loc[0, "timestamp"] == pd.Timestamp(1_503_988_216_000, unit="ms", tz="UTC")


def test_shaping_pauses_the_garbage_collector_and_restores_it() -> None:
    assert gc.isenabled()
    seen: list[bool] = []

    def spy(record: Any) -> None:
        seen.append(gc.isenabled())
        raise RuntimeError("boom")

    column = frames.Column("x", "string", (), spy)
    spec = frames._spec([column])
    with pytest.raises(RuntimeError):
        frames._frame("user", [{}], spec)
    assert seen == [False]
    assert gc.isenabled()
    gc.disable()
    try:
        frames.shape("events", [event(1)])
        assert not gc.isenabled()  # a caller's choice is left alone
    finally:
        gc.enable()


# -- raw JSON -------------------------------------------------------------------------------


def as_pages(records: list[dict[str, Any]], size: int = 3) -> bytes:
    lines = [
        json.dumps({"results": records[i : i + size], "next": "n", "hasNext": True})
        for i in range(0, len(records), size)
    ] or [json.dumps({"results": [], "hasNext": False})]
    return "\n".join(lines).encode()


def forms(records: list[dict[str, Any]]) -> dict[str, bytes]:
    """The ways a saved Membrane output can hold these records."""
    out = {
        "pages": as_pages(records),
        "one page": json.dumps({"results": records}).encode(),
        "membrane records": json.dumps({"records": records, "cursor": None}).encode(),
        "array": json.dumps(records).encode(),
    }
    if records:
        out["record lines"] = "\n".join(json.dumps(r) for r in records).encode()
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), kind=st.sampled_from(["events", *PLAIN_KINDS, "recipients"]))
def test_shape_json_equals_json_loads_then_shape(data: st.DataObject, kind: str) -> None:
    records = data.draw(records_for(kind))
    text = json.dumps(records)
    reference = frames.shape(kind, json.loads(text))
    for form, raw in forms(json.loads(text)).items():
        pd.testing.assert_frame_equal(frames.shape_json(kind, raw), reference, obj=form)


def test_shape_json_takes_arrows_path_on_clean_pages_and_equals_shape() -> None:
    records = [event(i) for i in range(300)]
    raw = as_pages(records, 100)
    fast = frames._frame_from_json("events", raw, frames._SPECS["events"])
    assert fast is not None, "the Arrow JSON path must be taken on clean pages"
    pd.testing.assert_frame_equal(fast, frames.shape("events", records))
    pd.testing.assert_frame_equal(frames.shape_json("events", raw.decode()), fast)


def test_shape_json_falls_back_on_what_arrow_reads_differently() -> None:
    records = mixed_events()  # ISO and ms timestamps, bools among 0/1, extras, objects
    raw = as_pages(records)
    assert frames._frame_from_json("events", raw, frames._SPECS["events"]) is None
    pd.testing.assert_frame_equal(frames.shape_json("events", raw), frames.shape("events", records))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"results": [{"_id": "a", "_id": "b"}]}',  # duplicate key: json.loads keeps the last
        b'{"results": [{"_id": "a", "timestamp": NaN}]}',
        b'{"results": [{"_id": "\\ud800"}]}',
        b'{"results": [{"_id": "a", "timestamp": 1e3}]}',
        b'{"results": [{"_id": "a", "zeta": "2017-08-29T06:30:16Z"}]}',  # not a timestamp here
        b'{"results": [{"_id": "a", "zeta": 12345678901234567890}]}',
        b'{"_id": "a", "results": null}',
        b'{"results": [{"_id": "a"}]}\n{"records": [{"_id": "b"}]}',
    ],
)
def test_shape_json_edge_cases_equal_the_reference(raw: bytes) -> None:
    expected = frames.shape("events", frames._json_records(raw))
    pd.testing.assert_frame_equal(frames.shape_json("events", raw), expected)


def test_shape_json_keeps_an_unknown_text_field_as_text() -> None:
    raw = as_pages([event(i, zeta=f"z{i}" if i % 2 else None) for i in range(10)])
    df = frames.shape_json("events", raw)
    assert df["zeta"].dtype == "string"
    assert list(df["zeta"].isna()) == [i % 2 == 0 for i in range(10)]


def test_shape_json_reads_a_long_single_line_page() -> None:
    records = [event(i) for i in range(3_000)]
    raw = json.dumps({"results": records}).encode()
    old = _columnar.BLOCK
    _columnar.BLOCK = 64 << 10  # the line is far longer than a block
    try:
        assert frames._frame_from_json("events", raw, frames._SPECS["events"]) is not None
    finally:
        _columnar.BLOCK = old
    pd.testing.assert_frame_equal(frames.shape_json("events", raw), frames.shape("events", records))


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"", "Not JSON"),
        (b"<html>502 Bad Gateway</html>", "Not JSON"),
        (b'{"results": []}\n{"results": [}\n', "Line 2 is not JSON"),
        (b"[1, 2]", "JSON int where a record should be"),
        (b'"just text"', "JSON str, not an object"),
        (b"\xff\xfe\x00", "Not"),
        # Arrow's reader would take this one and put the bad byte in the frame, to
        # fail when the frame is shown: json.loads decides instead.
        (b'{"results": [{"_id": "a", "type": "opened", "recipientName": "R\xff"}]}', "Not UTF-8"),
    ],
)
def test_shape_json_bad_input_says_what_to_pass(raw: bytes, says: str) -> None:
    with pytest.raises(InputError) as info:
        frames.shape_json("events", raw)
    assert says in str(info.value)
    assert "JSON Lines" in str(info.value)


def test_shape_json_other_kinds_and_explode() -> None:
    page = {"results": [{"_id": "s1", "name": "Wave", "stages": [{"_id": "t1"}, {"_id": "t2"}]}]}
    raw = json.dumps(page).encode()
    pd.testing.assert_frame_equal(
        frames.shape_json("sequence_stages", raw),
        frames.shape("sequence_stages", page["results"]),
    )
    with pytest.raises(KeyError, match="Unknown frame kind"):
        frames.shape_json("nope", raw)


# -- files and streams -------------------------------------------------------------------


def test_shape_json_reads_a_path_a_file_and_a_stream_like_bytes(tmp_path: Path) -> None:
    records = [event(i) for i in range(500)]
    raw = as_pages(records, 100)
    expected = frames.shape_json("events", raw)
    pd.testing.assert_frame_equal(expected, frames.shape("events", records))
    path = tmp_path / "pages.jsonl"
    path.write_bytes(raw)
    with path.open("rb") as fh:
        from_file = frames.shape_json("events", fh)
        assert fh.read() == b""  # consumed, as read() would
    with path.open("rb", buffering=0) as fh:
        unbuffered = frames.shape_json("events", fh)
    got = {
        "Path": frames.shape_json("events", path),
        "str path": frames.shape_json("events", str(path)),
        "file": from_file,
        "unbuffered file": unbuffered,
        "BytesIO": frames.shape_json("events", io.BytesIO(raw)),
        "memoryview": frames.shape_json("events", memoryview(raw)),
        "bytearray": frames.shape_json("events", bytearray(raw)),
    }
    for source, frame in got.items():
        pd.testing.assert_frame_equal(frame, expected, obj=source)


def test_shape_json_reads_a_file_from_its_position(tmp_path: Path) -> None:
    records = [event(i) for i in range(20)]
    path = tmp_path / "saved.jsonl"
    path.write_bytes(b"header line\n" + as_pages(records))
    with path.open("rb") as fh:
        fh.readline()
        frame = frames.shape_json("events", fh)
    pd.testing.assert_frame_equal(frame, frames.shape("events", records))


def test_shape_json_falls_back_from_a_file_and_reads_other_kinds(tmp_path: Path) -> None:
    records = mixed_events()  # what Arrow reads differently: json.loads decides
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(as_pages(records))
    pd.testing.assert_frame_equal(
        frames.shape_json("events", path), frames.shape("events", records)
    )
    page = {"results": [{"_id": "s1", "name": "Wave", "stages": [{"_id": "t1"}]}]}
    path.write_text(json.dumps(page))
    pd.testing.assert_frame_equal(
        frames.shape_json("sequence_stages", path),
        frames.shape("sequence_stages", page["results"]),
    )


def test_shape_json_empty_file_and_text_that_is_not_a_file_say_not_json(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    for source in (empty, str(empty), io.BytesIO(b""), "no-such-file.jsonl"):
        with pytest.raises(InputError, match="Not JSON"):
            frames.shape_json("events", source)


def test_shape_json_keeps_chunks_and_equals_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [event(i, zeta=f"z{i}" if i > 250 else None) for i in range(600)]
    raw = as_pages(records, 10)  # lines of ~4 kB, blocks of 8 kB
    whole = frames.shape_json("events", raw)
    monkeypatch.setattr(_columnar, "BLOCK", 8 << 10)
    monkeypatch.setattr(_columnar, "MIN_BLOCK", 8 << 10)
    chunked = frames._frame_from_json("events", raw, frames._SPECS["events"])
    assert chunked is not None
    assert chunked["id"].array._pa_array.num_chunks > 1  # blocks flattened in place
    pd.testing.assert_frame_equal(chunked, whole)
    pd.testing.assert_frame_equal(chunked, frames.shape("events", records))


def test_shape_json_streams_a_path_in_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [event(i) for i in range(300)]
    path = tmp_path / "pages.jsonl"
    monkeypatch.setattr(_columnar, "BLOCK", 8 << 10)
    monkeypatch.setattr(_columnar, "MIN_BLOCK", 8 << 10)
    for raw in (as_pages(records, 10), json.dumps({"results": records}).encode()):
        path.write_bytes(raw)  # lines shorter than a block, then one far longer
        frame = frames._frame_from_json("events", raw, frames._SPECS["events"], file=str(path))
        assert frame is not None
        pd.testing.assert_frame_equal(frame, frames.shape("events", records))
        pd.testing.assert_frame_equal(frames.shape_json("events", path), frame)
