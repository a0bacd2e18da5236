"""Small helpers every mixmax_nb form shares: escaping, status lines, and a task runner.

Widgets stay thin (DESIGN practice 8): they lay out controls, hand work to the
client, and report in one ``Output``. What they share lives here:

* :func:`esc` and :func:`link` -- anything that came from data or a service goes
  into an ``HTML`` widget only through these, so a hostile name or message is shown,
  never run. Links open in a new tab with ``rel="noopener noreferrer"`` and only
  ``http(s)`` URLs become links (a ``javascript:`` URL is shown as text).
* :func:`status_line` and :func:`spinner` -- one look for "ok / working / needs
  you / failed" across forms.
* :class:`TaskRunner` -- runs one coroutine at a time as a task on the kernel's
  running loop (``asyncio.ensure_future``), so a click handler returns at once and
  the notebook stays live, with a Cancel button shown while it runs. Errors and
  cancellation are reported in the form's ``Output``. Without a running loop (a
  script, a plain test) it runs the coroutine to completion with
  :func:`mixmax_nb._sync.run_sync` instead.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import ipywidgets as w

from .._sync import run_sync
from ..errors import MixmaxNbError, redact

__all__ = [
    "TaskRunner",
    "error_text",
    "esc",
    "hide",
    "link",
    "show",
    "spinner",
    "status_line",
]


def esc(value: object) -> str:
    """``value`` as text that is safe inside HTML (quotes escaped too, for attributes)."""
    return html.escape(str(value), quote=True)


def link(url: object, label: object = None) -> str:
    """An escaped ``<a>`` opening ``url`` in a new tab; non-http(s) URLs stay plain text."""
    text = esc(label if label is not None else url)
    href = str(url or "").strip()
    if urlsplit(href).scheme.lower() not in ("http", "https"):
        return text
    return f'<a href="{esc(href)}" target="_blank" rel="noopener noreferrer">{text}</a>'


_ICONS = {
    "ok": ("&#10004;", "green"),  # check mark
    "error": ("&#10008;", "#c62828"),  # ballot x
    "warn": ("&#9888;", "#b26a00"),  # warning sign
    "action": ("&#9758;", "#1565c0"),  # pointing hand: the person must do something
    "idle": ("&#9675;", "gray"),  # white circle: not reached yet
    "info": ("&#8505;", "#1565c0"),
}


# A self-contained spinner: an inline SVG arc turned by SVG's own <animateTransform>, so
# it needs no icon font, no stylesheet and no network (Font Awesome's fa-spin needs both
# the font and its CSS, which a page offline or an exported notebook may not have).
_SPINNER_SVG = (
    '<svg class="mx-spin" width="1em" height="1em" viewBox="0 0 16 16" aria-hidden="true" '
    'style="vertical-align:-0.125em">'
    '<circle cx="8" cy="8" r="6" fill="none" stroke="currentColor" stroke-opacity="0.25" '
    'stroke-width="2"/>'
    '<path d="M8 2a6 6 0 0 1 6 6" fill="none" stroke="currentColor" stroke-width="2" '
    'stroke-linecap="round">'
    '<animateTransform attributeName="transform" type="rotate" from="0 8 8" to="360 8 8" '
    'dur="0.8s" repeatCount="indefinite"/>'
    "</path></svg>"
)


def spinner(message_html: str = "") -> str:
    """A spinning icon (inline SVG: works offline, needs no icon font) before ``message_html``."""
    return f'<span class="mx-status mx-wait">{_SPINNER_SVG} {message_html}</span>'


def status_line(kind: str, message_html: str) -> str:
    """``message_html`` (already escaped) with the icon and colour of ``kind``.

    ``kind`` is ``ok``, ``error``, ``warn``, ``action``, ``idle``, ``info`` or
    ``wait`` (a spinner).
    """
    if kind == "wait":
        return spinner(message_html)
    if kind not in _ICONS:
        kind = "info"
    icon, colour = _ICONS[kind]
    return (
        f'<span class="mx-status mx-{esc(kind)}"><span style="color:{colour}">{icon}</span> '
        f"{message_html}</span>"
    )


def show(widget: Any, visible: bool = True) -> None:
    """Show or hide a widget without removing it from the layout tree."""
    widget.layout.display = None if visible else "none"


def hide(widget: Any) -> None:
    show(widget, False)


def error_text(exc: BaseException, *secrets: str) -> str:
    """One readable line for ``exc`` (message and hint), with ``secrets`` redacted.

    Toolkit errors are already redacted; anything else (a bug, a third-party
    transport) is redacted here too, since its message may echo what it was given.
    """
    text = str(exc) if isinstance(exc, MixmaxNbError) else f"{type(exc).__name__}: {exc}"
    return redact(text, *secrets)


class TaskRunner:
    """Runs a form's long work, one coroutine at a time, with a Cancel button.

    ``start(coro, label=...)`` schedules ``coro`` on the running loop and returns
    the task; while it runs, :attr:`cancel_button` is visible and ``on_busy(True)``
    lets the form disable its other buttons. When it ends:

    * normally -- nothing to report (the coroutine updates the form itself);
    * with an exception -- ``on_error(exc)`` if given, else the error's line is
      appended to ``output``; the task then ends normally, so no
      "exception was never retrieved" noise reaches the log;
    * cancelled -- ``on_cancel()`` if given, else "Cancelled: <label>." in
      ``output``; the task stays *cancelled* (``task.cancelled()`` is true).

    With no running loop the coroutine runs synchronously and ``start`` returns
    None; the same reporting applies.
    """

    def __init__(
        self,
        output: Any,
        *,
        on_busy: Callable[[bool], None] | None = None,
        cancel_description: str = "Cancel",
    ) -> None:
        self.output = output
        self.on_busy = on_busy
        self.cancel_button = w.Button(
            description=cancel_description,
            icon="stop",
            button_style="warning",
            tooltip="Stop what is running; nothing is left half-done in the background.",
        )
        self.cancel_button.on_click(lambda _button: self.cancel())
        hide(self.cancel_button)
        self.task: asyncio.Task[None] | None = None
        """The most recent task (kept after it ends, so callers can inspect it)."""
        self._running = False

    @property
    def busy(self) -> bool:
        return self._running

    def start(
        self,
        coro: Awaitable[None],
        *,
        label: str,
        on_error: Callable[[BaseException], None] | None = None,
        on_cancel: Callable[[], None] | None = None,
    ) -> asyncio.Task[None] | None:
        """Run ``coro`` as a task on the running loop (or synchronously without one)."""
        if self._running:
            # Refuse rather than queue: a second click must not start a second poll.
            _close(coro)
            self.output.append_stdout(f"Still busy ({label} not started): wait or Cancel.\n")
            return None
        self._set_running(True)
        guarded = self._guard(coro, label, on_error, on_cancel)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            # No kernel loop: nothing else could run meanwhile, so just finish the work.
            run_sync(guarded)
            return None
        task = asyncio.ensure_future(guarded)
        self.task = task

        def ended(done: asyncio.Task[None]) -> None:
            # A task cancelled before its first step never enters _guard: report it
            # here, and close the inner coroutine, which then never ran.
            if self._running and self.task is done:
                _close(coro)
                self._set_running(False)
                if on_cancel is not None:
                    on_cancel()
                else:
                    self.output.append_stdout(f"Cancelled: {label}.\n")

        task.add_done_callback(ended)
        return task

    def cancel(self) -> bool:
        """Cancel the running task; True if there was one to cancel."""
        if self.task is None or self.task.done():
            return False
        return self.task.cancel()

    async def wait(self) -> None:
        """Until the current task (if any) has ended, however it ended."""
        task = self.task
        if task is not None and not task.done():
            await asyncio.wait([task])

    async def _guard(
        self,
        coro: Awaitable[None],
        label: str,
        on_error: Callable[[BaseException], None] | None,
        on_cancel: Callable[[], None] | None,
    ) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            self._set_running(False)
            if on_cancel is not None:
                on_cancel()
            else:
                self.output.append_stdout(f"Cancelled: {label}.\n")
            raise
        except Exception as exc:  # report every failure in the form, never lose it
            self._set_running(False)
            if on_error is not None:
                on_error(exc)
            else:
                self.output.append_stdout(f"{label} failed: {error_text(exc)}\n")
        finally:
            self._set_running(False)

    def _set_running(self, running: bool) -> None:
        if running == self._running:
            return
        self._running = running
        show(self.cancel_button, running)
        if self.on_busy is not None:
            self.on_busy(running)


def _close(coro: Awaitable[None]) -> None:
    """Close a coroutine that will never run, so Python does not warn it was never awaited."""
    close = getattr(coro, "close", None)
    if callable(close):
        close()
