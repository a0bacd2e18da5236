"""A batch of per-message answers, as the CLI printed them, shaped in one Arrow pass.

``engagement.shape_event_runs`` must give exactly what the parsed path gives
(``json.loads`` each answer, ``tag_events``, ``frames.shape``), and take the Arrow
path whenever Arrow reads the answers as ``json.loads`` would.
"""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pandas as pd
import pytest

from mixmax_nb import frames
from mixmax_nb.data import engagement
from mixmax_nb.data.engagement import shape_event_runs, tag_events
from mixmax_nb.errors import BadOutputError

SEQUENCE = {"_id": "s1", "name": "Q4 <b>push</b>", "stageId": "st1", "stageIndex": 0}


def event(n: int, kind: str = "opened", **extra: Any) -> dict[str, Any]:
    return {
        "_id": f"{n:024x}",
        "type": kind,
        "timestamp": 1_764_000_000_000 + n * 1000,
        "userId": "u1",
        "recipientEmail": f"r{n}@example.com",
        "recipientName": f"R\u00e9 {n}",
        "subject": "Hi {{first}} \u2014 \U0001f600",
        "sequence": SEQUENCE,
        "country": "US",
        "isMobile": n % 2,
        **extra,
    }


def printed(output: Any, *, indent: int | None = None) -> bytes:
    return json.dumps({"output": output, "actionRunId": "run1"}, indent=indent).encode()


def parsed(ids: list[str], runs: list[bytes]) -> tuple[pd.DataFrame, list[int]]:
    """The reference: each answer parsed, tagged and shaped as records."""
    answers = [
        tag_events(m, json.loads(r.decode("utf-8", "replace"))["output"])
        for m, r in zip(ids, runs, strict=True)
    ]
    return frames.shape("events", [e for a in answers for e in a]), [len(a) for a in answers]


def check(ids: list[str], runs: list[bytes], *, arrow: bool) -> pd.DataFrame:
    """Equal to the reference, and read by Arrow (no answer parsed one by one) or not."""
    with mock.patch.object(engagement, "_output", wraps=engagement._output) as one_by_one:
        frame, counts = shape_event_runs(ids, runs)
    want, want_counts = parsed(ids, runs)
    pd.testing.assert_frame_equal(frame, want)
    assert counts == want_counts
    assert one_by_one.call_count == (0 if arrow else len(runs))
    return frame


def test_a_batch_reads_in_one_pass_as_json_loads_reads_it() -> None:
    ids = [f"m{i}" for i in range(100)]
    runs = [
        printed({"results": [event(i * 200 + j) for j in range(i % 7)], "next": None})
        for i in range(100)
    ]
    frame = check(ids, runs, arrow=True)
    assert len(frame) == sum(i % 7 for i in range(100))
    assert frame["message_id"].iloc[0] == "m1"  # m0 had no events
    assert frame["subject"].iloc[0] == "Hi {{first}} \u2014 \U0001f600"  # verbatim


def test_types_the_endpoint_does_not_document_are_dropped_and_not_counted() -> None:
    ids = ["m1", "m2"]
    runs = [
        printed({"results": [event(1), event(2, "sent"), event(3, "clicked", linkUrl="u")]}),
        printed({"results": [event(4, "bounced"), {"_id": "x", "type": None}]}),
    ]
    frame = check(ids, runs, arrow=True)
    assert list(frame["type"].astype(str)) == ["opened", "clicked"]
    assert shape_event_runs(ids, runs)[1] == [2, 0]


def test_an_unknown_field_is_kept_as_a_column_like_the_parsed_path() -> None:
    ids = ["m1", "m2"]
    runs = [printed({"results": [event(1, newField="x")]}), printed({"results": [event(2)]})]
    frame = check(ids, runs, arrow=True)
    assert frame["new_field"].iloc[0] == "x" and pd.isna(frame["new_field"].iloc[1])


def test_an_unknown_field_only_on_a_dropped_event_gives_no_column() -> None:
    # Arrow cannot tell "only on dropped events" from "null on kept ones": the
    # parsed path decides, and gives no column.
    ids = ["m1"]
    runs = [printed({"results": [event(1), event(2, "sent", onlyHere=None)]})]
    frame = check(ids, runs, arrow=False)
    assert "only_here" not in frame.columns


def test_the_message_id_is_the_one_asked_for_whatever_the_answer_says() -> None:
    ids = ["m1"]
    runs = [printed({"results": [event(1, messageId="other")]})]
    frame = check(ids, runs, arrow=True)
    assert list(frame["message_id"]) == ["m1"]


def test_pretty_printed_answers_read_in_one_pass_too() -> None:
    ids = ["m1", "m2"]
    runs = [printed({"results": [event(1), event(2)]}, indent=2), printed({"results": []})]
    check(ids, runs, arrow=True)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(printed([event(1)]), id="output-is-a-bare-list"),
        pytest.param(printed({"results": [event(1), "x"]}), id="a-record-not-an-object"),
        pytest.param(printed({"results": None}), id="results-null"),
        pytest.param(printed({"items": [event(1)]}), id="no-results"),
        pytest.param(printed({"results": [event(1, timestamp="2026-11-30T10:00:00Z")]}), id="iso"),
        pytest.param(printed({"results": [event(1, isMobile="yes")]}), id="odd-boolean"),
        pytest.param(
            printed({"results": [event(1)]}).replace(b'"userId"', b'"country": "FR", "userId"'),
            id="duplicate-key",
        ),
        pytest.param(printed({"results": [event(1, note="\udc80")]}), id="lone-surrogate"),
        pytest.param(
            printed({"results": [event(1)]}).replace(b"R\\u00e9", b"R\xff"), id="bad-utf8"
        ),
    ],
)
def test_what_arrow_would_read_differently_goes_the_parsed_way(answer: bytes) -> None:
    ids = ["m1", "m2"]
    runs = [answer, printed({"results": [event(9)]})]
    check(ids, runs, arrow=False)


def test_no_events_at_all_gives_the_typed_empty_frame() -> None:
    ids = ["m1", "m2"]
    runs = [printed({"results": []}), printed({"results": []})]
    frame = check(ids, runs, arrow=True)
    assert frame.empty and list(frame.columns) == list(frames.empty("events").columns)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"<html>502</html>", "not JSON"),
        (b'{"actionRunId": "r"}', "no `output`"),
        (b"[1, 2]", "no `output`"),
    ],
)
def test_an_answer_that_is_not_a_run_is_refused_with_what_was_printed(
    answer: bytes, message: str
) -> None:
    with pytest.raises(BadOutputError, match=message) as info:
        shape_event_runs(["m1", "m2"], [printed({"results": [event(1)]}), answer])
    assert info.value.raw == answer.decode()
