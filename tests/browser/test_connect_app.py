"""apps/connect.ipynb in Voila: walk the ConnectWizard to a ready connection on a
logged-out sandbox, with the sandbox's own buttons, as a visitor with no terminal would.

The sandbox's login and connect pages do not exist, so the wizard offers "Sign in to the
sandbox" and "Connect the sandbox's Mixmax" instead. The finished page must speak to a
person (no Python, no state constants, no backticks) and end with a link to the
dashboard app.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.browser

# What a person must never read on the page (tests/test_widgets_connect.py checks the
# same in every phase, headless).
DEVELOPER_TEXT = re.compile(
    r"(?<![@\w.-])(?:wizard|transport|sandbox|mx|client)\.\w|\bawait |autopilot|\w\(\)|`"
    r"|\b(?:CLIENT_ACTION_REQUIRED|BUILDING|READY|CONFIGURATION_ERROR|SETUP_FAILED)\b"
    r"|get-current-user"
)
# The sandbox's one-time login code: it must never reach the page.
SANDBOX_CODE = re.compile(r"SBX-[0-9A-F]{8}")


def _button(page: Any, text: str) -> Any:
    return page.locator("button.jupyter-button:visible", has_text=text).first


def _assert_plain(page: Any) -> None:
    text = page.inner_text("body")
    found = sorted({m.group(0) for m in DEVELOPER_TEXT.finditer(text)})
    assert not found, f"the page shows developer text {found}:\n{text[:3000]}"


def test_the_wizard_walks_to_ready_with_the_sandbox_buttons(open_app: Any, ui: Any) -> None:
    page = open_app("connect.ipynb")
    _button(page, "Log in").wait_for()
    assert "Not logged in" in page.inner_text("body")
    _assert_plain(page)

    _button(page, "Log in").click()
    # No pretend login page to open, and no code to paste: a button signs in.
    _button(page, "Sign in to the sandbox").wait_for()
    assert page.locator("input[type=password]:visible").count() == 0
    assert page.locator("a[href*='sandbox.invalid']").count() == 0
    _assert_plain(page)
    _button(page, "Sign in to the sandbox").click()

    # Mixmax needs an API token: Membrane asks the person to act, the wizard says so.
    _button(page, "Connect the sandbox's Mixmax").wait_for()
    assert "API token" in page.inner_text("body")
    _assert_plain(page)
    _button(page, "Connect the sandbox's Mixmax").click()

    _button(page, "Use this connection").wait_for()
    body = page.inner_text("body")
    assert "Sam Sandbox" in body, body[:2000]
    _button(page, "Use this connection").click()

    # It ends with the next step: the dashboard app, beside this one in Voila.
    dashboard = page.locator("a:visible", has_text="Open the engagement dashboard").first
    dashboard.wait_for()
    assert dashboard.get_attribute("href") == "dashboard.ipynb"
    assert dashboard.evaluate("a => a.href").endswith("/voila/render/dashboard.ipynb")
    body = page.inner_text("body")
    assert "Done: connected to Mixmax" in body, body[:2000]
    _assert_plain(page)
    ui.assert_healthy(page)
    # The pretend code never reached the page.
    assert not SANDBOX_CODE.search(page.content())
