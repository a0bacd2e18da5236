"""make demo's pages (build/*.html) in chromium, as the person they are shared with sees them.

The pages are made here by ``scripts/demo.py`` (every curated notebook run on the
sandbox) and opened from disk with no server: each must show its forms drawn (not a
widget's Python repr), draw every figure, and ask no other host for anything
(works offline). A full-page screenshot of each goes to ``test-artifacts/pages/``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, assert_healthy

pytestmark = pytest.mark.browser

PAGES_ARTIFACTS = ROOT / "test-artifacts" / "pages"
WITH_FORMS = ("01_connect", "02_enroll", "03_engagement", "04_housekeeping")


@pytest.fixture(scope="module")
def pages(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    env = {k: v for k, v in os.environ.items() if k != "MIXMAX_NB_HOME"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--out", str(out)],
        cwd=ROOT,
        env={**env, "MIXMAX_NB_BACKEND": "sandbox", "TQDM_DISABLE": "1"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def _names() -> list[str]:
    return sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))


@pytest.mark.parametrize("name", _names())
def test_a_shared_page_shows_its_forms_and_figures_offline(
    pages: Path, browser: Any, name: str
) -> None:
    page_file = pages / f"{name}.html"
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    elsewhere: list[str] = []
    problems: list[str] = []
    page.on(
        "request",
        lambda r: elsewhere.append(r.url) if not r.url.startswith(("file:", "data:")) else None,
    )
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    try:
        page.goto(page_file.as_uri(), wait_until="load")
        page.wait_for_function(
            """() => Array.from(document.querySelectorAll('.plotly-graph-div'))
                .every(div => div.querySelector('.main-svg'))""",
            timeout=30_000,
        )
        assert_healthy(page)  # every figure draws data; no widget error text
        text = page.inner_text("body")
        for repr_start in ("VBox(children=", "HBox(children=", "HTML(value=", " object at 0x"):
            assert repr_start not in text, f"{name} shows a Python repr: {repr_start}"
        if name in WITH_FORMS:
            assert page.locator(".mx-static").count() >= 1, f"{name}: no form drawn"
            assert "A snapshot of a live form" in text
        if name == "03_engagement":
            # The dashboard drawn with every tab, not only the one that was open.
            dashboard = page.locator(".mx-static").last
            assert dashboard.locator(".plotly-graph-div").count() >= 10
            assert "SANDBOX DATA" in dashboard.inner_text()
        assert not elsewhere, f"{name} fetches from other hosts: {elsewhere}"
        assert not problems, f"{name}: console errors {problems}"
    finally:
        PAGES_ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(PAGES_ARTIFACTS / f"{name}.png"), full_page=True)
        context.close()
