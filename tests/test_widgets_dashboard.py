"""EngagementDashboard headless: filters change cards and figures; hostile text stays escaped."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import mixmax_nb as mx
from mixmax_nb.widgets.dashboard import _TABS, EngagementDashboard, csv_safe

HOSTILE = '<script>alert("pwn")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def board() -> EngagementDashboard:
    # The adversarial names: the verdict below proves the account's own markup is escaped.
    client = mx.connect("sandbox", size="small", db=":memory:", names="adversarial")
    dash = mx.widgets.EngagementDashboard(client)
    assert dash.data is not None
    return dash


def html_widgets(dash: EngagementDashboard) -> list[str]:
    return [dash.cards.value, dash.table.value, dash.status.value, dash.verdict.value]


def test_a_tab_gets_its_figure_widget_when_first_shown() -> None:
    # Each FigureWidget ships plotly.js to the browser; eleven at page load timed out
    # anywidget's 2 s model start on a busy machine (see the dashboard's module doc).
    dash = EngagementDashboard(mx.connect("sandbox", size="small", db=":memory:"))
    assert list(dash.figures) == ["kpi"]
    dash.tab.value = "funnel"
    assert list(dash.figures) == ["kpi", "funnel"]
    assert dash.figures["funnel"].data
    dash.redraw(all_tabs=True)
    assert list(dash.figures) == [key for _title, key in _TABS]


def test_loads_and_shows_sandbox(board: EngagementDashboard) -> None:
    assert "SANDBOX DATA" in board.cards.value
    assert board.figures["kpi"].data, "the visible tab is drawn"
    assert "SANDBOX DATA" in board.figures["kpi"].layout.title.text
    assert board.sequences.options and board.senders.options


def test_filter_changes_cards_and_figures(board: EngagementDashboard) -> None:
    before_cards = board.cards.value
    before_x = list(board.figures["kpi"].data[0].x)
    first_seq = board.sequences.options[0][1]
    board.sequences.value = (first_seq,)
    assert board.cards.value != before_cards
    assert list(board.figures["kpi"].data[0].x) != before_x
    assert len(board.figures["kpi"].data[0].y) == 1
    board.sequences.value = ()
    assert board.cards.value == before_cards
    # Another tab is drawn when chosen, with the current filters.
    board.tab.value = "funnel"
    assert board.figures["funnel"].data[0].type == "funnel"
    assert board.panel.children[1].children[0] is board.figures["funnel"]
    # The panel's first child fits a newly drawn figure to the panel's width.
    assert type(board.panel.children[0]).__name__ == "FitFigures"
    board.types.value = ("opened", "bounced")
    funnel = list(board.figures["funnel"].data[0].x)
    assert funnel[-1] == 0  # replies excluded
    board.types.value = tuple(board.types.options)
    board.tab.value = "kpi"


def test_date_range_filters(board: EngagementDashboard) -> None:
    start, end = board.start.value, board.end.value
    sent_all = board._table["sent"].sum()
    board.start.value = end
    assert board._table["sent"].sum() < sent_all
    board.start.value = start
    assert board._table["sent"].sum() == sent_all


def test_every_tab_draws(board: EngagementDashboard) -> None:
    for _title, key in _TABS:
        board.tab.value = key
        assert board.figures[key].layout.title.text, key
    # The pinned account (tests/conftest.py) always tells this story, escaped.
    assert board.verdict.value == (
        "Re-engage closed-lost gets more replies than &lt;b&gt;Enterprise&lt;/b&gt; cold "
        "outreach: +12.3 points in its favour. &lt;b&gt;Enterprise&lt;/b&gt; cold outreach: "
        "7.9% of 189; Re-engage closed-lost: 20.2% of 163."
    )
    board.tab.value = "kpi"


def hostile_board() -> EngagementDashboard:
    from mixmax_nb.testing import synthetic_engagement

    made = synthetic_engagement(5_000, seed=1)
    made.sequences.loc[:, "name"] = [f"{HOSTILE} {i}" for i in range(len(made.sequences))]
    made.messages["subject"] = HOSTILE
    assert made.events is not None
    links = made.events["link_url"]
    made.events["link_url"] = links.where(links.isna(), "=HYPERLINK(1)")
    return EngagementDashboard.from_data(made)


def test_hostile_strings_stay_escaped(tmp_path: Path) -> None:
    dash = hostile_board()
    dash.tab.value = "compare"
    for text in html_widgets(dash):
        assert "<script>" not in text and "<img" not in text
    assert "&lt;script&gt;" in dash.table.value
    for _title, key in _TABS:
        dash.tab.value = key
    html_path, csv_path = dash.export(tmp_path / "report", include_plotlyjs="cdn")
    report = html_path.read_text(encoding="utf-8")
    assert "<script>alert" not in report and "<img src=x" not in report
    assert "&lt;script&gt;alert" in report
    table = pd.read_csv(csv_path)
    assert all(
        str(v).startswith("'") or not str(v).startswith(("=", "+", "-", "@"))
        for v in table["label"]
    )


def test_csv_safe() -> None:
    for bad in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert csv_safe(bad) == "'" + bad
    assert csv_safe("fine") == "fine"
    assert csv_safe(-1) == -1


def test_prepare_downloads_offers_the_files_to_the_browser(tmp_path: Path) -> None:
    import base64
    import io
    import re

    dash = hostile_board()
    dash.export_path.value = "../../etc/Q3 report.csv"  # a folder or a suffix is dropped
    dash.export_button.click()
    links = re.findall(
        r'<a class="mx-download" download="([^"]+)" href="([^"]+)"', dash.downloads.value
    )
    assert [name for name, _href in links] == ["Q3 report.html", "Q3 report.csv", "Q3 report.xlsx"]
    files = {}
    for name, href in links:
        media, payload = href.removeprefix("data:").split(";base64,")
        files[name] = (media, base64.b64decode(payload))
    assert files["Q3 report.csv"][0] == "text/csv"
    csv_text = files["Q3 report.csv"][1].decode("utf-8-sig")
    table = pd.read_csv(io.StringIO(csv_text))
    expected = dash.metrics()["table"]
    assert table["sent"].tolist() == expected["sent"].tolist()
    assert all(not str(v).startswith(("=", "+", "-", "@")) for v in table["label"])
    xlsx = pd.read_excel(io.BytesIO(files["Q3 report.xlsx"][1]), engine="openpyxl")
    assert xlsx["replied"].tolist() == expected["replied"].tolist()
    report = files["Q3 report.html"][1].decode("utf-8")
    assert "<script>alert" not in report and "&lt;script&gt;" in report
    assert "Plotly.newPlot" in report  # plotly.js inside: the report opens offline
    assert not list(tmp_path.iterdir()) and not Path("Q3 report.csv").exists()  # no server file
    # A filter change makes the links stale, and the form says so instead of keeping them.
    dash.sequences.value = (dash.sequences.options[0][1],)
    assert "mx-download" not in dash.downloads.value and "again" in dash.downloads.value


def test_kpi_table_greys_rates_from_a_small_sample() -> None:
    from mixmax_nb import analytics
    from mixmax_nb.widgets.dashboard import kpi_table_html

    table = pd.DataFrame(
        {
            "label": ["big", "tiny"], "sent": [400, 3], "delivered": [400, 3],
            "replied": [20, 2], "reply_rate": [0.05, 2 / 3],
        }
    )  # fmt: skip
    for rate in analytics.RATES:
        if rate not in table:
            table[rate] = float("nan")
    html = kpi_table_html(table)
    big, tiny = html.split("<tr>")[2:4]
    assert "too few" not in big and "5.0%" in big
    assert "only 3 delivered: too few for a stable rate" in tiny and "66.7%" in tiny
    assert "Grey rates: fewer than 20" in html
    assert "<NA>" not in html and "text-align:right" in html


def test_before_data_it_shows_a_loading_line_not_an_empty_chart() -> None:
    waiting = EngagementDashboard(None, load=False)
    for part in (waiting.tab, waiting.panel, waiting.table, waiting.export_button):
        assert part.layout.display == "none"
    loaded = hostile_board()
    for part in (loaded.tab, loaded.panel, loaded.table, loaded.export_button):
        assert part.layout.display is None
    assert "emails to" in loaded.status.value
