"""widgets.static: a form drawn as static HTML for a shared page (make demo's build/*.html)."""

from __future__ import annotations

import asyncio

import ipywidgets as w
import plotly.graph_objects as go
import pytest

import mixmax_nb as mx
from mixmax_nb.widgets import static
from mixmax_nb.widgets._common import TaskRunner

HOSTILE = '<script>alert("x")</script>'


def test_controls_show_their_values_escaped_and_secrets_never() -> None:
    secret = "mxsb-login-0123456789"  # a login code typed into the form
    form = w.VBox(
        [
            w.HTML("<b>Already escaped by the form</b>"),
            w.Text(description=HOSTILE, value=HOSTILE),
            w.Password(description="Login code", value=secret),
            w.Dropdown(description="Sequence", options=[(HOSTILE, "a"), ("Other", "b")], value="a"),
            w.SelectMultiple(description="Teams", options=["x", "y"], value=("y",)),
            w.ToggleButtons(options=["Summary", "With events"], value="With events"),
            w.Button(description="Confirm"),
            w.Checkbox(description="Paused", value=True),
            w.IntProgress(min=0, max=10, value=4, description="Enrolled"),
        ]
    )
    hidden = w.HTML("hidden text")
    hidden.layout.display = "none"
    form.children = (*form.children, hidden)
    page = static.snapshot_html(form)
    assert "A snapshot of a live form" in page
    assert secret not in page and "&bull;" * 8 in page
    assert "<script>" not in page and page.count("&lt;script&gt;") == 3
    assert "<b>Already escaped by the form</b>" in page
    assert ">y<" in page and "(none chosen" not in page
    assert 'font-weight:bold">With events' in page
    assert "Confirm" in page and "&#9745;" in page and 'value="4"' in page
    assert "hidden text" not in page


def test_an_output_area_and_a_figure_are_drawn() -> None:
    out = w.Output()
    out.append_stdout(f"Enrolled 3 {HOSTILE}\n")
    figure = go.FigureWidget(go.Figure(go.Bar(x=["a", "b"], y=[1, 2])))
    page = static.snapshot_html(w.VBox([out, w.VBox([figure]), w.VBox([go.FigureWidget()])]))
    assert "Enrolled 3 &lt;script&gt;" in page
    assert page.count("Plotly.newPlot(") == 1  # the empty figure draws nothing


def test_the_dashboard_draws_every_tab_not_only_the_open_one() -> None:
    client = mx.connect("sandbox", size="small", db=":memory:", names="adversarial")
    board = mx.widgets.EngagementDashboard(client)
    assert list(board.figures) == ["kpi"]  # only the open tab has a FigureWidget
    page = static.snapshot_html(board.widget)
    assert page.count("Plotly.newPlot(") >= 10
    assert "Email funnel" in page and "Weekly trends" in page
    # The adversarial account's markup (sequence names like <b>Enterprise</b>) is shown.
    assert "<b>Enterprise</b>" not in page and "&lt;b&gt;Enterprise&lt;/b&gt;" in page
    assert static.snapshot_html(board.widget) == page  # drawn again: the same page
    # Displayed, the dashboard is its widget: the output a runner finds and draws.
    view = board._repr_mimebundle_()["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == board.widget.model_id
    over_data = mx.widgets.EngagementDashboard.from_data(board.dataset, client=client)
    assert not over_data.refresh_button.disabled and over_data.data is not None
    assert "application/vnd.jupyter.widget-view+json" in over_data._repr_mimebundle_()


def test_publish_waits_for_the_forms_work_then_names_each_widget() -> None:
    label = w.HTML("working")
    shown: list[object] = []

    async def scenario() -> None:
        runner = TaskRunner(w.Output())

        async def work() -> None:
            await asyncio.sleep(0.05)
            label.value = "done"

        runner.start(work(), label="Work")
        await static.publish([label.model_id, "no-such-model"])

    import IPython.display

    original = IPython.display.display
    IPython.display.display = lambda obj, **_kw: shown.append(obj)  # type: ignore[assignment]
    try:
        asyncio.run(scenario())
    finally:
        IPython.display.display = original
    (bundle,) = shown
    assert isinstance(bundle, dict)
    shots = bundle[static.MIME]
    assert list(shots) == [label.model_id]
    assert "done" in shots[label.model_id]


def test_a_form_object_or_a_widget_can_be_snapshot() -> None:
    html = static.snapshot(w.HTML("plain"))
    assert "plain" in html.data
    with pytest.raises(TypeError, match="not a widget"):
        static.snapshot(object())
