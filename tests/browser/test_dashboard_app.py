"""apps/dashboard.ipynb in Voila: a filter change redraws the KPI cards and the chart."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import SAYS_WHY

pytestmark = pytest.mark.browser

# Found by these tests: EngagementDashboard updates its FigureWidgets in place
# (batch_update), which plotly 7.1 sends as transient `_py2js_*` messages that the
# anywidget front-end does not draw; a view draws only the `_widget_data` /
# `_widget_layout` traits, which plotly refreshes only when the FigureWidget itself is
# displayed (the dashboard displays a VBox around it). So every chart shows empty axes
# in Voila. Fix (widgets/dashboard.py `_assign`): after the batch update, set
# `target._widget_data = deepcopy(target._data)` and
# `target._widget_layout = deepcopy(target._layout_obj._props)` (checked in Voila).
ANY_DRAWN = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
    .filter(gd => gd.offsetParent !== null)
    .some(gd => (gd.data || []).length > 0)"""


TAB_SHOWN = f"""() => {{
    const shown = Array.from(document.querySelectorAll('.js-plotly-plot'))
        .filter(gd => gd.offsetParent !== null);
    return shown.length > 0 && shown.every(gd => (gd.data || []).length > 0 || ({SAYS_WHY}));
}}"""


def _cards(page: Any) -> list[str]:
    return [t.strip() for t in page.locator(".mx-card-value").all_inner_texts()]


def _choose_one_sequence(page: Any) -> None:
    """One sequence instead of all: fewer enrollments, one bar instead of many."""
    sequences = page.locator(
        ".widget-select-multiple", has=page.locator("label", has_text="Sequences")
    )
    options = sequences.locator("option").all_inner_texts()
    assert len(options) >= 2, options
    sequences.locator("select").select_option(label=options[0])


def _loaded(page: Any) -> None:
    # The refresh runs as a task on the kernel loop after the cell returns: the cards
    # arrive over the widget comms, after the page has rendered.
    # Generous: on a loaded 2-core machine the kernel start and first pull are slow.
    page.wait_for_selector(".mx-card-value", timeout=90_000)


def test_a_filter_changes_the_kpis(open_app: Any, ui: Any) -> None:
    page = open_app("dashboard.ipynb")
    _loaded(page)
    assert "SANDBOX DATA" in page.inner_text("body")
    ui.assert_healthy(page, figures=False)
    before = _cards(page)
    _choose_one_sequence(page)
    page.wait_for_function(
        """(before) => JSON.stringify(Array.from(document.querySelectorAll('.mx-card-value'))
              .map(e => e.innerText.trim())) !== JSON.stringify(before)""",
        arg=before,
    )
    after = _cards(page)
    assert after != before
    assert after[0] != before[0], "the Enrolled card did not follow the sequence filter"
    ui.assert_healthy(page, figures=False)


def test_the_charts_draw_and_follow_the_filter(open_app: Any, ui: Any) -> None:
    page = open_app("dashboard.ipynb")
    _loaded(page)
    page.wait_for_function(ANY_DRAWN, timeout=30_000)
    ui.assert_healthy(page)
    before = ui.figure_signature(page)
    _choose_one_sequence(page)
    # Wait for the new drawing, not a step on the way: a redraw replaces the traces,
    # so "different from before" alone also matches the moment a chart is empty.
    page.wait_for_function(
        """(before) => {
            const shown = Array.from(document.querySelectorAll('.js-plotly-plot'))
                .filter(gd => gd.offsetParent !== null);
            const now = shown.map(gd => JSON.stringify((gd.data || []).map(
                t => [t.type, t.name, t.x, t.y, t.z, t.values, t.labels])));
            return JSON.stringify(now) !== JSON.stringify(before)
                && shown.every(gd => (gd.data || []).length > 0);
        }""",
        arg=before,
        timeout=30_000,
    )
    ui.assert_healthy(page)
    # Every tab's FigureWidget is drawn when chosen (Compare needs two chosen sequences).
    tabs = page.locator(".mx-tabs button")
    for index, title in enumerate(t.strip() for t in tabs.all_inner_texts()):
        if title != "Compare A/B":
            tabs.nth(index).click()
            # The tab's own figure: drawn, or (a tab that needs events, on the summary)
            # saying why it draws nothing.
            page.wait_for_function(TAB_SHOWN, timeout=30_000)
            ui.assert_healthy(page)


# Boxes of what plotly draws in one figure; any two that must not touch are compared.
LAYOUT_BOXES = """(gd) => {
    const box = (el) => { const r = el.getBoundingClientRect();
        return r.width && r.height ? [r.left, r.top, r.right, r.bottom] : null; };
    const all = (sel) => Array.from(gd.querySelectorAll(sel)).map(box).filter(Boolean);
    return {
        svg: box(gd.querySelector('.main-svg')), slot: box(gd.closest('.widget-vbox')),
        title: all('.gtitle'), legend: all('.legend'), plot: all('.nsewdrag'),
        xticks: all('.xtick text'), yticks: all('.ytick text'), y2ticks: all('.y2tick text'),
        xtitle: all('.g-xtitle'), ytitle: all('.g-ytitle'), y2title: all('.g-y2title'),
    };
}"""
MUST_NOT_OVERLAP = (
    ("title", "legend"), ("title", "plot"), ("legend", "plot"),
    ("title", "yticks"), ("legend", "yticks"), ("legend", "y2ticks"),
    ("legend", "xtitle"), ("xtitle", "xticks"), ("ytitle", "yticks"), ("y2title", "y2ticks"),
    ("legend", "y2title"),
)  # fmt: skip


def _overlaps(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] - 1 and b[0] < a[2] - 1 and a[1] < b[3] - 1 and b[1] < a[3] - 1


def _check_layout(page: Any, tab: str) -> None:
    figures = page.locator(".js-plotly-plot:visible")
    assert figures.count() == 1, f"{tab}: {figures.count()} visible figures"
    boxes = figures.first.evaluate(LAYOUT_BOXES)
    width, slot = boxes["svg"][2] - boxes["svg"][0], boxes["slot"][2] - boxes["slot"][0]
    assert width >= 0.9 * slot, f"{tab}: the chart is {width:.0f} px of its {slot:.0f} px box"
    for one, other in MUST_NOT_OVERLAP:
        for a in boxes[one]:
            for b in boxes[other]:
                assert not _overlaps(a, b), f"{tab}: {one} {a} overlaps {other} {b}"


def _tab_title(page: Any) -> str:
    return str(page.locator(".js-plotly-plot:visible .gtitle").first.text_content())


def test_every_tab_fills_its_box_and_nothing_overlaps(open_app: Any, ui: Any) -> None:
    page = open_app("dashboard.ipynb")
    _loaded(page)
    page.wait_for_function(TAB_SHOWN, timeout=30_000)
    tabs = page.locator(".mx-tabs button")
    titles = [t.strip() for t in tabs.all_inner_texts()]
    assert titles[0] == "By group", titles
    _check_layout(page, titles[0])
    # Every tab, and back to the first: a figure drawn by a switch must fit too.
    order = [t for t in titles[1:] if t != "Compare A/B"] + ["Compare A/B", titles[0]]
    previous = _tab_title(page)
    for title in order:
        tabs.filter(has_text=title).first.click()
        page.wait_for_function(
            f"""(previous) => {{ const ok = ({TAB_SHOWN})();
                return ok && Array.from(document.querySelectorAll('.js-plotly-plot'))
                    .filter(gd => gd.offsetParent !== null)
                    .every(gd => (gd.querySelector('.gtitle') || {{}}).textContent !== previous);
            }}""",
            arg=previous,
            timeout=30_000,
        )
        # The fit follows the first drawing by a few frames (FitFigures): wait for it.
        page.wait_for_function(
            """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
                .filter(gd => gd.offsetParent !== null)
                .every(gd => gd.querySelector('.main-svg').getBoundingClientRect().width
                             >= 0.9 * gd.closest('.widget-vbox').getBoundingClientRect().width)""",
            timeout=10_000,
        )
        _check_layout(page, title)
        previous = _tab_title(page)
    ui.assert_healthy(page)


def test_the_send_time_heatmap_greys_small_cells(open_app: Any) -> None:
    page = open_app("dashboard.ipynb")
    _loaded(page)
    page.locator(".mx-tabs button", has_text="What time to send").first.click()
    page.wait_for_function(
        """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
            .filter(gd => gd.offsetParent !== null)
            .some(gd => (gd.data || []).length === 2)""",
        timeout=30_000,
    )
    masked = page.evaluate(
        """() => { const gd = Array.from(document.querySelectorAll('.js-plotly-plot'))
                .find(gd => gd.offsetParent !== null);
            const [rates, grey] = gd.data;
            const cells = [];
            grey.z.forEach((row, d) => row.forEach((v, h) => {
                if (v !== null) cells.push([d, h]); }));
            return { name: grey.name, cells,
                     clash: cells.filter(([d, h]) => rates.z[d][h] !== null).length,
                     note: gd.querySelector('.gtitle').textContent,
                     n: cells.map(([d, h]) => grey.customdata[d][h]) }; }"""
    )
    assert masked["name"] == "fewer than 20 delivered"
    assert masked["cells"], "no cell is masked on the sandbox"
    assert masked["clash"] == 0, "a masked cell still carries a rate"
    assert all(0 < n < 20 for n in masked["n"]), masked["n"]
    assert f"({len(masked['cells'])} cells" in masked["note"], masked["note"]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_download_reaches_the_browser(open_app: Any, suffix: str, tmp_path: Any) -> None:
    import pandas as pd

    page = open_app("dashboard.ipynb")
    _loaded(page)
    page.locator("button", has_text="Prepare downloads").click()
    link = page.locator("a.mx-download", has_text=suffix)
    link.wait_for(timeout=60_000)
    with page.expect_download(timeout=30_000) as event:
        link.click()
    download = event.value
    assert download.suggested_filename == f"engagement_report{suffix}"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    table = pd.read_csv(saved) if suffix == ".csv" else pd.read_excel(saved, engine="openpyxl")
    assert {"label", "sent", "delivered", "replied", "reply_rate"} <= set(table.columns)
    # The file holds the KPI table the page shows, row for row.
    assert len(table) == page.locator(".mx-kpi-table tbody tr").count() >= 1
