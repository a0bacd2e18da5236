"""apps/enroll.ipynb in Voila: upload a CSV, Preview, Confirm, see the results table.

The CSV goes through the FileUpload's real file chooser (what a person's file
picker fills), so the browser -> comm -> ``FileUpload.value`` path is tested,
not only the form's handler.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

# Every variable any sandbox sequence requires, named as the form guesses them; one
# row is a duplicate in another case and one is not an address, so Preview has
# skips to show.
CSV = (
    "email,firstName,company,title\n"
    "ada.browser@example.com,Ada,Analytical Engines,CTO\n"
    "grace.browser@example.com,Grace,Compilers Inc,Admiral\n"
    "Ada.Browser@example.com,Ada,Analytical Engines,CTO\n"
    "not-an-address,Nobody,None,None\n"
)


def _button(page: Any, text: str) -> Any:
    return page.locator("button.jupyter-button:visible", has_text=text).first


def test_upload_preview_confirm_results(open_app: Any, ui: Any, tmp_path: Path) -> None:
    pytest.importorskip("mixmax_nb.widgets.enroll", reason="EnrollmentForm not written yet")
    page = open_app("enroll.ipynb")
    # Sequences are read as a task after the cell ran: wait for the dropdown to fill.
    page.wait_for_function(
        """() => Array.from(document.querySelectorAll('.widget-dropdown select'))
              .some(s => s.options.length > 0 && s.options[0].text.trim() !== '')"""
    )
    csv_path = tmp_path / "recipients.csv"
    csv_path.write_text(CSV, encoding="utf-8")
    # ipywidgets 8 keeps the <input type=file> out of the DOM and clicks it from the
    # button: answer the file chooser that click opens, as a person's picker would.
    with page.expect_file_chooser() as chooser:
        _button(page, "Upload CSV").click()
    chooser.value.set_files(str(csv_path))
    page.get_by_text("4 row", exact=False).first.wait_for()

    _button(page, "Preview").click()
    # The plan says exactly how many will be enrolled, and the confirm button too.
    confirm = page.locator("button.jupyter-button:visible", has_text="Enroll 2").first
    confirm.wait_for()
    body = page.inner_text("body")
    assert "not-an-address" in body, "the skipped rows are not shown with their reasons"
    confirm.click()

    page.get_by_text("Done: 2 enrolled", exact=False).first.wait_for()
    results = page.locator("table", has_text="outcome").last
    text = results.inner_text()
    assert "ada.browser@example.com" in text and "grace.browser@example.com" in text
    assert "success" in text
    ui.assert_healthy(page, figures=False)
