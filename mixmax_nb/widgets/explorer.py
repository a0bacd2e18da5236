"""ActionExplorer: find any action of the connection, fill a form generated from its
input schema, run it, and read the result; or send a raw proxy request.

Schema-driven (:mod:`mixmax_nb.widgets.schema_form`): the form comes from the action's
``inputSchema`` as ``action list`` returns it, so actions the toolkit has never
heard of work too. Input is checked against that same schema before anything is
sent, and the first bad field is named.

A result that is a list (a bare array, or a page's ``results`` / ``records`` /
``items``) is shown as a DataFrame: the typed frame of the catalog's kind when the
action is known, ``pandas.json_normalize`` otherwise. Anything else is a
collapsible JSON view. Both come with the ``actionRunId`` and a one-line Python
call that does the same thing. Everything that came from the service (names,
descriptions, results, proxy bodies) is escaped before it reaches an ``HTML``
widget.

Work runs through :class:`~mixmax_nb.widgets._common.TaskRunner` (a task on the
kernel loop, with Cancel), so a slow action never freezes the notebook.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import ipywidgets as w
import pandas as pd

from .. import catalog
from ..client import as_async
from ..errors import InputError
from ._common import TaskRunner, error_text, esc, status_line
from .schema_form import SchemaForm

__all__ = ["ActionExplorer", "python_call", "result_records"]

_MAX_ROWS: Final = 200
_MAX_JSON_CHARS: Final = 200_000  # a huge result would freeze the browser, not inform
_METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE")


def python_call(key: str, data: Mapping[str, Any]) -> str:
    """``client.run_action("key", {...})`` as one line of valid Python.

    ``repr`` of JSON-shaped data (str, int, float, bool, None, list, dict) is a
    Python literal, unlike ``json.dumps`` (true/false/null).
    """
    return f"client.run_action({key!r}, {dict(data)!r})"


def _proxy_call(path: str, method: str, query: Mapping[str, str], body: Any) -> str:
    args = [repr(path), repr(method)]
    if query or body is not None:
        args.append(repr(dict(query)))
    if body is not None:
        args.append(repr(body))
    return f"client.request({', '.join(args)})"


def result_records(output: Any) -> list[Any] | None:
    """The list inside an action's output (bare array or a page), or None if it has none."""
    if isinstance(output, list):
        return output
    if isinstance(output, Mapping):
        for name in catalog.PAGE_CONTAINERS:
            if isinstance(output.get(name), list):
                return list(output[name])
    return None


def _frame(key: str, records: list[Any]) -> pd.DataFrame:
    spec = catalog.BY_KEY.get(key)
    if spec is not None and spec.page != "object":
        from .. import frames

        try:
            return frames.shape(spec.kind, records)
        except Exception:  # noqa: S110 -- a shape we did not expect: the generic view still works
            pass
    if records and all(isinstance(r, Mapping) for r in records):
        return pd.json_normalize(records)
    return pd.DataFrame({"value": records})


def _json_view(value: Any, summary: str, *, open_: bool = False) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if len(text) > _MAX_JSON_CHARS:
        text = text[:_MAX_JSON_CHARS] + f"\n... ({len(text):,} characters, cut)"
    return (
        f'<details class="mx-json"{" open" if open_ else ""}><summary>{esc(summary)}</summary>'
        '<pre style="max-height:360px;overflow:auto;font-size:12px;white-space:pre-wrap">'
        f"{esc(text)}</pre></details>"
    )


def _frame_html(frame: pd.DataFrame) -> str:
    more = (
        f"<p>Showing {_MAX_ROWS} of {len(frame):,} rows (all of them are in "
        "<code>explorer.result_frame</code>).</p>"
        if len(frame) > _MAX_ROWS
        else ""
    )
    # to_html escapes cell text by default (escape=True); it is kept explicit.
    table = frame.head(_MAX_ROWS).to_html(index=False, escape=True, na_rep="", max_cols=40)
    return (
        f'<div class="mx-result-table" style="overflow:auto;max-height:420px;font-size:12px">'
        f"{table}</div>{more}"
    )


def _parse_query(text: str) -> dict[str, str]:
    query: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise InputError(
                f"Query line {number} is not key=value: {line[:80]!r}.",
                field="query",
                hint="One parameter per line, e.g. limit=10.",
            )
        query[key.strip()] = value.strip()
    return query


class ActionExplorer:
    """Any action, found by intent and run from a generated form; plus a proxy tab.

    ``display(ActionExplorer(client))``. With ``load=True`` the action list is
    fetched at once (filtered by ``intent`` when given).
    """

    def __init__(self, client: Any, *, intent: str = "", load: bool = True) -> None:
        self.client = client
        self.aio: Any = as_async(client)
        self.actions: list[dict[str, Any]] = []
        self.action: dict[str, Any] | None = None
        self.form: SchemaForm | None = None
        self.schema_source: str = "none"
        """Where the current form came from: ``connection``, ``built-in`` or ``none``."""
        self.result: dict[str, Any] | None = None
        """The last run's ``{"output", "actionRunId"}``."""
        self.result_frame: pd.DataFrame | None = None
        self.response: Any = None
        """The last proxy response ``{status, headers, body}``."""

        # -- actions tab
        self.output = w.Output(layout={"max_height": "120px", "overflow": "auto"})
        self.status = w.HTML()
        self.search = w.Text(
            value=intent,
            description="Intent",
            placeholder="e.g. unsubscribe, poll results, send email",
            continuous_update=False,
        )
        self.search_button = w.Button(description="Search", icon="search")
        self.picker = w.Select(options=[], rows=8, layout={"width": "95%"})
        self.about = w.HTML()
        self.form_box = w.VBox([])
        self.run_button = w.Button(description="Run", icon="play", button_style="primary")
        self.run_id = w.HTML()
        self.call = w.Text(description="Python", layout={"width": "95%"})
        self.result_html = w.HTML()
        self.runner = TaskRunner(self.output, on_busy=self._busy)

        self.search_button.on_click(lambda _b: self.find())
        self.search.observe(lambda _c: self.find(), names="value")
        self.picker.observe(self._picked, names="value")
        self.run_button.on_click(lambda _b: self.run())

        actions_tab = w.VBox(
            [
                w.HBox([self.search, self.search_button]),
                self.picker,
                self.about,
                self.form_box,
                w.HBox([self.run_button, self.runner.cancel_button]),
                self.status,
                self.run_id,
                self.call,
                self.result_html,
                self.output,
            ]
        )

        # -- proxy tab
        self.method = w.Dropdown(options=list(_METHODS), value="GET", description="Method")
        self.path = w.Text(description="Path", value="/users/me", layout={"width": "95%"})
        self.query = w.Textarea(description="Query", placeholder="key=value, one per line", rows=3)
        self.body = w.Textarea(description="JSON body", placeholder='{"email": "..."}', rows=4)
        self.send_button = w.Button(description="Send", icon="paper-plane")
        self.proxy_status = w.HTML()
        self.proxy_call = w.Text(description="Python", layout={"width": "95%"})
        self.proxy_result = w.HTML()
        self.proxy_output = w.Output(layout={"max_height": "120px", "overflow": "auto"})
        self.proxy_runner = TaskRunner(self.proxy_output, on_busy=self._proxy_busy)
        self.send_button.on_click(lambda _b: self.send())
        proxy_tab = w.VBox(
            [
                w.HTML(
                    "A raw request to the Mixmax REST API through Membrane's proxy "
                    "(authentication added for you). Writes are sent once, never retried."
                ),
                self.method,
                self.path,
                self.query,
                self.body,
                w.HBox([self.send_button, self.proxy_runner.cancel_button]),
                self.proxy_status,
                self.proxy_call,
                self.proxy_result,
                self.proxy_output,
            ]
        )

        self.tabs = w.Tab(children=[actions_tab, proxy_tab])
        self.tabs.set_title(0, "Actions")
        self.tabs.set_title(1, "Proxy request")
        self.widget = self.tabs
        if load:
            self.find()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # Display as the tab widget itself (the same way EngagementDashboard does).
        return self.widget._repr_mimebundle_(**kwargs)

    # -- actions -----------------------------------------------------------------------

    def _busy(self, busy: bool) -> None:
        self.run_button.disabled = busy
        self.search_button.disabled = busy

    def find(self, intent: str | None = None) -> None:
        """List the actions matching ``intent`` (the search box when None)."""
        if intent is not None:
            self.search.value = intent  # its observer starts the search
            return
        self.status.value = status_line("wait", "Searching actions…")
        self.runner.start(self._find(self.search.value.strip()), label="Search")

    async def _find(self, intent: str) -> None:
        found = await self.aio.action_records(intent or None)
        self.actions = [dict(a) for a in found if isinstance(a, Mapping)]
        options = []
        for index, action in enumerate(self.actions):
            key = action.get("key") or action.get("id") or "?"
            # Select shows option labels as text, not HTML: no escaping needed here.
            options.append((f"{action.get('name') or key} ({key})", index))
        self.picker.options = options
        what = f" for {esc(intent)!s}" if intent else ""
        if options:
            self.status.value = status_line("ok", f"{len(options)} action(s){what}.")
            self.picker.value = 0
        else:
            self.status.value = status_line("warn", f"No action{what}: try other words.")
            self._show_action(None)

    def _picked(self, change: Mapping[str, Any]) -> None:
        index = change.get("new")
        if isinstance(index, int) and 0 <= index < len(self.actions):
            self._show_action(self.actions[index])

    def select(self, key: str) -> None:
        """Pick the listed action whose key (or id) is ``key``."""
        for index, action in enumerate(self.actions):
            if key in (action.get("key"), action.get("id")):
                self.picker.value = index
                self._show_action(action)
                return
        raise InputError(f"Action {key!r} is not in the list.", field="key")

    def _show_action(self, action: dict[str, Any] | None) -> None:
        self.action = action
        self.result = None
        self.result_frame = None
        self.result_html.value = ""
        self.run_id.value = ""
        self.call.value = ""
        if action is None:
            self.about.value = ""
            self.form = None
            self.form_box.children = []
            return
        key = self._key(action)
        spec = catalog.BY_KEY.get(key)
        writes = spec.writes if spec is not None else None
        warning = {
            True: status_line("warn", "This action changes data in the account."),
            None: status_line("info", "Unknown to the toolkit: it may change data."),
            False: "",
        }[writes]
        self.about.value = (
            f"<b>{esc(action.get('name') or key)}</b> <code>{esc(key)}</code><br>"
            f"{esc(action.get('description') or '')}<br>{warning}"
        )
        schema = action.get("inputSchema")
        if isinstance(schema, Mapping):
            source = "Form from the connection's own input schema."
        elif spec is not None:
            schema = spec.input_schema
            source = "The connection lists no input schema: form from the built-in catalog."
        else:
            source = "No input schema is known for this action: the form is empty."
        if isinstance(action.get("inputSchema"), Mapping):
            self.schema_source = "connection"
        else:
            self.schema_source = "built-in" if spec is not None else "none"
        self.about.value += f"<br><small>{esc(source)}</small>"
        self.form = SchemaForm(schema or {})
        self.form_box.children = [self.form.widget]

    @staticmethod
    def _key(action: Mapping[str, Any]) -> str:
        # Catalog actions listed by app have an empty key: they run by id (membrane-cli §4).
        return str(action.get("key") or action.get("id") or "")

    def run(self) -> None:
        """Check the form against the schema, then run the action as a task."""
        if self.action is None or self.form is None:
            self.status.value = status_line("warn", "Pick an action first.")
            return
        key = self._key(self.action)
        try:
            data = self.form.validate(key)
        except InputError as exc:
            self.status.value = status_line("error", esc(error_text(exc)))
            return
        self.call.value = python_call(key, data)
        self.status.value = status_line("wait", f"Running {esc(key)}…")
        self.runner.start(self._run(key, data), label=f"Run {key}", on_error=self._failed)

    def _failed(self, exc: BaseException) -> None:
        self.status.value = status_line("error", esc(error_text(exc)))
        run_id = getattr(exc, "action_run_id", None)
        if run_id:
            self.run_id.value = f"actionRunId: <code>{esc(run_id)}</code>"

    async def _run(self, key: str, data: dict[str, Any]) -> None:
        result = await self.aio.run(key, data)
        self.result = dict(result)
        output = self.result.get("output")
        self.run_id.value = f"actionRunId: <code>{esc(self.result.get('actionRunId'))}</code>"
        records = result_records(output)
        if records is not None:
            frame = _frame(key, records)
            frame.attrs["source"] = self.aio.backend
            self.result_frame = frame
            self.result_html.value = _frame_html(frame) + _json_view(output, "Raw JSON")
            done = f"{len(frame):,} row(s)"
        else:
            self.result_frame = None
            self.result_html.value = _json_view(output, "Result (JSON)", open_=True)
            done = "an object" if isinstance(output, Mapping) else "a value"
        self.status.value = status_line("ok", f"{esc(key)} returned {done}.")

    # -- proxy -------------------------------------------------------------------------

    def _proxy_busy(self, busy: bool) -> None:
        self.send_button.disabled = busy

    def send(self) -> None:
        """Send the proxy request described by the tab's fields, as a task."""
        try:
            query = _parse_query(self.query.value)
            text = self.body.value.strip()
            try:
                body = json.loads(text) if text else None
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"The body is not valid JSON ({exc.msg}, line {exc.lineno}).", field="body"
                ) from None
            path = self.path.value.strip()
            if not path:
                raise InputError("A path such as /users/me is required.", field="path")
        except InputError as exc:
            self.proxy_status.value = status_line("error", esc(error_text(exc)))
            return
        method = str(self.method.value)
        self.proxy_call.value = _proxy_call(path, method, query, body)
        self.proxy_status.value = status_line("wait", f"{esc(method)} {esc(path)}…")
        self.proxy_runner.start(
            self._send(path, method, query, body), label="Request", on_error=self._proxy_failed
        )

    def _proxy_failed(self, exc: BaseException) -> None:
        self.proxy_status.value = status_line("error", esc(error_text(exc)))

    async def _send(self, path: str, method: str, query: dict[str, str], body: Any) -> None:
        response = await self.aio.request(path, method, query or None, body)
        self.response = response
        status = response.get("status")
        ok = isinstance(status, int) and status < 400
        self.proxy_status.value = status_line(
            "ok" if ok else "error", f"HTTP {esc(status)} · {esc(method)} {esc(path)}"
        )
        self.proxy_result.value = _json_view(response.get("body"), "Body", open_=True) + _json_view(
            response.get("headers") or {}, "Headers"
        )
