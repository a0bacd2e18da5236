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
    tabs = page.locator(".widget-toggle-buttons button")
    for index, title in enumerate(t.strip() for t in tabs.all_inner_texts()):
        if title != "Compare A/B":
            tabs.nth(index).click()
            # The tab's own figure: drawn, or (a tab that needs events, on the summary)
            # saying why it draws nothing.
            page.wait_for_function(TAB_SHOWN, timeout=30_000)
            ui.assert_healthy(page)
