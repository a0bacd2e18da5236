"""A live form as static HTML: what a shared page shows instead of a widget's repr.

An executed notebook saved without widget state (the default, and what ``make
demo`` writes: widget state can hold what a person typed) keeps, for each widget
output, only ``VBox(children=(HTML(value=...``. :func:`snapshot_html` renders the
form as it stands instead: boxes as boxes, text as text, controls with their current
value, each plotly figure drawn (by a page that loads plotly.js), and the form's
Output area. :func:`publish` does it in the kernel, after the notebook ran, for the
widget outputs a runner names; ``scripts/demo.py`` puts the result beside each
output as its ``text/html``, which nbconvert then shows.

* **Secrets never appear**: a ``Password`` shows as dots whatever it holds.
* **Data is escaped**: descriptions, labels, options and values go through
  :func:`~mixmax_nb.widgets._common.esc`; an ``HTML`` widget's value is already HTML
  the forms built from escaped parts, so it is kept as it is.
* **It says what it is**: the snapshot is headed "a snapshot of a live form", so no
  one clicks a drawn button and waits.
* A form can draw itself better than the generic walk (the dashboard draws every
  tab, not only the one that was open): :func:`register` names its renderer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as w

from ._common import esc

__all__ = ["MIME", "publish", "register", "snapshot", "snapshot_html"]

MIME = "application/vnd.mixmax-nb.snapshots+json"
"""What :func:`publish` displays: ``{model_id: html}``."""
_WAIT_S = 600.0
_RENDER = "_mx_static_render"


def register(widget: w.Widget, render: Callable[[], str]) -> None:
    """``render()`` draws ``widget`` (and what it holds) wherever a snapshot meets it.

    Kept on the widget itself: it lives exactly as long as the widget does (plotly's
    FigureWidget is not hashable, so no mapping keyed by widgets can hold them all)."""
    setattr(widget, _RENDER, render)


def snapshot_html(widget: w.Widget) -> str:
    """``widget`` as it stands, as static HTML (see the module doc)."""
    return (
        '<div class="mx-static" style="border:1px dashed #b0bec5;padding:8px;margin:4px 0">'
        '<div style="font-size:11px;color:#78909c;margin-bottom:6px">'
        "A snapshot of a live form, as it was when the notebook finished. Run the "
        "notebook to use it.</div>"
        f"{_render(widget)}</div>"
    )


def snapshot(widget: Any) -> Any:
    """An ``IPython.display.HTML`` of :func:`snapshot_html`, to display in a cell meant
    to be shared (``widget`` may be a form such as the dashboard, or any ipywidget)."""
    from IPython.display import HTML

    return HTML(snapshot_html(_root(widget)))  # type: ignore[no-untyped-call]


async def publish(model_ids: Iterable[str]) -> None:
    """Display ``{model_id: html}`` for the widgets named (unknown ids are left out).

    First waits (up to 10 minutes) for the forms' own background work (each
    :class:`~mixmax_nb.widgets._common.TaskRunner` task), so a dashboard that was still
    pulling when its cell returned is drawn with its data."""
    from IPython.display import display

    await _settle()
    from ipywidgets.widgets.widget import _instances

    shots = {i: snapshot_html(_instances[i]) for i in model_ids if i in _instances}
    display({MIME: shots}, raw=True)  # type: ignore[no-untyped-call]


async def _settle() -> None:
    current = asyncio.current_task()
    pending = [
        task
        for task in asyncio.all_tasks()
        if task is not current
        and not task.done()
        and getattr(task.get_coro(), "__qualname__", "") == "TaskRunner._guard"
    ]
    if pending:
        await asyncio.wait(pending, timeout=_WAIT_S)


def _root(widget: Any) -> w.Widget:
    """The ipywidget a form object displays as (the dashboard is not a widget itself)."""
    if isinstance(widget, w.Widget):
        return widget
    inner = getattr(widget, "widget", None)
    if isinstance(inner, w.Widget):
        return inner
    raise TypeError(f"{type(widget).__name__} is not a widget or a form holding one")


def _hidden(widget: w.Widget) -> bool:
    """Hidden in the page, so left out of the drawing too (a Cancel button at rest)."""
    layout = getattr(widget, "layout", None)
    display = getattr(layout, "display", None)
    visibility = getattr(layout, "visibility", None)
    return display == "none" or visibility == "hidden"


def _label(widget: w.Widget) -> str:
    text = getattr(widget, "description", "") or ""
    return f'<span style="color:#546e7a;margin-right:6px">{esc(text)}</span>' if text else ""


def _field(widget: w.Widget, value_html: str) -> str:
    return (
        f'<div style="margin:2px 8px 2px 0">{_label(widget)}'
        f'<span style="border:1px solid #cfd8dc;padding:1px 6px;background:#fafafa">'
        f"{value_html or '&nbsp;'}</span></div>"
    )


def _option_labels(widget: Any, values: Iterable[Any]) -> list[str]:
    wanted = list(values)
    labels = []
    for label, value in zip(widget._options_labels, widget._options_values, strict=False):
        if value in wanted:
            labels.append(str(label))
    return labels


def _render(widget: Any) -> str:
    render = getattr(widget, _RENDER, None)
    if callable(render):
        return str(render())
    if _hidden(widget):
        return ""
    if isinstance(widget, w.Password):
        return _field(widget, "&bull;" * 8 if widget.value else "")
    if isinstance(widget, w.HTML | w.HTMLMath):
        return f"<div>{widget.value}</div>"
    if isinstance(widget, w.Label):
        return f"<div>{esc(widget.value)}</div>"
    if isinstance(widget, w.Button):
        return (
            '<span style="display:inline-block;border:1px solid #cfd8dc;border-radius:2px;'
            f'padding:2px 10px;margin:2px;color:#90a4ae">{esc(widget.description)}</span>'
        )
    if isinstance(widget, w.ToggleButtons):
        parts = []
        for label, value in zip(widget._options_labels, widget._options_values, strict=False):
            chosen = value == widget.value
            style = "background:#cfd8dc;font-weight:bold" if chosen else "color:#78909c"
            parts.append(
                f'<span style="display:inline-block;padding:2px 8px;margin:1px;{style}">'
                f"{esc(label)}</span>"
            )
        return f'<div style="margin:2px 0">{"".join(parts)}</div>'
    if isinstance(widget, w.SelectMultiple):
        chosen = _option_labels(widget, widget.value)
        text = ", ".join(chosen) if chosen else "(none chosen: all)"
        return _field(widget, esc(text))
    if isinstance(widget, w.Dropdown | w.Select | w.RadioButtons):
        return _field(widget, esc(widget.label if widget.label is not None else ""))
    if isinstance(widget, w.Checkbox):
        return _field(widget, "&#9745;" if widget.value else "&#9744;")
    if isinstance(widget, w.IntProgress | w.FloatProgress):
        return (
            f'<div>{_label(widget)}<progress max="{esc(widget.max)}" '
            f'value="{esc(widget.value)}"></progress></div>'
        )
    if isinstance(widget, w.FileUpload):
        names = [str(f.get("name", "")) for f in widget.value]
        return _field(widget, esc(", ".join(names) or "(no file)"))
    if isinstance(widget, w.Output):
        return _outputs(widget.outputs)
    if isinstance(widget, w.Box):
        column = isinstance(widget, w.VBox) or not isinstance(widget, w.HBox)
        inner = "".join(_render(child) for child in widget.children)
        direction = "column" if column else "row"
        return (
            f'<div style="display:flex;flex-direction:{direction};flex-wrap:wrap;'
            f'gap:2px 8px">{inner}</div>'
        )
    if hasattr(widget, "_data") and hasattr(widget, "to_plotly_json"):  # a FigureWidget
        return _figure(widget)
    value = getattr(widget, "value", None)
    if value is not None and not isinstance(value, dict | list | bytes):
        return _field(widget, esc(value))
    return ""  # a control with nothing to show (FitFigures, a layout helper)


def _figure(figure: Any) -> str:
    from .. import charts

    return charts.figure_html(figure.to_plotly_json()) if figure.data else ""


def _outputs(outputs: Iterable[dict[str, Any]]) -> str:
    from ipywidgets.widgets.widget import _instances

    parts = []
    for output in outputs:
        if output.get("output_type") == "stream":
            text = esc(output.get("text", ""))
            parts.append(f'<pre style="margin:2px 0;white-space:pre-wrap">{text}</pre>')
            continue
        data = output.get("data", {})
        view = data.get("application/vnd.jupyter.widget-view+json")
        if view and view.get("model_id") in _instances:
            parts.append(_render(_instances[view["model_id"]]))
        elif "text/html" in data:
            parts.append(f"<div>{data['text/html']}</div>")
        elif "text/plain" in data:
            parts.append(f"<pre>{esc(data['text/plain'])}</pre>")
        elif output.get("output_type") == "error":
            parts.append(
                f"<pre>{esc(output.get('ename', ''))}: {esc(output.get('evalue', ''))}</pre>"
            )
    return "".join(parts)
