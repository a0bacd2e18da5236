"""The curated notebooks are tested artifacts (DESIGN practice 9).

Every ``notebooks/*.ipynb`` is executed top to bottom with nbclient against the
sandbox, keeping the widget state as Jupyter would save it (``store_widget_state``),
and the executed notebook is then searched for anything secret: the sandbox's login
code and any text the toolkit's redaction would hide (JWTs, bearer tokens, token
fields). Each also has one cell tagged ``parameters``; that the committed files are
stripped is nbstripout's own ``--verify`` (``test_hygiene``). The executions are
``integration`` tests: ``make test`` runs them after the fast part.

New notebooks are picked up automatically.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

from mixmax_nb.errors import redact

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
# The sandbox's one-time login code ("SBX-" and 8 hex digits); a new one per login, so
# the scan looks for its shape (tests/test_widgets_connect.py pins that shape).
SANDBOX_CODE = re.compile(r"SBX-[0-9A-F]{8}")


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, f"no notebooks under {NOTEBOOKS_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_has_one_parameters_cell(path: Path) -> None:
    # That the committed notebooks are stripped is nbstripout's own --verify
    # (tests/test_hygiene.py); this is what papermill-style runs need on top.
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"


@pytest.mark.integration
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_on_the_sandbox_and_leaks_no_secret(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = nbformat.read(path, as_version=4)
    if "faketime" in os.environ.get("LD_PRELOAD", "") and any(
        "warehouse.load(" in cell.source for cell in nb.cells
    ):
        # As in tests/test_warehouse.py: dlt's timed waits never return on libfaketime's
        # faked monotonic clock. The unshifted run of `make test` executes it.
        pytest.skip("dlt cannot run under libfaketime (a faked monotonic clock)")
    # The kernel inherits this environment: the sandbox, in a home of its own.
    monkeypatch.setenv("MIXMAX_NB_BACKEND", "sandbox")
    monkeypatch.setenv("MIXMAX_NB_HOME", str(tmp_path / "home"))
    # As make demo runs them: figures as their JSON, plotly.js kept out of the notebook.
    monkeypatch.setenv("PLOTLY_RENDERER", "plotly_mimetype")
    # As make demo runs them (each form drawn as static HTML beside its widget view),
    # and saving the widget state as Jupyter does, Password values included.
    nb = _demo().execute(path, 600, store_widget_state=True)

    errors = [
        output
        for cell in nb.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors, errors
    text = json.dumps(nb, default=str)
    if "application/vnd.jupyter.widget-view+json" in text:
        # Widgets were displayed, so their state was saved: the scan below covers it.
        assert WIDGET_STATE in nb.metadata.get("widgets", {}), "widget state was not stored"
    for model in _widget_values(nb):
        if model.get("_model_name") == "PasswordModel":
            assert model.get("value") == "", f"{path.name}: a Password field kept its value"
    _assert_no_secret(text, path.name)
    # What is shared: the executed notebook as Jupyter saves it by default (no widget
    # state: a FigureWidget's state carries plotly.js itself) and make demo's page
    # (plotly.js once, beside it) each stay under 1 MB.
    saved = copy.deepcopy(nb)
    saved.metadata.pop("widgets", None)
    size = len(nbformat.writes(saved).encode())
    assert size < MAX_SHARED_BYTES, f"{path.name}: the executed notebook is {size:,} bytes"
    page = _demo().export_html(saved, tmp_path / f"{path.stem}.html")
    assert page.stat().st_size < MAX_SHARED_BYTES, f"{page.name}: {page.stat().st_size:,} bytes"
    # The page shows each form, not its Python repr (nbconvert has no widget state).
    views = [
        output["data"]
        for cell in saved.cells
        for output in cell.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in output.get("data", {})
    ]
    assert all("mx-static" in data.get("text/html", "") for data in views), path.name
    shown = page.read_text(encoding="utf-8")
    for repr_start in ("VBox(children=", "HBox(children=", "HTML(value="):
        assert repr_start not in shown, f"{page.name} shows a widget's repr {repr_start}"
    assert shown.count('class="mx-static"') >= len(
        {d["application/vnd.jupyter.widget-view+json"]["model_id"] for d in views}
    )


MAX_SHARED_BYTES = 1_000_000


def _demo() -> Any:
    """scripts/demo.py (make demo's runner, outside the package) as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "demo", NOTEBOOKS_DIR.parent / "scripts" / "demo.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _assert_no_secret(text: str, name: str) -> None:
    assert not SANDBOX_CODE.search(text), f"{name}: the sandbox's login code is in the notebook"
    assert not JWT.search(text), f"{name}: a JWT-looking string is in the notebook"
    leaked = _redaction_hits(text)
    assert not leaked, f"{name}: text that looks like a credential: {leaked[:3]}"


def _redaction_hits(text: str) -> list[str]:
    """Lines that redact() would change: a credential shape the toolkit knows."""
    return [line[:80] for line in text.split("\\n") if redact(line) != line]


def test_the_scan_catches_what_it_should() -> None:
    token = "eyJhbGci" + "OiJIUzI1NiJ9.eyJ3b3Jrc3BhY2VLZXkiOiJ3MSJ9.c2lnbmF0dXJl"
    with pytest.raises(AssertionError, match="login code"):
        _assert_no_secret('{"value": "SBX-0A1B2C3D"}', "x")
    with pytest.raises(AssertionError, match="JWT"):
        _assert_no_secret(f'{{"text": "{token}"}}', "x")
    with pytest.raises(AssertionError, match="credential"):
        _assert_no_secret('{"text": "access_token: abcdefgh1234"}', "x")
    _assert_no_secret('{"text": "Mixmax connects with an API token from your settings"}', "x")


def _widget_values(nb: Any) -> list[Any]:
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    return [model.get("state", {}) for model in state.values()]
