"""`client.action_run_log(run_id, details=False)`: a run's log on every backend.

The sandbox's records themselves are tested in process and through the command in
``tests/contract/test_action_run_log.py`` and against the SDK's schema in
``tests/contract/test_sdk_envelopes.py``; the CLI transport's argv and parsing in
``tests/test_transport_cli.py``. Here: the client's face, the store, and that reading
a log is Membrane's business, not a Mixmax call.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FakeMembrane

import mixmax_nb as mx
from mixmax_nb.errors import (
    ActionFailedError,
    InputError,
    NotFoundError,
    RateLimitedError,
    SetupError,
)
from mixmax_nb.sandbox.membrane import SandboxTransport
from mixmax_nb.sandbox.store import Store
from mixmax_nb.transport.cli import CliTransport


@pytest.fixture
def client() -> Iterator[mx.Client]:
    with mx.connect("sandbox", db=":memory:", size="small") as c:
        yield c


def test_the_hint_of_a_failed_run_works_as_written(client: mx.Client) -> None:
    with pytest.raises(ActionFailedError) as info:
        client.run_action("get-message", {"messageId": "nope"})
    rid = info.value.action_run_id
    assert rid and f"client.action_run_log('{rid}', details=True)" in str(info.value)
    details = client.action_run_log(rid, details=True)
    assert details["status"] == "error"
    assert details["error"]["key"] == "not_found"
    assert details["response"]["status"] == 404


def test_a_successful_run_reads_back_as_success(client: mx.Client) -> None:
    result = client.run("get-current-user")
    log = client.action_run_log(result["actionRunId"])
    assert log["status"] == "success" and log["output"] == result["output"]
    assert "response" not in log
    assert client.action_run_log(result["actionRunId"], details=True)["response"]["status"] == 200


def test_an_unknown_or_empty_id(client: mx.Client) -> None:
    with pytest.raises(NotFoundError):
        client.action_run_log("0123456789abcdef01234567")
    with pytest.raises(InputError) as info:
        client.action_run_log("")
    assert info.value.field == "run_id"


def test_reading_a_log_is_not_a_mixmax_call(client: mx.Client) -> None:
    """No fault, no rate-limit slot: an injected 429 still hits the next action."""
    transport = client.transport
    assert isinstance(transport, SandboxTransport)
    rid = client.run("get-current-user")["actionRunId"]
    transport.faults.inject("rate_limit", retry_after=0.01)
    assert client.action_run_log(rid)["id"] == rid
    assert transport.faults.pending()  # still waiting for a Mixmax-bound call
    with pytest.raises(RateLimitedError) as info:
        asyncio.run(transport.run_action("get-current-user", {}))
    assert info.value.action_run_id is None  # refused before running: no run, no log


def test_a_closed_client_refuses(client: mx.Client) -> None:
    client.close()
    with pytest.raises(SetupError):
        client.action_run_log("0123456789abcdef01234567")


def test_the_cli_backend_reads_the_log_through_the_command(fake_membrane: FakeMembrane) -> None:
    with mx.Client(CliTransport(connection_id="conn_mixmax_1")) as c:
        assert c.action_run_log("run_123")["status"] == "success"
        assert "request" in c.action_run_log("run_123", details=True)
        with pytest.raises(NotFoundError):
            c.action_run_log("run_999")
    assert fake_membrane.calls() == [
        ["action-run-log", "get", "run_123", "--json"],
        ["action-run-log", "get", "run_123", "--details", "--json"],
        ["action-run-log", "get", "run_999", "--json"],
    ]


def test_the_store_keeps_the_newest_logs_only() -> None:
    store = Store.open(":memory:")
    for i in range(5):
        store.add_run_log(f"r{i}", json.dumps({"id": f"r{i}"}), keep=3)
    assert [store.run_log(f"r{i}") is not None for i in range(5)] == [
        False,
        False,
        True,
        True,
        True,
    ]
    assert store.run_log("r4") == {"id": "r4"}
    store.close()


def test_an_account_copied_from_an_older_file_can_still_log(tmp_path: Path) -> None:
    """A cached template made before run logs existed has no such table."""
    old = tmp_path / "old.sqlite"
    con = sqlite3.connect(old)
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    con.commit()
    con.close()
    store = Store.open(tmp_path / "new.sqlite")
    store.copy_from(old)
    store.add_run_log("r1", "{}")
    assert store.run_log("r1") == {}
    store.close()
