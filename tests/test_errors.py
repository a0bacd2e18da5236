"""The exception tree, its messages, redaction, and Membrane error JSON -> exceptions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mixmax_nb import errors
from mixmax_nb.errors import (
    INSTALL_HINT,
    ActionFailedError,
    BadOutputError,
    CliCrashedError,
    CliNotFoundError,
    CliTimeoutError,
    ConnectionNotReadyError,
    InputError,
    MixmaxNbError,
    NotFoundError,
    NotLoggedInError,
    RateLimitedError,
    ServerError,
    ServiceError,
    SetupError,
    TransportError,
    redact,
)
from mixmax_nb.transport.base import connection_error, error_from_payload

JWT = "eyJhbGci" + "OiJIUzI1NiJ9.eyJzdWIiOiJhbmEiLCJ3b3Jrc3BhY2VLZXkiOiJ3MSJ9.c2lnbmF0dXJlLXNpZw"


def test_the_tree_is_as_drawn() -> None:
    parents = {
        SetupError: MixmaxNbError,
        CliNotFoundError: SetupError,
        NotLoggedInError: SetupError,
        ConnectionNotReadyError: SetupError,
        InputError: MixmaxNbError,
        TransportError: MixmaxNbError,
        CliTimeoutError: TransportError,
        BadOutputError: TransportError,
        CliCrashedError: TransportError,
        ServiceError: MixmaxNbError,
        ActionFailedError: ServiceError,
        NotFoundError: ActionFailedError,
        RateLimitedError: ServiceError,
        ServerError: ServiceError,
    }
    for cls, parent in parents.items():
        assert cls.__mro__[1] is parent, cls
    assert issubclass(InputError, ValueError)
    assert set(errors.__all__) >= {c.__name__ for c in parents} | {"MixmaxNbError", "redact"}


def test_messages_say_what_to_do_next() -> None:
    assert INSTALL_HINT in str(CliNotFoundError("No membrane."))
    assert "membrane login --tenant" in str(NotLoggedInError("Logged out."))
    assert "check the current state first" in str(CliTimeoutError("Slow.", timeout=3))
    assert "membrane --version" in str(BadOutputError("Garbage.", raw="x"))
    assert "try again" in str(ServerError("Boom."))
    assert "wait 7 s" in str(RateLimitedError("429", retry_after=7))
    assert "wait a minute" in str(RateLimitedError("429"))
    failed = str(ActionFailedError("No.", action_run_id="r1"))
    # A call that works on every backend (the in-process sandbox has no `membrane`),
    # then the CLI's own command.
    assert "Details: client.action_run_log('r1', details=True)" in failed
    assert "`membrane action-run-log get r1 --details`" in failed
    assert str(ActionFailedError("No.")) == "No."
    assert str(InputError("Bad email.", field="email")) == "Bad email."
    assert InputError("x", field="email").field == "email"
    assert str(MixmaxNbError("Plain.", hint="Do this.")) == "Plain. Do this."
    assert repr(MixmaxNbError("Plain.")) == "MixmaxNbError('Plain.')"


def test_connection_not_ready_hint_links_the_ui_when_it_can() -> None:
    with_url = ConnectionNotReadyError(
        "Not ready.", state="CLIENT_ACTION_REQUIRED", client_action={"uiUrl": "https://x.y/z"}
    )
    assert "Open https://x.y/z to reconnect Mixmax" in str(with_url)
    assert with_url.client_action == {"uiUrl": "https://x.y/z"}
    without = ConnectionNotReadyError("Not ready.", state="SETUP_FAILED")
    assert "membrane connect --connectionId" in str(without)
    assert without.client_action is None


# -- redaction ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"session {JWT} expired", JWT),
        ("Authorization: Bearer abcdefgh12345678", "abcdefgh12345678"),
        ('{"accessToken": "tok_abcdef123"}', "tok_abcdef123"),
        ('{"refresh_token":"tok_abcdef123"}', "tok_abcdef123"),
        ('{"workspaceSecret": "s3cr3t-w0rk"}', "s3cr3t-w0rk"),
        ("password=hunter22&user=ana", "hunter22"),
        ("GET /v1/users/me?apiToken=9e107d9d-372b&limit=5", "9e107d9d-372b"),
        ("X-API-Token: " + "9e107d9d-372b", "9e107d9d-372b"),
        ("$ membrane login complete LC-12345 --json", "LC-12345"),
        ("loginCode=ZX81-ABCD", "ZX81-ABCD"),
    ],
)
def test_redact_removes_secret_shapes(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert "[redacted]" in cleaned
    assert redact(cleaned) == cleaned


def test_redact_removes_known_secrets_anywhere() -> None:
    assert redact("the code is QWERTY99, QWERTY99!", "QWERTY99") == (
        "the code is [redacted], [redacted]!"
    )
    # Too short to be a secret worth mangling every text for.
    assert redact("a b c", "b") == "a b c"


@pytest.mark.parametrize(
    "text",
    [
        '{"results": [{"_id": "5f1a", "name": "Q3 outreach"}], "next": "eyJvZmZzZXQiOjEwMH0"}',
        '{"items": [], "cursor": "abc123", "nextPageToken": "pg_2_abcdef", "next_token": "n1234"}',
        "Sequence 'Token rings' has 3 stages",
        "https://www.mixmax.com/",
    ],
)
def test_redact_leaves_ordinary_data_alone(text: str) -> None:
    assert redact(text) == text


def test_messages_hints_and_raw_output_are_redacted() -> None:
    err = TransportError(
        f"failed with {JWT}",
        stdout=f'{{"token": "{JWT}"}}',
        stderr="Bearer abcdefgh12345678",
        hint=f"use {JWT}",
    )
    for text in (str(err), repr(err), err.message, err.stdout, err.stderr, str(err.args)):
        assert JWT not in text
        assert "abcdefgh12345678" not in text
    bad = BadOutputError("x", raw=f"oops {JWT}")
    assert JWT not in bad.raw


def test_the_run_log_hint_carries_no_secret() -> None:
    """The hint repeats the run id, and only it: nothing of the error's data or output."""
    err = error_from_payload(
        {
            "type": "action_run",
            "message": "refused",
            "data": {"actionRunId": "66a0f1", "headers": {"x-api-token": "tok-1234-5678"}},
        },
        stdout=f'{{"token": "{JWT}"}}',
    )
    assert isinstance(err, ActionFailedError) and err.action_run_id == "66a0f1"
    assert err.hint == (
        "Details: client.action_run_log('66a0f1', details=True) "
        "(with the Membrane CLI: `membrane action-run-log get 66a0f1 --details`)."
    )
    # A run id shaped like a token (a broken CLI) is redacted like any text.
    odd = ActionFailedError("x", action_run_id=JWT)
    assert JWT not in str(odd) and "client.action_run_log(" in str(odd)


def test_raw_output_is_clipped() -> None:
    err = BadOutputError("x", raw="a" * 10_000, stdout="b" * 10_000)
    assert err.raw.startswith("a" * 4000)
    assert err.raw.endswith("... [10000 chars]")
    assert len(err.stdout) < 4100


def test_service_error_data_is_redacted() -> None:
    err = error_from_payload(
        {"type": "action_run", "message": "no", "data": {"auth": {"accessToken": JWT}, "l": [JWT]}}
    )
    assert isinstance(err, ActionFailedError)
    assert JWT not in json.dumps(err.data)
    assert err.data["l"] == ["[redacted]"]


# -- Membrane error JSON -> exceptions --------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "cls"),
    [
        ({"type": "bad_request", "key": "not_authenticated", "message": "m"}, NotLoggedInError),
        ({"type": "bad_request", "message": "m", "data": {"status": 401}}, NotLoggedInError),
        ({"type": "bad_request", "key": "rate_limit_exceeded", "message": "m"}, RateLimitedError),
        ({"type": "action_run", "message": "m", "data": {"statusCode": 429}}, RateLimitedError),
        (
            {"type": "connection", "key": "access_token_expired", "message": "m"},
            ConnectionNotReadyError,
        ),
        ({"type": "connection", "message": "m", "data": {"status": 401}}, ConnectionNotReadyError),
        ({"type": "bad_request", "key": "not_found", "message": "m"}, NotFoundError),
        (
            {"type": "action_run", "message": "m", "data": {"response": {"status": 404}}},
            NotFoundError,
        ),
        ({"type": "internal", "message": "m"}, ServerError),
        ({"type": "action_run", "message": "m", "data": {"httpStatus": 502}}, ServerError),
        ({"type": "action_run", "key": "validation", "message": "m"}, ActionFailedError),
        ({"error": {"type": "bad_request", "key": "not_found", "message": "m"}}, NotFoundError),
        ({}, ActionFailedError),
    ],
)
def test_error_from_payload_maps_to_the_tree(payload: dict[str, Any], cls: type) -> None:
    assert type(error_from_payload(payload)) is cls


def test_error_from_payload_keeps_the_details() -> None:
    err = error_from_payload(
        {"actionRunId": "run_1", "error": {"type": "action_run", "key": "k", "message": "Nope"}},
        action_key="list-teams",
        stdout="out",
        stderr="err",
    )
    assert isinstance(err, ActionFailedError)
    assert (err.type, err.key, err.action_run_id, err.action_key) == (
        "action_run",
        "k",
        "run_1",
        "list-teams",
    )
    assert (err.stdout, err.stderr) == ("out", "err")
    assert str(err).startswith("list-teams: Nope")


def test_connection_error_from_a_connection_object() -> None:
    err = connection_error(
        {
            "id": "c1",
            "state": "CLIENT_ACTION_REQUIRED",
            "clientAction": {"type": "connect", "description": "Paste key", "uiUrl": "https://u"},
        }
    )
    assert (err.state, err.connection_id) == ("CLIENT_ACTION_REQUIRED", "c1")
    assert "The Mixmax connection is CLIENT_ACTION_REQUIRED: Paste key" in str(err)
    failed = connection_error({"id": "c2", "state": "SETUP_FAILED", "errors": [{"message": "bad"}]})
    assert "SETUP_FAILED: bad" in str(failed)


def test_customer_text_in_error_data_is_not_rewritten() -> None:
    data = {"subject": 'Reset token: abcd"ef', "url": "https://x.example/?token=abcd1234"}
    err = error_from_payload({"type": "action_run", "message": "no", "data": data})
    assert err.data == data
