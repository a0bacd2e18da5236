"""The engagement data model of MA §12, both ways in (in process and the command).

Four sources tell one truth about every sent email: the message (``list-messages``),
its events (``list-livefeed-events?messageId=``, at most the newest 200), its
recipient's stage (``get-sequence-recipients``: counters as numbers) and the live
feed's ``stats`` (``GET /livefeed`` through the proxy). The sandbox answers in the
shape a database is set to: ``per-message`` (as documented) or ``account`` (the
older account-wide event list, kept as a second profile).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd
import pytest

from mixmax_nb import catalog, frames
from mixmax_nb.config import Settings
from mixmax_nb.data import engagement
from mixmax_nb.errors import ActionFailedError, NotFoundError
from mixmax_nb.sandbox import cli
from mixmax_nb.sandbox.membrane import SandboxTransport

from .conftest import Harness

Shape = Callable[[str], Harness]

EVENT_FIELDS = [
    "_id",
    "type",
    "timestamp",
    "recipientEmail",
    "recipientName",
    "country",
    "region",
    "city",
    "os",
    "program",
    "isMobile",
    "linkUrl",
    "linkText",
    "fileName",
]
EVENT_TYPES = {"opened", "clicked", "downloaded", "replied"}
STAGE_FIELDS = {
    "stageId",
    "ordinal",
    "type",
    "state",
    "scheduledAt",
    "sentAt",
    "processedAt",
    "messageId",
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
    "failedError",
    "scheduleBetween",
    "from",
}
COUNTERS = (
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
STATS = {
    "sent",
    "delivered",
    "recipients",
    "opened",
    "clicked",
    "downloaded",
    "replied",
    "bounced",
    "accepted",
    "declined",
    "tentative",
    "percentages",
}
PERCENTAGES = {"opened", "clicked", "downloaded", "replied", "bounced", "delivered", "unsubscribed"}
PER_MESSAGE_INPUT = {
    "type": "object",
    "properties": {"messageId": {"type": "string", "minLength": 1}},
    "required": ["messageId"],
}


# -- helpers -------------------------------------------------------------------------


def feed(h: Harness, search: str = "", **query: Any) -> dict[str, Any]:
    """One page of ``GET /livefeed`` through the proxy (there is no action for it)."""
    answer = h.call(h.transport.request("/livefeed", query={"search": search, **query}))
    body: dict[str, Any] = answer["body"]
    return body


def feed_all(h: Harness, search: str = "", limit: int = 300) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    page = feed(h, search, limit=limit)
    for _ in range(10_000):
        rows += page["results"]
        if not page["hasNext"]:
            return rows
        page = feed(h, search, limit=limit, next=page["next"])
    raise AssertionError("the live feed never ended")


def quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def events_of(h: Harness, message_id: str, *, through: bool = True) -> list[dict[str, Any]]:
    """One message's events: through the transport, or straight from the emulator."""
    get = h.action if through else h.direct
    results: list[dict[str, Any]] = get("list-livefeed-events", {"messageId": message_id})[
        "results"
    ]
    return results


def true_counts(h: Harness, message_id: str) -> Counter[str]:
    """Every event of a message, uncapped, from the database (the emulator's truth)."""
    rows = h.control.store.read(
        "SELECT type, COUNT(*) AS n FROM events WHERE message_id = ? GROUP BY type",
        (message_id,),
    )
    return Counter({r["type"]: r["n"] for r in rows})


def sequences(h: Harness) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = h.action("list-sequences", {"limit": 300})["results"]
    return results


def recipients_of(h: Harness, sequence_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        page = h.action("get-sequence-recipients", {"sequenceId": sequence_id, "offset": len(rows)})
        rows += page
        if len(page) < 50:
            return rows


def all_recipients(h: Harness) -> dict[str, list[dict[str, Any]]]:
    return {s["_id"]: recipients_of(h, s["_id"]) for s in sequences(h)}


def sent_stages(
    recipients: list[dict[str, Any]],
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for recipient in recipients:
        for stage in recipient["stages"]:
            if stage["messageId"] is not None:
                yield recipient, stage


def messages_by_id(h: Harness) -> dict[str, dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor: dict[str, Any] = {}
    while True:
        page = h.action("list-messages", {"limit": 300, **cursor})
        rows += page["results"]
        if not page["hasNext"]:
            return {m["_id"]: m for m in rows}
        cursor = {"next": page["next"]}


def percent(count: int, of: int) -> float:
    """As the README defines the stats' percentages: half up, one decimal, exact."""
    return int(Fraction(1000 * count, of) + Fraction(1, 2)) / 10 if of else 0.0


def number_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def capped_stage(h: Harness) -> dict[str, Any]:
    """The stage of a forwarded email (more than 200 events), as the API shows it;
    found in the database, so only its sequence's recipients are read."""
    row = h.control.store.one(
        "SELECT m._id, m.sequence_id FROM messages m JOIN events e ON e.message_id = m._id "
        "WHERE m.sequence_id IS NOT NULL AND e.type != 'sent' GROUP BY m._id "
        "HAVING COUNT(*) > 200 LIMIT 1"
    )
    assert row is not None, "the small account has no forwarded (capped) email"
    for _, stage in sent_stages(recipients_of(h, row["sequence_id"])):
        if stage["messageId"] == row["_id"]:
            return stage
    raise AssertionError(f"no stage shows message {row['_id']}")


# -- the action's schema follows the shape ----------------------------------------------


@pytest.mark.parametrize("shape", ["per-message", "account"])
def test_action_schema_follows_the_shape(feed_shape: Shape, shape: str) -> None:
    h = feed_shape(shape)
    items = h.call(h.transport.list_actions(limit=50))["items"]
    record = next(a for a in items if a["key"] == "list-livefeed-events")
    spec = catalog.get("list-livefeed-events")
    if shape == "account":
        assert record["inputSchema"] == catalog.ACCOUNT_FEED_INPUT
        assert record["outputSchema"] == catalog.ACCOUNT_FEED_OUTPUT
    else:
        assert record["inputSchema"] == spec.input_schema  # the catalog: Mixmax as documented
        schema = record["inputSchema"]
        assert schema["type"] == "object" and schema["required"] == ["messageId"]
        assert set(schema["properties"]) == {"messageId"}
        message_id = schema["properties"]["messageId"]
        assert message_id["type"] == "string" and message_id["minLength"] == 1
        assert message_id["description"]
        assert schema.get("additionalProperties", True) is not False
        assert record["outputSchema"] == {
            "type": "object",
            "properties": {"results": {"type": "array", "items": {"type": "object"}}},
        }
        # The server checks input against the schema it lists: no since/types here.
        with pytest.raises(ActionFailedError, match="messageId"):
            h.action("list-livefeed-events", {"limit": 5})


# -- GET /livefeed/events?messageId= (per-message) ---------------------------------------


def test_one_messages_events_documented_fields_newest_first(feed_shape: Shape) -> None:
    h = feed_shape("per-message")
    clicked = feed(h, "is:clicked", limit=300)["results"]
    downloaded = feed(h, "is:downloaded", limit=5)["results"]
    assert clicked and downloaded
    seen: set[str] = set()
    for message in [*clicked[:4], *downloaded[:2]]:
        events = events_of(h, message["_id"])
        assert events
        truth = true_counts(h, message["_id"])
        assert Counter(e["type"] for e in events) == Counter(
            {k: v for k, v in truth.items() if k in EVENT_TYPES}
        )
        stamps = [e["timestamp"] for e in events]
        assert stamps == sorted(stamps, reverse=True)
        for event in events:
            assert list(event) == EVENT_FIELDS
            assert event["type"] in EVENT_TYPES
            assert isinstance(event["timestamp"], int) and not isinstance(event["isMobile"], bool)
            assert event["isMobile"] in (0, 1)
            assert len(event["_id"]) == 24
            assert event["recipientEmail"] == message["recipients"][0]["email"]
            assert event["city"] and event["country"] and event["region"]
            assert (event["linkUrl"] is not None) == (event["type"] == "clicked")
            assert (event["linkText"] is not None) == (event["type"] == "clicked")
            assert (event["fileName"] is not None) == (event["type"] == "downloaded")
            seen.add(event["type"])
        # The proxy answers the same; a connector's wasSentViaMixmax is ignored.
        body = h.call(
            h.transport.request(
                "/livefeed/events",
                query={"messageId": message["_id"], "wasSentViaMixmax": "true"},
            )
        )["body"]
        assert body == {"results": events}
    assert {"opened", "clicked", "downloaded"} <= seen


def test_a_forwarded_email_shows_its_newest_200_events_and_counts_all(feed_shape: Shape) -> None:
    h = feed_shape("per-message")
    stage = capped_stage(h)
    events = events_of(h, stage["messageId"])
    assert len(events) == 200
    newest = h.control.store.read(
        "SELECT _id FROM events WHERE message_id = ? AND type IN "
        "('opened', 'clicked', 'downloaded', 'replied') ORDER BY ts DESC, _id DESC LIMIT 200",
        (stage["messageId"],),
    )
    assert [e["_id"] for e in events] == [r["_id"] for r in newest]
    # The stage keeps the true count, above what the endpoint shows.
    assert stage["opens"] == true_counts(h, stage["messageId"])["opened"] > 200


def test_printed_answers_shape_in_one_arrow_pass_as_the_parsed_ones(feed_shape: Shape) -> None:
    """What a pull does with a batch: each message's answer as the command printed it,
    shaped together. Equal to the answers parsed one by one, capped email included,
    and read by Arrow (no answer parsed in Python)."""
    h = feed_shape("per-message")
    capped = capped_stage(h)["messageId"]
    replied = [m["_id"] for m in feed(h, "sequence:* is:replied", limit=3)["results"]]
    quiet = h.control.store.one(
        "SELECT m._id FROM messages m WHERE m.sequence_id IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM events e WHERE e.message_id = m._id AND e.type != 'sent') LIMIT 1"
    )
    assert quiet is not None
    ids = [capped, *replied, quiet["_id"]]  # the last one: sent, never engaged
    runs = [
        h.call(h.transport.run_action_json("list-livefeed-events", {"messageId": m})) for m in ids
    ]
    with mock.patch.object(engagement, "_output", wraps=engagement._output) as one_by_one:
        frame, counts = engagement.shape_event_runs(ids, runs)
    assert one_by_one.call_count == 0
    answers = [engagement.tag_events(m, {"results": events_of(h, m)}) for m in ids]
    pd.testing.assert_frame_equal(frame, frames.shape("events", [e for a in answers for e in a]))
    assert counts == [len(a) for a in answers] and counts[0] == 200 and counts[-1] == 0
    with pytest.raises(NotFoundError):  # failures raise as for a parsed answer
        h.call(h.transport.run_action_json("list-livefeed-events", {"messageId": "0" * 24}))


def test_events_need_a_message_the_user_can_see(feed_shape: Shape) -> None:
    h = feed_shape("per-message")
    with pytest.raises(ActionFailedError, match="messageId"):
        h.action("list-livefeed-events", {})
    with pytest.raises(ActionFailedError, match="messageId"):
        h.call(h.transport.request("/livefeed/events"))
    with pytest.raises(NotFoundError):
        h.action("list-livefeed-events", {"messageId": "nosuchmessage0000"})
    with pytest.raises(NotFoundError):
        h.call(h.transport.request("/livefeed/events", query={"messageId": "nosuchmessage0000"}))
    # A message of someone who shares no team with the current user is not in the feed.
    store = h.control.store
    mine = store.one("SELECT * FROM messages WHERE sent IS NOT NULL LIMIT 1")
    assert mine is not None
    with store.tx() as conn:
        conn.execute(
            "INSERT INTO users VALUES ('Stranger000000000', 'x@other.invalid', 'Stranger', "
            "'UTC', 0, 0)"
        )
        conn.execute(
            "INSERT INTO messages SELECT 'StrangersMessage1', created, updated, "
            "'Stranger000000000', sent, scheduled, to_json, cc_json, bcc_json, subject, body, "
            "NULL, NULL, NULL, NULL, tracking, link_tracking FROM messages WHERE _id = ?",
            (mine["_id"],),
        )
    with pytest.raises(NotFoundError):
        h.action("list-livefeed-events", {"messageId": "StrangersMessage1"})
    assert "StrangersMessage1" not in {m["_id"] for m in feed_all(h, "from:everyone")}
    # A draft is the user's, and has no events yet.
    draft = h.action("create-message", {"to": [{"email": "new@draft.example"}], "subject": "d"})
    assert events_of(h, draft["_id"]) == []


# -- GET /livefeed ---------------------------------------------------------------------


def test_livefeed_pages_walk_to_the_end_with_stats_for_the_whole_query(feed_shape: Shape) -> None:
    h = feed_shape("per-message")
    limit = 150 if h.mode == "cli" else 37
    first = feed(h, limit=limit)
    assert set(first) == {"results", "next", "hasNext", "previous", "hasPrevious", "stats"}
    rows = feed_all(h, limit=limit)
    ids = [m["_id"] for m in rows]
    assert len(ids) == len(set(ids)) == first["stats"]["sent"]
    keys = [(m["sent"], m["_id"]) for m in rows]
    assert keys == sorted(keys, reverse=True)
    truth = h.control.store.one("SELECT COUNT(*) AS n FROM messages WHERE sent IS NOT NULL")
    assert truth is not None and truth["n"] == len(ids)
    # The stats do not depend on the page.
    assert feed(h, limit=1)["stats"] == first["stats"] == feed(h, limit=300)["stats"]
    assert feed(h, limit=limit, next=first["next"])["stats"] == first["stats"]
    back = feed(h, limit=limit, previous=feed(h, limit=limit, next=first["next"])["previous"])
    assert [m["_id"] for m in back["results"]] == [m["_id"] for m in first["results"]]
    message = rows[0]
    assert list(message) == [
        "_id",
        "userId",
        "recipients",
        "fromEmail",
        "fromName",
        "subject",
        "sent",
        "service",
        "serviceMessageId",
        "serviceThreadId",
        "includeInTeamLiveFeed",
    ]
    assert message["service"] == "gmail" and isinstance(message["sent"], int)
    for key in ("serviceMessageId", "serviceThreadId"):
        assert len(message[key]) == 16 and int(message[key], 16) >= 0
    assert set(message["recipients"][0]) == {"name", "email"}
    stats = first["stats"]
    assert set(stats) == STATS and set(stats["percentages"]) == PERCENTAGES
    assert stats["delivered"] == stats["sent"] - stats["bounced"]
    shares = stats["percentages"]
    for key in ("opened", "clicked", "downloaded", "replied"):
        assert shares[key] == percent(stats[key], stats["delivered"]), key
    assert shares["bounced"] == percent(stats["bounced"], stats["sent"])
    assert shares["delivered"] == percent(stats["delivered"], stats["sent"])
    assert all(stats[k] == 0 for k in ("accepted", "declined", "tentative"))


def test_livefeed_search_keys(feed_shape: Shape) -> None:
    h = feed_shape("per-message")
    everything = feed_all(h)
    total = len(everything)
    me = h.action("get-current-user")
    by_id = {m["_id"]: m for m in everything}

    def ids(search: str) -> set[str]:
        return {m["_id"] for m in feed_all(h, search)}

    def stored(message_id: str, kind: str) -> bool:
        return true_counts(h, message_id)[kind] > 0

    flagged: dict[str, set[str]] = {}
    for kind in ("opened", "clicked", "downloaded", "replied", "bounced"):
        found = flagged[kind] = ids(f"is:{kind}")
        assert found and all(stored(i, kind) for i in found), kind
        assert found == {i for i in by_id if stored(i, kind)}, kind
        stats = feed(h, f"IS:{kind.upper()}", limit=1)["stats"]
        assert stats["sent"] == len(found)
        assert stats[kind] == len(found)
    assert feed(h, "is:bounced", limit=1)["stats"]["delivered"] == 0

    target = everything[3]["recipients"][0]
    for term in (target["email"], target["email"].upper(), quoted(target["name"])):
        found = ids(f"to:{term}")
        assert everything[3]["_id"] in found
        for i in found:
            people = by_id[i]["recipients"]
            assert any(
                target["email"].casefold() in p["email"].casefold()
                or target["name"].casefold() in (p["name"] or "").casefold()
                for p in people
            )

    mine = ids("from:me")
    assert mine and all(by_id[i]["userId"] == me["_id"] for i in mine)
    assert ids("from:everyone") == set(by_id)
    team = h.action("list-teams")["results"][1]
    members = {m["userId"]["_id"] for m in team["members"] if m.get("accepted")}
    in_team = ids(f"from:{quoted(team['name'].upper())}")
    assert in_team and {by_id[i]["userId"] for i in in_team} <= members
    other = next(m for m in everything if m["userId"] != me["_id"])
    assert ids(f"from:{other['fromEmail']}") == {
        m["_id"] for m in everything if m["userId"] == other["userId"]
    }

    word = "quick question"
    found = ids(f"subject:{quoted(word.upper())}")
    assert found == {i for i, m in by_id.items() if word in m["subject"].casefold()}

    messages = messages_by_id(h)
    in_sequences = {i for i in by_id if messages[i].get("sequence")}
    assert ids("sequence:*") == in_sequences
    seq = sequences(h)[0]
    assert ids(f"sequence:{quoted(seq['name'].upper())}") == {
        i for i in in_sequences if messages[i]["sequence"]["id"] == seq["_id"]
    }
    assert ids('sequence:"no such sequence"') == set()

    expanded = h.action("list-sequences", {"limit": 300, "expand": "stages"})["results"]
    snippet_of = {st["_id"]: st.get("snippetId") for s in expanded for st in s["stages"]}
    snippet = next(
        sn
        for sn in h.action("list-snippets", {"limit": 300})["results"]
        if sn["_id"] in set(snippet_of.values())
    )
    found = ids(f"template:{quoted(snippet['name'])}")
    assert found and found == {
        i
        for i in in_sequences
        if snippet_of.get(messages[i]["sequence"]["stageId"]) == snippet["_id"]
    }

    day = datetime.fromtimestamp(everything[total // 2]["sent"] / 1000, tz=UTC).date()
    start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000
    span = f"{day:%m/%d/%Y}-{day:%m/%d/%Y}"
    found = ids(f"sent:{span}")
    assert found == {i for i, m in by_id.items() if start <= m["sent"] < start + 86_400_000}
    both = ids(f"sent:{span} is:opened")
    assert both == found & flagged["opened"]

    for bad, says in (
        ("color:red", "is:opened"),
        ("opened", "key:value"),
        ("sent:2025-05-01", "MM/DD/YYYY"),
        ("sent:02/30/2025-03/01/2025", "MM/DD/YYYY"),
        ("sent:05/02/2025-05/01/2025", "ends before"),
        ("is:forwarded", "is: accepts"),
        ("from:nobody", "from: accepts"),
        ('subject:"open quote', "quote"),
    ):
        with pytest.raises(ActionFailedError, match=says):
            feed(h, bad)


# -- recipients' stages ---------------------------------------------------------------


def test_recipient_stages_carry_numbers_never_booleans(sandbox: Harness) -> None:
    rows = [r for rs in all_recipients(sandbox).values() for r in rs]
    assert rows
    types: set[str] = set()
    for recipient in rows:
        assert isinstance(recipient["createdAt"], int)
        assert recipient["to"]["email"] == recipient["email"]
        assert recipient["state"] in ("active", "completed", "failed")
        assert recipient["lastStageSentOrdinal"] is None or isinstance(
            recipient["lastStageSentOrdinal"], int
        )
        totals = recipient["analytics"]["events"]
        assert set(totals) == {"opens", "clicks", "downloads"}
        for key in totals:
            assert totals[key] == sum(s[key] or 0 for s in recipient["stages"]), key
        for stage in recipient["stages"]:
            assert set(stage) == STAGE_FIELDS
            types.add(stage["type"])
            for key in COUNTERS:
                assert number_or_null(stage[key]), (key, stage[key])
            for key in ("replied", "bounced"):
                assert stage[key] in (0, 1, None)
            email = stage["type"] in ("email", "manual_email")
            assert (stage["opens"] is not None) == email
            for key in ("scheduledAt", "sentAt", "processedAt"):
                assert stage[key] is None or isinstance(stage[key], int), key
            if stage["sentAt"] is not None:
                assert stage["processedAt"] == stage["sentAt"]
            window = stage["scheduleBetween"]
            assert set(window) == {"start", "end", "timezone"}
            assert number_or_null(window["start"]) and window["start"] is not None
            assert number_or_null(window["end"]) and window["end"] > window["start"]
            assert set(stage["from"]) == {"email", "name"} and "@" in stage["from"]["email"]
            assert (stage["messageId"] is not None) == (stage["state"] == "sent")
    assert {"email", "call"} <= types


def test_four_sources_agree_on_the_whole_account(feed_shape: Shape) -> None:
    """Every sequence email: stage counters == its events (uncapped), the message
    points back at its stage, and /livefeed stats per sequence == the stages' sums."""
    h = feed_shape("per-message")
    messages = messages_by_id(h)
    bounced_feed = {m["_id"] for m in feed_all(h, "sequence:* is:bounced")}
    by_sequence = all_recipients(h)
    checked = capped = 0
    for seq in sequences(h):
        recipients = by_sequence[seq["_id"]]
        sums: Counter[str] = Counter()
        people: set[str] = set()
        for recipient, stage in sent_stages(recipients):
            mid = stage["messageId"]
            assert messages[mid]["sequence"] == {
                "id": seq["_id"],
                "stageId": stage["stageId"],
                "recipientId": recipient["_id"],
            }
            truth = true_counts(h, mid)
            assert stage["opens"] == truth["opened"]
            assert stage["clicks"] == truth["clicked"]
            assert stage["downloads"] == truth["downloaded"]
            assert stage["replied"] == int(truth["replied"] > 0)
            assert stage["bounced"] == int(truth["bounced"] > 0) == int(mid in bounced_feed)
            engaged = sum(truth[k] for k in EVENT_TYPES)
            if engaged:
                # The endpoint, straight from the emulator (one call per message; the
                # transport is checked on a sample below), shows the same, capped.
                shown = Counter(e["type"] for e in events_of(h, mid, through=False))
                if engaged > 200:
                    capped += 1
                    assert sum(shown.values()) == 200
                else:
                    assert shown == Counter({k: truth[k] for k in EVENT_TYPES if truth[k]})
            checked += 1
            sums["sent"] += 1
            sums["bounced"] += stage["bounced"]
            for counter, flag in (
                ("opens", "opened"),
                ("clicks", "clicked"),
                ("downloads", "downloaded"),
                ("replied", "replied"),
            ):
                sums[flag] += int(stage[counter] > 0)
            people.add(recipient["to"]["email"].lower())
        stats = feed(h, f"sequence:{quoted(seq['name'])}", limit=1)["stats"]
        for key in ("sent", "bounced", "opened", "clicked", "downloaded", "replied"):
            assert stats[key] == sums[key], (seq["name"], key)
        assert stats["delivered"] == sums["sent"] - sums["bounced"]
        assert stats["recipients"] == len(people)
    assert checked > 500 and capped >= 1
    # Through the transport too, on a sample that includes the capped email.
    sample = [capped_stage(h)["messageId"], *list(bounced_feed)[:2]]
    sample += [m["_id"] for m in feed(h, "sequence:* is:replied", limit=3)["results"]]
    for mid in sample:
        assert events_of(h, mid) == events_of(h, mid, through=False)


def test_new_activity_keeps_the_sources_agreeing(feed_shape: Shape) -> None:
    h = feed_shape("per-message")
    store = h.control.store
    before = store.one("SELECT MAX(ts) AS ts FROM events")
    assert before is not None
    h.control.add_activity(400, seed=3)
    touched = {
        r["message_id"]
        for r in store.read(
            "SELECT DISTINCT message_id FROM events WHERE ts > ? AND type != 'sent'",
            (before["ts"],),
        )
    }
    assert touched
    by_sequence = all_recipients(h)
    seen = 0
    for recipients in by_sequence.values():
        for recipient, stage in sent_stages(recipients):
            totals = recipient["analytics"]["events"]
            for key in totals:
                assert totals[key] == sum(s[key] or 0 for s in recipient["stages"])
            if stage["messageId"] not in touched:
                continue
            seen += 1
            truth = true_counts(h, stage["messageId"])
            assert (stage["opens"], stage["clicks"], stage["downloads"]) == (
                truth["opened"],
                truth["clicked"],
                truth["downloaded"],
            )
            assert stage["replied"] == int(truth["replied"] > 0)
            assert stage["bounced"] == 0  # bounced emails get no new engagement
    assert seen > 10


# -- the account-wide shape still answers as before -------------------------------------


def test_account_shape_still_lists_every_event(feed_shape: Shape) -> None:
    h = feed_shape("account")
    page = h.action("list-livefeed-events", {"limit": 20, "types": ["sent", "opened"]})
    assert page["hasNext"] and {e["type"] for e in page["results"]} <= {"sent", "opened"}
    event = page["results"][0]
    assert {"messageId", "userId", "subject", "sequence"} <= set(event)
    stamps = [e["timestamp"] for e in page["results"]]
    assert stamps == sorted(stamps, reverse=True)
    one = h.action("list-livefeed-events", {"messageId": event["messageId"], "limit": 50})
    assert {e["messageId"] for e in one["results"]} == {event["messageId"]}
    # /livefeed is the same in both shapes.
    assert feed(h, "is:opened", limit=2)["stats"]["opened"] > 0


# -- the controls ------------------------------------------------------------------------


def test_shape_is_set_at_open_by_env_and_by_control(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "shape.sqlite"
    settings = Settings(home=tmp_path)
    t = SandboxTransport.open(settings, size="small", db=db, livefeed="per-message")
    assert t.livefeed == "per-message"
    t.sandbox_set_livefeed("account")
    assert t.livefeed == "account"
    with pytest.raises(ValueError, match="per-message"):
        t.sandbox_set_livefeed("weekly")
    # An existing database keeps its shape unless told otherwise.
    again = SandboxTransport.open(settings.with_(sandbox_livefeed="per-message"), db=db)
    assert again.livefeed == "account"
    asyncio.run(again.aclose())
    asyncio.run(t.aclose())

    monkeypatch.setenv("MIXMAX_NB_SANDBOX_LIVEFEED", "per-message")
    assert Settings.from_env().sandbox_livefeed == "per-message"
    fresh = SandboxTransport.open(Settings.from_env(), size="small", db=tmp_path / "env.sqlite")
    assert fresh.livefeed == "per-message"
    asyncio.run(fresh.aclose())

    monkeypatch.setenv("MIXMAX_NB_SANDBOX_DB", str(db))
    assert cli.main(["sandbox", "livefeed", "per-message"]) == 0
    assert json.loads(capsys.readouterr().out) == {"livefeed": "per-message"}
    assert cli.main(["sandbox", "info"]) == 0
    assert json.loads(capsys.readouterr().out)["livefeed"] == "per-message"
    assert cli.main(["sandbox", "livefeed", "weekly"]) == 2
    capsys.readouterr()
    reopened = SandboxTransport.open(Settings.from_env(), db=db)
    assert reopened.livefeed == "per-message"
    reopened.sandbox_reset()
    assert reopened.livefeed == "per-message"  # a reset keeps the shape, like the profile
    asyncio.run(reopened.aclose())


def test_connect_passes_the_shape_through() -> None:
    import mixmax_nb as mx

    client = mx.connect("sandbox", size="small", db=":memory:", livefeed="per-message")
    transport = client.transport
    assert isinstance(transport, SandboxTransport) and transport.livefeed == "per-message"
    with pytest.raises(TypeError, match="feed"):  # a typo is Python's own error
        mx.connect("sandbox", size="small", db=":memory:", feed="per-message")  # type: ignore[call-arg]
