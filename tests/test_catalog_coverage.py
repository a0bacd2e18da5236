"""Every catalog action has a frame kind, a sandbox handler and a documented fixture.

``fixtures/actions/<key>.json`` holds, per action, what ``membrane action run --json``
most probably prints for a real Mixmax account (``{"output", "actionRunId"}``, as
membrane-cli.md section 4 gives it) plus a plausible ``input``. The outputs are
written by hand from the documented shapes of the references (mixmax-api.md
sections 2, 3, 6, 8 and 12; membrane-cli.md sections 4, 5 and 8), not recorded from
our sandbox, so the frames are checked against Mixmax rather than against
themselves. Each fixture also says where it comes from:

- ``fields``: every field path of the output's records (dotted, ``[]`` for the items
  of a list, ``*`` for the keys of a free-form map such as ``variables``) marked
  ``V`` (verified: Mixmax docs or connectors' live-derived schemas) or ``A``
  (assumed);
- ``envelope``: the page keys (``results``, ``next``, ``hasNext``) of a list output,
  or ``(array)`` / ``(object)`` for a bare array or a single object, marked alike:
  ``A`` where the reference calls the Mixmax response undocumented. (That the
  Membrane action returns the Mixmax response unchanged is itself assumed for every
  action, membrane-cli.md sections 5 and 8; ``sources`` says so each time.)
- ``sources``: the reference sections and source tags used; ``notes``: why a mark
  is ``A`` and which values are illustrative.

Edit a fixture by hand against the references; keep fields, names and types as
documented (values marked illustrative there may change).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mixmax_nb import catalog, frames
from mixmax_nb.pages import split_page

FIXTURES = Path(__file__).parent / "fixtures" / "actions"
README = Path(__file__).parents[1] / "README.md"

MARKS = {"V", "A"}
REQUIRED_KEYS = {"input", "output", "actionRunId", "envelope", "fields", "sources"}
OPTIONAL_KEYS = {"notes"}

Record = Mapping[str, Any]


def load(key: str) -> dict[str, Any]:
    path = FIXTURES / f"{key}.json"
    assert path.exists(), f"write {path.name} from the references (see this module's doc)"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def records_of(spec: catalog.ActionSpec, output: Any) -> list[dict[str, Any]]:
    """The JSON objects a frame is shaped from: the page's items, or the output itself."""
    if spec.page == "object":
        # Single objects and {"recipients": [...]} outcome wrappers shape from the output.
        return [output]
    records, _, _ = split_page(output)
    return records


def field_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path in ``value``: ``a``, ``a.b``, ``list[].c`` (scalar items add none)."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            found.add(path)
            found |= field_paths(child, path)
    elif isinstance(value, list):
        for item in value:
            found |= field_paths(item, prefix + "[]")
    return found


def _pattern(marked: str) -> re.Pattern[str]:
    # "variables.*" stands for every key of the free-form map at "variables".
    return re.compile(re.escape(marked).replace(r"\*", r"[^.\[\]]+"))


# -- catalog coverage ----------------------------------------------------------------


@pytest.mark.parametrize("spec", catalog.ACTIONS, ids=lambda s: s.key)
def test_action_has_a_frame_kind(spec: catalog.ActionSpec) -> None:
    assert spec.kind in frames.SCHEMAS


@pytest.mark.parametrize("spec", catalog.ACTIONS, ids=lambda s: s.key)
def test_action_has_a_sandbox_handler(spec: catalog.ActionSpec) -> None:
    from mixmax_nb.sandbox.mixmax import Mixmax

    routes = Mixmax.__new__(Mixmax)
    Mixmax.__init__(routes, store=None, now_ms=lambda: 0)  # type: ignore[arg-type]
    path = re.sub(r"\{\w+\}", "abc123", spec.path)
    assert any(
        method == spec.method and pattern.fullmatch(path) for method, pattern, _ in routes.routes
    ), f"no sandbox route for {spec.method} {spec.path}"


def test_every_fixture_is_a_catalog_action() -> None:
    assert {p.stem for p in FIXTURES.glob("*.json")} == {a.key for a in catalog.ACTIONS}


# -- the fixtures say where every field comes from ---------------------------------------


@pytest.mark.parametrize("spec", catalog.ACTIONS, ids=lambda s: s.key)
def test_action_fixture_marks_every_field_verified_or_assumed(spec: catalog.ActionSpec) -> None:
    fixture = load(spec.key)
    assert REQUIRED_KEYS <= set(fixture) <= REQUIRED_KEYS | OPTIONAL_KEYS, sorted(fixture)
    catalog.validate_input(spec.key, fixture["input"])
    assert isinstance(fixture["actionRunId"], str) and fixture["actionRunId"]
    assert isinstance(fixture["sources"], str) and "mixmax-api.md" in fixture["sources"]
    output = fixture["output"]

    envelope: dict[str, str] = fixture["envelope"]
    if spec.page == "object":
        assert isinstance(output, dict)
        assert set(envelope) == {"(object)"}
    elif isinstance(output, list):
        assert spec.page == "array"
        assert set(envelope) == {"(array)"}
    else:
        assert set(envelope) == set(output), "mark every page key of the output"

    present: set[str] = set()
    for record in records_of(spec, output):
        present |= field_paths(record)
    marks: dict[str, str] = fixture["fields"]
    patterns = {marked: _pattern(marked) for marked in marks}
    unmarked = sorted(p for p in present if not any(r.fullmatch(p) for r in patterns.values()))
    absent = sorted(m for m, r in patterns.items() if not any(r.fullmatch(p) for p in present))
    assert not unmarked, f"fields present in the output but not marked V or A: {unmarked}"
    assert not absent, f"fields marked but absent from the output: {absent}"

    values = {*marks.values(), *envelope.values()}
    assert values <= MARKS, values - MARKS
    if "A" in values:
        assert str(fixture.get("notes") or "").strip(), "say in `notes` why a mark is A"


def test_list_fixtures_hold_two_or_three_records_and_end_with_an_echoed_cursor() -> None:
    for spec in catalog.ACTIONS:
        if spec.page == "object":
            continue
        output = load(spec.key)["output"]
        records, follow, shape = split_page(output)
        assert 2 <= len(records) <= 3, spec.key
        if shape == "array":
            continue  # recipients page by offset: a short page is the last (section 3)
        # The last page: hasNext false, and (mixmax-api.md section 2's pitfall) a `next`
        # cursor echoed anyway, which must not be followed.
        assert follow is None, spec.key
        if "hasNext" in output:
            assert output["hasNext"] is False and output["next"], spec.key


_COUNTERS = (
    "opens",
    "clicks",
    "downloads",
    "replied",
    "bounced",
    "senderReplied",
    "accepted",
    "declined",
    "tentative",
    "hasOpens",
    "hasLinks",
    "hasFiles",
)


def _number_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def test_recipients_fixture_has_the_live_derived_types() -> None:
    """mixmax-api.md section 12: counters and flags are numbers or null, never booleans;
    scheduleBetween start/end are numbers; times are epoch ms."""
    for recipient in load("get-sequence-recipients")["output"]:
        assert isinstance(recipient["createdAt"], int)
        assert set(recipient["analytics"]["events"]) == {"opens", "clicks", "downloads"}
        for stage in recipient["stages"]:
            for key in _COUNTERS:
                assert _number_or_null(stage[key]), (key, stage[key])
            for key in ("scheduledAt", "sentAt", "processedAt"):
                assert stage[key] is None or isinstance(stage[key], int), key
            window = stage["scheduleBetween"]
            assert _number_or_null(window["start"]) and window["start"] is not None
            assert _number_or_null(window["end"]) and window["end"] is not None


def test_livefeed_events_fixture_is_one_messages_documented_events() -> None:
    spec = catalog.get("list-livefeed-events")
    assert "messageId" in spec.input_schema["properties"]
    fixture = load(spec.key)
    assert fixture["input"]["messageId"]
    for event in fixture["output"]["results"]:
        assert event["type"] in {"opened", "clicked", "downloaded", "replied"}
        assert isinstance(event["timestamp"], int)
        assert event["isMobile"] in (0, 1)


# -- the fixtures shape into their frames, with the documented values --------------------


def dig(record: Any, path: str) -> Any:
    value = record
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _list(record: Record, path: str) -> list[Any]:
    value = dig(record, path)
    return value if isinstance(value, list) else []


def _joined(path: str, key: str | None = None) -> Callable[[Record], Any]:
    def join(record: Record) -> Any:
        value = dig(record, path)
        if value is None:
            return None
        items = [i.get(key) if key and isinstance(i, Mapping) else i for i in value]
        return ", ".join(str(i) for i in items if i)

    return join


def _stages(record: Record) -> Sequence[Record]:
    return [s for s in _list(record, "stages") if isinstance(s, Mapping)]


def _positive(value: Any) -> bool:
    # replied/bounced may be a count, a 0/1 flag or a timestamp (section 12): > 0 is yes.
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _shared_count(record: Record) -> Any:
    shared = record.get("shared")
    if isinstance(shared, list):  # D-snip: an array of shares
        return len(shared)
    if isinstance(shared, Mapping):  # C-go: {users, teams}
        return len(_list(shared, "users")) + len(_list(shared, "teams"))
    return None


def _message_state(record: Record) -> str:
    # mixmax-api.md section 8, Messages: state from which fields are set.
    if record.get("sent") is not None:
        return "sent"
    if record.get("sendingError"):
        return "error"
    if record.get("scheduled") is not None:
        return "scheduled"
    return "draft"


def _text(value: Any) -> Any:
    return None if value is None else str(value)


Getter = str | Callable[[Record], Any]
"""A dotted wire path, or a function of the record: the documented meaning of a column."""

_USER_FIELDS: dict[str, Getter] = {"id": "_id", "email": "email", "name": "name"}
_UNSUBSCRIBE: dict[str, Getter] = {
    "id": "_id",
    "email": "email",
    "name": "name",
    "user_id": "userId",
    "team_id": "teamId",
    "message_id": "messageId",
    "created_at": "createdAt",
}
_MESSAGE: dict[str, Getter] = {
    "id": "_id",
    "user_id": "userId",
    "state": _message_state,
    "created_at": "created",
    "updated_at": "updatedAt",
    "scheduled_at": "scheduled",
    "sent_at": "sent",
    "from_email": "from.email",
    "from_name": "from.name",
    "to": _joined("to", "email"),
    "to_count": lambda r: len(_list(r, "to")),
    "cc": _joined("cc", "email"),
    "bcc": _joined("bcc", "email"),
    "subject": "subject",
    "body": "body",
    "sequence_id": "sequence.id",
    "stage_id": "sequence.stageId",
    "recipient_id": "sequence.recipientId",
    "tracking_enabled": "trackingEnabled",
    "link_tracking_enabled": "linkTrackingEnabled",
    "file_tracking_enabled": "fileTrackingEnabled",
    "notifications_enabled": "notificationsEnabled",
    "sending_error": "sendingError",
    "team_ids": _joined("teamIds"),
    "snippet_ids": _joined("snippetIds"),
    "attachment_count": lambda r: len(_list(r, "attachments")),
}
_SNIPPET: dict[str, Getter] = {
    "id": "_id",
    "name": "name",
    "title": "title",
    "source": "source",
    "user_id": "userId",
    "created_at": "createdAt",
    "saved_at": "savedAt",
    "saved_by": "savedBy",
    "archived_at": "archivedAt",
    "shared_count": _shared_count,
}
_POLL: dict[str, Getter] = {
    "id": "_id",
    "user_id": "userId",
    "created_at": "created",
    "live_poll": "livePoll",
    "option_count": lambda r: len(_list(r, "options")),
    "respondent_count": lambda r: sum(len(_list(o, "respondents")) for o in _list(r, "options")),
}
_SEQUENCE: dict[str, Getter] = {
    "id": "_id",
    "name": "name",
    "user_id": "userId",
    "created_at": "createdAt",
    "updated_at": "updatedAt",
    "stage_count": lambda r: len(_list(r, "stages")),
    "stage_ids": lambda r: ", ".join(
        s["_id"] if isinstance(s, Mapping) else s for s in _list(r, "stages")
    ),
    "variables": _joined("variables"),
    "timezone": "timezone",
    "send_stages_as_replies": "sendStagesAsReplies",
    "link_tracking_enabled": "linkTrackingEnabled",
    "file_tracking_enabled": "fileTrackingEnabled",
    "notifications_enabled": "notificationsEnabled",
    "cc": _joined("cc", "email"),
    "bcc": _joined("bcc", "email"),
    "team_ids": _joined("teamIds"),
    "shared_count": _shared_count,
}


def _sent_times(record: Record) -> list[int]:
    return [s["sentAt"] for s in _stages(record) if s.get("sentAt") is not None]


def _pending_times(record: Record) -> list[int]:
    return [
        s["scheduledAt"]
        for s in _stages(record)
        if s.get("sentAt") is None and s.get("scheduledAt") is not None
    ]


_RECIPIENT: dict[str, Getter] = {
    "id": "_id",
    "sequence_id": "sequenceId",
    "email": lambda r: dig(r, "to.email") or r.get("email"),
    "user_id": "userId",
    "state": "state",
    "completed_reason": "completedReason",
    "created_at": "createdAt",
    "updated_at": "updatedAt",
    "last_stage_sent_ordinal": "lastStageSentOrdinal",
    "opens": "analytics.events.opens",
    "clicks": "analytics.events.clicks",
    "downloads": "analytics.events.downloads",
    "stage_count": lambda r: len(_stages(r)),
    "stages_sent": lambda r: len(_sent_times(r)),
    "stage_opens": lambda r: sum(s.get("opens") or 0 for s in _stages(r)),
    "stage_clicks": lambda r: sum(s.get("clicks") or 0 for s in _stages(r)),
    "replied": lambda r: any(_positive(s.get("replied")) for s in _stages(r)),
    "bounced": lambda r: any(_positive(s.get("bounced")) for s in _stages(r)),
    "last_sent_at": lambda r: max(_sent_times(r), default=None),
    "next_scheduled_at": lambda r: min(_pending_times(r), default=None),
    "variables": "variables",
}
_EVENT: dict[str, Getter] = {
    "id": "_id",
    "type": "type",
    "timestamp": "timestamp",
    "recipient_email": "recipientEmail",
    "recipient_name": "recipientName",
    "city": "city",
    "os": "os",
    "program": "program",
    "is_mobile": lambda r: {0: False, 1: True}.get(r["isMobile"]),  # documented as 0/1
    "link_url": "linkUrl",
    "link_text": "linkText",
    "file_name": "fileName",
    # Documented fields without a fixed column are kept as extras, by their snake_case name.
    "country": "country",
    "region": "region",
}


def _rows(getters: Mapping[str, Getter]) -> Callable[[Sequence[Record]], list[dict[str, Any]]]:
    def rows(records: Sequence[Record]) -> list[dict[str, Any]]:
        return [
            {
                column: dig(r, get) if isinstance(get, str) else get(r)
                for column, get in getters.items()
            }
            for r in records
        ]

    return rows


def _stage_rows(records: Sequence[Record]) -> list[dict[str, Any]]:
    out = []
    for seq in records:
        for position, stage in enumerate(_list(seq, "stages")):
            row: dict[str, Any] = {"sequence_id": seq["_id"], "position": position}
            if isinstance(stage, Mapping):
                row |= {
                    "stage_id": stage["_id"],
                    "type": stage.get("type"),
                    "subject": stage.get("subject"),
                    "body": stage.get("body"),
                    "schedule_timezone": dig(stage, "scheduleBetween.timezone"),
                    # A string column "as sent": the live numbers (unit unknown) as text.
                    "schedule_start": _text(dig(stage, "scheduleBetween.start")),
                    "schedule_end": _text(dig(stage, "scheduleBetween.end")),
                }
            else:
                row["stage_id"] = stage  # without expand=stages: the stage ids
            out.append(row)
    return out


def _member_rows(records: Sequence[Record]) -> list[dict[str, Any]]:
    out = []
    for team in records:
        for member in _list(team, "members"):
            out.append(
                {
                    "team_id": team["_id"],
                    "user_id": dig(member, "userId._id"),
                    "email": dig(member, "userId.email") or member.get("email"),
                    "name": dig(member, "userId.name"),
                    "role": member.get("role"),
                    "accepted": member.get("accepted"),
                    "accepted_at": member.get("acceptedAt"),
                    "invited_at": member.get("invitedAt"),
                    "member_id": member.get("memberId"),
                }
            )
    return out


def _poll_rows(records: Sequence[Record]) -> list[dict[str, Any]]:
    out = []
    for poll in records:
        for index, option in enumerate(_list(poll, "options")):
            where = {"poll_id": poll["_id"], "option_index": index, "option_text": option["text"]}
            people = _list(option, "respondents") or [{}]
            for person in people:
                out.append(
                    where
                    | {
                        "respondent_email": person.get("email"),
                        "respondent_name": person.get("name"),
                        "responded_at": person.get("respondedAt"),
                    }
                )
    return out


def _outcome_rows(records: Sequence[Record]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for record in records:
        for item in record["recipients"]:
            if isinstance(item, str):  # cancel: the emails that exited
                out.append({"email": item})
            else:  # add: one outcome per recipient
                errors = item.get("errors")
                reason = "; ".join(errors) if errors else None
                out.append({"email": item["email"], "status": item["status"], "reason": reason})
    return out


EXPECTED: dict[str, Callable[[Sequence[Record]], list[dict[str, Any]]]] = {
    "user": _rows(_USER_FIELDS),
    "teams": _rows(
        {
            "id": "_id",
            "name": "name",
            "created_at": "createdAt",
            "modified_at": "modifiedAt",
            "member_count": lambda r: len(_list(r, "members")),
            "pending_count": lambda r: sum(m.get("accepted") is not True for m in r["members"]),
        }
    ),
    "team_members": _member_rows,
    "rules": _rows(
        {
            "id": "_id",
            "name": "name",
            "user_id": "userId",
            "created_at": "createdAt",
            "modified_at": "modifiedAt",
            "is_paused": "isPaused",
            "trigger_type": "trigger.type",
            "trigger_event": "trigger.eventName",
            "filter": "filter",
            "action_count": lambda r: len(_list(r, "actions")),
        }
    ),
    "unsubscribes": _rows(_UNSUBSCRIBE),
    "unsubscribe_change": _rows(_UNSUBSCRIBE),
    "events": _rows(_EVENT),
    "polls": _rows(_POLL),
    "poll": _rows(_POLL),
    "poll_results": _poll_rows,
    "snippets": _rows(_SNIPPET),
    "snippet": _rows(_SNIPPET),
    "messages": _rows(_MESSAGE),
    "message": _rows(_MESSAGE),
    "sequences": _rows(_SEQUENCE),
    "sequence_stages": _stage_rows,
    "recipients": _rows(_RECIPIENT),
    "enroll_outcomes": _outcome_rows,
    "cancel_outcomes": _outcome_rows,
}
ALSO_SHAPED: dict[str, tuple[str, ...]] = {
    # Kinds the client derives from the same records (one row per item inside them).
    "teams": ("team_members",),
    "polls": ("poll_results",),
    "poll": ("poll_results",),
    "sequences": ("sequence_stages",),
}


def _stamp(value: Any) -> pd.Timestamp:
    if isinstance(value, int):  # epoch milliseconds (mixmax-api.md section 6)
        return pd.Timestamp(value, unit="ms", tz="UTC")
    return pd.Timestamp(value).tz_convert("UTC")  # ISO 8601


def assert_value(kind: str, column: str, actual: Any, expected: Any) -> None:
    where = f"{kind}.{column}: frame has {actual!r}, the documented record {expected!r}"
    if expected is None:
        assert actual is None or pd.isna(actual), where
        return
    if isinstance(actual, dict | list):
        assert actual == expected, where
        return
    assert not pd.isna(actual), where
    if frames.SCHEMAS[kind].get(column) == frames.TIMESTAMP:
        assert isinstance(actual, pd.Timestamp) and str(actual.tz) == "UTC", where
        assert actual == _stamp(expected), where
    elif isinstance(expected, bool):
        assert bool(actual) is expected, where
    else:
        assert actual == expected, where


def assert_frame_matches(kind: str, frame: pd.DataFrame, records: Sequence[Record]) -> None:
    schema = frames.SCHEMAS[kind]
    assert list(frame.columns[: len(schema)]) == list(schema)
    for column, dtype in schema.items():
        actual = frame[column].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            assert isinstance(actual, pd.CategoricalDtype), (kind, column, actual)
            fixed = list(dtype.categories)
            assert list(actual.categories[: len(fixed)]) == fixed, (kind, column)
        else:
            assert actual == dtype, (kind, column, actual, dtype)
    expected = EXPECTED[kind](records)
    assert len(frame) == len(expected) >= 1, kind
    for i, row in enumerate(expected):
        for column, value in row.items():
            assert column in frame.columns, f"{kind}: no column {column!r}"
            assert_value(kind, column, frame[column].iloc[i], value)


@pytest.mark.parametrize("spec", catalog.ACTIONS, ids=lambda s: s.key)
def test_action_fixture_shapes_into_its_frame(spec: catalog.ActionSpec) -> None:
    records = records_of(spec, load(spec.key)["output"])
    assert records, "a list fixture should hold records"
    for kind in (spec.kind, *ALSO_SHAPED.get(spec.kind, ())):
        assert_frame_matches(kind, frames.shape(kind, records), records)


@pytest.mark.parametrize("spec", catalog.ACTIONS, ids=lambda s: s.key)
def test_action_fixture_shapes_alike_on_every_path(spec: catalog.ActionSpec) -> None:
    """The one-pass read, the per-field read and the raw-JSON read agree on Mixmax's shapes."""
    output = load(spec.key)["output"]
    records = records_of(spec, output)
    for kind in (spec.kind, *ALSO_SHAPED.get(spec.kind, ())):
        fast = frames.shape(kind, records)
        from_json = frames.shape_json(kind, json.dumps(output))
        slow = frames.shape_per_field(kind, records)
        pd.testing.assert_frame_equal(fast, slow)
        pd.testing.assert_frame_equal(fast, from_json)


def _recipient_variants() -> dict[str, list[dict[str, Any]]]:
    """The recipients fixture with the other forms section 12 allows."""
    base = load("get-sequence-recipients")["output"]
    variants: dict[str, list[dict[str, Any]]] = {}

    as_timestamps = copy.deepcopy(base)  # replied/bounced as when they happened
    for recipient in as_timestamps:
        for stage in recipient["stages"]:
            for key in ("replied", "bounced"):
                if stage[key]:
                    stage[key] = stage["sentAt"] + 3_600_000
    variants["timestamps"] = as_timestamps

    as_counts = copy.deepcopy(base)  # replied/bounced as counts
    for recipient in as_counts:
        for stage in recipient["stages"]:
            for key in ("replied", "bounced"):
                if stage[key]:
                    stage[key] = 2
    variants["counts"] = as_counts

    all_null = copy.deepcopy(base)  # every counter and flag null, even on sent stages
    for recipient in all_null:
        for stage in recipient["stages"]:
            stage.update(dict.fromkeys(_COUNTERS))
        recipient["analytics"]["events"] = dict.fromkeys(("opens", "clicks", "downloads"))
        recipient["lastStageSentOrdinal"] = None
    variants["null"] = all_null

    as_floats = copy.deepcopy(base)  # JSON numbers that a client parsed as floats
    for recipient in as_floats:
        for stage in recipient["stages"]:
            for key in _COUNTERS:
                if stage[key] is not None:
                    stage[key] = float(stage[key])
            stage["scheduleBetween"] = {**stage["scheduleBetween"], "start": 8.5, "end": 15.0}
    variants["floats"] = as_floats
    return variants


@pytest.mark.parametrize("variant", ["timestamps", "counts", "null", "floats"])
def test_recipients_shape_every_documented_counter_form(variant: str) -> None:
    records = _recipient_variants()[variant]
    frame = frames.shape("recipients", records)
    assert_frame_matches("recipients", frame, records)
    pd.testing.assert_frame_equal(frame, frames.shape_per_field("recipients", records))
    pd.testing.assert_frame_equal(frame, frames.shape_json("recipients", json.dumps(records)))


# -- the README ------------------------------------------------------------------------


def test_readme_table_is_generated_from_the_catalog() -> None:
    text = README.read_text(encoding="utf-8")
    start, end = "<!-- catalog-table:start -->", "<!-- catalog-table:end -->"
    assert start in text and end in text, "README lacks the generated catalog table"
    block = text.split(start, 1)[1].split(end, 1)[0].strip()
    assert block == catalog.markdown_table(), (
        "README's action table is stale: paste `python -m mixmax_nb.catalog` between the markers"
    )
