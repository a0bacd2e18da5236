"""frames: fixed schemas, empty frames, flattening, extras, timestamps, fast == naive."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixmax_nb import catalog, frames

HOSTILE = [
    "Zoë Ångström",
    "李小龍",
    "مرحبا",
    "🎉 emoji 👩‍👩‍👧",
    '=HYPERLINK("http://evil")',
    "<script>alert(1)</script>",
    "tab\tnew\nline\r",
    "nul\x00byte",
    "'; DROP TABLE x; --",
    "",
    " ",
]


def event(i: int, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "_id": f"{i:024x}",
        "type": frames.EVENT_TYPES[i % 7],
        "timestamp": 1_503_988_216_000 + i,
        "messageId": f"msg{i:014d}",
        "userId": "kZYPwDDiGPTfQDj5n",
        "recipientEmail": f"r{i}@acme.com",
        "recipientName": HOSTILE[i % len(HOSTILE)],
        "subject": HOSTILE[(i + 3) % len(HOSTILE)],
        "sequence": {"_id": "s" * 24, "name": "Wave", "stageId": "t" * 24, "stageIndex": i % 3}
        if i % 4
        else None,
        "city": "São Paulo",
        "os": "iOS",
        "program": "Gmail",
        "isMobile": i % 2,
        "linkUrl": None,
        "linkText": None,
        "fileName": None,
    }
    base.update(over)
    return base


def assert_schema(df: pd.DataFrame, kind: str) -> None:
    schema = frames.SCHEMAS[kind]
    assert list(df.columns[: len(schema)]) == list(schema)
    for column, dtype in schema.items():
        actual = df[column].dtype
        if isinstance(dtype, pd.CategoricalDtype) and isinstance(actual, pd.CategoricalDtype):
            # Undocumented values are appended after the fixed categories.
            fixed = list(dtype.categories)
            assert list(actual.categories[: len(fixed)]) == fixed, (kind, column)
        else:
            assert actual == dtype, (kind, column, actual, dtype)
    assert df.attrs["kind"] == kind


# -- every kind ------------------------------------------------------------------------


def test_every_catalog_kind_has_a_schema() -> None:
    kinds = {a.kind for a in catalog.ACTIONS} | {"actions", "sequence_stages", "poll_results"}
    assert kinds <= set(frames.SCHEMAS)


@pytest.mark.parametrize("kind", frames.KINDS)
def test_empty_has_every_column_with_its_dtype(kind: str) -> None:
    df = frames.empty(kind)
    assert len(df) == 0
    assert list(df.columns) == list(frames.SCHEMAS[kind])
    assert_schema(df, kind)
    assert_schema(frames.shape(kind, iter(())), kind)


@pytest.mark.parametrize("kind", frames.KINDS)
def test_schema_names_are_snake_case_and_dtypes_nullable(kind: str) -> None:
    allowed = {"string", "Int64", "Float64", "boolean", "object", frames.TIMESTAMP}
    for name, dtype in frames.SCHEMAS[kind].items():
        assert name == frames.snake(name)
        assert isinstance(dtype, pd.CategoricalDtype) or dtype in allowed
        if name.endswith(("_at", "timestamp")):
            assert dtype == frames.TIMESTAMP, name


@pytest.mark.parametrize("kind", frames.KINDS)
def test_records_of_wrong_shape_do_not_crash(kind: str) -> None:
    odd = [{"_id": 5, "createdAt": "yesterday", "stages": "x", "options": [3], "members": {}}, {}]
    df = frames.shape(kind, odd)
    assert_schema(df, kind)


def test_unknown_kind() -> None:
    with pytest.raises(KeyError, match="Unknown frame kind"):
        frames.shape("nope", [])


# -- events ------------------------------------------------------------------------------


def test_events_flatten_the_sequence_and_type_the_columns() -> None:
    df = frames.shape("events", [event(1), event(4)])
    assert_schema(df, "events")
    assert list(df.columns) == list(frames.SCHEMAS["events"])  # no extras
    row = df.iloc[0]
    assert row["id"] == f"{1:024x}"
    assert row["type"] == "opened"
    assert row["timestamp"] == pd.Timestamp(1_503_988_216_001, unit="ms", tz="UTC")
    assert row["sequence_id"] == "s" * 24
    assert row["stage_index"] == 1
    assert bool(row["is_mobile"]) is True
    assert df["sequence_id"].isna().tolist() == [False, True]  # sequence: null
    assert list(df["type"].cat.categories) == list(frames.EVENT_TYPES)


def test_unknown_enum_value_is_kept_as_an_extra_category() -> None:
    df = frames.shape("events", [event(0, type="rsvp"), event(1)])
    assert df["type"].tolist() == ["rsvp", "opened"]
    assert list(df["type"].cat.categories) == [*frames.EVENT_TYPES, "rsvp"]


def test_extra_fields_are_kept_after_the_fixed_columns_in_a_stable_order() -> None:
    a = event(1, zetaField="z", alphaThing={"deep": [1, 2]})
    a["sequence"]["folderId"] = "f1"
    b = event(2, alphaThing=None)
    for records in ([a, b], [b, a]):
        df = frames.shape("events", records)
        n = len(frames.SCHEMAS["events"])
        assert list(df.columns[n:]) == ["alpha_thing", "sequence_folder_id", "zeta_field"]
        assert df["zeta_field"].dtype == "string"
        assert df["alpha_thing"].dtype == object
    df = frames.shape("events", [a, b])
    assert df.loc[0, "alpha_thing"] == {"deep": [1, 2]}
    assert df.loc[0, "sequence_folder_id"] == "f1"
    assert pd.isna(df.loc[1, "zeta_field"])


def test_extra_colliding_with_a_fixed_name_gets_its_own_column() -> None:
    df = frames.shape("events", [event(1, sequence_id="clash")])
    assert df.loc[0, "sequence_id"] == "s" * 24
    assert df.loc[0, "sequence_id_extra"] == "clash"


def test_missing_keys_and_nulls_become_missing_values() -> None:
    df = frames.shape("events", [{"_id": "x"}, {"_id": None, "isMobile": None, "sequence": {}}])
    assert_schema(df, "events")
    assert df["timestamp"].isna().all()
    assert df["is_mobile"].isna().all()
    assert df["id"].tolist()[0] == "x"


def test_hostile_strings_survive_unchanged() -> None:
    records = [event(i) for i in range(len(HOSTILE))]
    df = frames.shape("events", records)
    assert df["recipient_name"].tolist() == [r["recipientName"] for r in records]


def test_lone_surrogates_are_replaced_not_fatal() -> None:
    df = frames.shape("events", [event(0, subject="bad \ud800 half")])
    assert df.loc[0, "subject"] == "bad \ufffd half"


def mixed_events() -> list[dict[str, Any]]:
    records = [event(i) for i in range(40)]
    records[1]["timestamp"] = "2017-08-29T06:30:16.001Z"
    records[2]["timestamp"] = None
    records[3]["timestamp"] = "2017-08-29T08:30:16.002+02:00"
    records[4]["timestamp"] = "1503988216004"
    records[5]["timestamp"] = "not a date"
    records[6]["timestamp"] = 1_503_988_216_006.0
    del records[7]["timestamp"]
    del records[8]["linkText"]
    records[9]["isMobile"] = True
    records[10]["isMobile"] = None
    records[11]["sequence"] = {"_id": "only-id"}
    records[12]["customField"] = "kept"
    records[13]["customObject"] = {"a": [1, {"b": None}]}
    records[14]["sequence"]["extraKey"] = 7
    records[15]["type"] = "rsvp"
    records[16]["type"] = None
    records[17]["recipientEmail"] = None
    return records


def test_fast_path_equals_the_naive_json_normalize_path() -> None:
    records = mixed_events()
    fast = frames.shape("events", records)
    naive = frames.naive_events(records)
    pd.testing.assert_frame_equal(fast, naive)
    assert fast.loc[1, "timestamp"] == pd.Timestamp("2017-08-29T06:30:16.001Z")
    assert fast.loc[3, "timestamp"] == pd.Timestamp("2017-08-29T06:30:16.002Z")
    assert fast.loc[4, "timestamp"] == pd.Timestamp(1_503_988_216_004, unit="ms", tz="UTC")
    assert pd.isna(fast.loc[5, "timestamp"])
    assert "custom_object" in fast.columns and "sequence_extra_key" in fast.columns


def test_fast_equals_naive_on_clean_all_ms_input_and_on_empty() -> None:
    records = [event(i) for i in range(500)]
    pd.testing.assert_frame_equal(frames.shape("events", records), frames.naive_events(records))
    pd.testing.assert_frame_equal(frames.empty("events"), frames.naive_events([]))


def test_the_equality_check_can_fail() -> None:
    records = [event(i) for i in range(10)]
    naive = frames.naive_events(records)
    naive.loc[3, "subject"] = "Elsewhere"
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(frames.shape("events", records), naive)


instants = st.datetimes(
    min_value=dt.datetime(1970, 1, 1),
    max_value=dt.datetime(2200, 1, 1),
    timezones=st.just(dt.UTC),
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(
    lambda m: dt.timezone(dt.timedelta(minutes=m))
)


@settings(max_examples=200, deadline=None)
@given(instant=instants, tz=offsets, ms_first=st.booleans())
def test_any_timestamp_format_gives_the_same_utc_instant(
    instant: dt.datetime, tz: dt.timezone, ms_first: bool
) -> None:
    ms = (instant - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)
    iso_z = instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    iso_offset = instant.astimezone(tz).isoformat(timespec="milliseconds")
    values: list[Any] = [ms, iso_z, iso_offset, str(ms), float(ms)]
    if not ms_first:
        values.reverse()
    df = frames.shape("unsubscribes", [{"createdAt": v} for v in values])
    expected = pd.Timestamp(ms, unit="ms", tz="UTC")
    assert (df["created_at"] == expected).all()
    assert df["created_at"].dtype == frames.TIMESTAMP
    only_iso = frames.shape("unsubscribes", [{"createdAt": iso_offset}])
    assert only_iso.loc[0, "created_at"] == expected


# -- the other kinds ---------------------------------------------------------------------


def test_sequences_and_their_stages() -> None:
    seq = {
        "_id": "5815495f8447b9058a310430",
        "userId": "kZYPwDDiGPTfQDj5n",
        "createdAt": "2016-10-30T01:14:07.790Z",
        "name": "Sales leads",
        "sendStagesAsReplies": True,
        "paused": False,
        "stages": [
            {
                "_id": "a1",
                "type": "email",
                "ordinal": 0,
                "subject": "Hi",
                "delayDays": 0,
                "scheduleBetween": {"timezone": "UTC", "start": "08:00", "end": "15:00"},
            },
            {"_id": "a2", "type": "call", "ordinal": 1, "delayDays": 3, "condition": {"x": 1}},
        ],
        "variables": ["Email", "First name"],
        "timezone": "America/Mexico_City",
    }
    df = frames.shape("sequences", [seq, {**seq, "_id": "b", "stages": ["x", "y", "z"]}])
    assert_schema(df, "sequences")
    assert list(df.columns) == list(frames.SCHEMAS["sequences"])
    assert df["stage_count"].tolist() == [2, 3]
    assert df.loc[0, "stage_ids"] == "a1, a2"
    assert df.loc[1, "stage_ids"] == "x, y, z"
    assert df.loc[0, "variables"] == "Email, First name"
    assert df.loc[0, "created_at"] == pd.Timestamp("2016-10-30T01:14:07.790Z")
    stages = frames.shape("sequence_stages", [seq])
    assert_schema(stages, "sequence_stages")
    assert list(stages.columns) == list(frames.SCHEMAS["sequence_stages"])
    assert stages["type"].tolist() == ["email", "call"]
    assert stages["delay_days"].tolist() == [0.0, 3.0]
    assert stages.loc[0, "schedule_start"] == "08:00"
    assert stages.loc[1, "condition"] == '{"x": 1}'
    ids_only = frames.shape("sequence_stages", [{**seq, "stages": ["x", "y"]}])
    assert ids_only["stage_id"].tolist() == ["x", "y"]
    assert ids_only["position"].tolist() == [0, 1]


def test_recipients_flatten_analytics_and_aggregate_stages() -> None:
    rec = {
        "_id": "5ca6460f8f3bd70011a2b7c1",
        "sequenceId": "5ca6452dbf0c9f0035800d7e",
        "email": "old@acme.com",
        "to": {"email": "jane@acme.com"},
        "state": "completed",
        "completedReason": "replied",
        "createdAt": 1554400527000,
        "variables": {"First name": "Jane"},
        "analytics": {"events": {"opens": 3, "clicks": 1, "downloads": 0}},
        "stages": [
            {"stageId": "s0", "sentAt": 1554400531000, "scheduledAt": 1554400527000, "opens": 2},
            {"stageId": "s1", "sentAt": 1554500531000, "opens": 1, "replied": True},
            {"stageId": "s2", "scheduledAt": 1554600000000},
        ],
    }
    df = frames.shape("recipients", [rec, {"_id": "r2", "email": "b@x.com", "state": "paused"}])
    assert_schema(df, "recipients")
    assert list(df.columns) == list(frames.SCHEMAS["recipients"])
    row = df.iloc[0]
    assert row["email"] == "jane@acme.com"
    assert df.loc[1, "email"] == "b@x.com"
    assert (row["opens"], row["clicks"], row["downloads"]) == (3, 1, 0)
    assert (row["stage_count"], row["stages_sent"], row["stage_opens"]) == (3, 2, 3)
    assert bool(row["replied"]) and not bool(row["bounced"])
    assert row["last_sent_at"] == pd.Timestamp(1554500531000, unit="ms", tz="UTC")
    assert row["next_scheduled_at"] == pd.Timestamp(1554600000000, unit="ms", tz="UTC")
    assert row["variables"] == {"First name": "Jane"}
    assert df["state"].tolist() == ["completed", "paused"]  # undocumented state kept
    assert list(df["completed_reason"].cat.categories) == list(frames.COMPLETED_REASONS)


def test_messages_join_recipients_and_derive_state() -> None:
    base = {
        "_id": "lAh716dny9EiTzt2E",
        "created": 1478284647090,
        "from": {"email": "hello@mixmax.com", "name": "Mixmax Hello"},
        "to": [{"email": "jane@acme.com", "name": "Jane"}, {"email": "bo@acme.com"}],
        "subject": "Quick question",
        "sequence": {"id": "seq1", "stageId": "st1", "recipientId": "r1"},
    }
    records = [
        {**base, "sent": 1478285700000},
        {**base, "sendingError": "quota"},
        {**base, "scheduled": 1478285700000},
        {**base, "body": "<p>draft</p>"},
    ]
    df = frames.shape("messages", records)
    assert_schema(df, "messages")
    assert df["state"].tolist() == ["sent", "error", "scheduled", "draft"]
    assert df.loc[0, "to"] == "jane@acme.com, bo@acme.com"
    assert df.loc[0, "to_count"] == 2
    assert df.loc[0, "from_name"] == "Mixmax Hello"
    assert df.loc[0, "sequence_id"] == "seq1"
    assert df.loc[0, "sent_at"] == pd.Timestamp(1478285700000, unit="ms", tz="UTC")
    assert_schema(frames.shape("message", records[:1]), "message")


def test_polls_and_poll_results() -> None:
    poll = {
        "_id": "p1",
        "created": 1503988200000,
        "livePoll": False,
        "options": [
            {"text": "Tue", "respondents": [{"email": "a@x.com", "respondedAt": 1503988300000}]},
            {"text": "Wed", "respondents": []},
        ],
    }
    polls = frames.shape("polls", [poll])
    assert (polls.loc[0, "option_count"], polls.loc[0, "respondent_count"]) == (2, 1)
    results = frames.shape("poll_results", [poll])
    assert_schema(results, "poll_results")
    assert results["option_text"].tolist() == ["Tue", "Wed"]
    assert results["respondent_email"].isna().tolist() == [False, True]


def test_teams_rules_snippets_unsubscribes_user() -> None:
    team = {
        "_id": "D7M6ZiZrv3v9YxQ8C",
        "createdAt": "2016-11-12T00:41:38.879Z",
        "name": "team",
        "members": [{"accepted": True, "role": "admin"}, {"email": "invitee@x.com"}],
    }
    teams = frames.shape("teams", [team])
    assert (teams.loc[0, "member_count"], teams.loc[0, "pending_count"]) == (2, 1)
    rule = {
        "_id": "r",
        "isPaused": False,
        "trigger": {"type": "event", "eventName": "message:sent"},
        "filter": '{"to.email": "sales@x.com"}',
        "actions": [{"_id": "a"}],
    }
    rules = frames.shape("rules", [rule])
    assert rules.loc[0, "trigger_event"] == "message:sent"
    assert rules.loc[0, "action_count"] == 1
    snip = {
        "_id": "s",
        "createdAt": 1478122191866,
        "title": "Hi",
        "shared": [{"userEmail": "e@d.com", "confirmed": True}],
    }
    assert frames.shape("snippets", [snip]).loc[0, "shared_count"] == 1
    unsub = frames.shape(
        "unsubscribe_change", [{"email": "x@acme.com", "createdAt": 1554400527000}]
    )
    assert_schema(unsub, "unsubscribe_change")
    me = frames.shape("user", [{"_id": "BGb7nYTSKfPtnPsgj", "email": "h@m.com", "plan": "pro"}])
    assert list(me.columns) == ["id", "email", "name", "plan"]


def test_enroll_and_cancel_outcomes() -> None:
    out = {
        "recipients": [
            {"email": "hello@mixmax.com", "status": "success"},
            {"email": "careers@mixmax.com", "status": "duplicated"},
            {"email": "x@acme.com", "status": "unsubscribed"},
            {"email": "y@acme.com", "status": "error", "errors": ["Missing variable: A", "B"]},
        ]
    }
    df = frames.shape("enroll_outcomes", [out])
    assert_schema(df, "enroll_outcomes")
    assert df["status"].tolist() == ["success", "duplicated", "unsubscribed", "error"]
    assert df["reason"].tolist()[3] == "Missing variable: A; B"
    assert df["reason"].isna().tolist()[:3] == [True, True, True]
    cancel = frames.shape("cancel_outcomes", [{"recipients": ["a@x.com", "b@x.com"]}])
    assert cancel["email"].tolist() == ["a@x.com", "b@x.com"]


def test_actions_kind() -> None:
    record = {
        "id": "act_1",
        "key": "list-sequences",
        "name": "List Sequences",
        "description": "Lists all sequences",
        "type": "list-data-records",
        "inputSchema": {"type": "object", "properties": {"expand": {}, "limit": {}}},
        "outputSchema": {"type": "object"},
    }
    df = frames.shape("actions", [record])
    assert_schema(df, "actions")
    assert df.loc[0, "parameters"] == "expand, limit"
    assert df.loc[0, "required"] == ""
    assert df.loc[0, "input_schema"] == record["inputSchema"]


def test_source_attr_is_the_callers() -> None:
    df = frames.shape("user", [{"_id": "u"}])
    df.attrs["source"] = "sandbox"
    assert df.attrs == {"kind": "user", "source": "sandbox"}


def test_describe_documents_every_column() -> None:
    table = frames.describe("events")
    assert table["column"].tolist() == list(frames.SCHEMAS["events"])


def test_team_members_one_row_per_member_invites_included() -> None:
    teams = [
        {
            "_id": "T1",
            "name": "West",
            "members": [
                {
                    "accepted": True,
                    "acceptedAt": "2025-07-09T00:00:00.000Z",
                    "role": "admin",
                    "memberId": "m1",
                    "userId": {"_id": "U1", "email": "a@x.example", "name": "Ann"},
                },
                {"email": "invitee@x.example", "invitedAt": "2025-07-10T00:00:00.000Z"},
            ],
        },
        {"_id": "T2", "name": "East", "members": []},
    ]
    frame = frames.shape("team_members", teams)
    assert list(frame.columns[:10]) == list(frames.SCHEMAS["team_members"])
    assert frame["team_id"].tolist() == ["T1", "T1"]
    assert frame["user_id"].tolist()[0] == "U1" and pd.isna(frame["user_id"].iloc[1])
    assert frame["email"].tolist() == ["a@x.example", "invitee@x.example"]
    assert frame["accepted"].tolist()[0] is True and pd.isna(frame["accepted"].iloc[1])
    assert str(frame["accepted_at"].dtype) == "datetime64[ms, UTC]"
    assert frames.empty("team_members").shape == (0, 10)
