"""charts: pure figures with titles, axis labels, the sandbox mark, escaped text, small size."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pytest

from mixmax_nb import analytics as A
from mixmax_nb import charts as C
from mixmax_nb.testing import synthetic_engagement


@pytest.fixture(scope="module")
def data() -> A.Engagement:
    made = synthetic_engagement(60_000, seed=3)
    made.sequences.loc[0, "name"] = '<script>alert("x")</script>'
    return A.prepare(made)


def all_figures(e: A.Engagement) -> dict[str, go.Figure]:
    return {
        "kpi": C.kpi_chart(A.kpi_table(e)),
        "funnel": C.funnel_chart(A.funnel(e)),
        "stage": C.stage_chart(A.stage_dropoff(e)),
        "time": C.time_to_chart(A.time_to_first(e), A.time_to_summary(e)),
        "heat": C.heatmap_chart(A.heatmap(e)),
        "send": C.heatmap_chart(A.heatmap(e, "replied", when="sent")),
        "trends": C.trends_chart(A.weekly_trends(e)),
        "cohorts": C.cohort_chart(A.cohorts(e)),
        "links": C.top_items_chart(A.top_links(e)),
        "files": C.top_items_chart(A.top_files(e), "files"),
        "compare": C.comparison_chart(A.compare(e, "seq0000", "seq0001")),
    }


def test_every_figure_is_labelled_marked_and_small(data: A.Engagement) -> None:
    for name, fig in all_figures(data).items():
        assert isinstance(fig, go.Figure), name
        assert C.title_of(fig).endswith(C.SANDBOX_MARK), name
        assert C.SANDBOX_MARK in C.notes_of(fig)[0], name
        assert fig.layout.template.layout.font.family == C.TEMPLATE.layout.font.family
        axis = fig.layout.xaxis.title.text or fig.layout.yaxis.title.text
        assert axis or name == "funnel", name
        assert all(t.hovertemplate for t in fig.data), name
        # Aggregates only: a figure over 60k events stays far below 100 kB.
        assert len(fig.to_json()) < 100_000, name
        assert "<script>" not in fig.to_json(), name


def test_real_data_has_no_sandbox_mark(data: A.Engagement) -> None:
    table = A.kpi_table(data)
    table.attrs["source"] = "membrane"
    fig = C.kpi_chart(table)
    assert C.SANDBOX_MARK not in C.title_of(fig)
    assert not any(C.SANDBOX_MARK in note for note in C.notes_of(fig))
    assert not fig.layout.annotations


def test_escaped_label_shows_as_text(data: A.Engagement) -> None:
    fig = C.kpi_chart(A.kpi_table(data), "open_rate", top=100)
    labels = list(fig.data[0].y)
    assert '&lt;script&gt;alert("x")&lt;/script&gt;' in labels


def test_empty_data_gives_a_message_not_an_error() -> None:
    from mixmax_nb import frames
    from mixmax_nb.data.engagement import EngagementData, empty_stats

    nothing = EngagementData(
        sequences=frames.empty("sequences"),
        recipients=frames.empty("recipients"),
        stages=frames.empty("recipient_stages"),
        messages=frames.empty("messages"),
        stats=empty_stats(),
        events=frames.empty("events"),
    )
    empty = A.prepare(nothing)
    for name, fig in all_figures(empty).items():
        if name == "compare":
            continue
        texts = " ".join(a.text or "" for a in fig.layout.annotations)
        assert "No data" in texts, name


def test_figures_do_not_show(monkeypatch: pytest.MonkeyPatch, data: A.Engagement) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise AssertionError("charts must never call show()")

    monkeypatch.setattr(go.Figure, "show", boom)
    all_figures(data)
    assert isinstance(pd.DataFrame(), pd.DataFrame)


def _send_grid(rates: dict[tuple[int, int], tuple[float, int]]) -> pd.DataFrame:
    """A send-time grid as analytics.heatmap(when="sent") makes it: rates and counts."""
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    values = pd.DataFrame(float("nan"), index=days, columns=range(24))
    counts = [[0.0] * 24 for _ in days]
    for (day, hour), (rate, n) in rates.items():
        values.iloc[day, hour] = rate
        counts[day][hour] = float(n)
    values.attrs.update(kind="replied", when="sent", tz="UTC", counts=counts)
    return values


def test_send_time_heatmap_masks_cells_too_small_to_carry_a_rate() -> None:
    # Mon 19:00 and Wed 04:00: 1 reply of 2 sends (50%); the well-sampled cells 4-11%.
    grid = _send_grid(
        {(0, 19): (0.5, 2), (2, 4): (0.5, 2), (1, 10): (0.11, 300), (3, 14): (0.04, 250)}
    )
    fig = C.heatmap_chart(grid)
    rates, masked = fig.data
    z = [[v for v in row] for row in rates.z]
    assert z[0][19] is None and z[2][4] is None  # no 50% from two sends
    assert z[1][10] == pytest.approx(11.0) and z[3][14] == pytest.approx(4.0)
    assert max(v for row in z for v in row if v is not None) == pytest.approx(11.0)
    grey = [(d, h) for d, row in enumerate(masked.z) for h, v in enumerate(row) if v is not None]
    assert grey == [(0, 19), (2, 4)]
    assert masked.customdata[0][19] == 2  # n stays in the hover
    assert any("fewer than 20 delivered" in t and "2 cells" in t for t in C.notes_of(fig))


def test_send_time_heatmap_with_every_cell_well_sampled_masks_nothing() -> None:
    fig = C.heatmap_chart(_send_grid({(1, 10): (0.11, 300), (3, 14): (0.04, 250)}))
    assert len(fig.data) == 1
    assert not any("fewer than" in note for note in C.notes_of(fig))


def test_the_week_not_over_yet_is_marked_not_drawn_as_a_drop(data: A.Engagement) -> None:
    weekly = A.weekly_trends(data)
    newest = pd.Timestamp(int(data.deliveries["sent_at"].max()), unit="ms", tz="UTC")
    assert weekly.attrs["as_of"] == newest
    assert weekly["partial"].tolist() == [False] * (len(weekly) - 1) + [True]
    assert weekly["week"].iloc[-1] <= newest < weekly["week"].iloc[-1] + pd.Timedelta(days=7)
    fig = C.trends_chart(weekly)
    bars = fig.data[0]
    assert bars.x[-1].endswith("(partial)") and not bars.x[-2].endswith("(partial)")
    assert list(bars.marker.pattern.shape)[-2:] == ["", "/"]
    assert any("not over yet" in note for note in C.notes_of(fig))
    # Through the end of a week's Sunday, that week is whole.
    sunday = weekly["week"].iloc[-2] + pd.Timedelta(days=6)
    whole = A.weekly_trends(data, as_of=sunday.date())
    assert not whole["partial"].iloc[-2] and whole["partial"].iloc[-1]


def test_durations_read_in_the_unit_a_person_uses() -> None:
    assert [C.hours_text(h) for h in (0.004, 0.31, 1.394134, 47.9, 57.58927)] == [
        "1 min", "19 min", "1.4 h", "47.9 h", "2.4 d",
    ]  # fmt: skip
    assert C.hours_text(float("nan")) == "" and C.hours_text(None) == ""
