"""The login and connection wizard: from nothing to a ready :class:`~mixmax_nb.Client`.

It replaces the terminal dance (``membrane login``, copy a URL, paste a code,
``connection ensure``, poll, open another URL, poll again) with four steps, each
showing its state in plain words:

1. **Membrane** -- the CLI found and its version, or how to install it (with a button
   to try the sandbox instead); the sandbox says it is the sandbox;
2. **Login** -- "Log in" asks Membrane for an authorization URL, shown as a link that
   opens in a new tab; the code from that page is pasted into a password field and
   "Complete" sends it; the field is cleared at once, so the code never stays in
   widget state, outputs or logs;
3. **Mixmax connection** -- ``connection ensure https://www.mixmax.com/``, then its
   live state, translated for a person: BUILDING ("being set up", a spinner while it
   long-polls, with Cancel), CLIENT_ACTION_REQUIRED (what Membrane asks, its page as a
   link, "I've done it"), READY (who you are in Mixmax, from ``get-current-user``), or
   an error with what to do;
4. **Use it** -- "Use this connection" sets :attr:`ConnectWizard.client` and shows the
   next step: a link to ``next_app`` in an app (Voila), else "run the next cell".

The sandbox's login and connect pages do not exist, so on the sandbox those steps get
buttons of their own ("Sign in to the sandbox", "Connect the sandbox's Mixmax"): a
visitor of a Voila or Binder demo has no terminal and no cell to run. Developer
shortcuts (``await wizard.autopilot()``, ``transport.sandbox_login_code()``) are in
docstrings only; nothing the wizard shows names Python, a state constant or a
backtick.

Every call to the transport runs as a task on the kernel's loop (see
``_common.TaskRunner``), so a long poll never freezes the notebook. Text that came
from Membrane or Mixmax is escaped before it reaches an ``HTML`` widget.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Mapping
from typing import Any
from urllib.parse import urlsplit

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
    redact,
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

# Membrane's connection states in a person's words ("The Mixmax connection is ...").
# A state not listed is shown by its name, in quotes, as one this page does not know.
_STATE_WORDS = {
    BUILDING: "being set up by Membrane",
    CLIENT_ACTION_REQUIRED: "waiting for you",
    READY: "ready",
    "CONFIGURATION_ERROR": "set up with wrong or missing settings",
    "SETUP_FAILED": "not set up: Membrane's setup failed",
    "DISCONNECTING": "being disconnected",
    "DISCONNECTED": "disconnected",
    "NOT_CONFIGURED": "not set up yet",
    "ERROR": "failing",
}

# What the person can do about each terminal state (the service's own message is
# shown next to it). Reconnecting needs the CLI: there is no button for it.
_WHAT_TO_DO = {
    "CONFIGURATION_ERROR": (
        "Reconnect it: in a terminal, run "
        "<code>membrane connect --connectionId {id}</code> and give the settings it asks "
        "for, then click “Check again”."
    ),
    "SETUP_FAILED": (
        "Look at the connection in the Membrane console, or reconnect it: in a terminal, "
        "run <code>membrane connect --connectionId {id}</code>, then click “Check again”."
    ),
}

# Styles for the wizard's own markup, sent once with its title: a link that looks like
# a button (the login and connection pages open in a new tab from it).
_STYLE = (
    "<style>"
    ".mx-open a{display:inline-block;padding:0 12px;line-height:28px;border-radius:2px;"
    "background:var(--jp-brand-color1,#1976d2);color:#fff !important;"
    "text-decoration:none;font-weight:bold}"
    ".mx-open a:hover{filter:brightness(1.1)}"
    "</style>"
)

_NEW_TAB = "(it opens in a new tab)"


class ConnectWizard:
    """A guided login and Mixmax connection; ``wizard.client`` once it is done.

    ``transport``: any :class:`~mixmax_nb.transport.base.Transport`. Otherwise
    ``backend`` picks one: ``"membrane"`` (the CLI), ``"sandbox"`` (the embedded
    account, starting logged out so the same steps are walked), or None:
    ``MIXMAX_NB_BACKEND``, else the CLI if it is installed, else the sandbox.

    ``poll_timeout`` is one long poll's length in seconds (Membrane allows 1-60);
    ``deadline`` is how long BUILDING is waited for before giving up.

    ``next_app``: in an app (Voila), the page to go on to once connected, as a link
    relative to this page (``"dashboard.ipynb"``: Voila serves apps side by side at
    ``/voila/render/<name>.ipynb``), labelled ``next_label``. Without it (a notebook)
    the last step says to run the next cell.

    The wizard starts checking at once (step 1, then 2, then 3 if already logged
    in). In a notebook that work is a task on the kernel's loop; ``await
    wizard.wait()`` waits for whatever is running, and on the sandbox ``await
    wizard.autopilot()`` clicks through every step.
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
        next_app: str | None = None,
        next_label: str = "Open the engagement dashboard",
    ) -> None:
        self.app_url = app_url
        self.poll_timeout = poll_timeout
        self.deadline = deadline
        self.next_app = _checked_next_app(next_app)
        self.next_label = next_label
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
            b.layout.flex = "0 0 auto"  # a long text beside it wraps; the button keeps its label
            return b

        self.title = w.HTML(f"{_STYLE}<h3 style='margin:0'>Connect to Mixmax</h3>")
        self.cli_status = w.HTML()
        self.check_button = button("Check again", "refresh", "Look for Membrane again")
        self.sandbox_switch_button = button(
            "Use the sandbox instead",
            "flask",
            "Try every step on a pretend account with fake data: nothing to install",
        )
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
        # Sandbox only: its login page and connect page are pretend, so a visitor of a
        # Voila/Binder demo (no terminal, no Python cell) gets a button for each.
        self.sandbox_login_button = button(
            "Sign in to the sandbox",
            "sign-in",
            "The sandbox has no real login page: this signs in with its pretend code",
            style="primary",
        )
        self.sandbox_connect_button = button(
            "Connect the sandbox's Mixmax",
            "plug",
            "The sandbox has no real connection page: this does its pretend step",
            style="primary",
        )
        self.use_status = w.HTML()
        self.use_button = button(
            "Use this connection",
            "plug",
            "Hand the connection to this notebook or app",
            style="success",
        )
        self.next_step = w.HTML(layout=w.Layout(margin="0.3em 0 0 0"))
        self.output = w.Output(layout=w.Layout(max_height="12em", overflow="auto"))
        self.runner = TaskRunner(self.output, on_busy=self._on_busy)

        self.check_button.on_click(lambda _b: self.check())
        self.sandbox_switch_button.on_click(lambda _b: self._switch_to_sandbox())
        self.login_button.on_click(lambda _b: self._start(self._login_start(), "log in"))
        self.complete_button.on_click(lambda _b: self._on_complete())
        self.done_button.on_click(lambda _b: self._start(self._recheck(), "check the connection"))
        self.retry_button.on_click(lambda _b: self._start(self._retry(), "check the connection"))
        self.use_button.on_click(lambda _b: self.use())
        self.sandbox_login_button.on_click(lambda _b: self._sandbox_login())
        self.sandbox_connect_button.on_click(lambda _b: self._sandbox_connect())

        def step(number: int, name: str, status: Any, *rows: Any) -> Any:
            # The step's name keeps its width; a long status wraps beside it.
            head = w.HTML(f"<b>{number}.&nbsp;{esc(name)}</b>", layout=w.Layout(flex="0 0 auto"))
            status.layout.margin = "0 0 0 0.6em"
            status.layout.flex = "1 1 auto"
            return w.VBox([w.HBox([head, status]), *rows])

        self.steps = [
            step(
                1,
                "Membrane",
                self.cli_status,
                w.HBox([self.check_button, self.sandbox_switch_button]),
            ),
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
            step(4, "Use it", self.use_status, w.HBox([self.use_button]), self.next_step),
        ]
        self.widget = w.VBox([self.title, *self.steps, self.runner.cancel_button, self.output])
        for control in (
            self.check_button,
            self.sandbox_switch_button,
            self.login_button,
            self.login_link,
            self.code,
            self.complete_button,
            self.action_link,
            self.done_button,
            self.retry_button,
            self.use_button,
            self.next_step,
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
            self.use_status.value = status_line("idle", "waiting for a ready connection")
            hide(self.use_button)
            self.next_step.value = ""
            hide(self.next_step)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _on_busy(self, busy: bool) -> None:
        # Visibility says what each state offers; while work runs nothing else may start.
        for b in (
            self.check_button,
            self.sandbox_switch_button,
            self.login_button,
            self.complete_button,
            self.done_button,
            self.retry_button,
            self.use_button,
            self.sandbox_login_button,
            self.sandbox_connect_button,
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
        self.output.append_stdout(_plain(text).rstrip("\n") + "\n")

    def _on_error(self, exc: BaseException, label: str, secrets: tuple[str, ...]) -> None:
        text = error_text(exc, *secrets)
        self._log(f"Could not {label}: {text}")
        if isinstance(exc, CliNotFoundError):
            self._show_no_cli(exc)
            return
        if isinstance(exc, NotLoggedInError):
            self._show_logged_out(f"Membrane says you are not logged in ({_message(exc)}).")
            return
        self.phase = "failed"
        self._status_widget().value = status_line("error", _html(text))
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
        hide(self.sandbox_switch_button)
        self._idle_from(2)
        if self.transport is None:
            try:
                self.transport = setup_transport(self._backend)
            except CliNotFoundError as exc:
                self._show_no_cli(exc)
                return
        transport = self.transport
        self.cli_status.value = status_line("wait", "looking for Membrane…")
        version = await transport.version()
        if transport.backend == "sandbox":
            self.cli_status.value = status_line(
                "ok",
                "This is the <b>sandbox</b>: a pretend Membrane and Mixmax account with fake "
                "data, no install and no network. Its login and connection pages are "
                "pretend too, so buttons below stand in for them. "
                f"<span style='color:gray'>({esc(version)})</span>",
            )
        else:
            where = getattr(transport, "binary", None)
            at = f" at <code>{esc(where)}</code>" if where else ""
            self.cli_status.value = status_line(
                "ok", f"Membrane's command-line tool {esc(version)} found{at}."
            )
        if await self._check_login():
            await self._connect()

    def _show_no_cli(self, exc: BaseException) -> None:
        self.phase = "no-cli"
        self._step = 1
        self.cli_status.value = status_line(
            "error",
            f"{_html(_message(exc))}<br>Install Membrane's command-line tool: in a "
            f"terminal, run <code>{esc(INSTALL_HINT)}</code> (it needs Node.js), then "
            "click “Check again”. Or click “Use the sandbox instead” to try every step on "
            "fake data.",
        )
        self._idle_from(2)
        show(self.check_button)
        show(self.sandbox_switch_button)

    def _switch_to_sandbox(self) -> None:
        """ "Use the sandbox instead": the same steps on the embedded, logged-out account."""
        if self.runner.busy:
            return
        self._backend = "sandbox"
        self.transport = None
        self.check()

    # -- step 2: the login ----------------------------------------------------------

    async def _check_login(self) -> bool:
        self._step = 2
        self.login_status.value = status_line("wait", "checking your Membrane login…")
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
        extra = f" {_html(note)}" if note else ""
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
        sandbox = self._is_sandbox()
        if sandbox:
            # The sandbox's page does not exist: a link to it would open an error page.
            self.login_link.value = (
                "On a real account this opens Membrane's login page in a new tab, where you "
                "sign in and copy a code. The sandbox has no such page: click “Sign in to "
                "the sandbox” below and it signs in with its pretend code."
            )
            self._log("The sandbox's login step is ready: click “Sign in to the sandbox”.")
        else:
            self.login_link.value = (
                f"<span class='mx-open'>{link(url, 'Open the Membrane login page')}</span> "
                f"{_NEW_TAB}. Sign in there, copy the code it shows, paste it below and "
                "click “Complete”."
            )
            self._log(
                "The login page is ready: click “Open the Membrane login page”; it opens in "
                "a new tab."
            )
        show(self.login_link)
        # The sandbox's code is pretend and never shown, so there is nothing to paste.
        show(self.code, not sandbox)
        show(self.complete_button, not sandbox)
        show(self.sandbox_login_button, sandbox)
        show(self.login_button, not sandbox)  # a fresh page if this one expired
        self.login_button.description = "New login page"
        self.phase = "awaiting-code"
        self.login_status.value = status_line(
            "action",
            "waiting for you to sign in to the sandbox"
            if sandbox
            else "waiting for the code from the login page",
        )

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
                f"That code was not accepted: {_html(text)} Paste it again, or ask for a new "
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
            self.connection_status.value = status_line("wait", "looking up your Mixmax connection…")
            conn = await transport.get_connection(transport.connection_id)
        else:
            self.connection_status.value = status_line(
                "wait", "asking Membrane for your Mixmax connection…"
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
                "wait", "Membrane is setting up the Mixmax connection… this can take a minute."
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
                f"Membrane is still setting up the connection after {self.deadline:g} "
                "seconds: it is slow or stuck. Click “Check again” in a while.",
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
        if self._is_sandbox():
            # The sandbox's description names its developer shortcuts; say it plainly.
            self.connection_status.value = status_line(
                "action",
                "Mixmax needs an API token to connect. On a real account you paste one "
                "from Mixmax (Settings > Integrations > API) on Membrane's connection page.",
            )
            self.action_link.value = (
                "The sandbox has no such page: click “Connect the sandbox's Mixmax” to do "
                "its pretend step."
            )
            self._log("Waiting for you: connect the sandbox's Mixmax.")
        else:
            description = action.get("description") or "Membrane needs you to finish connecting."
            self.connection_status.value = status_line(
                "action", f"Mixmax needs you to finish connecting: {_html(description)}"
            )
            ui_url = action.get("uiUrl")
            if ui_url and link(ui_url) != esc(ui_url):
                where = (
                    f"<span class='mx-open'>{link(ui_url, 'Open the Mixmax connection page')}"
                    f"</span> {_NEW_TAB}"
                )
            else:
                where = (
                    "Membrane gave no page for it: in a terminal, run <code>membrane connect "
                    f"--connectionId {esc(conn.get('id', '<id>'))}</code>"
                )
            self.action_link.value = (
                f"{where}, do what it asks (Mixmax connects with an API token from your "
                "Mixmax settings), then click “I've done it”."
            )
            self._log(f"Waiting for you: {description}")
        show(self.action_link)
        show(self.done_button, not self._is_sandbox())
        show(self.sandbox_connect_button, self._is_sandbox())
        hide(self.retry_button)

    def _terminal(self, conn: Connection, state: str) -> None:
        self.phase = "failed"
        details = _error_messages(conn) or "Membrane gave no details."
        self.connection_status.value = status_line(
            "error",
            f"The Mixmax connection is {esc(_state_words(state))}. Membrane says: {_html(details)}",
        )
        self.action_link.value = _WHAT_TO_DO[state].format(id=esc(conn.get("id", "<id>")))
        show(self.action_link)
        show(self.retry_button)
        hide(self.done_button)
        hide(self.sandbox_connect_button)
        self._log(f"The Mixmax connection is {_state_words(state)}. Membrane says: {details}")

    def _unknown(self, conn: Connection, state: str) -> None:
        self.phase = "failed"
        details = _error_messages(conn)
        said = f" Membrane says: {_html(details)}" if details else ""
        self.connection_status.value = status_line(
            "warn",
            f"The Mixmax connection is {esc(_state_words(state))}, so it cannot be used yet.{said}",
        )
        self.action_link.value = (
            "Click “Check again” in a moment. If it stays so, reconnect it: in a terminal, "
            f"run <code>membrane connect --connectionId {esc(conn.get('id', '<id>'))}</code>."
        )
        show(self.action_link)
        show(self.retry_button)
        hide(self.done_button)
        hide(self.sandbox_connect_button)
        self._log(f"The Mixmax connection is {_state_words(state)}.")

    async def _ready(self, conn: Connection) -> None:
        transport = self._need_transport()
        transport.connection_id = _connection_id(conn)
        hide(self.sandbox_connect_button)
        self.action_link.value = ""
        hide(self.action_link)
        hide(self.done_button)
        hide(self.retry_button)
        self.connection_status.value = status_line("wait", "connected; asking Mixmax who you are…")
        user = await AsyncClient(transport).me()
        self.user = user
        self.phase = "ready"
        self.connection_status.value = status_line("ok", f"Connected to {_describe_user(user)}")
        self.use_status.value = status_line("action", "Click “Use this connection” to finish.")
        show(self.use_button)
        self._log("The Mixmax connection is ready.")

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
        sandbox = " (the sandbox: fake data)" if self.client.is_sandbox else ""
        self.use_status.value = status_line("ok", f"Done: connected to Mixmax{sandbox}.")
        self.next_step.value = self._next_step_html()
        show(self.next_step)
        self._log("Connected: Mixmax is ready to use.")
        return self.client

    def _next_step_html(self) -> str:
        """Where to go from here: the next app (in Voila), else the next cell."""
        if self.next_app is not None:
            href = esc(self.next_app)
            return (
                f"<b>Next:</b> <span class='mx-open'><a href=\"{href}\">"
                f"{esc(self.next_label)}</a></span>"
                + (
                    " (on the sandbox it shows a demo account's fake data)."
                    if self._is_sandbox()
                    else ", which uses this connection."
                )
            )
        return (
            "<b>Next:</b> run the next cell of this notebook to use the connection. To "
            "explore opens, clicks and replies, open the notebook 03_engagement.ipynb."
        )

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
            if code is None and self._is_sandbox():
                self.sandbox_login_button.click()
            else:
                self.code.value = code if code is not None else _sandbox_code(self.transport)
                self.complete_button.click()
            await self.wait()
        if self.phase == "client-action" and self._is_sandbox():
            self.sandbox_connect_button.click()
            await self.wait()
        if self.phase in ("ready", "connected"):
            return self.use()
        raise MixmaxNbError(
            f"The wizard stopped at {self.phase!r} and needs a person.",
            hint="Follow the step shown in the wizard above.",
        )

    def _sandbox_login(self) -> None:
        """Complete the sandbox's fake login; the code never enters a widget
        (developers: ``transport.sandbox_login_code()`` reads the same code)."""
        if not self._is_sandbox() or self.phase != "awaiting-code":
            return
        code = _sandbox_code(self.transport)
        self._start(self._login_complete(code), "sign in to the sandbox", secrets=(code,))

    def _sandbox_connect(self) -> None:
        """Do the sandbox's fake connect page, then re-check as "I've done it" would
        (developers: ``transport.sandbox_complete_connect(id)`` does the same)."""
        if not self._is_sandbox() or self.phase != "client-action":
            return
        _sandbox_complete_action(self.transport, self.connection)
        self._start(self._recheck(), "check the connection")

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


def _checked_next_app(path: str | None) -> str | None:
    """``next_app`` must be a page of this server (relative, or an absolute path):
    never another site, never a ``javascript:`` URL."""
    if path is None:
        return None
    parts = urlsplit(path.strip())
    if not path.strip() or parts.scheme or parts.netloc:
        raise InputError(
            f"next_app must be a page of this server, such as 'dashboard.ipynb', not {path!r}.",
            field="next_app",
        )
    return path.strip()


_CODE_SPAN = re.compile(r"`([^`]+)`")


def _html(text: str) -> str:
    """``text`` (a message, ours or the service's) escaped, with its ``code`` spans as
    ``<code>``: a person sees a command to type, not Markdown's backticks."""
    return _CODE_SPAN.sub(r"<code>\1</code>", esc(text)).replace("`", "")


def _plain(text: str) -> str:
    """``text`` for the log: the same words, without Markdown's backticks."""
    return _CODE_SPAN.sub(r"\1", text).replace("`", "")


def _message(exc: BaseException) -> str:
    """What went wrong, without the hint: the wizard says itself what to do next."""
    if isinstance(exc, MixmaxNbError):
        return exc.message
    return redact(f"{type(exc).__name__}: {exc}")


def _state_words(state: str) -> str:
    words = _STATE_WORDS.get(state)
    return words if words else f"in a state this page does not know (Membrane calls it “{state}”)"
