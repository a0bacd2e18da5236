"""Client core: run_action / request / me / actions on an in-process transport, and
connect("membrane") end to end through the fake `membrane` executable."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeMembrane

import mixmax_nb as mx
from mixmax_nb import catalog
from mixmax_nb.client import AsyncClient, Client
from mixmax_nb.errors import (
    INSTALL_HINT,
    CliNotFoundError,
    ConnectionNotReadyError,
    InputError,
    MixmaxNbError,
    NotFoundError,
    NotLoggedInError,
    RateLimitedError,
    ServerError,
)
from mixmax_nb.transport.actions import ActionDirectory
from mixmax_nb.transport.base import Transport
from mixmax_nb.transport.limits import NoLimit, RetryPolicy


class ScriptedTransport:
    """A Transport in process: records calls, answers from a script (errors are raised)."""

    backend = "membrane"
    max_input_bytes = 10_000_000
    rate_limited = False
    time_scale = 1.0
    account_key: str | None = None
    ephemeral = False
    sandbox = None

    def __init__(self, *replies: Any) -> None:
        self.connection_id: str | None = "c1"
        self.actions = ActionDirectory.fixed(catalog.BY_KEY)
        self.replies = list(replies)
        self.calls: list[tuple[Any, ...]] = []

    def _answer(self, default: Any) -> Any:
        reply = self.replies.pop(0) if self.replies else default
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def version(self) -> str:
        return "0"

    async def login_start(self) -> Any:
        return {"url": "https://x"}

    async def login_complete(self, code: str) -> dict[str, Any]:
        return {}

    async def whoami(self) -> dict[str, Any]:
        return {}

    async def ensure_connection(self, app_url: str) -> Any:
        return {"id": "c1", "state": "READY"}

    async def get_connection(
        self, connection_id: str, *, wait: bool = False, timeout: int = 30
    ) -> Any:
        return {"id": connection_id, "state": "READY"}

    async def list_connections(self) -> list[Any]:
        return []

    async def list_actions(
        self, *, intent: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Any:
        self.calls.append(("actions", intent, limit))
        items = [{"id": "a1", "key": "list-sequences", "name": "List Sequences"}]
        return {"items": self._answer(items), "cursor": None}

    async def run_action(self, key: str, input: Mapping[str, Any] | None) -> Any:
        self.calls.append(("run", key, dict(input or {})))
        return self._answer(
            {"output": {"key": key, "input": dict(input or {})}, "actionRunId": "r1"}
        )

    async def run_action_json(self, key: str, input: Mapping[str, Any] | None) -> bytes:
        self.calls.append(("run-json", key, dict(input or {})))
        answer = {"output": {"key": key, "input": dict(input or {})}, "actionRunId": "r1"}
        return json.dumps(self._answer(answer)).encode()

    async def request(self, path: str, **kw: Any) -> Any:
        self.calls.append(("request", path, kw))
        return self._answer({"status": 200, "headers": {}, "body": {"path": path}})

    async def action_run_log(self, run_id: str, *, details: bool = False) -> Any:
        self.calls.append(("run-log", run_id, details))
        return self._answer({"id": run_id, "status": "success"})

    async def aclose(self) -> None:
        self.calls.append(("close",))


def client(*replies: Any) -> tuple[Client, ScriptedTransport]:
    transport = ScriptedTransport(*replies)
    fast = RetryPolicy(attempts=3, base=0.0, jitter=0.0)
    return Client(transport, limiter=NoLimit(), retry=fast), transport


def test_scripted_transport_is_a_transport() -> None:
    assert isinstance(ScriptedTransport(), Transport)


def test_run_action_returns_the_output() -> None:
    c, t = client()
    assert c.run_action("list-sequences", {"limit": 5}) == {
        "key": "list-sequences",
        "input": {"limit": 5},
    }
    assert t.calls == [("run", "list-sequences", {"limit": 5})]
    assert c.backend == "membrane"
    assert not c.is_sandbox
    assert repr(c) == "<Client backend='membrane'>"


def test_run_checks_input_before_sending() -> None:
    c, t = client()
    with pytest.raises(InputError) as info:
        c.run_action("list-sequences", {"limit": "five"})
    assert info.value.field == "limit"
    with pytest.raises(InputError):
        c.run_action("", {})
    assert t.calls == []


def test_me_returns_the_user_object() -> None:
    c, t = client({"output": {"_id": "u1", "email": "ana@example.com"}, "actionRunId": "r"})
    assert c.me() == {"_id": "u1", "email": "ana@example.com"}
    assert t.calls == [("run", "get-current-user", {})]
    c2, _ = client({"output": ["not", "an", "object"], "actionRunId": "r"})
    with pytest.raises(MixmaxNbError, match="no user object"):
        c2.me()


def test_actions_raw_and_as_a_frame() -> None:
    c, t = client()
    raw = asyncio.run(c.aio.action_records("sequences", 10))
    assert raw == [{"id": "a1", "key": "list-sequences", "name": "List Sequences"}]
    assert t.calls == [("actions", "sequences", 10)]
    frame = c.actions("sequences", 10)
    assert len(frame) == 1
    assert list(frame["key"]) == ["list-sequences"]


def test_request_validates_and_sends() -> None:
    c, t = client()
    assert c.request("/users/me", "get", query={"a": 1})["body"] == {"path": "/users/me"}
    assert t.calls == [
        (
            "request",
            "/users/me",
            {"method": "GET", "query": {"a": 1}, "data": None, "headers": None},
        )
    ]
    with pytest.raises(InputError, match="Unsupported HTTP method") as info:
        c.request("/x", "TRACE")
    assert info.value.field == "method"
    with pytest.raises(InputError, match="path"):
        c.request("", "GET")
    assert len(t.calls) == 1


def test_reads_are_retried_writes_are_not() -> None:
    c, t = client(ServerError("502"), ServerError("502"))
    assert c.run_action("list-sequences", {})["key"] == "list-sequences"
    assert len(t.calls) == 3

    c, t = client(ServerError("502"))
    with pytest.raises(ServerError):
        c.run_action("cancel-sequence-recipient", {"sequenceId": "s", "emails": ["a@b.co"]})
    assert len(t.calls) == 1

    c, t = client(ServerError("502"))
    with pytest.raises(ServerError):  # an action we don't know is assumed to write
        c.run_action("some-custom-action", {})
    assert len(t.calls) == 1

    c, t = client(ServerError("502"))
    with pytest.raises(ServerError):
        c.request("/messages", "POST", data={})
    assert len(t.calls) == 1

    c, t = client(ServerError("502"))
    assert c.request("/messages")["status"] == 200
    assert len(t.calls) == 2


def test_an_answer_as_printed_is_checked_paced_and_retried_as_a_read() -> None:
    c, t = client(ServerError("502"))
    printed = asyncio.run(c.aio.run_action_json("list-livefeed-events", {"messageId": "m1"}))
    assert json.loads(printed)["output"] == {
        "key": "list-livefeed-events",
        "input": {"messageId": "m1"},
    }
    assert [call[0] for call in t.calls] == ["run-json", "run-json"]

    c, t = client()
    with pytest.raises(InputError, match="writes to Mixmax"):  # never unjournaled
        asyncio.run(
            c.aio.run_action_json(
                "cancel-sequence-recipient", {"sequenceId": "s", "emails": ["a@b.co"]}
            )
        )
    with pytest.raises(InputError):  # the schema still decides
        asyncio.run(c.aio.run_action_json("list-livefeed-events", {"messageId": 7}))
    assert t.calls == []


def test_a_write_is_retried_after_429() -> None:
    c, t = client(RateLimitedError("429", retry_after=0))
    c.run_action("some-custom-action", {})
    assert len(t.calls) == 2


def test_sync_client_inside_a_running_loop() -> None:
    c, _ = client()

    async def cell() -> Any:
        return c.run_action("list-sequences", {})

    assert asyncio.run(cell())["key"] == "list-sequences"


def test_async_client_default_limiter_follows_the_transport() -> None:
    t = ScriptedTransport()
    assert isinstance(AsyncClient(t).limiter, NoLimit)
    t.rate_limited = True
    limiter = AsyncClient(t).limiter
    assert not isinstance(limiter, NoLimit)
    assert limiter.interval == pytest.approx(60 / (120 * 0.98))


def test_close_closes_the_transport() -> None:
    c, t = client()
    c.close()
    assert t.calls == [("close",)]


# -- connect("membrane") through the fake executable -----------------------------------


def conn(state: str, **extra: Any) -> dict[str, Any]:
    return {"id": "conn_mixmax_1", "name": "Mixmax", "key": "mixmax", "state": state, **extra}


def test_connect_membrane_with_a_ready_connection(fake_membrane: FakeMembrane) -> None:
    c = mx.connect("membrane")
    assert c.backend == "membrane"
    assert c.transport.connection_id == "conn_mixmax_1"
    assert c.run_action("get-current-user")["key"] == "get-current-user"
    c.run_action("list-sequences", {"limit": 5})
    # The action list is read once for the connection; actions then run by its ids.
    assert fake_membrane.calls() == [
        ["status", "--json"],
        ["connection", "list", "--json"],
        ["action", "list", "--connectionId=conn_mixmax_1", "--limit=1000", "--json"],
        [
            "action",
            "run",
            "66a000000000000000000013",
            "--connectionId=conn_mixmax_1",
            "--input={}",
            "--json",
        ],
        [
            "action",
            "run",
            "66a000000000000000000012",
            "--connectionId=conn_mixmax_1",
            '--input={"limit":5}',
            "--json",
        ],
    ]


def test_connect_membrane_polls_a_building_connection_until_ready(
    fake_membrane: FakeMembrane,
) -> None:
    fake_membrane.on("connection list", {"json": {"items": [conn("BUILDING")]}})
    fake_membrane.on(
        "connection get",
        {"json": conn("BUILDING")},
        {"json": conn("BUILDING")},
        {"json": conn("READY")},
    )
    c = mx.connect("membrane", call_style="act")
    assert c.transport.connection_id == "conn_mixmax_1"
    gets = [a for a in fake_membrane.calls() if a[:2] == ["connection", "get"]]
    assert gets == [["connection", "get", "conn_mixmax_1", "--wait", "--timeout=30", "--json"]] * 3
    c.run_action("list-sequences", {})
    assert fake_membrane.calls()[-1][0] == "act"


@pytest.mark.parametrize("first", ["BUILDING", "CLIENT_ACTION_REQUIRED"])
def test_connect_membrane_client_action_required(fake_membrane: FakeMembrane, first: str) -> None:
    action = {
        "type": "connect",
        "description": "Enter your Mixmax API token",
        "uiUrl": "https://ui.getmembrane.com/c/xyz",
    }
    listed = conn(first, clientAction=action) if first == "CLIENT_ACTION_REQUIRED" else conn(first)
    fake_membrane.on("connection list", {"json": {"items": [listed]}})
    fake_membrane.on(
        "connection get", {"json": conn("CLIENT_ACTION_REQUIRED", clientAction=action)}
    )
    with pytest.raises(ConnectionNotReadyError) as info:
        mx.connect("membrane")
    err = info.value
    assert err.state == "CLIENT_ACTION_REQUIRED"
    assert err.client_action == action
    assert err.connection_id == "conn_mixmax_1"
    assert "CLIENT_ACTION_REQUIRED: Enter your Mixmax API token" in str(err)
    assert "https://ui.getmembrane.com/c/xyz" in str(err)


def test_connect_membrane_with_a_given_connection_id(fake_membrane: FakeMembrane) -> None:
    c = mx.connect("membrane", connection_id="conn_7")
    assert c.transport.connection_id == "conn_7"
    assert ["connection", "get", "conn_7", "--json"] in fake_membrane.calls()


def test_connect_membrane_creates_the_connection_when_none_exists(
    fake_membrane: FakeMembrane,
) -> None:
    fake_membrane.on("connection list", {"json": {"items": []}})
    mx.connect("membrane")
    assert ["connection", "ensure", "https://www.mixmax.com/", "--json"] in fake_membrane.calls()


def test_connect_membrane_not_logged_in(fake_membrane: FakeMembrane) -> None:
    fake_membrane.on(
        "status",
        {"error": {"type": "bad_request", "key": "not_authenticated", "message": "Log in"}},
    )
    with pytest.raises(NotLoggedInError):
        mx.connect("membrane")


def test_connect_membrane_without_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CliNotFoundError) as info:
        mx.connect("membrane")
    assert INSTALL_HINT in str(info.value)


def test_connect_membrane_bin_option(
    fake_membrane: FakeMembrane, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MIXMAX_NB_MEMBRANE_BIN")
    c = mx.connect("membrane", membrane_bin=str(fake_membrane.bin))
    assert c.transport.connection_id == "conn_mixmax_1"


def test_connect_rejects_an_unknown_backend() -> None:
    with pytest.raises(InputError, match="Unknown backend") as info:
        mx.connect("salesforce")
    assert info.value.field == "backend"


def test_events_ask_who_the_user_is_once_per_client(tmp_path: Any) -> None:
    """The cache key of a real account comes from get-current-user: not a request per call."""
    import asyncio

    from mixmax_nb.client import AsyncClient
    from mixmax_nb.sandbox.membrane import SandboxTransport

    inner = SandboxTransport.open(size="small", db=str(tmp_path / "s.sqlite"))
    calls: list[str] = []

    class Plain:  # a transport without account_key, as the CLI one
        backend = "membrane"
        connection_id = inner.connection_id
        actions = inner.actions
        max_input_bytes = inner.max_input_bytes
        rate_limited = False
        time_scale = 1.0
        account_key = None
        ephemeral = False
        sandbox = None

        async def run_action(self, key: str, input: Any) -> Any:
            calls.append(key)
            return await inner.run_action(key, input)

        async def run_action_json(self, key: str, input: Any) -> Any:
            calls.append(key)
            return await inner.run_action_json(key, input)

        async def request(self, path: str, **kw: Any) -> Any:
            return await inner.request(path, **kw)

    client = AsyncClient(Plain())  # type: ignore[arg-type]

    async def body() -> None:
        await client.events()
        await client.events(refresh=False)
        await client.events()

    asyncio.run(body())
    assert calls.count("get-current-user") == 1


# -- actions run by the id the connection lists; its schemas win -----------------------


def _listing(*records: dict[str, Any]) -> dict[str, Any]:
    return {"json": {"items": list(records)}}


def test_a_stale_action_id_reads_the_list_again_once(fake_membrane: FakeMembrane) -> None:
    stale = {"type": "bad_request", "key": "not_found", "message": "Action not found"}
    fake_membrane.on(
        "action list",
        _listing({"id": "old-id", "key": "list-sequences", "name": "List Sequences"}),
        {"default": True},
    )
    fake_membrane.on("action run", {"error": stale}, {"default": True})
    c = mx.connect("membrane")
    assert c.run_action("list-sequences", {})["key"] == "list-sequences"
    runs = [a[2] for a in fake_membrane.calls() if a[:2] == ["action", "run"]]
    lists = [a for a in fake_membrane.calls() if a[:2] == ["action", "list"]]
    assert runs == ["old-id", "66a000000000000000000012"]
    assert len(lists) == 2


def test_an_id_that_stays_the_same_is_not_retried(fake_membrane: FakeMembrane) -> None:
    stale = {"type": "bad_request", "key": "not_found", "message": "Action not found"}
    fake_membrane.on("action run", {"error": stale})
    c = mx.connect("membrane")
    with pytest.raises(NotFoundError):
        c.run_action("list-sequences", {})
    runs = [a for a in fake_membrane.calls() if a[:2] == ["action", "run"]]
    assert len(runs) == 1


def test_a_mixmax_404_through_an_action_does_not_reread_the_list(
    fake_membrane: FakeMembrane,
) -> None:
    vendor = {"type": "action_run", "key": "not_found", "message": "Message not found"}
    fake_membrane.on("action run", {"error": vendor})
    c = mx.connect("membrane")
    with pytest.raises(NotFoundError):
        c.run_action("get-message", {"messageId": "nope"})
    assert len([a for a in fake_membrane.calls() if a[:2] == ["action", "list"]]) == 1


def test_an_action_the_connection_does_not_list_is_named(fake_membrane: FakeMembrane) -> None:
    fake_membrane.on("action list", _listing({"id": "x1", "key": "get-current-user", "name": "Me"}))
    c = mx.connect("membrane")
    with pytest.raises(NotFoundError, match="offers no action 'list-polls'"):
        c.run_action("list-polls", {})
    assert not [a for a in fake_membrane.calls() if a[:2] == ["action", "run"]]


def test_the_connection_schema_wins_over_the_built_in_one(fake_membrane: FakeMembrane) -> None:
    schema = {
        "type": "object",
        "properties": {"folder": {"type": "string"}, "limit": {"type": "integer"}},
        "required": ["folder"],
    }
    record = {"id": "66a000000000000000000012", "key": "list-sequences", "name": "List"}
    record["inputSchema"] = schema
    fake_membrane.on("action list", _listing(record))
    c = mx.connect("membrane")
    with pytest.raises(InputError) as info:
        c.run_action("list-sequences", {"limit": 10})  # fine by the built-in schema
    assert info.value.field == "folder"
    assert c.run_action("list-sequences", {"folder": "Q3"})["input"] == {"folder": "Q3"}
    assert asyncio.run(c.aio.input_schema("list-sequences")) == (schema, "connection")


def test_unknown_properties_reach_the_cli_unchanged(fake_membrane: FakeMembrane) -> None:
    c = mx.connect("membrane")
    out = c.run_action("list-sequences", {"limit": 10, "someParameterWeDoNotKnow": 1})
    assert out["input"] == {"limit": 10, "someParameterWeDoNotKnow": 1}
    assert fake_membrane.calls()[-1][4] == '--input={"limit":10,"someParameterWeDoNotKnow":1}'


def test_act_style_runs_by_key(fake_membrane: FakeMembrane) -> None:
    c = mx.connect("membrane", call_style="act")
    c.run_action("get-current-user")
    assert fake_membrane.calls()[-1][:2] == ["act", "--key=get-current-user"]
