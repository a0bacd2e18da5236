"""The login and connection wizard: from nothing to a ready :class:`~mixmax_nb.Client`.

It replaces the terminal dance (``membrane login``, copy a URL, paste a code,
``connection ensure``, poll, open another URL, poll again) with four steps, each
showing its state:

1. **Membrane CLI** -- found and its version, or how to install it (the sandbox
   says it is the sandbox);
2. **Login** -- "Log in" asks for an authorization URL (shown as a link), the code
   from that page is pasted into a password field and "Complete" sends it; the field
   is cleared at once, so the code never stays in widget state, outputs or logs;
3. **Mixmax connection** -- ``connection ensure https://www.mixmax.com/``, then its
   live state: BUILDING (a spinner while it long-polls, with Cancel),
   CLIENT_ACTION_REQUIRED (what Membrane asks, its page as a link, "I've done it"),
   READY (who you are in Mixmax, from ``get-current-user``), or an error with what
   to do;
4. **Use this connection** -- sets :attr:`ConnectWizard.client`.

Every call to the transport runs as a task on the kernel's loop (see
``_common.TaskRunner``), so a long poll never freezes the notebook. Text that came
from Membrane or Mixmax is escaped before it reaches an ``HTML`` widget.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any

import ipywidgets as w

from ..client import AsyncClient, Client, setup_transport
from ..config import MIXMAX_APP_URL
from ..errors import (
    INSTALL_HINT,
    CliNotFoundError,
    InputError,
    MixmaxNbError,
    NotLoggedInError,
    ServiceError,
)
from ..transport.base import (
    BUILDING,
    CLIENT_ACTION_REQUIRED,
    READY,
    TERMINAL_ERROR_STATES,
    Connection,
    Transport,
)
from ..transport.setup import wait_until_settled
from ._common import TaskRunner, error_text, esc, hide, link, show, status_line

__all__ = ["ConnectWizard"]

# What the person can do about each terminal state (the service's own message is
# shown next to it).
_WHAT_TO_DO = {
    "CONFIGURATION_ERROR": (
        "Its settings are wrong or incomplete. Reconnect it (in a terminal: "
        "<code>membrane connect --connectionId {id}</code>), then click “Check again”."
    ),
    "SETUP_FAILED": (
        "Membrane could not set it up. Look at the connection in the Membrane console, "
        "reconnect it (<code>membrane connect --connectionId {id}</code>), then click "
        "“Check again”."
    ),
}


class ConnectWizard:
    """A guided login and Mixmax connection; ``wizard.client`` once it is done.

    ``transport``: any :class:`~mixmax_nb.transport.base.Transport`. Otherwise
    ``backend`` picks one: ``"membrane"`` (the CLI), ``"sandbox"`` (the embedded
    account, starting logged out so the same steps are walked), or None:
    ``MIXMAX_NB_BACKEND``, else the CLI if it is installed, else the sandbox.

    ``poll_timeout`` is one long poll's length in seconds (Membrane allows 1-60);
    ``deadline`` is how long BUILDING is waited for before giving up.

    The wizard starts checking at once (step 1, then 2, then 3 if already logged
    in). In a notebook that work is a task on the kernel's loop; ``await
    wizard.wait()`` waits for whatever is running.
    """

    def __init__(
        self,
        transport: Transport | None = None,
        backend: str | None = None,
        *,
        app_url: str = MIXMAX_APP_URL,
        poll_timeout: int = 30,
        deadline: float = 600.0,
        autostart: bool = True,
    ) -> None:
        self.app_url = app_url
        self.poll_timeout = poll_timeout
        self.deadline = deadline
        self._backend = backend
        self.transport: Transport | None = transport
        self.client: Client | None = None
        """The ready client, set by "Use this connection" (or :meth:`use`)."""
        self.connection: Connection | None = None
        """The Mixmax connection as Membrane last described it."""
        self.user: dict[str, Any] | None = None
        """The Mixmax user (``get-current-user``) once the connection is READY."""
        self.phase = "idle"
        """Where the wizard is: idle, checking, no-cli, logged-out, awaiting-code,
        logging-in, connecting, building, client-action, ready, failed, cancelled,
        connected."""
        self._step = 1
        self._build()
        if autostart:
            self.check()

    # -- layout -------------------------------------------------------------------

    def _build(self) -> None:
        def button(description: str, icon: str, tooltip: str, style: str = "") -> Any:
            b = w.Button(description=description, icon=icon, tooltip=tooltip, button_style=style)
            b.layout.width = "auto"
            return b

        self.title = w.HTML("<h3 style='margin:0'>Connect to Mixmax</h3>")
        self.cli_status = w.HTML()
        self.check_button = button("Check again", "refresh", "Look for the CLI again")
        self.login_status = w.HTML()
        self.login_button = button(
            "Log in", "sign-in", "Ask Membrane for a login page", style="primary"
        )
        self.login_link = w.HTML(layout=w.Layout(margin="0 0 0 0.6em"))
        self.code = w.Password(
            description="Code:",
            placeholder="paste the code from the login page",
            layout=w.Layout(width="22em"),
        )
        self.complete_button = button(
            "Complete", "check", "Send the code to Membrane", style="primary"
        )
        self.connection_status = w.HTML()
        self.action_link = w.HTML()
        self.done_button = button(
            "I've done it", "check", "Check the connection again", style="primary"
        )
        self.retry_button = button("Check again", "refresh", "Ask Membrane for the state again")
        # Sandbox only: its login page and connect page are fake, so a visitor of a
        # Voila/Binder demo (no terminal, no Python cell) gets a button for each.
        self.sandbox_login_button = button(
            "Sandbox: sign in (fake code)", "magic", "Complete the sandbox's fake login"
        )
        self.sandbox_connect_button = button(
            "Sandbox: connect Mixmax (fake page)", "magic", "Do the sandbox's fake connect step"
        )
        self.use_status = w.HTML()
        self.use_button = button(
            "Use this connection", "plug", "Set wizard.client", style="success"
        )
        self.output = w.Output(layout=w.Layout(max_height="12em", overflow="auto"))
        self.runner = TaskRunner(self.output, on_busy=self._on_busy)

        self.check_button.on_click(lambda _b: self.check())
        self.login_button.on_click(lambda _b: self._start(self._login_start(), "log in"))
        self.complete_button.on_click(lambda _b: self._on_complete())
        self.done_button.on_click(lambda _b: self._start(self._recheck(), "check the connection"))
        self.retry_button.on_click(lambda _b: self._start(self._retry(), "check the connection"))
        self.use_button.on_click(lambda _b: self.use())
        self.sandbox_login_button.on_click(lambda _b: self._sandbox_login())
        self.sandbox_connect_button.on_click(lambda _b: self._sandbox_connect())

        def step(number: int, name: str, status: Any, *rows: Any) -> Any:
            head = w.HTML(f"<b>{number}. {esc(name)}</b>")
            status.layout.margin = "0 0 0 0.6em"
            return w.VBox([w.HBox([head, status]), *rows])

        self.steps = [
            step(1, "Membrane CLI", self.cli_status, w.HBox([self.check_button])),
            step(
                2,
                "Membrane login",
                self.login_status,
                w.HBox([self.login_button, self.login_link]),
                w.HBox([self.code, self.complete_button, self.sandbox_login_button]),
            ),
            step(
                3,
                "Mixmax connection",
                self.connection_status,
                self.action_link,
                w.HBox([self.done_button, self.retry_button, self.sandbox_connect_button]),
            ),
            step(4, "Use it", self.use_status, w.HBox([self.use_button])),
        ]
        self.widget = w.VBox([self.title, *self.steps, self.runner.cancel_button, self.output])
        for control in (
            self.check_button,
            self.login_button,
            self.login_link,
            self.code,
            self.complete_button,
            self.action_link,
            self.done_button,
            self.retry_button,
            self.use_button,
            self.sandbox_login_button,
            self.sandbox_connect_button,
        ):
            hide(control)
        self.cli_status.value = status_line("idle", "not checked yet")
        self._idle_from(2)

    def _idle_from(self, step: int) -> None:
        """Later steps wait for this one: say so, and offer none of their buttons."""
        if step <= 2:
            self.login_status.value = status_line("idle", "waiting for step 1")
            for control in (
                self.login_button,
                self.login_link,
                self.code,
                self.complete_button,
                self.sandbox_login_button,
            ):
                hide(control)
        if step <= 3:
            self.connection_status.value = status_line("idle", "waiting for the login")
            for control in (
                self.action_link,
                self.done_button,
                self.retry_button,
                self.sandbox_connect_button,
            ):
                hide(control)
        if step <= 4:
            self.use_status.value = status_line("idle", "waiting for a READY connection")
            hide(self.use_button)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _on_busy(self, busy: bool) -> None:
        # Visibility says what each state offers; while work runs nothing else may start.
        for b in (
            self.check_button,
            self.login_button,
            self.complete_button,
            self.done_button,
            self.retry_button,
            self.use_button,
        ):
            b.disabled = busy

    # -- running work -------------------------------------------------------------

    @property
    def task(self) -> Any:
        """The most recent task (an ``asyncio.Task``), or None."""
        return self.runner.task

    @property
    def busy(self) -> bool:
        return self.runner.busy

    async def wait(self) -> None:
        """Until the running step (if any) has ended."""
        await self.runner.wait()

    def cancel(self) -> bool:
        """Stop what is running (same as the Cancel button)."""
        return self.runner.cancel()

    def _start(
        self,
        coro: Awaitable[None],
        label: str,
        *,
        secrets: tuple[str, ...] = (),
    ) -> None:
        if not self.runner.busy:
            # Each action starts with a clean log (a refused one keeps the running one's).
            # Setting the model's outputs, rather than clear_output() which goes through
            # IPython's display hooks, works the same in a kernel, from a task, headless.
            self.output.outputs = ()
        self.runner.start(
            coro,
            label=label,
            on_error=lambda exc: self._on_error(exc, label, secrets),
            on_cancel=lambda: self._on_cancel(label),
        )

    def _status_widget(self) -> Any:
        return {
            1: self.cli_status,
            2: self.login_status,
            3: self.connection_status,
            4: self.use_status,
        }[self._step]

    def _log(self, text: str) -> None:
        self.output.append_stdout(text.rstrip("\n") + "\n")

    def _on_error(self, exc: BaseException, label: str, secrets: tuple[str, ...]) -> None:
        text = error_text(exc, *secrets)
        self._log(f"Could not {label}: {text}")
        if isinstance(exc, CliNotFoundError):
            self._show_no_cli(exc)
            return
        if isinstance(exc, NotLoggedInError):
            self._show_logged_out(f"Membrane says you are not logged in ({text}).")
            return
        self.phase = "failed"
        self._status_widget().value = status_line("error", esc(text))
        self._offer_retry()

    def _on_cancel(self, label: str) -> None:
        self.phase = "cancelled"
        self._log(f"Cancelled: {label}. Nothing is running now.")
        self._status_widget().value = status_line(
            "warn", f"Cancelled ({esc(label)}); nothing is running now."
        )
        self._offer_retry()

    def _offer_retry(self) -> None:
        """After a failure or Cancel, show the button that tries the current step again."""
        if self._step == 1:
            show(self.check_button)
        elif self._step == 2:
            show(self.login_button)
        else:
            show(self.retry_button)

    # -- step 1: the CLI ------------------------------------------------------------

    def check(self) -> None:
        """Start over from step 1 (what the wizard does when it is created)."""
        self._start(self._check(), "check the setup")

    async def _check(self) -> None:
        self._step = 1
        self.phase = "checking"
        hide(self.check_button)
        self._idle_from(2)
        if self.transport is None:
            try:
                self.transport = setup_transport(self._backend)
            except CliNotFoundError as exc:
                self._show_no_cli(exc)
                return
        transport = self.transport
        self.cli_status.value = status_line("wait", "looking for the Membrane CLI…")
        version = await transport.version()
        if transport.backend == "sandbox":
            self.cli_status.value = status_line(
                "ok",
                f"<b>sandbox</b> {esc(version)}: an emulated Membrane and Mixmax account in "
                "this notebook, no install, no network, fake data. The login page and code "
                "below are fake too.",
            )
        else:
            where = getattr(transport, "binary", None)
            at = f" at <code>{esc(where)}</code>" if where else ""
            self.cli_status.value = status_line(
                "ok", f"<code>membrane</code> {esc(version)} found{at}"
            )
        if await self._check_login():
            await self._connect()

    def _show_no_cli(self, exc: BaseException) -> None:
        self.phase = "no-cli"
        self._step = 1
        self.cli_status.value = status_line(
            "error",
            f"{esc(error_text(exc))}<br>Install it with <code>{esc(INSTALL_HINT)}</code> "
            "(it needs Node.js), then click “Check again”. Or try everything on the "
            'sandbox: <code>mx.widgets.ConnectWizard(backend="sandbox")</code>.',
        )
        self._idle_from(2)
        show(self.check_button)

    # -- step 2: the login ----------------------------------------------------------

    async def _check_login(self) -> bool:
        self._step = 2
        self.login_status.value = status_line("wait", "checking the Membrane login…")
        try:
            who = await self._need_transport().whoami()
        except NotLoggedInError:
            self._show_logged_out()
            return False
        self._show_logged_in(who)
        return True

    def _show_logged_out(self, note: str = "") -> None:
        self.phase = "logged-out"
        self._step = 2
        extra = f" {esc(note)}" if note else ""
        self.login_status.value = status_line(
            "action", f"Not logged in to Membrane.{extra} Click “Log in”."
        )
        show(self.login_button)
        for control in (
            self.login_link,
            self.code,
            self.complete_button,
            self.sandbox_login_button,
        ):
            hide(control)
        self._idle_from(3)

    def _show_logged_in(self, who: Mapping[str, Any]) -> None:
        self.login_status.value = status_line("ok", f"logged in{_describe_account(who)}")
        # The login page link and the code field have done their job: remove them.
        self.login_link.value = ""
        for control in (
            self.login_button,
            self.login_link,
            self.code,
            self.complete_button,
            self.sandbox_login_button,
        ):
            hide(control)

    async def _login_start(self) -> None:
        self._step = 2
        self.phase = "logging-in"
        hide(self.login_button)
        self.login_status.value = status_line("wait", "asking Membrane for a login page…")
        start = await self._need_transport().login_start()
        url = str(start.get("url") or "")
        if not url:
            raise MixmaxNbError("Membrane gave no login page address.")
        self.login_link.value = (
            f"Open {link(url, 'the Membrane login page')}, sign in, and paste the code it "
            "shows here:"
        )
        if self._is_sandbox():
            # The sandbox's page does not exist; say where its (fake) code comes from.
            self.login_link.value += (
                " <i>(sandbox: that page is fake; its code is "
                "<code>wizard.transport.sandbox.login_code()</code>, or let "
                "<code>await wizard.autopilot()</code> click through)</i>"
            )
        show(self.login_link)
        show(self.code)
        show(self.complete_button)
        show(self.sandbox_login_button, self._is_sandbox())
        show(self.login_button)  # to ask for a fresh page if this one expired
        self.login_button.description = "New login page"
        self.phase = "awaiting-code"
        self.login_status.value = status_line("action", "waiting for the code from the login page")
        self._log("Login page ready; it opens in a new tab.")

    def _on_complete(self) -> None:
        code = str(self.code.value or "").strip()
        # Clear the field before anything else: the code must not stay in widget state
        # (nbclient saves widget state in the notebook) once it has been read.
        self.code.value = ""
        if not code:
            self.login_status.value = status_line(
                "warn", "Paste the code from the login page first."
            )
            return
        self._start(self._login_complete(code), "complete the login", secrets=(code,))

    async def _login_complete(self, code: str) -> None:
        self._step = 2
        self.phase = "logging-in"
        self.login_status.value = status_line("wait", "completing the login…")
        transport = self._need_transport()
        try:
            await transport.login_complete(code)
        except (ServiceError, NotLoggedInError, InputError) as exc:
            # A wrong or expired code: say so and let the person paste another one.
            self.phase = "awaiting-code"
            text = error_text(exc, code)
            self.login_status.value = status_line(
                "error",
                f"That code was not accepted: {esc(text)} Paste it again, or ask for a new "
                "login page.",
            )
            self._log(f"Login not completed: {text}")
            return
        finally:
            # Drop our reference too: nothing after this point needs the code.
            code = ""
        self._show_logged_in(await transport.whoami())
        self._log("Logged in to Membrane.")
        self.login_button.description = "Log in"
        await self._connect()

    # -- step 3: the Mixmax connection ------------------------------------------------

    async def _connect(self) -> None:
        self._step = 3
        self.phase = "connecting"
        self._idle_from(4)
        for control in (self.action_link, self.done_button, self.retry_button):
            hide(control)
        transport = self._need_transport()
        if transport.connection_id:
            self.connection_status.value = status_line(
                "wait", f"reading connection {esc(transport.connection_id)}…"
            )
            conn = await transport.get_connection(transport.connection_id)
        else:
            self.connection_status.value = status_line(
                "wait", f"asking Membrane for the Mixmax connection ({esc(self.app_url)})…"
            )
            conn = await transport.ensure_connection(self.app_url)
        await self._settle(conn)

    async def _recheck(self) -> None:
        """ "I've done it": read the state again (the person may have finished)."""
        await self._reread()
        if self.phase == "client-action":
            self._log("Membrane still asks for the step above; finish it, then click again.")

    async def _retry(self) -> None:
        if self.connection is not None and self.connection.get("id"):
            await self._reread()
        else:
            await self._connect()

    async def _reread(self) -> None:
        self._step = 3
        conn_id = _connection_id(self.connection)
        hide(self.done_button)
        hide(self.retry_button)
        hide(self.sandbox_connect_button)
        self.connection_status.value = status_line("wait", "checking the connection again…")
        await self._settle(await self._need_transport().get_connection(conn_id))

    async def _settle(self, conn: Connection) -> None:
        """Long-poll while BUILDING (the client's one long-poll), then show whatever
        state the connection is in."""
        self._step = 3
        self.connection = conn

        def polling(current: Connection, _left: float) -> None:
            self.phase = "building"
            self.connection = current
            self.connection_status.value = status_line(
                "wait", "Membrane is building the Mixmax connection (BUILDING)… waiting for it"
            )

        conn = await wait_until_settled(
            self._need_transport(),
            conn,
            deadline=self.deadline,
            poll=self.poll_timeout,
            on_poll=polling,
        )
        self.connection = conn
        if conn.get("state") == BUILDING:
            self.phase = "failed"
            self.connection_status.value = status_line(
                "warn",
                f"Still BUILDING after {self.deadline:g} s. Membrane is slow or stuck; "
                "click “Check again” in a while.",
            )
            show(self.retry_button)
            return
        state = str(conn.get("state") or "UNKNOWN")
        if state == READY:
            await self._ready(conn)
        elif state == CLIENT_ACTION_REQUIRED:
            self._client_action(conn)
        elif state in TERMINAL_ERROR_STATES:
            self._terminal(conn, state)
        else:
            self._unknown(conn, state)

    def _client_action(self, conn: Connection) -> None:
        self.phase = "client-action"
        action = conn.get("clientAction") or {}
        description = action.get("description") or "Membrane needs you to finish connecting."
        self.connection_status.value = status_line(
            "action", f"Mixmax needs you (CLIENT_ACTION_REQUIRED): {esc(description)}"
        )
        ui_url = action.get("uiUrl")
        if ui_url:
            where = f"Open {link(ui_url, 'the Mixmax connection page')}"
        else:
            where = (
                "In a terminal run <code>membrane connect --connectionId "
                f"{esc(conn.get('id', '<id>'))}</code>"
            )
        self.action_link.value = (
            f"{where}, do what it asks (Mixmax connects with an API token from your Mixmax "
            "settings), then click “I've done it”."
        )
        show(self.action_link)
        show(self.done_button)
        show(self.sandbox_connect_button, self._is_sandbox())
        hide(self.retry_button)
        self._log(f"Waiting for you: {description}")

    def _terminal(self, conn: Connection, state: str) -> None:
        self.phase = "failed"
        details = _error_messages(conn) or "Membrane gave no details."
        self.connection_status.value = status_line(
            "error", f"The Mixmax connection failed ({esc(state)}): {esc(details)}"
        )
        self.action_link.value = _WHAT_TO_DO[state].format(id=esc(conn.get("id", "<id>")))
        show(self.action_link)
        show(self.retry_button)
        hide(self.done_button)
        hide(self.sandbox_connect_button)
        self._log(f"Connection {state}: {details}")

    def _unknown(self, conn: Connection, state: str) -> None:
        self.phase = "failed"
        details = _error_messages(conn)
        said = f" Membrane says: {esc(details)}" if details else ""
        self.connection_status.value = status_line(
            "warn",
            f"The Mixmax connection is in state {esc(state)}, which is not usable yet.{said}",
        )
        self.action_link.value = (
            "Click “Check again” in a moment; if it stays so, reconnect it in a terminal "
            f"(<code>membrane connect --connectionId {esc(conn.get('id', '<id>'))}</code>)."
        )
        show(self.action_link)
        show(self.retry_button)
        hide(self.done_button)
        hide(self.sandbox_connect_button)
        self._log(f"Connection in state {state}.")

    async def _ready(self, conn: Connection) -> None:
        transport = self._need_transport()
        transport.connection_id = _connection_id(conn)
        hide(self.sandbox_connect_button)
        self.action_link.value = ""
        hide(self.action_link)
        hide(self.done_button)
        hide(self.retry_button)
        self.connection_status.value = status_line(
            "wait", "READY; asking Mixmax who you are (get-current-user)…"
        )
        user = await AsyncClient(transport).me()
        self.user = user
        self.phase = "ready"
        self.connection_status.value = status_line("ok", f"READY: {_describe_user(user)}")
        self.use_status.value = status_line(
            "action", "Click “Use this connection” to hand it to this notebook."
        )
        show(self.use_button)
        self._log("The Mixmax connection is READY.")

    # -- step 4 -------------------------------------------------------------------------

    def use(self) -> Client:
        """Step 4: set and return :attr:`client` (the connection must be READY)."""
        if self.phase not in ("ready", "connected") or self.transport is None:
            raise MixmaxNbError(
                "The Mixmax connection is not READY yet.",
                hint="Finish the steps of the wizard above first.",
            )
        if self.client is None:
            self.client = Client(self.transport)
        self._step = 4
        self.phase = "connected"
        hide(self.use_button)
        sandbox = " (the sandbox: emulated data)" if self.client.is_sandbox else ""
        self.use_status.value = status_line(
            "ok", f"In use{sandbox}: <code>wizard.client</code> is ready."
        )
        self._log("wizard.client is ready.")
        return self.client

    async def autopilot(self, code: str | None = None) -> Client:
        """Click through every step as a person would, for the sandbox and demos.

        It uses the same buttons and field a person uses (so what is shown is what a
        person would see) and waits for each step. ``code`` is the login code; on the
        sandbox it is read from the sandbox (it is fake). Raises if a step needs a
        person (a real login or CLIENT_ACTION_REQUIRED on a real account).
        """
        await self.wait()
        if self.phase == "logged-out":
            self.login_button.click()
            await self.wait()
        if self.phase == "awaiting-code":
            self.code.value = code if code is not None else _sandbox_code(self.transport)
            self.complete_button.click()
            await self.wait()
        if self.phase == "client-action" and self._is_sandbox():
            _sandbox_complete_action(self.transport, self.connection)
            self.done_button.click()
            await self.wait()
        if self.phase in ("ready", "connected"):
            return self.use()
        raise MixmaxNbError(
            f"The wizard stopped at {self.phase!r} and needs a person.",
            hint="Follow the step shown in the wizard above.",
        )

    def _sandbox_login(self) -> None:
        """Complete the sandbox's fake login; the code never enters a widget."""
        if not self._is_sandbox() or self.phase != "awaiting-code":
            return
        code = _sandbox_code(self.transport)
        self._start(self._login_complete(code), "complete the login", secrets=(code,))

    def _sandbox_connect(self) -> None:
        """Do the sandbox's fake connect page, then re-check as "I've done it" would."""
        if not self._is_sandbox() or self.phase != "client-action":
            return
        _sandbox_complete_action(self.transport, self.connection)
        self.done_button.click()

    # -- helpers ------------------------------------------------------------------------

    def _is_sandbox(self) -> bool:
        return self.transport is not None and self.transport.backend == "sandbox"

    def _need_transport(self) -> Transport:
        if self.transport is None:
            raise CliNotFoundError("No Membrane backend is available.")
        return self.transport

    def close(self) -> None:
        """Stop any running step and close every widget of the wizard."""
        self.cancel()
        _close_tree(self.widget)


def _close_tree(widget: Any) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


def _connection_id(conn: Mapping[str, Any] | None) -> str:
    conn_id = (conn or {}).get("id")
    if not conn_id:
        raise MixmaxNbError("Membrane described the connection without an id.")
    return str(conn_id)


def _error_messages(conn: Mapping[str, Any]) -> str:
    errors = list(conn.get("errors") or [])
    if isinstance(conn.get("error"), Mapping):
        errors.append(conn["error"])
    messages = [
        str(e.get("message") or e.get("key") or e) if isinstance(e, Mapping) else str(e)
        for e in errors
    ]
    return "; ".join(m for m in messages if m)


def _describe_account(who: Mapping[str, Any]) -> str:
    """ " as ana@example.com" from whatever identity fields Membrane returned (escaped)."""
    user = who.get("user")
    candidates = [who.get("email"), who.get("name")]
    if isinstance(user, Mapping):
        candidates = [user.get("email"), user.get("name"), *candidates]
    elif isinstance(user, str):
        candidates.append(user)
    for value in candidates:
        if value:
            return f" as {esc(value)}"
    return ""


def _describe_user(user: Mapping[str, Any]) -> str:
    name = user.get("name") or " ".join(
        str(p) for p in (user.get("firstName"), user.get("lastName")) if p
    )
    email = user.get("email")
    parts = [f"<b>{esc(name)}</b>" if name else "", f"&lt;{esc(email)}&gt;" if email else ""]
    shown = " ".join(p for p in parts if p)
    return f"Mixmax as {shown}" if shown else "Mixmax (no name or email returned)"


def _sandbox_code(transport: Transport | None) -> str:
    """The sandbox's fake login code (a real login needs the person to paste theirs)."""
    controls = transport.sandbox if transport is not None else None
    if controls is None:
        raise MixmaxNbError(
            "Only the sandbox can log in by itself.",
            hint="Open the login page, then paste its code into the wizard.",
        )
    return str(controls.login_code())


def _sandbox_complete_action(transport: Transport | None, conn: Mapping[str, Any] | None) -> None:
    """Do, in the sandbox, what a person does on the connection page."""
    controls = transport.sandbox if transport is not None else None
    if controls is None:
        raise MixmaxNbError("Only the sandbox can finish the connection step by itself.")
    controls.complete_connect(_connection_id(conn))
