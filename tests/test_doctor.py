"""mx.doctor(): versions and known-bad combinations."""

from __future__ import annotations

import pytest

import mixmax_nb as mx
from mixmax_nb.doctor import check, installed_versions

GOOD = {
    "ipywidgets": "8.1.9",
    "jupyterlab_widgets": "3.0.17",
    "plotly": "7.1.0",
    "anywidget": "0.11.0",
    "nest_asyncio2": "1.7.4",
    "nest_asyncio": None,
    "ipykernel": "7.4.0",
    "pandas": "3.1.1",
}


def test_the_pinned_stack_is_healthy() -> None:
    assert check(GOOD) == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"jupyterlab_widgets": "1.1.0"}, "model not found"),
        ({"ipywidgets": "7.8.1"}, "too old"),
        ({"anywidget": None}, "FigureWidget"),
        ({"nest_asyncio2": None, "nest_asyncio": "1.6.0"}, "nest-asyncio2"),
        ({"ipykernel": "6.29.5"}, "ipykernel"),
        ({"ipywidgets": None}, "not installed"),
    ],
)
def test_each_known_mismatch_is_flagged_with_a_fix(
    change: dict[str, str | None], words: str
) -> None:
    findings = check({**GOOD, **change})
    assert any(words in f.problem or words in f.fix for f in findings)
    assert all(f.fix for f in findings)


def test_doctor_prints_versions_and_the_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIXMAX_NB_MEMBRANE_BIN", "/nonexistent/membrane")
    mx.doctor()
    out = capsys.readouterr().out
    assert "ipywidgets" in out and installed_versions()["ipywidgets"] in out
    assert "not available" in out and "npm install" in out


def test_doctor_with_a_client_says_where_each_schema_comes_from(
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = mx.connect("sandbox", size="small", db=":memory:")
    mx.doctor(client)
    out = capsys.readouterr().out
    assert "actions listed by the connection: 20" in out
    assert out.count("connection  id ") == 20


def test_action_report_names_what_the_connection_lacks_or_adds() -> None:
    from mixmax_nb.doctor import action_report
    from mixmax_nb.transport.actions import info_from_record

    listed = {
        i.key: i
        for i in (
            info_from_record({"id": "a", "key": "list-teams", "name": "T"}),
            info_from_record({"id": "b", "key": "x-new", "name": "X", "inputSchema": {}}),
        )
        if i is not None
    }
    text = "\n".join(action_report(listed))
    assert "list-teams                  built-in    id a" in text
    assert "x-new                       connection  id b  (not in the built-in catalog)" in text
    assert "list-polls                  NOT LISTED by the connection" in text
