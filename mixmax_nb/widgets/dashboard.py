"""EngagementDashboard: filters -> KPI cards -> chart tabs -> KPI table -> export.

Thin (DESIGN practice 8): data comes from the client (``client.engagement()``),
numbers from :mod:`mixmax_nb.analytics`, figures from :mod:`mixmax_nb.charts`; this
module only lays them out and wires the controls.

* **Refresh** first asks what the pull costs (``client.plan_engagement``: the
  sequences page and Mixmax's own live-feed totals, one request per sequence) and
  paints those totals at once as a first KPI table. A pull longer than a minute is
  confirmed before it runs; it then shows a progress bar with an estimate of the time
  left, and Cancel stops it between batches (what was fetched is kept). The data is
  prepared once (:func:`analytics.prepare`); a filter change only filters the prepared
  arrays and recomputes aggregates.
* **Detail**: "summary" (the recipients' stage counters, Mixmax's own numbers, no
  per-message call) or "events" (adds the opens, clicks and replies of each engaged
  message: the event heatmap, timings, links and files need them).
* **Charts** are plotly ``FigureWidget``s, each wrapped in a ``VBox`` (AppLayout and
  friends reject a bare FigureWidget) and switched with ``ToggleButtons`` that swap
  the children of one ``VBox``, not an ``ipywidgets.Tab``: a FigureWidget inside a
  Tab shows no data in Voila (reference notebook-stack.md section 4). A tab's
  FigureWidget is created when the tab is first drawn, not up front: each one ships
  plotly.js (~4.6 MB) to the browser as its own module, and anywidget gives a model
  2 s to load it before giving up for good ("[anywidget] Failed to initialize
  model"). Eleven at page load missed that on a busy 2-core machine (Binder) and
  left every chart blank; one at a time does not.
  The panel's first child is a :class:`~mixmax_nb.widgets._resize.FitFigures`,
  which reports the panel's width; each figure is drawn at that width (a figure drawn
  by a tab switch would otherwise keep plotly's default 700 px).
* **Downloads reach the browser**: "Prepare downloads" builds the report (HTML, with
  plotly.js inside so it opens offline), the KPI table as CSV and as XLSX
  (:mod:`mixmax_nb.data.export`: spreadsheet-safe, zoned times named) in memory and
  offers them as links the browser saves (``data:`` URLs with a ``download`` name), in
  Voila as in JupyterLab: nothing is written on the server. :meth:`export` writes the
  same files to a path, for scripts.
* **Everything from data is escaped** before it reaches an ``HTML`` widget or the
  HTML export (sequence names like ``<script>`` are shown, never run). The CSV
  export prefixes cells a spreadsheet would read as a formula with ``'``.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import datetime as dt
import io
import math
import re
import time
from copy import deepcopy
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd
import plotly.graph_objects as go

from .. import analytics, charts
from ..client import as_async
from ..data import export as exports
from ..data.engagement import Detail, EngagementData
from ..data.export import defuse as csv_safe
from ..data.planner import ASK_ABOVE_S, EngagementPlan
from ._common import TaskRunner, error_text, esc, show, spinner
from ._resize import FitFigures
from .static import register as register_static

__all__ = ["EngagementDashboard", "csv_safe", "kpi_table_html"]

_TYPES = ("opened", "clicked", "downloaded", "replied", "bounced", "unsubscribed")
_TABS = (
    ("By group", "kpi"),
    ("Funnel", "funnel"),
    ("When", "heatmap"),
    ("What time to send", "send_time"),
    ("Time to open/reply", "timing"),
    ("Weekly trends", "trends"),
    ("Stages", "stages"),
    ("Cohorts", "cohorts"),
    ("Top links", "links"),
    ("Top files", "files"),
    ("Compare A/B", "compare"),
)
# Tabs that draw per-message events: empty (and saying why) on a summary pull.
_NEEDS_EVENTS = frozenset({"heatmap", "timing", "links", "files"})
_TABLE_COLUMNS = (
    ("label", "Group", "text"),
    ("enrolled", "Enrolled", "int"),
    ("sent", "Sent", "int"),
    ("delivered", "Delivered", "int"),
    ("opened", "Opened", "int"),
    ("clicked", "Clicked", "int"),
    ("replied", "Replied", "int"),
    ("bounced", "Bounced", "int"),
    ("reached", "People reached", "int"),
    ("unsubscribed", "Unsubscribed", "int"),
    ("open_rate", "Open %", "rate"),
    ("click_rate", "Click %", "rate"),
    ("reply_rate", "Reply %", "rate"),
    ("bounce_rate", "Bounce %", "rate"),
)
_STATS_COLUMNS = (
    ("label", "Sequence", "text"),
    ("sent", "Sent", "int"),
    ("delivered", "Delivered", "int"),
    ("opened", "Opened", "int"),
    ("clicked", "Clicked", "int"),
    ("replied", "Replied", "int"),
    ("bounced", "Bounced", "int"),
    ("pct_opened", "Open %", "pct"),
    ("pct_replied", "Reply %", "pct"),
)


def _fmt(value: Any, kind: str) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "rate":
        return f"{100 * float(value):.1f}%"
    if kind == "pct":
        return f"{float(value):.1f}%"
    return esc(value)


_CELL = "padding:3px 10px;border-bottom:1px solid #eceff1;white-space:nowrap"
_TABLE_OPEN = (
    '<div class="mx-kpi-table" style="overflow:auto;max-height:420px">'
    '<table style="border-collapse:collapse;font-size:12px;font-variant-numeric:tabular-nums">'
)


def _th(title: str, kind: str) -> str:
    align = "left" if kind == "text" else "right"
    return (
        f'<th style="{_CELL};text-align:{align};position:sticky;top:0;background:#fafafa">'
        f"{esc(title)}</th>"
    )


def _td(text: str, kind: str, extra: str = "") -> str:
    align = "left" if kind == "text" else "right"
    return f'<td style="{_CELL};text-align:{align}{extra}">{text}</td>'


def stats_table_html(stats: pd.DataFrame) -> str:
    """Mixmax's own live-feed totals per sequence: the first table a pull can show."""
    head = "".join(_th(title, k) for _c, title, k in _STATS_COLUMNS)
    rows = [
        "<tr>" + "".join(_td(_fmt(r.get(c), k), k) for c, _t, k in _STATS_COLUMNS) + "</tr>"
        for r in stats.to_dict("records")
    ]
    return (
        "<p><b>Mixmax's live-feed totals</b> (loading the per-stage detail…)</p>"
        f"{_TABLE_OPEN}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def kpi_table_html(
    table: pd.DataFrame, max_rows: int = 200, *, min_sample: int = charts.MIN_SAMPLE
) -> str:
    """The KPI table as an escaped HTML table (rates with their 95% interval on hover).

    A rate over fewer than ``min_sample`` (its denominator) is grey, with why on hover:
    it is shown, since it is what happened, but it must not read like the others."""
    head = "".join(_th(title, k) for _c, title, k in _TABLE_COLUMNS)
    rows = []
    small_seen = False
    for record in table.head(max_rows).to_dict("records"):
        cells = []
        for column, _title, kind in _TABLE_COLUMNS:
            text = _fmt(record.get(column), kind)
            if kind != "rate":
                cells.append(_td(text, kind))
                continue
            lo, hi = record.get(f"{column}_lo"), record.get(f"{column}_hi")
            tip = f"95% interval {_fmt(lo, 'rate')} – {_fmt(hi, 'rate')}"
            extra = ""
            den = analytics.RATES[column][1] if column in analytics.RATES else None
            n = record.get(den) if den else None
            if n is not None and n is not pd.NA and 0 < int(n) < min_sample:
                small_seen = True
                tip = f"only {int(n):,} {den}: too few for a stable rate; {tip}"
                extra = ";color:#90a4ae;font-style:italic"
            cells.append(_td(text, kind, extra).replace("<td ", f'<td title="{esc(tip)}" ', 1))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    notes = []
    if small_seen:
        notes.append(f"Grey rates: fewer than {min_sample} in the denominator (hover for n).")
    if len(table) > max_rows:
        notes.append(f"Showing {max_rows} of {len(table)} rows; download the CSV for all.")
    more = "".join(f'<p style="font-size:12px;color:#546e7a">{esc(n)}</p>' for n in notes)
    return (
        f"{_TABLE_OPEN}<thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{more}</div>"
    )


def _cards_html(summary: pd.Series, sandbox: bool) -> str:
    cards = [
        ("Enrolled", _fmt(summary.get("enrolled"), "int"), "people added in the period"),
        ("Sent", _fmt(summary.get("sent"), "int"), "sequence emails"),
        ("Delivered", _fmt(summary.get("delivery_rate"), "rate"), "of sent"),
        ("Open %", _fmt(summary.get("open_rate"), "rate"), "opened / delivered"),
        ("Click %", _fmt(summary.get("click_rate"), "rate"), "clicked / delivered"),
        ("Reply %", _fmt(summary.get("reply_rate"), "rate"), "replied / delivered"),
        ("Bounce %", _fmt(summary.get("bounce_rate"), "rate"), "bounced / sent"),
        ("People replied", _fmt(summary.get("people_reply_rate"), "rate"), "of reached (ours)"),
    ]
    parts = [
        '<div class="mx-card" style="display:inline-block;min-width:120px;margin:4px;'
        'padding:8px 12px;border:1px solid #cfd8dc;border-radius:6px">'
        f'<div style="font-size:12px;color:#546e7a">{esc(title)}</div>'
        f'<div class="mx-card-value" style="font-size:22px;font-weight:600">{value}</div>'
        f'<div style="font-size:11px;color:#78909c">{esc(note)}</div></div>'
        for title, value, note in cards
    ]
    banner = (
        '<div class="mx-sandbox" style="background:#fff8e1;border:1px solid #b26a00;'
        'color:#b26a00;padding:4px 8px;margin:4px;font-weight:600">'
        f"{charts.SANDBOX_MARK}: an emulated account, not real results.</div>"
        if sandbox
        else ""
    )
    return banner + '<div class="mx-cards">' + "".join(parts) + "</div>"


def _assign(target: go.FigureWidget, figure: go.Figure, width: int = 0) -> None:
    """Replace a FigureWidget's traces and layout in one front-end update; ``width``
    (pixels, 0: plotly's own choice) is the box it is drawn in (see FitFigures)."""
    with target.batch_update():
        target.data = []
        target.add_traces(list(figure.data))
        target.layout = figure.layout
        if width > 0:
            target.layout.width = width
    # plotly >= 6 front-ends draw from the synced _widget_data/_widget_layout, which
    # plotly refreshes only when the figure itself is displayed -- never when it sits
    # inside a VBox, as here. Without this the charts stay blank (seen in Voila).
    target._widget_data = deepcopy(target._data)
    target._widget_layout = deepcopy(target._layout_obj._props)


class EngagementDashboard:
    """Explore engagement: ``display(EngagementDashboard(client))`` in a notebook.

    ``client`` is a :class:`~mixmax_nb.Client` (or AsyncClient). With ``load=True``
    the data is pulled at once (as a task on the kernel loop when there is one).
    :meth:`from_frames` builds one over frames you already have (no client).
    """

    def __init__(
        self,
        client: Any = None,
        *,
        load: bool = True,
        since: Any = None,
        detail: Detail = "summary",
        confirm_above_s: float = ASK_ABOVE_S,
    ) -> None:
        self.client = client
        self.since = since
        self.confirm_above_s = confirm_above_s
        self.dataset: EngagementData | None = None
        self.plan: EngagementPlan | None = None
        self._confirmed = False
        self._stop = asyncio.Event()
        self._started = 0.0
        self.data: analytics.Engagement | None = None
        self.view: analytics.Engagement | None = None
        self.last_redraw_s: float = math.nan
        self._suspend = False
        self._stale: set[str] = set()
        self._view_cache: analytics.Engagement | None = None
        self._table: pd.DataFrame | None = None

        self.output = w.Output(layout={"max_height": "160px", "overflow": "auto"})
        self.status = w.HTML()
        self.start = w.DatePicker(description="From")
        self.end = w.DatePicker(description="To (incl.)")
        self.sequences = w.SelectMultiple(description="Sequences", rows=6)
        self.senders = w.SelectMultiple(description="Senders", rows=6)
        self.teams = w.SelectMultiple(description="Teams", rows=6)
        self.types = w.SelectMultiple(
            description="Events", options=list(_TYPES), value=list(_TYPES), rows=6
        )
        self.group_by = w.Dropdown(
            description="Group by", options=list(analytics.DIMENSIONS), value="sequence"
        )
        self.rate = w.Dropdown(
            description="Rate",
            options=[(name.replace("_", " "), name) for name in analytics.RATES],
            value="reply_rate",
        )
        self.tz = w.Text(description="Time zone", placeholder="default: send-window zone")
        self.compare_a = w.Dropdown(description="A")
        self.compare_b = w.Dropdown(description="B")
        self.detail = w.ToggleButtons(
            options=[("Summary (fast)", "summary"), ("With events", "events")], value=detail
        )
        self.detail.style.button_width = "auto"
        self.progress = w.IntProgress(min=0, max=1, value=0, layout={"width": "240px"})
        self.eta = w.HTML()
        self.confirm_text = w.HTML()
        self.confirm_button = w.Button(description="Pull now", button_style="warning")
        self.confirm_box = w.HBox([self.confirm_text, self.confirm_button])
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.export_path = w.Text(description="File name", value="engagement_report")
        self.export_button = w.Button(
            description="Prepare downloads",
            icon="download",
            tooltip="The report (HTML) and the KPI table (CSV, XLSX), for the current filters",
            layout={"width": "auto"},
        )
        self.downloads = w.HTML()
        self.cards = w.HTML()
        self.table = w.HTML()
        self.verdict = w.HTML()
        # Filled as tabs are drawn (see the module doc): tab key -> its figure.
        self.figures: dict[str, go.FigureWidget] = {}
        self._wrapped: dict[str, w.VBox] = {}
        self.tab = w.ToggleButtons(options=[(title, key) for title, key in _TABS], value="kpi")
        self.tab.style.button_width = "auto"
        self.tab.add_class("mx-tabs")  # for the browser tests, apart from the detail toggle
        self._fit = FitFigures()
        self._fit.observe(self._on_width, names="width")
        self.panel = w.VBox(
            [self._fit, self._slot("kpi")], layout={"width": "100%", "margin": "10px 0 0 0"}
        )
        self.runner = TaskRunner(self.output, on_busy=self._busy)

        self.refresh_button.on_click(lambda _b: self.refresh())
        self.confirm_button.on_click(lambda _b: self.refresh(confirmed=True))
        self.export_button.on_click(lambda _b: self._export_clicked())
        self.tab.observe(self._on_tab, names="value")
        for control in (
            self.start,
            self.end,
            self.sequences,
            self.senders,
            self.teams,
            self.types,
            self.group_by,
            self.rate,
            self.compare_a,
            self.compare_b,
        ):
            control.observe(self._on_filter, names="value")
        self.tz.observe(self._on_filter, names="value")

        filters = w.VBox(
            [
                w.HBox([self.start, self.end, self.tz]),
                w.HBox([self.sequences, self.senders]),
                w.HBox([self.teams, self.types]),
                w.HBox([self.group_by, self.rate]),
            ]
        )
        self.widget = w.VBox(
            [
                w.HBox([self.refresh_button, self.runner.cancel_button, self.detail]),
                w.HBox([self.progress, self.eta, self.status]),
                self.confirm_box,
                filters,
                self.cards,
                self.tab,
                w.HBox([self.compare_a, self.compare_b]),
                self.verdict,
                self.panel,
                w.HTML("<b>KPI table</b> (hover a rate for its 95% interval)"),
                self.table,
                w.HBox([self.export_path, self.export_button]),
                self.downloads,
                self.output,
            ]
        )
        register_static(self.widget, self.static_html)
        self._show_compare_controls()
        show(self.confirm_box, False)
        show(self.progress, False)
        self._show_charts(False)  # a loading line, not an empty figure, until data arrives
        self.status.value = spinner(esc("Loading…")) if load and client is not None else ""
        if load and client is not None:
            self.refresh()

    # -- construction helpers ---------------------------------------------------------

    @classmethod
    def from_data(cls, data: EngagementData, *, client: Any = None) -> EngagementDashboard:
        """A dashboard over an engagement dataset already in hand, drawn at once; with
        ``client``, Refresh pulls again through it (without, it shows fixed data)."""
        board = cls(client, load=False, detail=data.detail)
        board.refresh_button.disabled = client is None
        board.load(data)
        return board

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # Displaying the dashboard displays its layout (the object itself is not a widget).
        return self.widget._repr_mimebundle_(**kwargs)

    # -- data ------------------------------------------------------------------------

    def refresh(self, *, confirmed: bool = False) -> asyncio.Task[None] | None:
        """Plan the pull, show Mixmax's totals, then pull (asking first when long)."""
        if self.client is None:
            self.output.append_stdout("No client: this dashboard shows fixed data.\n")
            return None
        self._confirmed = confirmed
        self._stop = asyncio.Event()
        show(self.confirm_box, False)
        self.status.value = spinner(esc("Asking Mixmax what this pull needs…"))
        return self.runner.start(self._pull(), label="Refresh")

    async def _pull(self) -> None:
        aio = as_async(self.client)
        detail = self.detail.value
        plan = await aio.plan_engagement(since=self.since, detail=detail)
        self.plan = plan
        if plan.stats is not None and len(plan.stats) and self.data is None:
            self.table.value = stats_table_html(plan.stats)
        if plan.seconds > self.confirm_above_s and not self._confirmed:
            self.confirm_text.value = esc(f"This pull needs {plan.describe()} Go ahead?")
            show(self.confirm_box, True)
            self.status.value = esc("Waiting for your go-ahead.")
            return
        self._started = time.monotonic()
        self.progress.max = max(1, plan.total)
        self.progress.value = 0
        show(self.progress, True)
        self.status.value = esc(f"Pulling: {plan.describe()}")
        try:
            data = await aio.engagement(
                since=self.since, detail=detail, progress=self._on_progress, stop=self._stop
            )
        finally:
            show(self.progress, False)
            self.eta.value = ""
        self.load(data)
        for note in data.notes:
            self.output.append_stdout(note + "\n")

    def _on_progress(self, what: str, done: int, total: int) -> None:
        self.progress.max = max(self.progress.max, total, done)
        self.progress.value = min(done, self.progress.max)
        elapsed = time.monotonic() - self._started
        left = (self.progress.max - done) * elapsed / done if done else math.nan
        self.eta.value = esc(
            f"{done:,} of {self.progress.max:,} requests ({what})"
            + (f", about {left:.0f} s left" if left == left else "")
        )

    def stop(self) -> None:
        """End a pull between batches (what was fetched is kept for the next one)."""
        self._stop.set()

    def load(self, dataset: EngagementData) -> None:
        """Show a dataset: prepare it once, reset the filter choices to it and redraw."""
        self.dataset = dataset
        data = analytics.prepare(dataset)
        self.data = data
        lab = data.labels
        d = data.deliveries
        self._suspend = True
        try:
            seq_opts = sorted(
                zip(lab.sequence_names.tolist(), lab.sequence_ids.tolist(), strict=True),
                key=lambda p: str(p[0]).lower(),
            )
            self.sequences.options = seq_opts
            self.sequences.value = ()
            self.senders.options = sorted(
                zip(lab.user_names.tolist(), lab.user_ids.tolist(), strict=True),
                key=lambda p: str(p[0]).lower(),
            )
            self.senders.value = ()
            self.teams.options = sorted(str(t) for t in lab.teams)
            self.teams.value = ()
            self.compare_a.options = seq_opts
            self.compare_b.options = seq_opts
            ranked = d["seq"].value_counts().index.tolist()
            if len(ranked) >= 2:
                self.compare_a.value = lab.sequence_ids[ranked[0]]
                self.compare_b.value = lab.sequence_ids[ranked[1]]
            if len(d):
                first = pd.Timestamp(int(d["sent_at"].min()), unit="ms", tz="UTC")
                last = pd.Timestamp(int(d["sent_at"].max()), unit="ms", tz="UTC")
                self.start.value = first.date()
                self.end.value = last.date()
        finally:
            self._suspend = False
        self.redraw()

    # -- filtering and drawing --------------------------------------------------------

    def _filter_args(self) -> dict[str, Any]:
        since = pd.Timestamp(self.start.value, tz="UTC") if self.start.value else None
        until = (
            pd.Timestamp(self.end.value, tz="UTC") + pd.Timedelta(days=1)
            if self.end.value
            else None
        )
        return {
            "since": since,
            "until": until,
            "sequences": list(self.sequences.value) or None,
            "senders": list(self.senders.value) or None,
            "teams": list(self.teams.value) or None,
            "types": list(self.types.value),
        }

    def _on_filter(self, _change: Any) -> None:
        if not self._suspend:
            self.redraw()

    def _slot(self, key: str) -> w.VBox:
        """The tab's figure, wrapped for the panel; created on first use."""
        if key not in self._wrapped:
            self.figures[key] = go.FigureWidget()
            self._wrapped[key] = w.VBox([self.figures[key]], layout={"width": "100%"})
        return self._wrapped[key]

    def _on_tab(self, change: Any) -> None:
        self._draw_tab(change["new"])
        self.panel.children = [self._fit, self._slot(change["new"])]
        self._show_compare_controls()

    def _on_width(self, change: Any) -> None:
        """The panel changed width in the page: every drawn figure follows it."""
        for figure in self.figures.values():
            if figure.data:
                figure.layout.width = int(change["new"])
                figure._widget_layout = deepcopy(figure._layout_obj._props)

    def _show_charts(self, visible: bool) -> None:
        for part in (self.tab, self.panel, self.table, self.export_button, self.export_path):
            show(part, visible)

    def _show_compare_controls(self) -> None:
        visible = self.tab.value == "compare"
        show(self.compare_a, visible)
        show(self.compare_b, visible)
        show(self.verdict, visible)

    def _view(self) -> analytics.Engagement:
        if self.data is None:
            raise RuntimeError("No data yet: refresh first.")
        return self.data.filter(**self._filter_args())

    def _tab_figure(self, key: str, view: analytics.Engagement) -> go.Figure | None:
        """The figure of one tab for a filtered view (aggregates computed here)."""
        tz = self.tz.value.strip() or None
        if key in _NEEDS_EVENTS and not view.has_events:
            title = dict((k, t) for t, k in _TABS)[key]
            return charts.message_figure(
                title,
                "This tab needs the per-message events: choose 'With events' and Refresh "
                "(one request per engaged email, only those not already stored).",
            )
        if key == "kpi":
            return charts.kpi_chart(analytics.kpi_table(view, self.group_by.value), self.rate.value)
        if key == "funnel":
            return charts.funnel_chart(analytics.funnel(view))
        if key == "heatmap":
            return charts.heatmap_chart(analytics.heatmap(view, "opened", tz))
        if key == "send_time":
            return charts.heatmap_chart(analytics.heatmap(view, "replied", tz, when="sent"))
        if key == "timing":
            return charts.time_to_chart(
                analytics.time_to_first(view), analytics.time_to_summary(view)
            )
        if key == "trends":
            return charts.trends_chart(analytics.weekly_trends(view))
        if key == "stages":
            return charts.stage_chart(analytics.stage_dropoff(view))
        if key == "cohorts":
            return charts.cohort_chart(analytics.cohorts(view))
        if key == "links":
            return charts.top_items_chart(analytics.top_links(view), "links")
        if key == "files":
            return charts.top_items_chart(analytics.top_files(view), "files")
        comparison = self._comparison(view)
        return charts.comparison_chart(comparison) if comparison is not None else None

    def metrics(self) -> dict[str, Any]:
        """Every aggregate the dashboard shows, for the current filters (no widgets)."""
        view = self._view()
        tz = self.tz.value.strip() or None
        return {
            "view": view,
            "summary": analytics.kpi_summary(view),
            "table": analytics.kpi_table(view, self.group_by.value),
            "funnel": analytics.funnel(view),
            "heatmap": analytics.heatmap(view, "opened", tz),
            "send_time": analytics.heatmap(view, "replied", tz, when="sent"),
            "timing": analytics.time_to_first(view),
            "timing_summary": analytics.time_to_summary(view),
            "trends": analytics.weekly_trends(view),
            "stages": analytics.stage_dropoff(view),
            "cohorts": analytics.cohorts(view),
            "links": analytics.top_links(view),
            "files": analytics.top_files(view),
            "compare": self._comparison(view),
        }

    def _comparison(self, view: analytics.Engagement) -> analytics.Comparison | None:
        a, b = self.compare_a.value, self.compare_b.value
        if a is None or b is None:
            return None
        return analytics.compare(view, str(a), str(b))

    def figures_for(self, m: dict[str, Any]) -> dict[str, go.Figure]:
        """The figure of every tab for the metrics ``m`` (pure: no widget touched)."""
        figs: dict[str, go.Figure] = {
            "kpi": charts.kpi_chart(m["table"], self.rate.value),
            "funnel": charts.funnel_chart(m["funnel"]),
            "heatmap": charts.heatmap_chart(m["heatmap"]),
            "send_time": charts.heatmap_chart(m["send_time"]),
            "timing": charts.time_to_chart(m["timing"], m["timing_summary"]),
            "trends": charts.trends_chart(m["trends"]),
            "stages": charts.stage_chart(m["stages"]),
            "cohorts": charts.cohort_chart(m["cohorts"]),
            "links": charts.top_items_chart(m["links"], "links"),
            "files": charts.top_items_chart(m["files"], "files"),
        }
        if m["compare"] is not None:
            figs["compare"] = charts.comparison_chart(m["compare"])
        return figs

    def redraw(self, *, all_tabs: bool = False) -> None:
        """Recompute for the current filters: cards, table and the visible tab.

        Hidden tabs are only marked stale and drawn when chosen, so a filter change
        pays for one figure, not eleven. ``all_tabs=True`` draws them all now.
        """
        if self.data is None:
            return
        started = time.perf_counter()
        try:
            view = self._view()
            summary = analytics.kpi_summary(view)
            table = analytics.kpi_table(view, self.group_by.value)
            comparison = self._comparison(view) if self.tab.value == "compare" else None
        except Exception as exc:  # report it in the form and keep the old view
            self.output.append_stdout(f"Could not redraw: {error_text(exc)}\n")
            return
        self._view_cache = view
        self._table = table
        self._show_charts(True)
        if self.downloads.value:
            self.downloads.value = esc("The filters changed: prepare the downloads again.")
        sandbox = self.data.source == "sandbox"
        self.status.value = esc(_status(view, self.dataset))
        self.cards.value = _cards_html(summary, sandbox)
        self.table.value = kpi_table_html(table)
        if comparison is not None:
            self.verdict.value = esc(comparison.verdict)
        self._stale = {key for _t, key in _TABS}
        for key in [k for _t, k in _TABS] if all_tabs else [self.tab.value]:
            self._draw_tab(key)
        self.last_redraw_s = time.perf_counter() - started

    def _draw_tab(self, key: str) -> None:
        view = self._view_cache
        if view is None or key not in self._stale:
            return
        try:
            fig = self._tab_figure(key, view)
            if key == "compare":
                comparison = self._comparison(view)
                self.verdict.value = esc(comparison.verdict) if comparison is not None else ""
        except Exception as exc:  # a bad time zone name, say
            self.output.append_stdout(f"Could not draw {key}: {error_text(exc)}\n")
            return
        if fig is not None:
            self._slot(key)
            _assign(self.figures[key], fig, self._fit.width)
        self._stale.discard(key)

    # -- export -------------------------------------------------------------------------

    def _export_clicked(self) -> None:
        try:
            self.downloads.value = self.download_links(self.export_path.value)
        except Exception as exc:  # report in the form; never lose an export failure
            self.output.append_stdout(f"Export failed: {error_text(exc)}\n")

    def download_files(self, stem: str = "engagement_report") -> dict[str, tuple[str, bytes]]:
        """The downloads for the current filters: file name -> (media type, bytes).

        The report (HTML, plotly.js inside: it opens offline), and the KPI table as
        spreadsheet-safe CSV and XLSX."""
        if self.data is None:
            raise RuntimeError("No data yet: refresh first.")
        m = self.metrics()
        name = _file_stem(stem)
        table = m["table"]
        return {
            f"{name}.html": ("text/html", self.report_html(m).encode("utf-8")),
            f"{name}.csv": (exports.MEDIA_TYPES["csv"], exports.to_bytes(table, "csv")),
            f"{name}.xlsx": (exports.MEDIA_TYPES["xlsx"], exports.to_bytes(table, "xlsx")),
        }

    def download_links(self, stem: str = "engagement_report") -> str:
        """Links the browser saves as files (``data:`` URLs with a ``download`` name)."""
        links = []
        for name, (media, payload) in self.download_files(stem).items():
            href = f"data:{media};base64,{base64.b64encode(payload).decode('ascii')}"
            links.append(
                f'<a class="mx-download" download="{esc(name)}" href="{href}">'
                f"{esc(name)}</a> ({_size(len(payload))})"
            )
        return "<b>Download</b> (for the current filters): " + " · ".join(links)

    def export(self, stem: str | Path, *, include_plotlyjs: bool | str = True) -> tuple[Path, Path]:
        """Write ``<stem>.html`` (figures + escaped tables) and ``<stem>.csv`` (KPI table).

        ``include_plotlyjs=True`` embeds plotly.js so the report opens offline (about
        4 MB); pass ``"cdn"`` for a small file that loads it from the network.
        """
        if self.data is None:
            raise RuntimeError("No data yet: refresh first.")
        m = self.metrics()
        stem = Path(stem)
        html_path, csv_path = stem.with_suffix(".html"), stem.with_suffix(".csv")
        html_path.write_text(self.report_html(m, include_plotlyjs), encoding="utf-8")
        csv_path.write_text(self.report_csv(m["table"]), encoding="utf-8", newline="")
        return html_path, csv_path

    def report_html(self, m: dict[str, Any], include_plotlyjs: bool | str = True) -> str:
        """The report page: filters, cards, the KPI table and every tab's figure."""
        sandbox = self.data is not None and self.data.source == "sandbox"
        return "\n".join(
            [
                "<!DOCTYPE html><html><head><meta charset='utf-8'>",
                "<title>Engagement report</title></head><body style='font-family:sans-serif'>",
                f"<h1>Engagement report{' — ' + charts.SANDBOX_MARK if sandbox else ''}</h1>",
                self._report_body(m, include_plotlyjs),
                "</body></html>",
            ]
        )

    def _report_body(self, m: dict[str, Any], include_plotlyjs: bool | str) -> str:
        sandbox = self.data is not None and self.data.source == "sandbox"
        filters = self._filter_args()
        described = "; ".join(
            f"{esc(k)}: {esc(', '.join(map(str, v)) if isinstance(v, list) else v)}"
            for k, v in filters.items()
            if v is not None
        )
        parts = [
            f"<p>Filters: {described}</p>",
            _cards_html(m["summary"], sandbox),
            "<h2>KPI table</h2>",
            kpi_table_html(m["table"], max_rows=10_000),
        ]
        if m["compare"] is not None:
            parts.append(f"<h2>Comparison</h2><p>{esc(m['compare'].verdict)}</p>")
        figs = self.figures_for(m)
        first = True
        for title, key in _TABS:
            fig = figs.get(key)
            if fig is None:
                continue
            parts.append(f"<h2>{esc(title)}</h2>")
            # plotly.js once, at the first figure; later figures reuse it.
            parts.append(
                charts.figure_html(fig, include_plotlyjs=include_plotlyjs if first else False)
            )
            first = False
        return "\n".join(parts)

    def static_html(self) -> str:
        """The dashboard as it stands, for a shared page (see :mod:`.static`): its status,
        cards, KPI table and every tab's figure (drawn by the page's plotly.js)."""
        if self.data is None:
            return f"<div>{self.status.value}</div><div>{self.table.value}</div>"
        return f"<div>{self.status.value}</div>" + self._report_body(self.metrics(), False)

    @staticmethod
    def report_csv(table: pd.DataFrame) -> str:
        """The KPI table as CSV, with formula-looking text cells defused by a ``'``."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        columns = list(table.columns)
        writer.writerow([csv_safe(c) for c in columns])
        for row in table.itertuples(index=False, name=None):
            writer.writerow([csv_safe(_csv_value(v)) for v in row])
        return buffer.getvalue()

    # -- state ------------------------------------------------------------------------------

    def _busy(self, busy: bool) -> None:
        self.refresh_button.disabled = busy or self.client is None
        self.detail.disabled = busy


def _file_stem(stem: str) -> str:
    """A file name a browser accepts, from what was typed (no folders, no odd characters)."""
    base = Path(str(stem or "").strip()).name
    base = re.sub(r"\.(html?|csv|xlsx)$", "", base, flags=re.IGNORECASE)
    clean = re.sub(r"[^\w.\- ]+", "_", base).strip(" ._")
    return clean or "engagement_report"


def _size(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 100_000 else f"{max(1, round(n / 1000))} kB"


def _csv_value(value: Any) -> Any:
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.isoformat()
    return value


def _status(view: analytics.Engagement, dataset: EngagementData | None) -> str:
    """What the current filters show, in one line (it follows every filter change)."""
    d = view.deliveries
    people = int(d["recipient"].nunique()) if len(d) else 0
    sequences = int(d["seq"].nunique()) if len(d) else 0
    where = "sandbox" if view.source == "sandbox" else (view.source or "data")
    line = f"{len(d):,} emails to {people:,} people in {sequences:,} sequences ({where})"
    if dataset is not None:
        line += f"; {dataset.total_requests:,} requests"
        if dataset.capped:
            line += f"; {len(dataset.capped):,} message(s) at the 200-event cap"
    return line + "."
