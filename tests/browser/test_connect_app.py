"""apps/connect.ipynb in Voila: walk the ConnectWizard to READY on a logged-out sandbox.

The sandbox's login page is fake; its code comes from ``mixmax-nb-sandbox sandbox
login-code`` run against the same account (here: the same home, size and seed as the
app's), and ``sandbox connect`` plays the person finishing Mixmax's connect page.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.browser

# The account apps/connect.ipynb opens: mx.connect("sandbox", size="small", seed=99, ...).
ACCOUNT = {"MIXMAX_NB_SANDBOX_SIZE": "small", "MIXMAX_NB_SANDBOX_SEED": "99"}


def _button(page: Any, text: str) -> Any:
    return page.locator("button.jupyter-button:visible", has_text=text).first


def test_the_wizard_walks_to_ready(open_app: Any, voila_app: Any, ui: Any) -> None:
    page = open_app("connect.ipynb")
    _button(page, "Log in").wait_for()
    assert "Not logged in" in page.inner_text("body")
    _button(page, "Log in").click()
    code_field = page.locator("input[type=password]")
    code_field.wait_for()

    code = voila_app.sandbox_cli("sandbox", "login-code", **ACCOUNT)["code"]
    assert re.fullmatch(r"SBX-[0-9A-F]{8}", code)
    code_field.fill(code)
    _button(page, "Complete").click()

    # Mixmax needs an API key: Membrane asks the person to act, the wizard says so.
    _button(page, "I've done it").wait_for()
    voila_app.sandbox_cli("sandbox", "connect", **ACCOUNT)
    _button(page, "I've done it").click()

    _button(page, "Use this connection").wait_for()
    body = page.inner_text("body")
    assert "Sam Sandbox" in body, body[:2000]
    _button(page, "Use this connection").click()
    page.get_by_text("wizard.client is ready", exact=False).first.wait_for()
    ui.assert_healthy(page)
    # The code never stays on the page: the field is cleared and nothing echoes it.
    assert code not in page.content()
    assert code_field.input_value() == ""
