"""Every one of the 20 actions, pagination to the end, writes seen on the next read,
and every documented error, both ways in."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from mixmax_nb import catalog
from mixmax_nb.errors import (
    ActionFailedError,
    BadOutputError,
    CliTimeoutError,
    ConnectionNotReadyError,
    NotFoundError,
    RateLimitedError,
    ServerError,
)
from mixmax_nb.sandbox.faults import MembraneFault

from .conftest import Harness

LIST_ACTIONS = [a.key for a in catalog.ACTIONS if a.page == "results" and not a.required]


def walk(h: Harness, key: str, limit: int, **extra: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(10_000):
        page = h.action(key, {"limit": limit, **extra, **({"next": cursor} if cursor else {})})
        rows += page["results"]
        if not page["hasNext"]:
            if page["results"]:
                assert page["next"]  # echoed on the last page, as Mixmax does
            return rows
        cursor = page["next"]
    raise AssertionError("pagination never ended")


def first_sequence(h: Harness, writable: bool = True) -> dict[str, Any]:
    me = h.action("get-current-user")["_id"]
    for seq in walk(h, "list-sequences", 300, expand="stages"):
        roles = {t["role"] for t in seq["shared"]["teams"]}
        ok = seq["userId"] == me or "read-write" in roles
        if (ok == writable) and not seq["archived"]:
            return seq
    raise AssertionError("no such sequence")


def test_action_list_has_the_20_actions(sandbox: Harness) -> None:
    page = sandbox.call(sandbox.transport.list_actions(limit=50))
    actions = page["items"]
    assert page["cursor"] is None
    assert sorted(a["key"] for a in actions) == sorted(catalog.BY_KEY)
    for a in actions:
        assert {"id", "key", "name", "description", "inputSchema", "outputSchema"} <= set(a)
        assert a["id"] != a["key"] and len(a["id"]) == 24


def test_action_list_pages_with_a_cursor(sandbox: Harness) -> None:
    first = sandbox.call(sandbox.transport.list_actions(limit=7))
    assert len(first["items"]) == 7 and first["cursor"]
    keys = [a["key"] for a in first["items"]]
    cursor = first["cursor"]
    while cursor:
        page = sandbox.call(sandbox.transport.list_actions(limit=7, cursor=cursor))
        keys += [a["key"] for a in page["items"]]
        cursor = page["cursor"]
    assert sorted(keys) == sorted(catalog.BY_KEY)


def test_actions_run_by_the_listed_id_never_by_key(sandbox: Harness) -> None:
    """`action run <key>` is not found, as on Membrane; the transport runs by the id."""
    listed = {a["key"]: a["id"] for a in sandbox.call(sandbox.transport.list_actions())["items"]}
    cid = sandbox.transport.connection_id
    assert cid is not None
    me = sandbox.control.run_action(listed["get-current-user"], {}, cid)["output"]
    assert me["sandbox"] is True
    with pytest.raises(MembraneFault, match="not found"):
        sandbox.control.run_action("get-current-user", {}, cid)
    assert sandbox.action("get-current-user")["_id"] == me["_id"]


@pytest.mark.parametrize(
    ("intent", "expected"),
    [
        ("add recipients to a sequence", "add-recipient-to-sequence"),
        ("email opens and clicks", "list-livefeed-events"),
        ("webhook rules", "list-rules"),
        ("current user profile", "get-current-user"),
    ],
)
def test_intent_ranking(sandbox: Harness, intent: str, expected: str) -> None:
    ranked = sandbox.call(sandbox.transport.list_actions(intent=intent, limit=5))["items"]
    assert ranked[0]["key"] == expected


@pytest.mark.parametrize("key", LIST_ACTIONS)
def test_list_actions_walk_to_the_end_newest_first(sandbox: Harness, key: str) -> None:
    big = key in ("list-livefeed-events", "list-messages")
    # Through the command each page is a process: the big lists walk at the largest
    # page there (still many pages, to the end); small pages of them are walked in
    # process. The truth comes straight from the emulator, not a second walk.
    limit = (300 if sandbox.mode == "cli" else 150) if big else 7
    rows = walk(sandbox, key, limit)
    all_at_once: list[dict[str, Any]] = []
    cursor: dict[str, Any] = {}
    while True:
        page = sandbox.direct(key, {"limit": 300, **cursor})
        all_at_once += page["results"]
        if not page["hasNext"]:
            break
        cursor = {"next": page["next"]}
    assert [r["_id"] for r in rows] == [r["_id"] for r in all_at_once]
    assert len({r["_id"] for r in rows}) == len(rows) > 0


def test_limit_is_clamped_and_cursor_is_base64url_ejson(
    feed_shape: Callable[[str], Harness],
) -> None:
    # The account-wide profile: the one list here with 24-hex ids and enough rows.
    sandbox = feed_shape("account")
    page = sandbox.action("list-livefeed-events", {"limit": 300})
    assert len(page["results"]) == 300
    raw = page["next"]
    assert "=" not in raw
    value = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    assert value[1] == {"$oid": page["results"][-1]["_id"]}
    times = [e["timestamp"] for e in page["results"]]
    assert times == sorted(times, reverse=True)
    # Through the REST proxy a limit over 300 is clamped silently.
    body = sandbox.call(sandbox.transport.request("/livefeed/events", query={"limit": 5000}))
    assert len(body["body"]["results"]) == 300


def test_get_actions(sandbox: Harness) -> None:
    h = sandbox
    me = h.action("get-current-user")
    assert "Sandbox" in me["name"] and me["sandbox"] is True
    poll = h.action("list-polls", {"limit": 1})["results"][0]
    assert h.action("get-poll", {"pollId": poll["_id"]})["options"] == poll["options"]
    snip = h.action("list-snippets", {"limit": 1})["results"][0]
    assert h.action("get-snippet", {"snippetId": snip["_id"]})["title"] == snip["title"]
    msg = h.action("list-messages", {"limit": 1})["results"][0]
    assert h.action("get-message", {"messageId": msg["_id"]})["subject"] == msg["subject"]
    assert isinstance(msg["created"], int)
    seq = h.action("list-sequences", {"limit": 1})["results"][0]
    assert seq["createdAt"].endswith("Z")  # ISO for sequences, epoch ms elsewhere
    found = h.action("search-sequences", {"name": seq["name"][:6]})["results"]
    assert seq["_id"] in [s["_id"] for s in found]
    rules = h.action("list-rules", {"expand": "actions"})["results"]
    assert all("actions" in r for r in rules)
    assert all("actions" not in r for r in h.action("list-rules")["results"])
    teams = h.action("list-teams")["results"]
    assert teams and all(t["members"] for t in teams)
    unsubs = h.action("list-unsubscribes")["results"]
    assert all(isinstance(u["createdAt"], int) for u in unsubs)


def test_livefeed_filters_of_the_account_profile(feed_shape: Callable[[str], Harness]) -> None:
    h = feed_shape("account")
    clicks = walk(h, "list-livefeed-events", 300, types=["clicked"])
    assert clicks and {e["type"] for e in clicks} == {"clicked"}
    assert all(e["linkUrl"] for e in clicks)
    e = clicks[0]
    assert len(e["_id"]) == 24 and len(e["messageId"]) == 17
    by_msg = walk(h, "list-livefeed-events", 50, messageId=e["messageId"])
    assert {x["messageId"] for x in by_msg} == {e["messageId"]}
    since = e["timestamp"]
    later = walk(h, "list-livefeed-events", 300, since=since)
    assert min(x["timestamp"] for x in later) >= since
    iso = h.action("list-livefeed-events", {"since": "2025-06-01T00:00:00Z", "limit": 5})
    assert all(x["timestamp"] >= 1748736000000 for x in iso["results"])
    if e["sequence"]:
        seq_id = e["sequence"]["_id"]
        rows = h.action("list-livefeed-events", {"sequenceId": seq_id, "limit": 50})["results"]
        assert {x["sequence"]["_id"] for x in rows} == {seq_id}


def test_recipients_bare_array_offset_paging_drafts_hidden(sandbox: Harness) -> None:
    h = sandbox
    seq = first_sequence(h)
    rows: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = h.action("get-sequence-recipients", {"sequenceId": seq["_id"], "offset": offset})
        assert isinstance(page, list) and len(page) <= 50
        rows += page
        if len(page) < 50:
            break
        offset += 50
    assert len({r["_id"] for r in rows}) == len(rows)
    assert all(r["state"] in ("active", "completed", "failed") for r in rows)
    drafts = h.control.store.read(
        "SELECT COUNT(*) FROM recipients WHERE sequence_id = ? AND draft = 0", (seq["_id"],)
    )[0][0]
    assert len(rows) == drafts


def test_add_recipients_outcomes_and_visible_on_next_read(sandbox: Harness) -> None:
    h = sandbox
    seq = first_sequence(h)
    needed = {v: "x" for v in seq["variables"]}
    existing = h.action("get-sequence-recipients", {"sequenceId": seq["_id"], "limit": 1})[0]
    h.action("add-unsubscribe", {"email": "blocked@new.example"})
    out = h.action(
        "add-recipient-to-sequence",
        {
            "sequenceId": seq["_id"],
            "recipients": [
                {"email": "fresh@new.example", "variables": needed},
                {"email": existing["email"], "variables": needed},
                {"email": existing["email"].upper(), "variables": needed},
                {"email": "Blocked@new.example", "variables": needed},
                {"email": "novars@new.example"},
                {"email": "draft@new.example", "variables": needed, "scheduledAt": False},
            ],
        },
    )["recipients"]
    status = {o["email"]: o["status"] for o in out}
    assert status == {
        "fresh@new.example": "success",
        existing["email"]: "duplicated",
        existing["email"].upper(): "success",  # case-sensitive, as Mixmax
        "Blocked@new.example": "unsubscribed",
        "novars@new.example": "error" if needed else "success",
        "draft@new.example": "success",
    }
    if needed:
        errs = next(o for o in out if o["email"] == "novars@new.example")["errors"]
        assert all(e.startswith("Missing variable: ") for e in errs)
    listed = {r["email"] for r in h.action("get-sequence-recipients", {"sequenceId": seq["_id"]})}
    assert "fresh@new.example" in listed
    assert "draft@new.example" not in listed  # drafts are hidden
    again = h.action(
        "add-recipient-to-sequence",
        {
            "sequenceId": seq["_id"],
            "recipients": [{"email": "novars@new.example"}],
            "allowMissingVariables": True,
        },
    )["recipients"]
    assert again[0]["status"] == "success"
    cancelled = h.action(
        "cancel-sequence-recipient",
        {"sequenceId": seq["_id"], "emails": ["fresh@new.example", "nobody@new.example"]},
    )
    assert cancelled == {"recipients": ["fresh@new.example"]}
    rows = h.action("get-sequence-recipients", {"sequenceId": seq["_id"]})
    fresh = next(r for r in rows if r["email"] == "fresh@new.example")
    assert fresh["state"] == "completed" and fresh["completedReason"] == "cancelled"


def test_daily_send_limit_spreads_over_weekdays(sandbox: Harness) -> None:
    h = sandbox
    h.control.store.set_meta("daily_send_limit", 3)
    seq = first_sequence(h)
    needed = {v: "x" for v in seq["variables"]}
    recipients = [{"email": f"bulk{i}@new.example", "variables": needed} for i in range(10)]
    out = h.action(
        "add-recipient-to-sequence", {"sequenceId": seq["_id"], "recipients": recipients}
    )["recipients"]
    days = [o["scheduledAt"] // 86_400_000 for o in out]
    assert len(set(days)) >= 4  # 10 at 3 a day
    assert max(days.count(d) for d in set(days)) <= 3
    assert days == sorted(days)  # list order keeps its priority


def test_messages_draft_then_send_then_feed(sandbox: Harness) -> None:
    h = sandbox
    draft = h.action(
        "create-message",
        {
            "to": [{"email": "jane@new.example", "name": "Jane <b>"}],
            "subject": "Hi 👋",
            "body": "<p>x</p>",
        },
    )
    assert draft["sent"] is None and len(draft["_id"]) == 17
    assert h.action("list-messages", {"limit": 1})["results"][0]["_id"] == draft["_id"]
    sent = h.action("send-message", {"messageId": draft["_id"]})
    assert isinstance(sent["sent"], int)
    # Mixmax has no `sent` event: the send shows in the live feed's messages, and the
    # message has no engagement events yet.
    assert h.action("list-livefeed-events", {"messageId": draft["_id"]})["results"] == []
    feed = h.call(h.transport.request("/livefeed", query={"limit": 1}))["body"]
    assert feed["results"][0]["_id"] == draft["_id"]
    with pytest.raises(ActionFailedError):
        h.action("send-message", {"messageId": draft["_id"]})


def test_unsubscribe_add_and_remove(sandbox: Harness) -> None:
    h = sandbox
    added = h.action("add-unsubscribe", {"email": "gone@new.example", "name": "Gone"})
    assert added["email"] == "gone@new.example"
    first = h.action("list-unsubscribes", {"limit": 1})["results"][0]
    assert first["email"] == "gone@new.example"
    h.action("remove-unsubscribe", {"email": "gone@new.example"})
    emails = {u["email"] for u in walk(h, "list-unsubscribes", 300)}
    assert "gone@new.example" not in emails
    with pytest.raises(NotFoundError):
        h.action("remove-unsubscribe", {"email": "gone@new.example"})


# -- errors -------------------------------------------------------------------------------


def test_400_bad_input_and_bad_cursor(sandbox: Harness) -> None:
    with pytest.raises(ActionFailedError):
        sandbox.action("list-teams", {"limit": "ten"})
    with pytest.raises(ActionFailedError) as info:
        sandbox.action("list-teams", {"next": "%%%not-a-cursor"})
    assert info.value.status == 400


def test_404_unknown_ids_and_actions(sandbox: Harness) -> None:
    for key, field in (
        ("get-poll", "pollId"),
        ("get-snippet", "snippetId"),
        ("get-message", "messageId"),
    ):
        with pytest.raises(NotFoundError):
            sandbox.action(key, {field: "nope"})
    with pytest.raises(NotFoundError):
        sandbox.action("get-sequence-recipients", {"sequenceId": "0" * 24})
    with pytest.raises(NotFoundError):
        sandbox.action("no-such-action", {})


def test_403_read_only_sequence(sandbox: Harness) -> None:
    seq = first_sequence(sandbox, writable=False)
    with pytest.raises(ActionFailedError) as info:
        sandbox.action(
            "add-recipient-to-sequence",
            {"sequenceId": seq["_id"], "recipients": [{"email": "a@new.example"}]},
        )
    assert info.value.status == 403


def test_401_bad_token_through_the_proxy(sandbox: Harness) -> None:
    with pytest.raises(ConnectionNotReadyError):
        sandbox.call(sandbox.transport.request("/users/me", headers={"X-API-Token": "wrong"}))


def test_proxy_request_reads_and_writes(sandbox: Harness) -> None:
    h = sandbox
    got = h.call(h.transport.request("/v1/users/me"))
    assert got["status"] == 200 and got["body"]["sandbox"] is True
    h.call(h.transport.request("/unsubscribes", method="POST", data={"email": "p@new.example"}))
    page = h.call(h.transport.request("/unsubscribes", query={"limit": 1}))
    assert page["body"]["results"][0]["email"] == "p@new.example"
    with pytest.raises(NotFoundError):
        h.call(h.transport.request("/not/emulated"))


def test_429_with_retry_after(sandbox: Harness) -> None:
    sandbox.control.conditions.inject("rate_limit", count=2, retry_after=7)
    for _ in range(2):
        with pytest.raises(RateLimitedError) as info:
            sandbox.action("list-teams")
        assert info.value.retry_after == 7
    assert sandbox.action("list-teams")["results"]


def test_5xx(sandbox: Harness) -> None:
    sandbox.control.conditions.inject("server_error", status=502)
    with pytest.raises(ServerError):
        sandbox.action("list-teams")


def test_non_json_output(sandbox: Harness) -> None:
    sandbox.control.conditions.inject("non_json")
    with pytest.raises(BadOutputError):
        sandbox.action("list-teams")


def test_timeout(sandbox: Harness) -> None:
    sandbox.control.conditions.inject("timeout", seconds=30)
    if sandbox.mode == "inprocess":
        sandbox.transport.timeout = 0.5  # type: ignore[attr-defined]
    else:
        sandbox.transport.timeout = 1.5  # type: ignore[attr-defined]
    with pytest.raises(CliTimeoutError):
        sandbox.action("list-teams")


def test_connection_turns_defunct_mid_session(sandbox: Harness) -> None:
    sandbox.control.conditions.inject("defunct", after=1)
    assert sandbox.action("list-teams")["results"]
    with pytest.raises(ConnectionNotReadyError) as info:
        sandbox.action("list-teams")
    assert info.value.client_action and info.value.client_action["uiUrl"]
    with pytest.raises(ConnectionNotReadyError):
        sandbox.action("list-teams")
    sandbox.control.complete_connect()
    assert sandbox.action("list-teams")["results"]


def test_truncated_pages_still_walk_everything(sandbox: Harness) -> None:
    expected = [r["_id"] for r in walk(sandbox, "list-unsubscribes", 300)]
    sandbox.control.conditions.inject("truncated_page", count=3)
    page = sandbox.action("list-unsubscribes", {"limit": 4})
    assert len(page["results"]) == 2 and page["hasNext"]
    assert [r["_id"] for r in walk(sandbox, "list-unsubscribes", 4)] == expected
