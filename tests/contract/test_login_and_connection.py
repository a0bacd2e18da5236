"""Login and connection flow, both ways in."""

from __future__ import annotations

import pytest

from mixmax_nb.errors import ConnectionNotReadyError, NotFoundError, NotLoggedInError

from .conftest import Harness


def test_login_flow(logged_out: Harness) -> None:
    h = logged_out
    with pytest.raises(NotLoggedInError):
        h.call(h.transport.whoami())
    start = h.call(h.transport.login_start())
    assert start["url"].startswith("https://sandbox.invalid/login?")
    with pytest.raises(NotLoggedInError):
        h.call(h.transport.login_complete("SBX-WRONG"))
    code = h.control.login_code()
    result = h.call(h.transport.login_complete(code))
    assert code not in str(result)  # the secret is never echoed back
    me = h.call(h.transport.whoami())
    assert "sandbox" in me["name"].lower()


def test_connection_walks_building_then_client_action_then_ready(logged_out: Harness) -> None:
    h = logged_out
    h.control.set_start("needs-connect")
    conn = h.call(h.transport.ensure_connection("https://www.mixmax.com/"))
    assert conn["state"] == "BUILDING"
    assert h.call(h.transport.ensure_connection("https://www.mixmax.com/"))["id"] == conn["id"]
    waited = h.call(h.transport.get_connection(conn["id"], wait=True, timeout=5))
    assert waited["state"] == "CLIENT_ACTION_REQUIRED"
    action = waited["clientAction"]
    assert action["type"] == "connect"
    assert action["uiUrl"].startswith("https://sandbox.invalid/")
    assert action["description"]
    h.transport.connection_id = conn["id"]
    with pytest.raises(ConnectionNotReadyError) as info:
        h.call(h.transport.run_action("get-current-user", {}))
    assert info.value.state == "CLIENT_ACTION_REQUIRED"
    h.control.complete_connect(conn["id"])
    ready = h.call(h.transport.get_connection(conn["id"]))
    assert ready["state"] == "READY"
    assert ready["name"] == "Mixmax (sandbox)"
    listed = h.call(h.transport.list_connections())
    assert [c["id"] for c in listed] == [conn["id"]]
    assert h.call(h.transport.run_action("get-current-user", {}))["output"]["sandbox"] is True


def test_plain_get_leaves_building_after_a_poll(logged_out: Harness) -> None:
    h = logged_out
    h.control.set_start("needs-connect")
    conn = h.call(h.transport.ensure_connection("https://www.mixmax.com/"))
    assert h.call(h.transport.get_connection(conn["id"]))["state"] == "BUILDING"
    assert h.call(h.transport.get_connection(conn["id"]))["state"] == "CLIENT_ACTION_REQUIRED"


def test_unknown_app_and_connection(sandbox: Harness) -> None:
    h = sandbox
    with pytest.raises(NotFoundError):
        h.call(h.transport.ensure_connection("https://example.com/"))
    with pytest.raises(NotFoundError):
        h.call(h.transport.get_connection("0123456789abcdef01234567"))


@pytest.mark.parametrize("state", ["CONFIGURATION_ERROR", "SETUP_FAILED", "DISCONNECTING"])
def test_error_states_block_actions(sandbox: Harness, state: str) -> None:
    h = sandbox
    conn = h.control.set_connection_state(state)
    assert h.call(h.transport.get_connection(conn["id"]))["state"] == state
    with pytest.raises(ConnectionNotReadyError) as info:
        h.call(h.transport.run_action("list-teams", {}))
    assert info.value.state == state


def test_version(sandbox: Harness) -> None:
    assert "sandbox" in sandbox.call(sandbox.transport.version())
