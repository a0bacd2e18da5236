"""CliTransport end to end through a real subprocess (tests/fake_membrane.py), plus argv."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeMembrane, pid_alive

from mixmax_nb.config import Settings
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
    SetupError,
)
from mixmax_nb.transport import cli
from mixmax_nb.transport.cli import CliTransport

CONN = "conn_1"


def transport(**changes: Any) -> CliTransport:
    settings = Settings.from_env().with_(connection_id=CONN, timeout=20.0)
    if changes:
        settings = settings.with_(**changes)
    return CliTransport(settings)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


# -- argv building (pure) -----------------------------------------------------------


def test_argv_of_every_command() -> None:
    assert cli.argv_version() == ["--version"]
    assert cli.argv_login_start() == [
        "login",
        "--tenant",
        "--clientName=jupyter",
        "--non-interactive",
        "--json",
    ]
    assert cli.argv_login_complete("abc") == ["login", "complete", "abc", "--json"]
    assert cli.argv_status() == ["status", "--json"]
    assert cli.argv_connection_ensure("https://www.mixmax.com/") == [
        "connection",
        "ensure",
        "https://www.mixmax.com/",
        "--json",
    ]
    assert cli.argv_connection_get("c", wait=False, timeout=30) == [
        "connection",
        "get",
        "c",
        "--json",
    ]
    assert cli.argv_connection_get("c", wait=True, timeout=30) == [
        "connection",
        "get",
        "c",
        "--wait",
        "--timeout=30",
        "--json",
    ]
    assert cli.argv_connection_list() == ["connection", "list", "--json"]
    assert cli.argv_action_list("c", "find sequences", 20) == [
        "action",
        "list",
        "--connectionId=c",
        "--intent=find sequences",
        "--limit=20",
        "--json",
    ]
    assert cli.argv_action_list("c", None, 5) == [
        "action",
        "list",
        "--connectionId=c",
        "--limit=5",
        "--json",
    ]
    assert cli.argv_action_list("c", None, 1000, "cur1") == [
        "action",
        "list",
        "--connectionId=c",
        "--limit=1000",
        "--cursor=cur1",
        "--json",
    ]
    assert cli.argv_action_run("66a0f1", "c", {"a": 1}) == [
        "action",
        "run",
        "66a0f1",
        "--connectionId=c",
        '--input={"a":1}',
        "--json",
    ]
    assert cli.argv_act("k", "c", None) == [
        "act",
        "--key=k",
        "--connectionId=c",
        "--input={}",
        "--json",
    ]
    assert cli.argv_request(
        "c",
        "users/me",
        method="post",
        query={"limit": 5, "flag": True, "ids": ["a", "b"]},
        data={"x": 1},
        headers={"X-Trace": "1"},
    ) == [
        "request",
        "c",
        "/users/me",
        "--method=POST",
        "--header=X-Trace: 1",
        "--query=limit=5",
        "--query=flag=true",
        "--query=ids=a",
        "--query=ids=b",
        '--data={"x":1}',
        "--json",
    ]


def test_argv_of_action_run_log() -> None:
    assert cli.argv_action_run_log("r1") == ["action-run-log", "get", "r1", "--json"]
    assert cli.argv_action_run_log("r1", details=True) == [
        "action-run-log",
        "get",
        "r1",
        "--details",
        "--json",
    ]
    with pytest.raises(InputError, match="start with '-'"):
        cli.argv_action_run_log("--details")


def test_action_run_log_through_the_cli(fake_membrane: FakeMembrane) -> None:
    t = transport()
    log = run(t.action_run_log("run_123"))
    assert log["id"] == "run_123" and log["status"] == "success"
    assert "request" in run(t.action_run_log("run_123", details=True))
    with pytest.raises(NotFoundError) as info:
        run(t.action_run_log("run_404"))
    assert info.value.key == "not_found"
    assert fake_membrane.calls()[-1] == ["action-run-log", "get", "run_404", "--json"]


def test_action_run_log_that_is_not_a_record_is_bad_output(fake_membrane: FakeMembrane) -> None:
    fake_membrane.on("action-run-log get", {"json": {"ok": True}})
    with pytest.raises(BadOutputError, match="action-run-log"):
        run(transport().action_run_log("run_123"))


@pytest.mark.parametrize(("asked", "sent"), [(0, 1), (-5, 1), (30, 30), (61, 60), (600, 60)])
def test_connection_wait_timeout_is_clamped_to_what_the_cli_accepts(asked: int, sent: int) -> None:
    assert f"--timeout={sent}" in cli.argv_connection_get("c", wait=True, timeout=asked)


def test_every_option_is_in_flag_equals_value_form() -> None:
    """A value starting with `-` can never be read as a flag of its own."""
    argvs = [
        cli.argv_action_list("-c", "--all", 3),
        cli.argv_action_list("c", None, 3, "--cursor"),
        cli.argv_action_run("k", "-c", {"x": "--json"}),
        cli.argv_act("k", "-c", {"x": "--json"}),
        cli.argv_request(
            "c", "/p", query={"q": "-1"}, data="--data", headers={"-H": "--x"}, method="GET"
        ),
    ]
    bare = {"--json", "--tenant", "--non-interactive", "--wait"}
    for argv in argvs:
        for arg in argv:
            if arg.startswith("-"):
                assert arg in bare or (arg.startswith("--") and "=" in arg), (arg, argv)


@pytest.mark.parametrize(
    "call",
    [
        lambda: cli.argv_action_run("--evil", "c", {}),
        lambda: cli.argv_act("--evil", "c", {}),
        lambda: cli.argv_connection_get("-x", wait=False, timeout=1),
        lambda: cli.argv_connection_ensure("--help"),
        lambda: cli.argv_request("-c", "/p"),
        lambda: cli.argv_login_complete("-code"),
    ],
)
def test_positional_values_starting_with_dash_are_refused(call: Any) -> None:
    with pytest.raises(InputError, match="start with '-'"):
        call()


# -- every command through the fake executable --------------------------------------


def test_every_command_reaches_the_cli_with_its_argv(fake_membrane: FakeMembrane) -> None:
    t = transport()

    async def session() -> dict[str, Any]:
        return {
            "version": await t.version(),
            "login": await t.login_start(),
            "complete": await t.login_complete(" code-1234 "),
            "whoami": await t.whoami(),
            "ensure": await t.ensure_connection("https://www.mixmax.com/"),
            "get": await t.get_connection("conn_9", wait=True, timeout=5),
            "list": await t.list_connections(),
            "actions": await t.list_actions(intent="sequences", limit=7),
            "run": await t.run_action("list-sequences", {"limit": 2}),
            "request": await t.request("/users/me", method="GET", query={"a": 1}),
        }

    out = run(session())
    assert out["version"] == "1.18.0"
    assert out["login"]["url"].startswith("https://console.getmembrane.com/")
    assert out["whoami"] == {"email": "ana@example.com", "tenantKey": "t1"}
    assert out["ensure"]["state"] == "READY"
    assert out["get"]["id"] == "conn_9"
    assert [c["id"] for c in out["list"]] == ["conn_mixmax_1"]
    assert len(out["actions"]["items"]) == 20 and out["actions"]["cursor"] is None
    assert out["run"] == {
        "output": {"key": "list-sequences", "connectionId": CONN, "input": {"limit": 2}},
        "actionRunId": "run_123",
    }
    assert out["request"]["status"] == 200
    assert out["request"]["headers"] == {"content-type": "application/json"}
    assert out["request"]["body"]["path"] == "/users/me"

    assert fake_membrane.calls() == [
        cli.argv_version(),
        cli.argv_login_start(),
        ["login", "complete", "code-1234", "--json"],
        cli.argv_status(),
        cli.argv_connection_ensure("https://www.mixmax.com/"),
        ["connection", "get", "conn_9", "--wait", "--timeout=5", "--json"],
        cli.argv_connection_list(),
        ["action", "list", f"--connectionId={CONN}", "--intent=sequences", "--limit=7", "--json"],
        # The directory reads the whole list once, then runs by the id it gave.
        ["action", "list", f"--connectionId={CONN}", "--limit=1000", "--json"],
        [
            "action",
            "run",
            "66a000000000000000000012",
            f"--connectionId={CONN}",
            '--input={"limit":2}',
            "--json",
        ],
        ["request", CONN, "/users/me", "--method=GET", "--query=a=1", "--json"],
    ]


TRICKY: dict[str, Any] = {
    "subject": 'He said "hi" -- and left',
    "body": "line one\nline two\n\ttabbed\\backslash",
    "dash": "--connectionId=evil",
    "single": "it's",
    "unicode": "Zoë ✓ 日本",
    "shell": "$(rm -rf /); `id` | cat > x",
    "nested": {"list": [1, "-2", None, True], "empty": ""},
}


@pytest.mark.parametrize("style", ["action-run", "act"])
def test_input_json_arrives_intact(fake_membrane: FakeMembrane, style: str) -> None:
    result = run(transport(call_style=style).run_action("create-message", TRICKY))
    assert result["output"]["input"] == TRICKY
    assert result["output"]["key"] == "create-message"
    sent = fake_membrane.calls()[-1]
    assert json.loads(sent[-2].removeprefix("--input=")) == TRICKY


def test_act_call_style_from_the_environment(
    fake_membrane: FakeMembrane, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIXMAX_NB_CALL_STYLE", "act")
    result = run(transport().run_action("get-current-user", None))
    assert result["actionRunId"] == "run_123"
    assert fake_membrane.calls() == [
        ["act", "--key=get-current-user", f"--connectionId={CONN}", "--input={}", "--json"]
    ]


def test_request_sends_method_headers_query_and_body_intact(fake_membrane: FakeMembrane) -> None:
    body = {"recipients": [{"email": "a@b.co", "variables": {"note": 'say "hi"\n-bye'}}]}
    response = run(
        transport().request(
            "sequences/s1/recipients",
            method="POST",
            query={"q": "-1", "tags": ["x y", "z"]},
            data=body,
            headers={"X-Note": "a: b"},
        )
    )
    echoed = response["body"]
    assert echoed["method"] == "POST"
    assert echoed["path"] == "/sequences/s1/recipients"
    assert echoed["headers"] == ["X-Note: a: b"]
    assert echoed["query"] == ["q=-1", "tags=x y", "tags=z"]
    assert echoed["data"] == body


def test_calls_needing_a_connection_say_so(fake_membrane: FakeMembrane) -> None:
    t = CliTransport(Settings.from_env())
    with pytest.raises(SetupError, match="No Mixmax connection"):
        run(t.run_action("list-sequences", {}))
    assert fake_membrane.calls() == []


# -- CLI not installed --------------------------------------------------------------


def test_missing_binary_from_env_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIXMAX_NB_MEMBRANE_BIN", str(tmp_path / "nope" / "membrane"))
    with pytest.raises(CliNotFoundError) as info:
        transport()
    assert "MIXMAX_NB_MEMBRANE_BIN" in str(info.value)
    assert INSTALL_HINT in str(info.value)
    assert INSTALL_HINT == "npm install -g @membranehq/cli@latest"


def test_no_membrane_on_path_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CliNotFoundError) as info:
        transport()
    assert "not found on PATH" in str(info.value)
    assert "npm install -g @membranehq/cli@latest" in str(info.value)
    assert 'mx.connect("sandbox")' in str(info.value)


def test_membrane_found_on_path(
    fake_membrane: FakeMembrane, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MIXMAX_NB_MEMBRANE_BIN")
    monkeypatch.setenv("PATH", str(fake_membrane.dir))
    t = transport()
    assert t.binary == str(fake_membrane.bin)
    assert run(t.version()) == "1.18.0"


def test_non_executable_binary_is_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "membrane"
    path.write_text("#!/bin/sh\necho hi\n")
    monkeypatch.setenv("MIXMAX_NB_MEMBRANE_BIN", str(path))
    with pytest.raises(CliNotFoundError, match="not an executable"):
        transport()


def test_binary_that_vanishes_before_the_call(fake_membrane: FakeMembrane) -> None:
    t = transport()
    fake_membrane.bin.unlink()
    with pytest.raises(CliNotFoundError) as info:
        run(t.version())
    assert "vanished" in str(info.value)
    assert INSTALL_HINT in str(info.value)


# -- not logged in ------------------------------------------------------------------


def test_not_logged_in_from_membrane_error_json(fake_membrane: FakeMembrane) -> None:
    fake_membrane.on(
        "action run",
        {"error": {"type": "bad_request", "key": "not_authenticated", "message": "Token expired"}},
    )
    with pytest.raises(NotLoggedInError) as info:
        run(transport().run_action("list-sequences", {}))
    text = str(info.value)
    assert "not logged in" in text
    assert "Token expired" in text
    assert "membrane login --tenant" in text


def test_not_logged_in_from_plain_text_on_stderr(fake_membrane: FakeMembrane) -> None:
    fake_membrane.on("connection list", {"stderr": "Error: You are not logged in.\n", "exit": 1})
    with pytest.raises(NotLoggedInError, match="not logged in"):
        run(transport().list_connections())


def test_not_logged_in_from_status(fake_membrane: FakeMembrane) -> None:
    fake_membrane.on("status", {"json": {"loggedIn": False}})
    with pytest.raises(NotLoggedInError, match="not logged in") as info:
        run(transport().whoami())
    assert "membrane login" in str(info.value)


# -- connection not ready -----------------------------------------------------------


def test_connection_not_ready_carries_state_and_client_action(fake_membrane: FakeMembrane) -> None:
    client_action = {
        "type": "connect",
        "description": "Paste your Mixmax API key",
        "uiUrl": "https://ui.getmembrane.com/connect/abc",
    }
    fake_membrane.on(
        "action run",
        {
            "error": {
                "type": "connection",
                "key": "connection_is_defunct",
                "message": "Connection is defunct",
                "data": {
                    "state": "CLIENT_ACTION_REQUIRED",
                    "connectionId": CONN,
                    "clientAction": client_action,
                },
            }
        },
    )
    with pytest.raises(ConnectionNotReadyError) as info:
        run(transport().run_action("list-sequences", {}))
    err = info.value
    assert err.state == "CLIENT_ACTION_REQUIRED"
    assert err.client_action == client_action
    assert err.connection_id == CONN
    assert "Connection is defunct" in str(err)
    assert "Open https://ui.getmembrane.com/connect/abc to reconnect Mixmax" in str(err)


# -- action failed ------------------------------------------------------------------


def test_action_failed_keeps_type_key_message_run_id_and_raw_output(
    fake_membrane: FakeMembrane,
) -> None:
    error = {
        "type": "action_run",
        "key": "validation_error",
        "message": "sequenceId does not exist in this team",
        "data": {"actionRunId": "run_987"},
    }
    fake_membrane.on("action run", {"error": error, "stderr": "warn: slow network\n", "exit": 3})
    with pytest.raises(ActionFailedError) as info:
        run(transport().run_action("add-recipient-to-sequence", {"sequenceId": "s"}))
    err = info.value
    assert type(err) is ActionFailedError
    assert err.type == "action_run"
    assert err.key == "validation_error"
    assert err.action_run_id == "run_987"
    assert err.action_key == "add-recipient-to-sequence"
    assert "add-recipient-to-sequence: sequenceId does not exist in this team" in str(err)
    assert "membrane action-run-log get run_987 --details" in str(err)
    assert "client.action_run_log('run_987', details=True)" in str(err)
    assert json.loads(err.stdout) == error
    assert err.stderr == "warn: slow network\n"


def test_action_error_json_on_stderr_is_read_too(fake_membrane: FakeMembrane) -> None:
    fake_membrane.on(
        "action run",
        {
            "error": {"error": {"type": "bad_request", "key": "oops", "message": "Bad field"}},
            "error_to": "stderr",
            "stdout": "progress...\n",
        },
    )
    with pytest.raises(ActionFailedError, match="Bad field") as info:
        run(transport().run_action("list-sequences", {}))
    assert info.value.key == "oops"
    assert info.value.stdout == "progress...\n"
    assert "Bad field" in info.value.stderr


@pytest.mark.parametrize(
    ("error", "cls"),
    [
        ({"type": "bad_request", "key": "not_found", "message": "No such sequence"}, NotFoundError),
        ({"type": "internal", "key": "internal", "message": "Upstream 502"}, ServerError),
        (
            {"type": "action_run", "message": "Mixmax said 503", "data": {"status": 503}},
            ServerError,
        ),
    ],
)
def test_service_errors_map_to_their_class(
    fake_membrane: FakeMembrane, error: dict[str, Any], cls: type[Exception]
) -> None:
    fake_membrane.on("action run", {"error": error})
    with pytest.raises(cls, match=error["message"]):
        run(transport().run_action("list-sequences", {}))


# -- rate limited -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "retry_after"),
    [
        ({"retryAfter": 7}, 7.0),
        ({"headers": {"Retry-After": "12"}}, 12.0),
        ({"response": {"status": 429, "headers": {"retry-after": "3.5"}}}, 3.5),
        ({}, None),
    ],
)
def test_rate_limited_carries_retry_after(
    fake_membrane: FakeMembrane, data: dict[str, Any], retry_after: float | None
) -> None:
    fake_membrane.on(
        "action run",
        {
            "error": {
                "type": "bad_request",
                "key": "rate_limit_exceeded",
                "message": "Too many requests",
                "data": data,
            }
        },
    )
    with pytest.raises(RateLimitedError) as info:
        run(transport().run_action("list-sequences", {}))
    err = info.value
    assert err.retry_after == retry_after
    assert "rate limited: Too many requests" in str(err)
    assert "120 requests/minute" in str(err)
    if retry_after is not None:
        assert f"wait {retry_after:g} s" in str(err)


# -- timed out, cancelled: the process is really gone ------------------------------


def test_timeout_kills_the_process_and_its_children(fake_membrane: FakeMembrane) -> None:
    fake_membrane.on("action run", {"sleep": 60, "child": 10})
    t = transport(timeout=1.0)
    started = time.monotonic()
    with pytest.raises(CliTimeoutError) as info:
        run(t.run_action("list-sequences", {}))
    assert time.monotonic() - started < 5  # a surviving grandchild would hold us 10 s
    err = info.value
    assert err.timeout == 1.0
    assert "did not answer within 1 s and was stopped" in str(err)
    assert "`membrane action run 66a000000000000000000012` (list-sequences)" in str(err)
    assert len(fake_membrane.pids("main")) == 2  # `action list`, then the hanging run
    assert len(fake_membrane.pids("child")) == 1, "the fake did not get to start its child"
    for pid in fake_membrane.pids():
        assert wait_for(lambda pid=pid: not pid_alive(pid)), f"process {pid} survived"


def test_cancelling_a_long_call_kills_the_process(fake_membrane: FakeMembrane) -> None:
    fake_membrane.on("action run", {"sleep": 60, "child": 10})
    t = transport()

    async def scenario() -> None:
        task = asyncio.create_task(t.run_action("list-sequences", {}))
        for _ in range(500):  # `action list`, then the run and its child
            if len(fake_membrane.pids()) == 3:
                break
            await asyncio.sleep(0.02)
        assert len(fake_membrane.pids()) == 3
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    started = time.monotonic()
    run(scenario())
    assert time.monotonic() - started < 5  # a surviving grandchild would hold us 10 s
    for pid in fake_membrane.pids():
        assert wait_for(lambda pid=pid: not pid_alive(pid)), f"process {pid} survived"


def test_connection_wait_extends_the_process_deadline(fake_membrane: FakeMembrane) -> None:
    fake_membrane.on("connection get", {"sleep": 0.6, "json": {"id": "c", "state": "READY"}})
    # 0.3 s for the process, plus the 1 s the server may hold a --wait long poll.
    conn = run(transport(timeout=0.3).get_connection("c", wait=True, timeout=1))
    assert conn["state"] == "READY"


# -- output that is not JSON; crashes -----------------------------------------------


def test_garbage_output_keeps_the_raw_text(fake_membrane: FakeMembrane) -> None:
    fake_membrane.on("action run", {"stdout": "<html>502 Bad Gateway</html>\n"})
    with pytest.raises(BadOutputError) as info:
        run(transport().run_action("list-sequences", {}))
    err = info.value
    assert "`membrane action run` printed something that is not JSON" in str(err)
    assert "membrane --version" in str(err)
    assert err.raw == "<html>502 Bad Gateway</html>\n"
    assert err.stdout == "<html>502 Bad Gateway</html>\n"


def test_failure_without_json_keeps_exit_code_and_text(fake_membrane: FakeMembrane) -> None:
    fake_membrane.on(
        "connection list", {"stderr": "TypeError: cannot read x of undefined", "exit": 7}
    )
    with pytest.raises(BadOutputError) as info:
        run(transport().list_connections())
    assert "exit code 7" in str(info.value)
    assert info.value.raw == "TypeError: cannot read x of undefined"


@pytest.mark.parametrize(
    ("command", "reply", "call"),
    [
        ("action run", {"json": {"result": 1}}, lambda t: t.run_action("list-sequences", {})),
        ("action list", {"json": {"nothing": True}}, lambda t: t.list_actions()),
        ("action list", {"json": {"items": [1, "x"]}}, lambda t: t.list_actions()),
        ("connection get", {"json": {"state": "READY"}}, lambda t: t.get_connection("c")),
        ("action run", {"stdout": ""}, lambda t: t.run_action("list-sequences", {})),
        ("login", {"json": {"message": "done"}}, lambda t: t.login_start()),
    ],
)
def test_unexpected_json_shapes_are_bad_output(
    fake_membrane: FakeMembrane, command: str, reply: dict[str, Any], call: Any
) -> None:
    fake_membrane.on(command, reply)
    with pytest.raises(BadOutputError):
        run(call(transport()))


@pytest.mark.parametrize(("sig", "code"), [("SIGKILL", -9), ("SIGTERM", -15)])
def test_process_killed_by_a_signal(fake_membrane: FakeMembrane, sig: str, code: int) -> None:
    fake_membrane.on("action run", {"signal": sig})
    with pytest.raises(CliCrashedError) as info:
        run(transport().run_action("list-sequences", {}))
    assert info.value.returncode == code
    assert f"killed by signal {sig}" in str(info.value)
    assert "Run the cell again" in str(info.value)


def test_version_failure_is_mapped(fake_membrane: FakeMembrane) -> None:
    fake_membrane.on("--version", {"signal": "SIGKILL"})
    with pytest.raises(CliCrashedError):
        run(transport().version())


def test_every_error_is_a_mixmax_nb_error() -> None:
    for cls in (CliNotFoundError, CliTimeoutError, BadOutputError, RateLimitedError):
        assert issubclass(cls, MixmaxNbError)


# -- secrets never leak ------------------------------------------------------------

JWT = (
    "eyJhbGci"
    + "OiJIUzI1NiJ9.eyJzdWIiOiJhbmEiLCJ3b3Jrc3BhY2VLZXkiOiJ3MSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
)
CODE = "LC7f3a9b2cQ"
SECRETS = (JWT, CODE, "s3cr3t-w0rkspace", "hunter22hunter22", "9e107d9d-372b-4c3a-b0b1")


def _all_text(err: BaseException) -> str:
    parts = [str(err), repr(err), str(err.args)]
    parts += [json.dumps(v, default=str) for v in vars(err).values()]
    return "\n".join(parts)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked in {text[:300]!r}"


def test_login_code_and_tokens_never_leak_from_errors_or_logs(
    fake_membrane: FakeMembrane, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_membrane.on(
        "login complete",
        {
            "error": {
                "type": "bad_request",
                "key": "invalid_code",
                "message": f"Code {CODE} was rejected for session {JWT}",
                "data": {"code": CODE, "accessToken": JWT, "workspaceSecret": "s3cr3t-w0rkspace"},
            },
            "stderr": f"POST /login?code={CODE}\nAuthorization: Bearer hunter22hunter22\n",
        },
    )
    with pytest.raises(ActionFailedError) as info:
        run(transport().login_complete(CODE))
    assert "was rejected" in str(info.value)
    assert_no_secret(_all_text(info.value), caplog.text)
    assert_no_secret(*(r.getMessage() for r in caplog.records))
    # the argv really carried the code: the fake got it, nobody else saw it
    assert fake_membrane.calls()[-1][2] == CODE


def test_login_complete_result_is_redacted(fake_membrane: FakeMembrane) -> None:
    fake_membrane.on(
        "login complete", {"json": {"ok": True, "accessToken": JWT, "echo": f"code {CODE}"}}
    )
    result = run(transport().login_complete(CODE))
    assert result["ok"] is True
    assert_no_secret(json.dumps(result))


def test_status_tokens_are_not_returned(fake_membrane: FakeMembrane) -> None:
    fake_membrane.on(
        "status",
        {"json": {"loggedIn": True, "email": "a@b.co", "accessToken": JWT, "refreshToken": JWT}},
    )
    assert run(transport().whoami()) == {"email": "a@b.co"}


def test_timeout_of_login_complete_hides_the_code(
    fake_membrane: FakeMembrane, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_membrane.on("login complete", {"sleep": 30})
    t = transport()
    # login_complete has its own 60 s deadline: drive the same process call with a short one.
    with pytest.raises(CliTimeoutError) as info:
        run(t._exec(cli.argv_login_complete(CODE), timeout=0.5, secrets=(CODE,)))
    assert "login complete [redacted]" in str(info.value)
    assert_no_secret(_all_text(info.value), caplog.text)


def test_garbage_with_tokens_is_redacted(
    fake_membrane: FakeMembrane, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_membrane.on(
        "request",
        {
            "stdout": f"GET /v1/users/me?apiToken=9e107d9d-372b-4c3a-b0b1\nBearer {JWT}\n",
            "stderr": "X-API-Token: " + "9e107d9d-372b-4c3a-b0b1\npassword=hunter22hunter22",
            "exit": 1,
        },
    )
    with pytest.raises(BadOutputError) as info:
        run(transport().request("/users/me"))
    assert "[redacted]" in info.value.raw
    assert_no_secret(_all_text(info.value), caplog.text)


def test_not_logged_in_error_with_token_in_message(fake_membrane: FakeMembrane) -> None:
    fake_membrane.on(
        "action run",
        {"error": {"key": "not_authenticated", "message": f"JWT {JWT} expired"}},
    )
    with pytest.raises(NotLoggedInError) as info:
        run(transport().run_action("list-sequences", {}))
    assert "expired" in str(info.value)
    assert_no_secret(_all_text(info.value))


# -- what a misbehaving CLI leaves behind ----------------------------------------------


def test_an_answer_is_read_when_the_cli_exits_even_if_its_child_holds_the_pipe(
    fake_membrane: FakeMembrane,
) -> None:
    # The child holds stdout for 30 s, longer than the 20 s call timeout: had the
    # transport waited for the pipe to close, the call would have timed out (twice).
    fake_membrane.on("connection list", {"child": 30, "default": True})
    connections = run(transport(timeout=20.0).list_connections())
    assert [c["id"] for c in connections] == ["conn_mixmax_1"]
    (child,) = fake_membrane.pids("child")
    assert wait_for(lambda: not pid_alive(child)), "the CLI's child outlived the call"


def test_the_whole_group_is_killed_after_a_clean_exit(fake_membrane: FakeMembrane) -> None:
    # A child that closed our pipes and keeps running is killed with its group too.
    fake_membrane.on("--version", {"detached_child": 30, "default": True})
    assert run(transport().version()) == "1.18.0"
    (child,) = fake_membrane.pids("child")
    assert wait_for(lambda: not pid_alive(child))


def test_a_hung_read_gives_up_after_two_attempts(fake_membrane: FakeMembrane) -> None:
    import mixmax_nb as mx

    fake_membrane.on("action run", {"sleep": 60})
    client = mx.connect("membrane", timeout=1.0)
    with pytest.raises(CliTimeoutError):
        client.run_action("list-sequences", {})
    # Two attempts, each killed at its 1 s deadline, not the retry policy's five
    # (what bounds a hung read's total time; no wall clock asserted here).
    runs = [a for a in fake_membrane.calls() if a[:2] == ["action", "run"]]
    assert len(runs) == 2


def test_the_cli_dies_with_python_after_a_kill_9(fake_membrane: FakeMembrane) -> None:
    import os
    import signal
    import subprocess
    import sys

    fake_membrane.on("action run", {"sleep": 60})
    code = (
        "import asyncio\n"
        "from mixmax_nb.config import Settings\n"
        "from mixmax_nb.transport.cli import CliTransport\n"
        "t = CliTransport(Settings.from_env().with_(connection_id='c1', timeout=120.0))\n"
        "asyncio.run(t.run_action('list-sequences', {}))\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ))
    try:
        assert wait_for(lambda: len(fake_membrane.pids("main")) >= 2, timeout=20)
        cli_pid = fake_membrane.pids("main")[-1]  # after `action list`, the hanging run
        assert pid_alive(cli_pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        assert wait_for(lambda: not pid_alive(cli_pid)), "the CLI outlived a killed Python"
    finally:
        if parent.poll() is None:
            parent.kill()
