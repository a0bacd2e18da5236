"""`action-run-log get <runId> [--details]` on the sandbox, in process and through the command.

Membrane documents the command (MC §2: ``GET /action-run-logs/{id}[/details]``) and the
record (the SDK's ``ActionRunLogRecordApiResponse``; its schema is checked in
``test_sdk_envelopes.py``). Here: what the record says about a run, on both ways in.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mixmax_nb.errors import ActionFailedError, NotFoundError, NotLoggedInError

from .conftest import Harness

UNKNOWN_ID = "0123456789abcdef01234567"


def _connection_id(h: Harness) -> str:
    return next(c["id"] for c in h.control.list_connections() if c["state"] == "READY")


def test_a_successful_run_is_logged_with_its_input_and_output(sandbox: Harness) -> None:
    result = sandbox.call(sandbox.transport.run_action("get-current-user", {}))
    log = sandbox.call(sandbox.transport.action_run_log(result["actionRunId"]))
    assert log["id"] == result["actionRunId"]
    assert log["status"] == "success"
    assert log["name"] == "Get Current User"
    assert log["input"] == {}
    assert log["output"] == result["output"]
    assert log["connectionId"] == _connection_id(sandbox)
    assert log["action"]["key"] == "get-current-user"
    assert "error" not in log
    assert log["createdAt"] <= log["completedAt"]
    assert isinstance(log["duration"], int) and log["duration"] >= 0
    # The plain record does not carry the exchange; --details does.
    assert "request" not in log and "response" not in log


def test_details_add_the_mixmax_request_and_response(sandbox: Harness) -> None:
    seq = sandbox.direct("list-sequences", {"limit": 1})["results"][0]["_id"]
    result = sandbox.call(
        sandbox.transport.run_action("get-sequence-recipients", {"sequenceId": seq, "limit": 2})
    )
    details = sandbox.call(sandbox.transport.action_run_log(result["actionRunId"], details=True))
    assert details["status"] == "success"
    assert details["input"] == {"sequenceId": seq, "limit": 2}
    assert details["request"]["method"] == "GET"
    assert details["request"]["path"] == f"sequences/{seq}/recipients"
    assert details["request"]["query"] == {"limit": 2}
    assert details["response"]["status"] == 200
    assert details["response"]["body"] == result["output"] == details["output"]
    assert "action" not in details  # the stored record, not expanded


def test_a_failed_run_is_logged_with_its_error_data(sandbox: Harness) -> None:
    with pytest.raises(NotFoundError) as info:
        sandbox.call(sandbox.transport.run_action("get-message", {"messageId": "nope"}))
    rid = info.value.action_run_id
    assert rid
    # The hint names a way that works on this backend, whichever it is.
    assert f"client.action_run_log('{rid}', details=True)" in str(info.value)
    log = sandbox.call(sandbox.transport.action_run_log(rid))
    assert log["status"] == "error"
    assert log["input"] == {"messageId": "nope"}
    assert "output" not in log
    error = log["error"]
    assert error["type"] == "action_run" and error["key"] == "not_found"
    assert "Message nope not found" in error["message"]
    assert error["data"]["status"] == 404
    assert error["data"]["actionRunId"] == rid
    details = sandbox.call(sandbox.transport.action_run_log(rid, details=True))
    assert details["error"] == error
    assert details["request"]["path"] == "messages/nope"
    assert details["response"]["status"] == 404
    assert details["response"]["body"] == {"message": "Message nope not found."}


def test_refused_input_is_logged_without_a_request(sandbox: Harness) -> None:
    # The transport sends what it is given (the client checks input before this).
    with pytest.raises(ActionFailedError) as info:
        sandbox.call(sandbox.transport.run_action("get-message", {}))
    rid = info.value.action_run_id
    assert rid
    details = sandbox.call(sandbox.transport.action_run_log(rid, details=True))
    assert details["status"] == "error"
    assert details["error"]["type"] == "bad_request"
    assert details["error"]["data"]["field"] == "messageId"
    assert "request" not in details and "response" not in details


def test_an_unknown_run_id_is_not_found(sandbox: Harness) -> None:
    with pytest.raises(NotFoundError) as info:
        sandbox.call(sandbox.transport.action_run_log(UNKNOWN_ID))
    assert info.value.key == "not_found"
    assert UNKNOWN_ID in str(info.value)
    with pytest.raises(NotFoundError):
        sandbox.call(sandbox.transport.action_run_log(UNKNOWN_ID, details=True))


def test_a_run_log_needs_a_login(logged_out: Harness) -> None:
    with pytest.raises(NotLoggedInError):
        logged_out.call(logged_out.transport.action_run_log(UNKNOWN_ID))


def test_both_ways_in_read_the_same_log(sandbox: Harness) -> None:
    """A run made one way is read the other way: the log lives in the database."""
    cid = _connection_id(sandbox)
    direct = sandbox.control.run_action("get-current-user", {}, cid, by="key")
    log = sandbox.call(sandbox.transport.action_run_log(direct["actionRunId"]))
    assert log["output"] == direct["output"]
    assert sandbox.control.action_run_log(direct["actionRunId"], details=True)["id"] == log["id"]


def test_credentials_in_input_are_not_stored_but_customer_text_is(sandbox: Harness) -> None:
    secret = "hunter2-not-a-real-password"
    # A made-up JWT, split so the repository's secret scan does not take it for a real one.
    jwt = "eyJhbGci" + "OiJIUzI1NiJ9.eyJzdWIiOiJzYW0ifQ.c2lnbmF0dXJlLXNpZw"
    text = "Reply with your password: the token is on the card"
    # Properties a schema does not name pass through to the action, as on Membrane.
    result = sandbox.call(
        sandbox.transport.run_action(
            "get-current-user", {"password": secret, "note": text, "session": jwt}
        )
    )
    details = sandbox.call(sandbox.transport.action_run_log(result["actionRunId"], details=True))
    assert details["input"] == {"password": "[redacted]", "note": text, "session": "[redacted]"}
    db = Path(sandbox.control.store.path)
    con = sqlite3.connect(db)
    try:
        stored = " ".join(row[0] for row in con.execute("SELECT doc FROM action_runs"))
    finally:
        con.close()
    assert text in stored
    assert secret not in stored and jwt not in stored
