"""ConnectWizard, driven headless: set ``.value``, ``.click()``, read the HTML and Output.

Every test body runs inside an event loop (``asyncio.run``), as a kernel cell would,
so the wizard's work runs as real tasks; a test awaits ``wizard.wait()`` where a
person would wait for the spinner to stop. A small in-memory transport scripts
what Membrane answers.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import ipywidgets as w
import pytest

import mixmax_nb as mx
from mixmax_nb import catalog
from mixmax_nb.errors import (
    INSTALL_HINT,
    ActionFailedError,
    CliCrashedError,
    CliNotFoundError,
    NotLoggedInError,
    ServerError,
)
from mixmax_nb.transport.actions import ActionDirectory
from mixmax_nb.widgets import _common
from mixmax_nb.widgets.connect import ConnectWizard

CODE = "PASTED-CODE-7f3a91"
USER = {"_id": "u_1", "name": "Ana Lima", "email": "ana@example.com"}
LOGIN_URL = "https://console.getmembrane.com/login/authorize?client=jupyter&state=s1"
UI_URL = "https://console.getmembrane.com/connections/conn_1/connect"
# The shape of the sandbox's fake login code (the notebook test scans for it).
SANDBOX_CODE = re.compile(r"SBX-[0-9A-F]{8}")


def conn(state: str, **extra: Any) -> dict[str, Any]:
    return {"id": "conn_1", "name": "Mixmax", "key": "mixmax", "state": state, **extra}


def client_action(description: str = "Paste your Mixmax API token", **extra: Any) -> Any:
    return conn(
        "CLIENT_ACTION_REQUIRED",
        clientAction={"type": "connect", "description": description, "uiUrl": UI_URL, **extra},
    )


class FakeTransport:
    """What the wizard needs of a Transport, scripted.

    ``connections`` is what ``connection ensure`` and each ``connection get`` answer
    in turn (the last one repeats). An item that is an exception is raised instead.
    ``block_polls`` makes every ``--wait`` long poll hang until cancelled.
    """

    backend = "membrane"
    rate_limited = False
    max_input_bytes = 10_000_000
    time_scale = 1.0
    account_key: str | None = None
    ephemeral = False
    sandbox = None

    def __init__(
        self,
        *,
        logged_in: bool = False,
        connections: list[Any] | None = None,
        user: dict[str, Any] | None = None,
        code: str = CODE,
        echo_code_in_errors: bool = False,
    ) -> None:
        self.connection_id: str | None = None
        self.actions = ActionDirectory.fixed(catalog.BY_KEY)
        self.logged_in = logged_in
        self.connections = list(connections or [conn("READY")])
        self.user = user or USER
        self.code = code
        self.echo_code_in_errors = echo_code_in_errors
        self.calls: list[tuple[str, Any]] = []
        self.fail: dict[str, BaseException] = {}
        self.block_polls = False
        self.polling = asyncio.Event()
        self.poll_cancelled = False

    def _maybe_fail(self, name: str) -> None:
        exc = self.fail.pop(name, None)
        if exc is not None:
            raise exc

    def _next(self) -> Any:
        item = self.connections.pop(0) if len(self.connections) > 1 else self.connections[0]
        if isinstance(item, BaseException):
            raise item
        return dict(item)

    async def version(self) -> str:
        self.calls.append(("version", None))
        self._maybe_fail("version")
        return "1.18.0"

    async def login_start(self) -> dict[str, str]:
        self.calls.append(("login_start", None))
        self._maybe_fail("login_start")
        return {"url": LOGIN_URL}

    async def login_complete(self, code: str) -> dict[str, Any]:
        # Record that a code came, never the code itself (the test scans this too).
        self.calls.append(("login_complete", len(code)))
        if code != self.code:
            said = f" ({code})" if self.echo_code_in_errors else ""
            raise ActionFailedError(f"invalid or expired login code{said}")
        self.logged_in = True
        return {"ok": True}

    async def whoami(self) -> dict[str, Any]:
        self.calls.append(("whoami", None))
        self._maybe_fail("whoami")
        if not self.logged_in:
            raise NotLoggedInError("Membrane says you are not logged in.")
        return {"email": "ana@membrane.example", "tenantKey": "t1"}

    async def ensure_connection(self, app_url: str) -> Any:
        self.calls.append(("ensure_connection", app_url))
        self._maybe_fail("ensure_connection")
        return self._next()

    async def get_connection(self, connection_id: str, *, wait: bool = False, timeout: int = 30):
        self.calls.append(("get_connection", (connection_id, wait, timeout)))
        self._maybe_fail("get_connection")
        if wait and self.block_polls:
            self.polling.set()
            try:
                await asyncio.Event().wait()  # a long poll that never answers
            except asyncio.CancelledError:
                self.poll_cancelled = True
                raise
        return self._next()

    async def list_connections(self) -> list[Any]:
        return []

    async def list_actions(
        self, *, intent: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Any:
        return {"items": [], "cursor": None}

    async def run_action(self, key: str, input: Any) -> dict[str, Any]:
        self.calls.append(("run_action", key))
        assert self.connection_id == "conn_1", "actions must run on the chosen connection"
        self._maybe_fail("run_action")
        if key == "get-current-user":
            return {"output": dict(self.user), "actionRunId": "run_1"}
        raise AssertionError(f"unexpected action {key}")

    async def request(self, path: str, **kw: Any) -> Any:
        raise AssertionError("not used")

    async def aclose(self) -> None:
        return None

    def count(self, name: str) -> int:
        return sum(1 for call, _ in self.calls if call == name)


def run(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run an async test body in a fresh loop, like a kernel cell with top-level await."""
    asyncio.run(asyncio.wait_for(body(), timeout=20))


def visible(widget: Any) -> bool:
    return widget.layout.display != "none"


def output_text(wizard: ConnectWizard) -> str:
    return "".join(str(o.get("text", o)) for o in wizard.output.outputs)


def widget_tree(root: Any) -> Iterator[Any]:
    """Every widget reachable from ``root``: children, layouts and styles included."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        widget = stack.pop()
        if id(widget) in seen:
            continue
        seen.add(id(widget))
        yield widget
        for name in widget.keys:
            value = getattr(widget, name, None)
            values = value if isinstance(value, tuple | list) else [value]
            stack.extend(v for v in values if isinstance(v, w.Widget))


def all_state(wizard: ConnectWizard) -> str:
    states = [widget.get_state() for widget in widget_tree(wizard.widget)]
    return json.dumps(states, default=str) + json.dumps(wizard.output.outputs, default=str)


# What a person must never be shown: Python (calls, attributes, await), Membrane's state
# constants, Markdown backticks. Developer hints belong in docstrings.
DEVELOPER_TEXT = re.compile(
    r"(?<![@\w.-])(?:wizard|transport|sandbox|mx|client)\.\w|\bawait |autopilot|\w\(\)|`"
    r"|\b(?:CLIENT_ACTION_REQUIRED|BUILDING|READY|CONFIGURATION_ERROR|SETUP_FAILED)\b"
    r"|get-current-user"
)
TEXT_KEYS = ("value", "description", "tooltip", "placeholder")


def shown_text(wizard: ConnectWizard) -> list[str]:
    """Every piece of text the wizard's widgets and log hold, as a person reads it
    (tags and styles dropped, entities decoded), hidden widgets included."""
    texts = []
    for widget in widget_tree(wizard.widget):
        state = widget.get_state()
        for key in TEXT_KEYS:
            value = state.get(key)
            if isinstance(value, str) and value:
                value = re.sub(r"<style>.*?</style>", " ", value, flags=re.S)
                texts.append(html.unescape(re.sub(r"<[^>]+>", " ", value)))
    texts.extend(str(o.get("text", "")) for o in wizard.output.outputs)
    return texts


def assert_speaks_plainly(wizard: ConnectWizard) -> None:
    bad = [t for t in shown_text(wizard) if DEVELOPER_TEXT.search(t)]
    assert not bad, f"developer text shown in phase {wizard.phase!r}: {bad}"


# -- the whole walk -------------------------------------------------------------------


def test_walks_every_step_from_logged_out_to_a_ready_client() -> None:
    async def body() -> None:
        fake = FakeTransport(
            connections=[
                conn("BUILDING"),
                conn("BUILDING"),
                client_action(),
                conn("BUILDING"),
                conn("READY"),
            ]
        )
        wizard = ConnectWizard(transport=fake)
        await wizard.wait()

        # 1: the CLI and its version; 2: logged out, "Log in" offered.
        assert_speaks_plainly(wizard)
        assert "1.18.0" in wizard.cli_status.value
        assert wizard.phase == "logged-out"
        assert "Not logged in" in wizard.login_status.value
        assert visible(wizard.login_button)
        assert not visible(wizard.code)
        assert "waiting for the login" in wizard.connection_status.value

        wizard.login_button.click()
        await wizard.wait()
        assert wizard.phase == "awaiting-code"
        link = wizard.login_link.value
        assert (
            'href="https://console.getmembrane.com/login/authorize?client=jupyter&amp;state=s1"'
            in link
        )
        assert 'target="_blank"' in link
        assert 'rel="noopener noreferrer"' in link
        assert "Open the Membrane login page</a>" in link
        assert "opens in a new tab" in link  # said of the link, not claimed as done
        assert visible(wizard.code)
        assert visible(wizard.complete_button)
        assert not visible(wizard.sandbox_login_button)
        assert_speaks_plainly(wizard)

        wizard.code.value = CODE
        wizard.complete_button.click()
        assert wizard.code.value == "", "the field is cleared as soon as the code is read"
        await wizard.wait()

        # 3: BUILDING was long-polled until it needed a person.
        polls = [args for name, args in fake.calls if name == "get_connection"]
        assert polls == [("conn_1", True, 30), ("conn_1", True, 30)]
        assert ("ensure_connection", "https://www.mixmax.com/") in fake.calls
        assert "logged in as ana@membrane.example" in wizard.login_status.value
        assert not visible(wizard.code)
        assert wizard.login_link.value == ""
        assert wizard.phase == "client-action"
        assert "Paste your Mixmax API token" in wizard.connection_status.value
        assert f'href="{UI_URL}"' in wizard.action_link.value
        assert 'target="_blank"' in wizard.action_link.value
        assert visible(wizard.done_button)
        assert not visible(wizard.sandbox_connect_button)
        assert not visible(wizard.use_button)
        assert_speaks_plainly(wizard)

        wizard.done_button.click()
        await wizard.wait()
        assert wizard.phase == "ready"
        assert "Connected to Mixmax as" in wizard.connection_status.value
        assert "<b>Ana Lima</b> &lt;ana@example.com&gt;" in wizard.connection_status.value
        assert fake.connection_id == "conn_1"
        assert visible(wizard.use_button)
        assert not visible(wizard.next_step)
        assert wizard.client is None
        assert_speaks_plainly(wizard)

        wizard.use_button.click()
        assert wizard.phase == "connected"
        assert isinstance(wizard.client, mx.Client)
        assert wizard.client.transport is fake
        assert "Done: connected to Mixmax." in wizard.use_status.value
        assert not visible(wizard.use_button)
        # It ends with a next step: in a notebook, the next cell (no app to link).
        assert visible(wizard.next_step)
        assert "run the next cell" in wizard.next_step.value
        assert "<a " not in wizard.next_step.value
        assert_speaks_plainly(wizard)

        # The code reached the transport once and is nowhere in the widgets or outputs.
        assert ("login_complete", len(CODE)) in fake.calls
        assert CODE not in all_state(wizard)

    run(body)


def test_already_logged_in_and_ready_goes_straight_to_use() -> None:
    async def body() -> None:
        fake = FakeTransport(logged_in=True)
        wizard = ConnectWizard(transport=fake)
        assert wizard.busy
        assert visible(wizard.runner.cancel_button)
        await wizard.wait()
        assert wizard.phase == "ready"
        assert fake.count("login_start") == 0
        assert not visible(wizard.login_button)
        assert not visible(wizard.runner.cancel_button)
        client = wizard.use()
        assert wizard.client is client
        assert client.me()["email"] == "ana@example.com"  # a usable Client, sync face

    run(body)


def test_existing_connection_id_is_read_not_ensured() -> None:
    async def body() -> None:
        fake = FakeTransport(logged_in=True)
        fake.connection_id = "conn_1"
        wizard = ConnectWizard(transport=fake)
        await wizard.wait()
        assert wizard.phase == "ready"
        assert fake.count("ensure_connection") == 0
        assert ("get_connection", ("conn_1", False, 30)) in fake.calls

    run(body)


def test_display_delegates_to_the_vbox() -> None:
    async def body() -> None:
        wizard = ConnectWizard(transport=FakeTransport(logged_in=True))
        await wizard.wait()
        bundle = wizard._repr_mimebundle_()
        assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == (
            wizard.widget.model_id
        )
        wizard.close()

    run(body)


# -- login ----------------------------------------------------------------------------


def test_a_wrong_code_is_refused_redacted_and_can_be_pasted_again() -> None:
    async def body() -> None:
        fake = FakeTransport(echo_code_in_errors=True)
        wizard = ConnectWizard(transport=fake)
        await wizard.wait()
        wizard.login_button.click()
        await wizard.wait()

        wrong = "WRONG-CODE-123456"
        wizard.code.value = wrong
        wizard.complete_button.click()
        await wizard.wait()
        assert wizard.phase == "awaiting-code"
        assert "not accepted" in wizard.login_status.value
        assert "[redacted]" in wizard.login_status.value
        assert_speaks_plainly(wizard)
        assert wrong not in all_state(wizard)
        assert visible(wizard.code)
        assert wizard.code.value == ""

        wizard.code.value = f"  {CODE}\n"  # pasted with whitespace around it
        wizard.complete_button.click()
        await wizard.wait()
        assert wizard.phase == "ready"
        assert CODE not in all_state(wizard)

    run(body)


def test_complete_with_an_empty_field_asks_for_the_code() -> None:
    async def body() -> None:
        fake = FakeTransport()
        wizard = ConnectWizard(transport=fake)
        await wizard.wait()
        wizard.login_button.click()
        await wizard.wait()
        wizard.code.value = "   "
        wizard.complete_button.click()
        assert "Paste the code" in wizard.login_status.value
        assert fake.count("login_complete") == 0

    run(body)


def test_login_start_failure_is_reported_and_can_be_retried() -> None:
    async def body() -> None:
        fake = FakeTransport()
        fake.fail["login_start"] = ServerError("login service unavailable")
        wizard = ConnectWizard(transport=fake)
        await wizard.wait()
        wizard.login_button.click()
        await wizard.wait()
        assert wizard.phase == "failed"
        assert "login service unavailable" in wizard.login_status.value
        assert "Could not log in" in output_text(wizard)
        assert_speaks_plainly(wizard)
        assert visible(wizard.login_button)
        wizard.login_button.click()
        await wizard.wait()
        assert wizard.phase == "awaiting-code"

    run(body)


def test_expired_login_during_the_connection_step_goes_back_to_login() -> None:
    async def body() -> None:
        fake = FakeTransport(logged_in=True)
        fake.fail["ensure_connection"] = NotLoggedInError("token expired")
        wizard = ConnectWizard(transport=fake)
        await wizard.wait()
        assert wizard.phase == "logged-out"
        assert "token expired" in wizard.login_status.value
        assert visible(wizard.login_button)
        assert_speaks_plainly(wizard)  # the error's hint names a command in backticks

    run(body)


# -- step 1 ---------------------------------------------------------------------------


def test_no_cli_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("MIXMAX_NB_MEMBRANE_BIN", str(tmp_path / "no-such-membrane"))
    monkeypatch.setenv("MIXMAX_NB_SANDBOX_SIZE", "small")

    async def body() -> None:
        wizard = ConnectWizard(backend="membrane")
        await wizard.wait()
        assert wizard.phase == "no-cli"
        assert wizard.transport is None
        assert INSTALL_HINT in wizard.cli_status.value
        assert visible(wizard.check_button)
        assert not visible(wizard.login_button)
        assert "waiting for step 1" in wizard.login_status.value
        assert_speaks_plainly(wizard)

        # The sandbox is a button, not a line of Python to type.
        assert "Use the sandbox instead" in wizard.cli_status.value
        assert visible(wizard.sandbox_switch_button)
        wizard.sandbox_switch_button.click()
        await wizard.wait()
        assert wizard.transport is not None and wizard.transport.backend == "sandbox"
        assert "sandbox" in wizard.cli_status.value
        assert wizard.phase == "logged-out"
        assert not visible(wizard.sandbox_switch_button)
        assert_speaks_plainly(wizard)

    run(body)


def test_no_cli_and_no_backend_uses_a_logged_out_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    import mixmax_nb.transport.cli as cli

    def no_binary(settings: Any) -> str:
        raise CliNotFoundError("not on PATH")

    opened: list[Any] = []

    def fake_sandbox(settings: Any) -> FakeTransport:
        opened.append(settings)
        fake = FakeTransport()
        fake.backend = "sandbox"
        return fake

    monkeypatch.setattr(cli, "find_binary", no_binary)
    import mixmax_nb.client as client_module

    monkeypatch.setattr(client_module, "open_sandbox", fake_sandbox)

    async def body() -> None:
        wizard = ConnectWizard()
        await wizard.wait()
        assert opened[0].sandbox_start == "logged-out"
        assert "sandbox" in wizard.cli_status.value
        assert "fake" in wizard.cli_status.value
        assert wizard.phase == "logged-out"  # the same steps as a real account

    run(body)


def test_unknown_backend_is_refused() -> None:
    async def body() -> None:
        wizard = ConnectWizard(backend="smoke-signals")
        await wizard.wait()
        assert wizard.phase == "failed"
        assert "Unknown backend" in wizard.cli_status.value
        assert visible(wizard.check_button)

    run(body)


def test_a_crashing_cli_is_reported_in_step_one() -> None:
    async def body() -> None:
        fake = FakeTransport()
        fake.fail["version"] = CliCrashedError("membrane died (signal 9)")
        wizard = ConnectWizard(transport=fake)
        await wizard.wait()
        assert wizard.phase == "failed"
        assert "membrane died" in wizard.cli_status.value
        assert visible(wizard.check_button)
        assert_speaks_plainly(wizard)
        wizard.check_button.click()
        await wizard.wait()
        assert wizard.phase == "logged-out"

    run(body)


# -- step 3: states ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "words"),
    [
        ("CONFIGURATION_ERROR", "wrong or missing settings"),
        ("SETUP_FAILED", "setup failed"),
    ],
)
def test_terminal_states_show_the_message_and_what_to_do(state: str, words: str) -> None:
    async def body() -> None:
        failed = conn(state, errors=[{"type": "configuration", "message": "API token rejected"}])
        fake = FakeTransport(logged_in=True, connections=[failed, conn("READY")])
        wizard = ConnectWizard(transport=fake)
        await wizard.wait()
        assert wizard.phase == "failed"
        assert words in wizard.connection_status.value
        assert "API token rejected" in wizard.connection_status.value
        assert "membrane connect --connectionId conn_1" in wizard.action_link.value
        assert_speaks_plainly(wizard)
        assert visible(wizard.retry_button)
        assert not visible(wizard.use_button)
        assert wizard.client is None
        wizard.retry_button.click()
        await wizard.wait()
        assert wizard.phase == "ready"

    run(body)


def test_an_unknown_state_is_tolerated() -> None:
    async def body() -> None:
        fake = FakeTransport(logged_in=True, connections=[conn("DISCONNECTING")])
        wizard = ConnectWizard(transport=fake)
        await wizard.wait()
        assert wizard.phase == "failed"
        assert "being disconnected" in wizard.connection_status.value
        assert visible(wizard.retry_button)
        assert_speaks_plainly(wizard)


def test_a_state_nobody_knows_is_named_as_such() -> None:
    async def body() -> None:
        fake = FakeTransport(logged_in=True, connections=[conn("HIBERNATING")])
        wizard = ConnectWizard(transport=fake)
        await wizard.wait()
        assert wizard.phase == "failed"
        assert "a state this page does not know" in wizard.connection_status.value
        assert "HIBERNATING" in wizard.connection_status.value

    run(body)

    run(body)


def test_a_transport_error_is_shown_with_what_to_do_and_retried() -> None:
    async def body() -> None:
        fake = FakeTransport(logged_in=True)
        fake.fail["ensure_connection"] = ServerError("Membrane is down")
        wizard = ConnectWizard(transport=fake)
        await wizard.wait()
        assert wizard.phase == "failed"
        assert "Membrane is down" in wizard.connection_status.value
        assert "try again" in wizard.connection_status.value  # the error's hint
        assert "Could not check the setup: " in output_text(wizard)
        assert_speaks_plainly(wizard)
        assert visible(wizard.retry_button)
        wizard.retry_button.click()  # no connection yet: ensure again
        await wizard.wait()
        assert fake.count("ensure_connection") == 2
        assert wizard.phase == "ready"

    run(body)


def test_an_unexpected_exception_is_reported_not_lost() -> None:
    async def body() -> None:
        fake = FakeTransport(logged_in=True)
        fake.fail["run_action"] = RuntimeError("boom")
        wizard = ConnectWizard(transport=fake)
        await wizard.wait()
        assert wizard.phase == "failed"
        assert "RuntimeError: boom" in wizard.connection_status.value
        assert not wizard.task.cancelled()
        assert wizard.task.exception() is None  # handled: no "never retrieved" warning

    run(body)


def test_still_client_action_after_i_have_done_it() -> None:
    async def body() -> None:
        fake = FakeTransport(logged_in=True, connections=[client_action()])
        wizard = ConnectWizard(transport=fake)
        await wizard.wait()
        wizard.done_button.click()
        await wizard.wait()
        assert wizard.phase == "client-action"
        assert "still asks" in output_text(wizard)
        assert visible(wizard.done_button)
        assert_speaks_plainly(wizard)

    run(body)


def test_client_action_without_ui_url_says_how_to_reconnect() -> None:
    async def body() -> None:
        action = conn(
            "CLIENT_ACTION_REQUIRED", clientAction={"type": "connect", "description": "Reconnect"}
        )
        wizard = ConnectWizard(transport=FakeTransport(logged_in=True, connections=[action]))
        await wizard.wait()
        assert "<a " not in wizard.action_link.value
        assert "membrane connect --connectionId conn_1" in wizard.action_link.value
        assert_speaks_plainly(wizard)

    run(body)


def test_building_past_the_deadline_stops_waiting() -> None:
    async def body() -> None:
        fake = FakeTransport(logged_in=True, connections=[conn("BUILDING")])
        wizard = ConnectWizard(transport=fake, deadline=0.0)
        await wizard.wait()
        assert wizard.phase == "failed"
        assert "still setting up the connection" in wizard.connection_status.value
        assert visible(wizard.retry_button)
        assert_speaks_plainly(wizard)

    run(body)


# -- Cancel -------------------------------------------------------------------------------


def test_cancel_stops_a_long_poll_and_says_so() -> None:
    async def body() -> None:
        fake = FakeTransport(logged_in=True, connections=[conn("BUILDING"), conn("READY")])
        fake.block_polls = True
        wizard = ConnectWizard(transport=fake)
        await asyncio.wait_for(fake.polling.wait(), 5)

        # While it long-polls: a spinner, BUILDING, Cancel shown, other buttons disabled.
        assert wizard.phase == "building"
        assert "mx-spin" in wizard.connection_status.value
        assert "setting up the Mixmax connection" in wizard.connection_status.value
        assert visible(wizard.runner.cancel_button)
        assert wizard.retry_button.disabled
        assert_speaks_plainly(wizard)

        task = wizard.task
        wizard.runner.cancel_button.click()
        await wizard.wait()
        assert task.cancelled()
        assert fake.poll_cancelled
        assert wizard.phase == "cancelled"
        assert "Cancelled" in wizard.connection_status.value
        assert "Cancelled: check the setup" in output_text(wizard)
        assert_speaks_plainly(wizard)
        assert not visible(wizard.runner.cancel_button)
        assert visible(wizard.retry_button)
        assert not wizard.retry_button.disabled

        # Try again once Membrane is done building.
        fake.block_polls = False
        wizard.retry_button.click()
        await wizard.wait()
        assert wizard.phase == "ready"

    run(body)


def test_a_second_start_while_busy_is_refused() -> None:
    async def body() -> None:
        fake = FakeTransport(logged_in=True, connections=[conn("BUILDING")])
        fake.block_polls = True
        wizard = ConnectWizard(transport=fake)
        await asyncio.wait_for(fake.polling.wait(), 5)
        first = wizard.task
        wizard.check()
        assert wizard.task is first
        assert "Still busy" in output_text(wizard)
        assert wizard.cancel()
        await wizard.wait()
        assert not wizard.cancel()  # nothing left to cancel

    run(body)


# -- escaping -----------------------------------------------------------------------------


def test_hostile_service_text_is_shown_escaped() -> None:
    async def body() -> None:
        hostile = "<script>alert(1)</script>"
        action = client_action(description=hostile)
        action["clientAction"]["uiUrl"] = "javascript:alert(1)"
        user = {"_id": "u_1", "name": '<img src=x onerror="alert(2)">', "email": "a@b.example"}
        fake = FakeTransport(logged_in=True, connections=[action, conn("READY")], user=user)
        wizard = ConnectWizard(transport=fake)
        await wizard.wait()
        status = wizard.connection_status.value
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in status
        assert "<script" not in status
        assert "javascript:" not in wizard.action_link.value
        wizard.done_button.click()
        await wizard.wait()
        assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in wizard.connection_status.value
        assert "<img" not in all_state(wizard)

    run(body)


def test_a_quote_in_a_url_cannot_break_out_of_the_attribute() -> None:
    html = _common.link('https://x.example/"onmouseover="alert(1)', "page")
    assert html.startswith('<a href="https://x.example/&quot;onmouseover=&quot;alert(1)"')


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<b>x</b>", "", "/rel"])
def test_only_http_urls_become_links(url: str) -> None:
    html = _common.link(url, "<x>")
    assert "<a" not in html
    assert html == "&lt;x&gt;"


def test_status_line_and_spinner_keep_the_given_html() -> None:
    spinning = _common.status_line("wait", "working")
    # An inline SVG that turns itself: no icon font or stylesheet to fetch (works offline).
    assert "mx-spin" in spinning and "<svg" in spinning and "animateTransform" in spinning
    assert "fa-" not in spinning and "http" not in spinning.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    assert spinning.endswith(" working</span>")
    assert "mx-error" in _common.status_line("error", "bad")
    assert "mx-info" in _common.status_line("whatever", "x")


# -- without a running loop -----------------------------------------------------------------


def test_without_a_loop_every_step_runs_synchronously() -> None:
    fake = FakeTransport(connections=[conn("BUILDING"), conn("READY")])
    wizard = ConnectWizard(transport=fake)
    assert wizard.phase == "logged-out"
    assert wizard.task is None
    wizard.login_button.click()
    wizard.code.value = CODE
    wizard.complete_button.click()
    assert wizard.phase == "ready"
    wizard.use_button.click()
    assert wizard.client is not None
    assert CODE not in all_state(wizard)


def test_task_runner_reports_errors_and_cancellation_in_its_output() -> None:
    async def body() -> None:
        out = w.Output()
        busy: list[bool] = []
        runner = _common.TaskRunner(out, on_busy=busy.append)

        async def fails() -> None:
            raise ValueError("nope")

        runner.start(fails(), label="fail")
        await runner.wait()
        assert "fail failed: ValueError: nope" in out.outputs[-1]["text"]
        assert busy == [True, False]

        async def hangs() -> None:
            await asyncio.Event().wait()

        # Cancelled before it ever ran: still reported, and the runner is free again.
        early = runner.start(hangs(), label="early")
        assert runner.cancel()
        await runner.wait()
        assert early is not None and early.cancelled()
        assert not runner.busy
        assert runner.cancel_button.layout.display == "none"
        assert "Cancelled: early." in out.outputs[-1]["text"]

        task = runner.start(hangs(), label="hang")
        await asyncio.sleep(0)
        assert runner.cancel()
        await runner.wait()
        assert task is not None and task.cancelled()
        assert "Cancelled: hang." in out.outputs[-1]["text"]

    run(body)


# -- autopilot and the package surface ---------------------------------------------------------


def test_autopilot_clicks_through_with_a_given_code() -> None:
    async def body() -> None:
        fake = FakeTransport(connections=[conn("BUILDING"), conn("READY")])
        wizard = ConnectWizard(transport=fake)
        client = await wizard.autopilot(code=CODE)
        assert client is wizard.client
        assert wizard.phase == "connected"
        assert CODE not in all_state(wizard)

    run(body)


def test_autopilot_stops_where_a_person_is_needed() -> None:
    async def body() -> None:
        fake = FakeTransport(logged_in=True, connections=[client_action()])
        wizard = ConnectWizard(transport=fake)
        with pytest.raises(mx.MixmaxNbError, match="needs a person"):
            await wizard.autopilot()
        with pytest.raises(mx.MixmaxNbError, match="not READY"):
            wizard.use()

    run(body)


def test_the_wizard_is_reachable_lazily_from_the_package() -> None:
    assert mx.widgets.ConnectWizard is ConnectWizard
    assert "ConnectWizard" in dir(mx.widgets)
    code = (
        "import sys, mixmax_nb, mixmax_nb.widgets; "
        "assert 'ipywidgets' not in sys.modules, 'import mixmax_nb loaded ipywidgets'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- the real CLI transport, over the fake `membrane` executable ----------------------------


def test_walk_over_the_cli_transport(fake_membrane: Any) -> None:
    from mixmax_nb.transport.cli import CliTransport

    building = {**conn("BUILDING"), "id": "conn_mixmax_1"}
    fake_membrane.on("status", {"json": {"loggedIn": False}}, {"default": True})
    fake_membrane.on("connection ensure", {"json": building})
    fake_membrane.on("action run", {"json": {"output": USER, "actionRunId": "run_1"}})

    async def body() -> None:
        transport = CliTransport()
        wizard = ConnectWizard(transport=transport)
        await wizard.wait()
        assert "1.18.0" in wizard.cli_status.value
        assert "<code>" in wizard.cli_status.value  # where the binary is
        assert wizard.phase == "logged-out"
        wizard.login_button.click()
        await wizard.wait()
        assert "console.getmembrane.com/login/authorize" in wizard.login_link.value
        wizard.code.value = CODE
        wizard.complete_button.click()
        await wizard.wait()
        assert wizard.phase == "ready", output_text(wizard)
        assert "Ana Lima" in wizard.connection_status.value
        wizard.use_button.click()
        assert wizard.client is not None
        assert transport.connection_id == "conn_mixmax_1"
        assert CODE not in all_state(wizard)

    run(body)
    commands = [" ".join(argv[:2]) for argv in fake_membrane.calls()]
    assert "connection get" in commands  # the BUILDING state was long-polled
    waits = [argv for argv in fake_membrane.calls() if argv[:2] == ["connection", "get"]]
    assert "--wait" in waits[0]


# -- the sandbox ------------------------------------------------------------------------------


def test_the_sandbox_walks_the_same_states() -> None:
    from mixmax_nb.sandbox.membrane import SandboxTransport

    async def body() -> None:
        transport = SandboxTransport.open(db=":memory:", size="small", start="logged-out")
        wizard = ConnectWizard(transport=transport)
        await wizard.wait()
        assert "sandbox" in wizard.cli_status.value
        assert wizard.phase == "logged-out"
        assert_speaks_plainly(wizard)
        wizard.login_button.click()
        await wizard.wait()
        # Its login page does not exist: no link to it, and a button instead of a code.
        assert "sandbox.invalid" not in wizard.login_link.value
        assert "<a " not in wizard.login_link.value
        assert "Sign in to the sandbox" in wizard.login_link.value
        assert visible(wizard.sandbox_login_button)
        assert not visible(wizard.code)
        assert_speaks_plainly(wizard)
        code = transport.sandbox_login_code()  # a developer may still paste it
        assert SANDBOX_CODE.fullmatch(code), "tests/test_notebooks.py scans for this shape"
        wizard.code.value = code
        wizard.complete_button.click()
        await wizard.wait()
        assert wizard.phase == "client-action"
        assert "API token" in wizard.connection_status.value
        assert "sandbox.invalid" not in wizard.action_link.value
        assert "Connect the sandbox" in wizard.action_link.value
        assert visible(wizard.sandbox_connect_button)
        assert_speaks_plainly(wizard)  # not the sandbox's own developer-facing description
        transport.sandbox_complete_connect(wizard.connection["id"])  # the fake connect page
        wizard.done_button.click()
        await wizard.wait()
        assert wizard.phase == "ready"
        client = wizard.use()
        assert client.is_sandbox
        assert "the sandbox: fake data" in wizard.use_status.value
        assert_speaks_plainly(wizard)
        assert code not in all_state(wizard)
        assert len(await client.aio.sequences()) > 0

    run(body)


def test_autopilot_on_the_sandbox_needs_no_code() -> None:
    from mixmax_nb.sandbox.membrane import SandboxTransport

    async def body() -> None:
        transport = SandboxTransport.open(db=":memory:", size="small", start="logged-out")
        wizard = ConnectWizard(transport=transport)
        client = await wizard.autopilot()
        assert client.is_sandbox
        assert wizard.phase == "connected"

    run(body)


def test_sandbox_buttons_walk_a_logged_out_sandbox_without_a_terminal(tmp_path: Path) -> None:
    """A Voila/Binder visitor has no cell to run: the fake steps get buttons of their own."""

    from mixmax_nb.sandbox.membrane import SandboxTransport
    from mixmax_nb.widgets.connect import ConnectWizard

    async def body() -> None:
        transport = SandboxTransport.open(
            size="small", db=str(tmp_path / "sbx.sqlite"), start="logged-out"
        )
        wizard = ConnectWizard(transport=transport)
        await wizard.wait()
        assert wizard.sandbox_login_button.layout.display == "none"
        wizard.login_button.click()
        await wizard.wait()
        assert wizard.phase == "awaiting-code"
        assert wizard.sandbox_login_button.layout.display != "none"
        wizard.sandbox_login_button.click()
        await wizard.wait()
        assert wizard.code.value == ""
        assert wizard.sandbox_login_button.layout.display == "none"
        for _ in range(5):  # BUILDING long-polls settle in the sandbox's first wait
            if wizard.phase == "client-action":
                break
            await wizard.wait()
        assert wizard.phase == "client-action"
        assert wizard.sandbox_connect_button.layout.display != "none"
        wizard.sandbox_connect_button.click()
        await wizard.wait()
        assert wizard.phase in ("ready", "connected")
        assert wizard.sandbox_connect_button.layout.display == "none"
        assert wizard.use().is_sandbox
        assert_speaks_plainly(wizard)

    asyncio.run(body())


def test_in_an_app_the_last_step_links_to_the_dashboard() -> None:
    """Voila serves apps side by side (/voila/render/<name>.ipynb): a relative link."""

    async def body() -> None:
        fake = FakeTransport(logged_in=True)
        wizard = ConnectWizard(transport=fake, next_app="dashboard.ipynb")
        await wizard.wait()
        assert not visible(wizard.next_step)
        wizard.use_button.click()
        assert wizard.phase == "connected"
        assert visible(wizard.next_step)
        step = wizard.next_step.value
        assert '<a href="dashboard.ipynb">Open the engagement dashboard</a>' in step
        assert "run the next cell" not in step
        assert_speaks_plainly(wizard)

    run(body)


@pytest.mark.parametrize(
    "where", ["javascript:alert(1)", "https://elsewhere.example/x", "//elsewhere.example", " "]
)
def test_the_next_app_must_be_a_page_of_this_server(where: str) -> None:
    with pytest.raises(mx.MixmaxNbError, match="page of this server"):
        ConnectWizard(transport=FakeTransport(), next_app=where, autostart=False)


def test_a_next_app_label_is_escaped() -> None:
    fake = FakeTransport(logged_in=True)
    wizard = ConnectWizard(transport=fake, next_app="a b.ipynb", next_label="<b>x</b>")
    wizard.use()
    assert "&lt;b&gt;x&lt;/b&gt;" in wizard.next_step.value
    assert 'href="a b.ipynb"' in wizard.next_step.value
