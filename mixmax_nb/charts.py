"""Metrics -> plotly figures (pure: a DataFrame in, a ``go.Figure`` out, never shown).

Every function takes the result of the matching :mod:`mixmax_nb.analytics`
function and returns a figure with a title, labelled axes with units, readable
hover text and the one house template (:data:`TEMPLATE`). Rules:

* **Sandbox data is marked**: when the frame's ``attrs["source"]`` is ``"sandbox"``
  the title ends with "SANDBOX DATA" and a line under it says so, so a
  screenshot cannot be mistaken for a real account.
* **Nothing overlaps**: the title, the lines under it (the sandbox mark and every note a
  chart makes, such as "grey: too few to show a rate") and the legend sit in the top
  margin, which :func:`_finish` sizes for them; axis titles keep a standoff from their
  tick labels and push the margins (``automargin``). A browser test checks the boxes.
* **Small samples carry no rate**: a rate over fewer than :data:`MIN_SAMPLE`
  messages or people is drawn grey (its n in the hover and the label), so two sends
  and one reply cannot top a chart or set its colour scale.
* **Aggregates only**: figures carry the already-aggregated rows (a handful to a
  few hundred points), never events, so a saved notebook stays small.
* **Text from data is escaped** (sequence names, subjects, links): plotly renders a
  small HTML subset in labels, and a name like ``<b>Q3</b>`` must show as written.
"""

from __future__ import annotations

import hashlib
import html
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import analytics

__all__ = [
    "MIN_CELL_SAMPLE",
    "MIN_SAMPLE",
    "SANDBOX_MARK",
    "TEMPLATE",
    "cohort_chart",
    "comparison_chart",
    "figure_html",
    "funnel_chart",
    "heatmap_chart",
    "hours_text",
    "is_sandbox",
    "kpi_chart",
    "notes_of",
    "poll_chart",
    "poll_results_chart",
    "stage_chart",
    "time_to_chart",
    "title_of",
    "top_items_chart",
    "trends_chart",
]

SANDBOX_MARK: Final = "SANDBOX DATA"
MIN_SAMPLE: Final = 20
"""A rate over fewer messages (or people) than this is drawn grey, with no rate: two
sends and one reply is "50%", which would top a ranking or set a colour scale."""
_SMALL_COLOR: Final = "#d5d8dc"
_COLORS: Final = ("#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828", "#00838f", "#5d4037")

TEMPLATE: Final = go.layout.Template(
    layout={
        "font": {"family": "Inter, Segoe UI, Helvetica, Arial, sans-serif", "size": 13},
        "colorway": list(_COLORS),
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "title": {
            "x": 0.01,
            "xanchor": "left",
            "yref": "container",
            "y": 1.0,
            "yanchor": "top",
            "pad": {"t": 12},
            "font": {"size": 16},
        },
        # A standoff with automargin: the margin grows to fit tick labels *and* the title.
        "xaxis": {
            "gridcolor": "#eceff1",
            "zerolinecolor": "#cfd8dc",
            "automargin": True,
            "title": {"standoff": 12},
        },
        "yaxis": {
            "gridcolor": "#eceff1",
            "zerolinecolor": "#cfd8dc",
            "automargin": True,
            "title": {"standoff": 12},
        },
        "hoverlabel": {"bgcolor": "white", "font": {"size": 12}},
        "margin": {"l": 60, "r": 30, "t": 60, "b": 60},
        # Above the plot, right-aligned, in the top margin _finish sizes: never on an axis.
        "legend": {"orientation": "h", "x": 1.0, "xanchor": "right", "y": 1.0, "yanchor": "bottom"},
    }
)
"""The one look every figure shares (a light version of ``plotly_white``)."""


def is_sandbox(frame: Any) -> bool:
    attrs = getattr(frame, "attrs", None) or {}
    return attrs.get("source") == "sandbox"


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=False)


def _labels(values: Any) -> list[str]:
    return [_esc(v) for v in values]


_TITLE_PX: Final = 12 + 24  # pad + one 16 px title line
_NOTE_LINE_PX: Final = 18
_LEGEND_PX: Final = 30
_NOTE_STYLE: Final = "font-size:12px;color:#546e7a"
_MARK_STYLE: Final = "font-size:12px;color:#b26a00"


def _finish(
    fig: go.Figure,
    title: str,
    source_frame: Any,
    *,
    height: int = 420,
    notes: Sequence[str] = (),
) -> go.Figure:
    """Apply the template, the title with its note lines and (for sandbox data) the mark.

    ``notes`` (already escaped) are lines of the title, smaller, after the sandbox
    mark: in the top margin, which is sized here for the title, its lines and the
    legend, so none of them can cover the plot, an axis or each other. (Lines of one
    title, not plotly's ``title.subtitle``: plotly.js 3.8 puts a subtitle back on the
    title when a FigureWidget's layout is replaced, seen in the dashboard's browser test.)
    """
    sandbox = is_sandbox(source_frame)
    lines = [
        f"{title} — {SANDBOX_MARK}" if sandbox else title,
        *(
            [f'<span style="{_MARK_STYLE}"><b>{SANDBOX_MARK}</b> · emulated account, '
             "not real results</span>"]
            if sandbox
            else []
        ),
        *(f'<span style="{_NOTE_STYLE}">{note}</span>' for note in notes),
    ]  # fmt: skip
    top = _TITLE_PX + _NOTE_LINE_PX * (len(lines) - 1) + (_LEGEND_PX if _has_legend(fig) else 0)
    fig.update_layout(
        template=TEMPLATE,
        title={"text": "<br>".join(lines)},
        height=height + max(0, top - 60),
        margin={"t": top + 8},
    )
    fig.layout.meta = {"source": "sandbox" if sandbox else (_source(source_frame) or "")}
    return fig


def figure_html(figure: Any, *, include_plotlyjs: bool | str = False) -> str:
    """``figure`` (a Figure, a FigureWidget or its JSON) as an HTML fragment that draws it
    with the page's plotly.js, full width. Its element id comes from the figure itself,
    so the same figure gives the same text (plotly's own ids are random per call)."""
    fig = figure if isinstance(figure, go.Figure) else go.Figure(figure)
    digest = hashlib.sha1(fig.to_json().encode("utf-8"), usedforsecurity=False).hexdigest()
    return str(
        fig.to_html(
            include_plotlyjs=include_plotlyjs,
            full_html=False,
            default_width="100%",
            div_id=f"mx-figure-{digest[:16]}",
        )
    )


def hours_text(hours: Any) -> str:
    """A duration given in hours, in the unit a person reads it in: "45 min", "3.2 h",
    "2.5 d" (empty for a missing value), for tables such as analytics.time_to_summary."""
    if hours is None or hours is pd.NA or (isinstance(hours, float) and math.isnan(hours)):
        return ""
    value = float(hours)
    if value < 1:
        return f"{max(1, round(value * 60))} min"
    if value < 48:
        return f"{value:.1f} h"
    return f"{value / 24:.1f} d"


def title_of(fig: go.Figure) -> str:
    """A figure's title without the lines under it."""
    return str(fig.layout.title.text or "").split("<br>")[0]


def _has_legend(fig: go.Figure) -> bool:
    """Whether plotly draws a legend: asked for, or more than one bar/line trace."""
    if fig.layout.showlegend is not None:
        return bool(fig.layout.showlegend)
    listed = [t for t in fig.data if t.type in ("bar", "scatter") and t.showlegend is not False]
    return len(listed) > 1 or any(t.showlegend for t in fig.data)


def notes_of(fig: go.Figure) -> list[str]:
    """The lines under a figure's title (the sandbox mark, then the chart's notes), as text."""
    lines = str(fig.layout.title.text or "").split("<br>")[1:]
    return [re.sub(r"<[^>]+>", "", line) for line in lines]


def _source(frame: Any) -> str | None:
    attrs = getattr(frame, "attrs", None) or {}
    value = attrs.get("source")
    return str(value) if value is not None else None


def _empty(fig: go.Figure, message: str = "No data for this selection") -> go.Figure:
    fig.add_annotation(
        text=message,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 14, "color": "#78909c"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _rate_name(rate: str) -> str:
    return rate.replace("_", " ").replace("rate", "").strip().capitalize() + " rate"


def message_figure(title: str, text: str) -> go.Figure:
    """A figure that says, instead of drawing, why there is nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(
        text=_esc(text),
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 14, "color": "#546e7a"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _finish(fig, title, pd.DataFrame())


def _percent_axis(values: Any) -> dict[str, Any]:
    """Range and ticks for a 0-100 % axis: round steps (1, 2, 2.5 or 5 x 10^k), about
    five of them, with the largest value below the top tick (never over it)."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    peak = float(finite.max()) if finite.size else 0.0
    if peak <= 0:
        return {"range": [0, 10], "dtick": 2, "ticksuffix": "%"}
    raw = peak * 1.08 / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    top = min(100.0, step * math.ceil(peak * 1.08 / step))
    return {"range": [0, top], "dtick": step, "ticksuffix": "%"}


def _nan_to_none(values: Any) -> list[Any]:
    return [None if (v is None or (isinstance(v, float) and math.isnan(v))) else v for v in values]


# -- KPI ---------------------------------------------------------------------------------


def kpi_chart(
    table: pd.DataFrame, rate: str = "reply_rate", top: int = 15, *, min_sample: int = MIN_SAMPLE
) -> go.Figure:
    """One rate per group (a :func:`analytics.kpi_table`) as bars with 95% intervals.

    Groups are ranked by the rate itself, highest first; groups with fewer than
    ``min_sample`` in the rate's denominator come after them, grey, their n in the
    label (their rate is too noisy to rank). Past ``top`` groups, a line under the title says how
    many are left out and where they are (the KPI table)."""
    num, den, definition = analytics.RATES[rate]
    fig = go.Figure()
    dim = str(table.attrs.get("dimension", "group"))
    title = f"{_rate_name(rate)} by {dim}"
    usable = table.loc[table[den] > 0] if len(table) else table
    if len(usable) == 0:
        return _finish(_empty(fig), title, table)
    small = usable[den].to_numpy() < min_sample
    ranked = usable.assign(_small=small).sort_values(
        ["_small", rate, den], ascending=[True, False, False], kind="stable"
    )
    data = ranked.head(top)
    notes = []
    if len(ranked) > len(data):
        notes.append(
            f"The {len(data)} of {len(ranked):,} {_esc(_plural(dim))} with the highest "
            f"{_esc(_rate_name(rate).lower())}; {len(ranked) - len(data):,} more in the KPI table"
        )
    if data["_small"].any():
        notes.append(f"Grey: fewer than {min_sample} {_esc(den)}, too few to rank (n in the label)")
    data = data.iloc[::-1]  # the highest at the top of a horizontal bar chart
    grey = data["_small"].to_numpy(dtype=bool)
    values = data[rate].to_numpy(dtype=float) * 100
    lo = data[f"{rate}_lo"].to_numpy(dtype=float) * 100
    hi = data[f"{rate}_hi"].to_numpy(dtype=float) * 100
    numerators = (
        data[num].to_numpy()
        if num in data
        else np.rint(data[rate].to_numpy(dtype=float) * data[den].to_numpy())
    )
    labels = [
        f"{label} (n={int(n):,})" if is_small else label
        for label, n, is_small in zip(_labels(data["label"]), data[den], grey, strict=True)
    ]
    fig.add_trace(
        go.Bar(
            x=values,
            y=labels,
            orientation="h",
            error_x={
                "type": "data",
                "symmetric": False,
                "array": _nan_to_none(hi - values),
                "arrayminus": _nan_to_none(values - lo),
                "color": "#546e7a",
            },
            customdata=np.column_stack([numerators, data[den].to_numpy(), lo, hi]),
            hovertemplate=(
                "<b>%{y}</b><br>"
                + _esc(_rate_name(rate))
                + ": %{x:.1f}%<br>%{customdata[0]:,} of %{customdata[1]:,}<br>"
                "95% interval: %{customdata[2]:.1f}% – %{customdata[3]:.1f}%<extra></extra>"
            ),
            marker_color=[_SMALL_COLOR if g else _COLORS[0] for g in grey],
            name=_rate_name(rate),
        )
    )
    fig.update_xaxes(
        title_text=f"{_rate_name(rate)} (%) — {definition}", rangemode="tozero", ticksuffix="%"
    )
    fig.update_yaxes(title_text=dim.capitalize())
    return _finish(fig, title, table, height=max(320, 28 * len(data) + 160), notes=notes)


def _plural(word: str) -> str:
    return word if word.endswith("s") else word + "s"


def funnel_chart(frame: pd.DataFrame) -> go.Figure:
    """The email funnel (a :func:`analytics.funnel`): nested, never wider downwards."""
    fig = go.Figure()
    title = "Email funnel: sent → delivered → opened → replied after opening"
    if len(frame) == 0 or int(frame["emails"].iloc[0]) == 0:
        return _finish(_empty(fig), title, frame)
    fig.add_trace(
        go.Funnel(
            y=[s.capitalize() for s in frame["step"]],
            x=frame["emails"].to_numpy(),
            textinfo="value+percent initial",
            customdata=np.column_stack(
                [frame["of_sent"].to_numpy() * 100, frame["of_previous"].to_numpy() * 100]
            ),
            hovertemplate=(
                "<b>%{y}</b>: %{x:,} emails<br>%{customdata[0]:.1f}% of those sent<br>"
                "%{customdata[1]:.1f}% of the previous step<extra></extra>"
            ),
            marker={"color": list(_COLORS[: len(frame)])},
        )
    )
    fig.update_yaxes(title_text="Step (emails)")
    unopened = int(frame.attrs.get("replied_unopened", 0))
    notes = (
        [
            f"{unopened:,} more replies came without a tracked open (images blocked): "
            "they count in Reply %, not in this nested funnel."
        ]
        if unopened
        else []
    )
    return _finish(fig, title, frame, notes=notes)


def stage_chart(frame: pd.DataFrame) -> go.Figure:
    """Stage drop-off within one sequence (a :func:`analytics.stage_dropoff`)."""
    name = frame.attrs.get("sequence_name", "")
    title = f"Stage drop-off: {_esc(name)}" if name else "Stage drop-off"
    fig = go.Figure()
    if len(frame) == 0:
        return _finish(_empty(fig), title, frame)
    stages = [f"Stage {int(s)}" for s in frame["stage_number"]]
    fig.add_trace(
        go.Bar(
            x=stages,
            y=frame["sent"].to_numpy(),
            name="Recipients sent",
            marker_color=_COLORS[0],
            customdata=np.column_stack(
                [frame["replied"].to_numpy(), frame["continued"].to_numpy()]
            ),
            hovertemplate=(
                "<b>%{x}</b><br>%{y:,} recipients sent<br>%{customdata[0]:,} replied<br>"
                "%{customdata[1]:,} went on to a later stage<extra></extra>"
            ),
        )
    )
    fig.add_trace(
        go.Scatter(
            x=stages,
            y=_nan_to_none(frame["dropoff_rate"].to_numpy(dtype=float) * 100),
            name="Drop-off (%)",
            yaxis="y2",
            mode="lines+markers",
            marker_color=_COLORS[4],
            hovertemplate="<b>%{x}</b><br>Drop-off: %{y:.1f}%<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=stages,
            y=frame["reply_rate"].to_numpy(dtype=float) * 100,
            name="Reply rate (%)",
            yaxis="y2",
            mode="lines+markers",
            marker_color=_COLORS[2],
            hovertemplate="<b>%{x}</b><br>Reply rate: %{y:.1f}%<extra></extra>",
        )
    )
    rates = frame[["dropoff_rate", "reply_rate"]].to_numpy(dtype=float) * 100
    fig.update_layout(
        yaxis={"title": {"text": "Recipients sent (count)"}},
        yaxis2={
            "title": {"text": "Rate (%)"},
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            **_percent_axis(rates),
        },
        xaxis={"title": {"text": "Stage"}},
    )
    return _finish(fig, title, frame)


def time_to_chart(hist: pd.DataFrame, summary: pd.DataFrame | None = None) -> go.Figure:
    """Delay from send to first open / reply (a :func:`analytics.time_to_first`)."""
    fig = go.Figure()
    if len(hist) == 0 or hist["deliveries"].sum() == 0:
        return _finish(_empty(fig), "Time to first open and reply", hist)
    medians: dict[str, float] = {}
    if summary is not None and len(summary):
        medians = dict(zip(summary["kind"], summary["median_h"], strict=True))
    for i, (kind, part) in enumerate(hist.groupby("kind", sort=False)):
        median = medians.get(str(kind), math.nan)
        label = f"First {kind}" + (f" (median {median:.1f} h)" if not math.isnan(median) else "")
        fig.add_trace(
            go.Bar(
                x=list(part["bin"]),
                y=(part["share"].to_numpy(dtype=float) * 100),
                name=label,
                marker_color=_COLORS[i],
                customdata=part["deliveries"].to_numpy(),
                hovertemplate=(
                    f"<b>First {kind}</b> after %{{x}}<br>%{{y:.1f}}% of {kind}s "
                    "(%{customdata:,} messages)<extra></extra>"
                ),
            )
        )
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="Time after sending (h = hours, d = days)")
    fig.update_yaxes(title_text="Share of messages (%)")
    return _finish(fig, "Time to first open and first reply", hist)


MIN_CELL_SAMPLE: Final = MIN_SAMPLE
"""Send-time cells with fewer delivered messages than this show no rate (the heatmap's
name for :data:`MIN_SAMPLE`)."""


def heatmap_chart(grid: pd.DataFrame, *, min_sample: int = MIN_CELL_SAMPLE) -> go.Figure:
    """Day-of-week x hour (a :func:`analytics.heatmap`).

    For send-time rates (``when="sent"``), cells with fewer than ``min_sample``
    delivered messages are drawn grey with no rate (their n is in the hover), so the
    colour scale comes from the cells that can carry one; the chart says so."""
    kind = grid.attrs.get("kind", "opened")
    when = grid.attrs.get("when", "event")
    tz = grid.attrs.get("tz", "")
    fig = go.Figure()
    values = grid.to_numpy(dtype=float)
    if np.all(np.isnan(values)) or np.nansum(values) == 0:
        return _finish(_empty(fig), f"When: {kind}", grid)
    counts = np.asarray(grid.attrs.get("counts", values), dtype=float)
    x = [f"{h:02d}" for h in grid.columns]
    y = list(grid.index)
    small = np.zeros(values.shape, dtype=bool)
    if when == "sent":
        small = (counts > 0) & (counts < min_sample)
        z = np.where(small, np.nan, values * 100)
        title = f"What time to send: {kind} rate by send time"
        hover = (
            "%{y} %{x}:00<br>" + _esc(kind.capitalize()) + " rate: %{z:.1f}%<br>"
            "%{customdata:,} delivered messages<extra></extra>"
        )
        bar_title = f"{kind.capitalize()} rate (%)"
    else:
        z = values
        title = f"When recipients engage: {kind} events by local time"
        hover = "%{y} %{x}:00<br>%{z:,.0f} " + _esc(kind) + " events<extra></extra>"
        bar_title = "Events (count)"
    fig.add_trace(
        go.Heatmap(
            z=[_nan_to_none(row) for row in z],
            x=x,
            y=y,
            customdata=counts,
            colorscale="Blues",
            colorbar={"title": {"text": bar_title}},
            hovertemplate=hover,
            hoverongaps=False,
            name=bar_title,
        )
    )
    if small.any():
        fig.add_trace(
            go.Heatmap(
                z=[[1.0 if cell else None for cell in row] for row in small],
                x=x,
                y=y,
                customdata=counts,
                colorscale=[[0.0, _SMALL_COLOR], [1.0, _SMALL_COLOR]],
                showscale=False,
                hovertemplate=(
                    "%{y} %{x}:00<br>%{customdata:,} delivered: too few to show a rate"
                    "<extra></extra>"
                ),
                hoverongaps=False,
                name=f"fewer than {min_sample} delivered",
            )
        )
    notes = (
        [
            f"Grey: fewer than {min_sample} delivered messages, too few to show a rate "
            f"({int(small.sum())} cell{'s' if small.sum() != 1 else ''}; n in the hover)"
        ]
        if small.any()
        else []
    )
    fig.update_xaxes(title_text=f"Hour of day ({_esc(tz)})", type="category")
    fig.update_yaxes(title_text="Day of week", autorange="reversed", type="category")
    return _finish(fig, title, grid, notes=notes)


def trends_chart(weekly: pd.DataFrame) -> go.Figure:
    """Weekly sends and rates (a :func:`analytics.weekly_trends`)."""
    fig = go.Figure()
    if len(weekly) == 0:
        return _finish(_empty(fig), "Weekly trends", weekly)
    partial = (
        weekly["partial"].to_numpy(dtype=bool)
        if "partial" in weekly
        else np.zeros(len(weekly), dtype=bool)
    )
    # A week the data does not cover to its end is labelled and hatched, so its smaller
    # bar reads as "not over yet", not as a drop.
    weeks = [
        f"{w:%Y-%m-%d}" + (" (partial)" if p else "")
        for w, p in zip(weekly["week"], partial, strict=True)
    ]
    fig.add_trace(
        go.Bar(
            x=weeks,
            y=weekly["sent"].to_numpy(),
            name="Messages sent",
            marker_color="#cfd8dc",
            marker_pattern_shape=["/" if p else "" for p in partial],
            hovertemplate="Week of %{x}<br>%{y:,} messages sent<extra></extra>",
        )
    )
    notes = []
    if partial.any():
        edge = weekly.attrs.get("as_of")
        until = f" (data to {edge:%Y-%m-%d %H:%M} UTC)" if edge is not None else ""
        notes.append(f"Hatched: a week not over yet{until}; not comparable with full weeks")
    rates = weekly[["open_rate", "click_rate", "reply_rate"]].to_numpy(dtype=float) * 100
    for i, rate in enumerate(("open_rate", "click_rate", "reply_rate")):
        fig.add_trace(
            go.Scatter(
                x=weeks,
                y=_nan_to_none(weekly[rate].to_numpy(dtype=float) * 100),
                name=f"{_rate_name(rate)} (%)",
                yaxis="y2",
                mode="lines+markers",
                marker_color=_COLORS[i],
                hovertemplate=f"Week of %{{x}}<br>{_rate_name(rate)}: %{{y:.1f}}%<extra></extra>",
            )
        )
    fig.update_layout(
        xaxis={"title": {"text": "Week (starting Monday, UTC)"}, "type": "category"},
        yaxis={"title": {"text": "Messages sent (count)"}},
        yaxis2={
            "title": {"text": "Rate (%)"},
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            **_percent_axis(rates),
        },
    )
    return _finish(fig, "Weekly trends", weekly, notes=notes)


def cohort_chart(frame: pd.DataFrame, *, min_sample: int = MIN_SAMPLE) -> go.Figure:
    """Cumulative reply rate by enrollment week (a :func:`analytics.cohorts`).

    A cohort of fewer than ``min_sample`` recipients is grey with no rate (n in the
    label and the hover): one reply in three people would set the colour scale."""
    fig = go.Figure()
    title = "Cumulative reply rate by enrollment cohort"
    if len(frame) == 0:
        return _finish(_empty(fig), title, frame)
    pivot = frame.pivot(index="cohort", columns="weeks_since", values="reply_rate")
    sizes = frame.groupby("cohort")["recipients"].first().reindex(pivot.index)
    ylabels = [f"{c:%Y-%m-%d} (n={n:,})" for c, n in zip(pivot.index, sizes, strict=True)]
    x = [f"Week {int(k)}" for k in pivot.columns]
    small = sizes.to_numpy() < min_sample
    rates = pivot.to_numpy(dtype=float) * 100
    shown = np.where(small[:, None], np.nan, rates)
    fig.add_trace(
        go.Heatmap(
            z=[_nan_to_none(row) for row in shown],
            x=x,
            y=ylabels,
            colorscale="Greens",
            colorbar={"title": {"text": "Replied (%)"}},
            hovertemplate="Cohort %{y}<br>By %{x}: %{z:.1f}% replied<extra></extra>",
            hoverongaps=False,
        )
    )
    notes = []
    if small.any():
        grey = np.where(small[:, None] & ~np.isnan(rates), 1.0, np.nan)
        fig.add_trace(
            go.Heatmap(
                z=[_nan_to_none(row) for row in grey],
                x=x,
                y=ylabels,
                colorscale=[[0.0, _SMALL_COLOR], [1.0, _SMALL_COLOR]],
                showscale=False,
                hovertemplate="Cohort %{y}: too few recipients to show a rate<extra></extra>",
                hoverongaps=False,
                name=f"fewer than {min_sample} recipients",
            )
        )
        notes.append(
            f"Grey: cohorts of fewer than {min_sample} recipients, too few to show a rate "
            f"({int(small.sum())} of {len(small)})"
        )
    fig.update_xaxes(title_text="Weeks since enrollment", type="category")
    fig.update_yaxes(title_text="Enrollment week (recipients)", autorange="reversed")
    return _finish(fig, title, frame, notes=notes)


def top_items_chart(frame: pd.DataFrame, what: str = "links") -> go.Figure:
    """Top links or files (a :func:`analytics.top_links` / :func:`analytics.top_files`)."""
    column = "link_url" if what == "links" else "file_name"
    verb = "clicked" if what == "links" else "downloaded"
    title = f"Top {what}: unique recipients who {verb}"
    fig = go.Figure()
    if len(frame) == 0:
        return _finish(_empty(fig), title, frame)
    data = frame.iloc[::-1]
    names = [_esc(v if len(str(v)) <= 60 else str(v)[:57] + "...") for v in data[column]]
    fig.add_trace(
        go.Bar(
            x=data["recipients"].to_numpy(),
            y=names,
            orientation="h",
            marker_color=_COLORS[2],
            customdata=np.column_stack([data["events"].to_numpy(), _labels(data[column])]),
            hovertemplate=(
                "<b>%{customdata[1]}</b><br>%{x:,} recipients<br>"
                f"%{{customdata[0]:,}} {verb} events<extra></extra>"
            ),
        )
    )
    fig.update_xaxes(title_text=f"Recipients who {verb} (count)")
    fig.update_yaxes(title_text="Link" if what == "links" else "File")
    return _finish(fig, title, frame, height=max(320, 28 * len(data) + 160))


def comparison_chart(comparison: analytics.Comparison) -> go.Figure:
    """Two reply rates with their intervals, and the verdict under the title."""
    frame = comparison.to_frame()
    fig = go.Figure()
    values = frame["people_reply_rate"].to_numpy(dtype=float) * 100
    lo = frame["people_reply_rate_lo"].to_numpy(dtype=float) * 100
    hi = frame["people_reply_rate_hi"].to_numpy(dtype=float) * 100
    fig.add_trace(
        go.Bar(
            x=_labels(frame["group"]),
            y=_nan_to_none(values),
            marker_color=[_COLORS[0], _COLORS[1]],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": _nan_to_none(hi - values),
                "arrayminus": _nan_to_none(values - lo),
            },
            customdata=np.column_stack(
                [frame["replied"].to_numpy(), frame["reached"].to_numpy(), lo, hi]
            ),
            hovertemplate=(
                "<b>%{x}</b><br>People who replied: %{y:.1f}%<br>"
                "%{customdata[0]:,} of %{customdata[1]:,} people reached<br>"
                "95% interval: %{customdata[2]:.1f}% – %{customdata[3]:.1f}%<extra></extra>"
            ),
        )
    )
    fig.update_yaxes(title_text="Reply rate (% of recipients reached)", rangemode="tozero")
    fig.update_xaxes(title_text="Group")
    return _finish(fig, "Which wins? Reply rate, A vs B", frame, notes=[_esc(comparison.verdict)])


def poll_results_chart(frame: pd.DataFrame, question: str | None = None) -> go.Figure:
    """Answers per option of a poll (a ``frames.shape("poll_results", ...)`` frame)."""
    title = f"Poll: {_esc(question)}" if question else "Poll results"
    fig = go.Figure()
    if len(frame) == 0:
        return _finish(_empty(fig, "No poll options"), title, frame)
    # An option nobody chose is one row with no respondent: it counts 0, not 1.
    counts = (
        frame.assign(answered=frame["respondent_email"].notna())
        .groupby(["poll_id", "option_index"], sort=True, dropna=False)
        .agg(option=("option_text", "first"), answers=("answered", "sum"))
        .reset_index()
        .iloc[::-1]
    )
    total = int(counts["answers"].sum())
    shares = [100 * int(n) / total if total else 0.0 for n in counts["answers"]]
    fig.add_trace(
        go.Bar(
            x=counts["answers"].to_numpy(dtype=int),
            y=_labels(counts["option"].fillna("(no text)")),
            orientation="h",
            marker_color=_COLORS[0],
            customdata=np.array(shares, dtype=float),
            hovertemplate="<b>%{y}</b><br>%{x:,} answers (%{customdata:.0f}%)<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="Answers (respondents)", rangemode="tozero")
    fig.update_yaxes(title_text="Option")
    return _finish(fig, title, frame, height=max(300, 32 * len(counts) + 160))


def poll_chart(poll: Mapping[str, Any], *, source: str | None = None) -> go.Figure:
    """A poll's answers per option as a bar chart, from its record (``client.poll(id)``);
    ``source="sandbox"`` (``client.backend``) marks it as sandbox data."""
    from . import frames

    frame = frames.shape("poll_results", [dict(poll)])
    if source is not None:
        frame.attrs["source"] = source
    return poll_results_chart(frame, poll.get("question"))
