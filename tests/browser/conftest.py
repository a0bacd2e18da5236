"""Real-browser tests: Voila serves ``apps/``, Debian's chromium renders it, Playwright drives it.

What only a browser shows is checked here: that the widgets' front-end finds their
models ("model not found" is a kernel/front-end version mismatch), that plotly
figures draw data, and that clicks and uploads reach the kernel and come back.

* The browser is the system's ``chromium`` (Debian package), never one downloaded by
  ``playwright install`` (no download works on CI). Without chromium or the
  ``playwright`` package the tests skip with the reason on a developer machine; with
  ``CI`` set they fail instead, so a broken CI image cannot pass by skipping.
* Each test module starts one Voila server (``voila_app``) on a free loopback port,
  in a home and sandbox database of its own, and reuses it for its tests: a Voila
  start plus a kernel costs seconds on a 2-core machine.
* Screenshots go to ``test-artifacts/browser/`` (gitignored), kept whether the test
  passes or fails, with the page's console (errors and warnings) beside them.
* The console is part of the test: a page that logs an error (a failed load, an
  uncaught exception, a widget that cannot find its model) or a front-end version
  mismatch ("Unsatisfied version ... of shared singleton module", the sign that a
  labextension was built for another JupyterLab than the page's) fails the test that
  opened it, unless the message is on :data:`CONSOLE_ALLOWLIST`, where each entry
  names why it may stay.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "apps"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
# Flags for a root user on a machine whose only network is loopback: without the
# background-networking ones chromium keeps dialling Google's hosts at every start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Text the page must never show: widget front-end failures and Voila's cell errors.
BAD_TEXT = (
    "model not found",
    "Error displaying widget",
    "There was an error when executing cell",
    "Traceback (most recent call last)",
)
# Console messages that fail a test: every error, and the front-end version warnings
# (module federation says "Unsatisfied version" for a singleton and "No satisfying
# version" for a shared module when an extension wants another JupyterLab than the page).
VERSION_MISMATCH = re.compile(r"Unsatisfied version|No satisfying version")


@dataclass(frozen=True)
class Allowed:
    """A console message that may stay, and why. ``url`` (a regex) is where it came from."""

    name: str
    reason: str
    text: re.Pattern[str]
    url: re.Pattern[str] | None = None

    def matches(self, message: ConsoleMessage) -> bool:
        if not self.text.search(message.text):
            return False
        return self.url is None or bool(self.url.search(message.url))


@dataclass(frozen=True)
class ConsoleMessage:
    kind: str  # the console type ("error", "warning", ...) or "pageerror"
    text: str
    url: str = ""

    def __str__(self) -> str:
        where = f" [{self.url}]" if self.url else ""
        return f"{self.kind}: {self.text}{where}"

    @property
    def bad(self) -> bool:
        return self.kind in ("error", "pageerror") or bool(VERSION_MISMATCH.search(self.text))


CONSOLE_ALLOWLIST: tuple[Allowed, ...] = ()
"""Console messages a test may see, each with its reason. Empty: Voila's stock "lab"
template linked Font Awesome from cdn.jsdelivr.net (two failed requests offline); the
apps are served with our template (apps/.jupyter/voila/templates/mixmax), which drops
those links, so nothing is allowed."""
TEMPLATES = APPS / ".jupyter"
"""A Jupyter data directory holding the apps' Voila template (``--template=mixmax``)."""


@dataclass
class ConsoleWatch:
    """What the pages a test opened logged; :meth:`check` fails the test on a bad one."""

    messages: list[ConsoleMessage] = field(default_factory=list)
    pages: list[Any] = field(default_factory=list)

    def record(self, message: ConsoleMessage) -> None:
        self.messages.append(message)

    def unexpected(self) -> list[ConsoleMessage]:
        return [
            m
            for m in self.messages
            if m.bad and not any(allowed.matches(m) for allowed in CONSOLE_ALLOWLIST)
        ]

    def check(self) -> None:
        for page in self.pages:
            # Console events are delivered while Playwright waits on the page: a round
            # trip hands over whatever the page logged since the test's last call.
            # (A closed or crashed page has nothing more to say.)
            with contextlib.suppress(Exception):
                page.evaluate("0")
        bad = self.unexpected()
        if bad:
            listing = "\n".join(f"  {m}" for m in bad)
            pytest.fail(
                f"the page's console has {len(bad)} error(s) or version warning(s) that "
                f"CONSOLE_ALLOWLIST (tests/browser/conftest.py) does not allow:\n{listing}",
                pytrace=False,
            )


CONSOLE = pytest.StashKey[ConsoleWatch]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """After a browser test's body passed, its pages' console must be clean too: a bad
    message fails the test itself (not only its teardown)."""
    result = yield
    watch = item.stash.get(CONSOLE, None)
    if watch is not None:
        watch.check()
    return result


VOILA_START_S = 120.0  # a cold start on a loaded 2-core machine (Voila + kernel import)
PAGE_TIMEOUT_MS = 90_000  # the first render runs the notebook (sandbox seeding, a pull)


def _missing_reason() -> str | None:
    chromium = shutil.which("chromium")
    if chromium is None:
        return "Debian's chromium is not installed (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (it is in the dev extra)"
    if shutil.which("voila", path=str(Path(sys.executable).parent)) is None:
        return "voila is not installed (it is in the app extra)"
    return None


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run on CI: {reason}", pytrace=False)
    pytest.skip(f"browser tests need a browser: {reason}")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    reason = _missing_reason()
    if reason:
        _skip_or_fail(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class VoilaApp:
    """One Voila server over ``apps/``, with the environment its kernels inherit."""

    url: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes]

    def render_url(self, notebook: str) -> str:
        return f"{self.url}/voila/render/{notebook}"

    def sandbox_cli(self, *args: str, **extra_env: str) -> dict[str, Any]:
        """Run ``mixmax-nb-sandbox`` against the same home (and database) as the app."""
        done = subprocess.run(
            [sys.executable, "-m", "mixmax_nb.sandbox.cli", *args],
            env={**self.env, **extra_env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{args}: {done.stdout} {done.stderr}"
        result: dict[str, Any] = json.loads(done.stdout)
        return result


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + VOILA_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"voila exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/", timeout=5):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise RuntimeError(f"voila did not answer in {VOILA_START_S:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def voila_app(
    browser: Any, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[VoilaApp]:
    """Voila over ``apps/`` on the sandbox, in a home of this module's own.

    A module may set ``VOILA_ENV`` (extra environment) before the fixture runs.
    """
    tmp = tmp_path_factory.mktemp("voila")
    home = tmp / "home"
    home.mkdir()
    env = {
        # None of the developer's MIXMAX_NB_* settings: the app sees only what is set here.
        **{k: v for k, v in os.environ.items() if not k.startswith("MIXMAX_NB_")},
        "MIXMAX_NB_BACKEND": "sandbox",
        "MIXMAX_NB_HOME": str(home),
        # The small account seeds in about a second; the apps only need its shape.
        "MIXMAX_NB_SANDBOX_SIZE": "small",
        "JUPYTER_PLATFORM_DIRS": "1",
        # Kernels, runtime files and config of their own: nothing from the user's ~/.jupyter.
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "JUPYTER_CONFIG_DIR": str(tmp / "config"),
        "PYTHONUNBUFFERED": "1",
        # Where Voila finds the apps' template, as `make app` serves them.
        "JUPYTER_PATH": os.pathsep.join(
            filter(None, [str(TEMPLATES), os.environ.get("JUPYTER_PATH")])
        ),
        **getattr(request.module, "VOILA_ENV", {}),
    }
    port = _free_port()
    log = tmp / "voila.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "voila"),
                str(APPS),
                "--no-browser",
                f"--port={port}",
                "--Voila.ip=127.0.0.1",
                "--Voila.port_retries=0",
                "--show_tracebacks=True",
                "--template=mixmax",
            ],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so the kernels it started end with it
        )
    app = VoilaApp(url=f"http://127.0.0.1:{port}", env=env, log=log, process=process)
    try:
        _wait_until_serving(app.url, process, log)
        yield app
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    pgid = os.getpgid(process.pid)
    os.killpg(pgid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)
        process.wait(timeout=15)


@pytest.fixture
def open_app(
    voila_app: VoilaApp, browser: Any, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], Any]]:
    """``open_app("dashboard.ipynb")``: a fresh page on that app, rendered, errors watched.

    A screenshot named after the test is saved at the end, pass or fail. The page's
    console errors and version warnings fail the test (see :data:`CONSOLE_ALLOWLIST`).
    """
    opened: list[Any] = []
    watch = ConsoleWatch(pages=opened)
    request.node.stash[CONSOLE] = watch

    def on_console(msg: Any) -> None:
        if msg.type in ("error", "warning"):
            location = msg.location or {}
            watch.record(ConsoleMessage(msg.type, msg.text, str(location.get("url") or "")))

    def _open(notebook: str) -> Any:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.on("console", on_console)
        page.on("pageerror", lambda exc: watch.record(ConsoleMessage("pageerror", str(exc))))
        opened.append(page)
        page.goto(voila_app.render_url(notebook), wait_until="domcontentloaded")
        # Voila has run the notebook once the widget outputs exist in the page.
        page.wait_for_selector(
            ".jp-OutputArea-output .widget-box, .jp-OutputArea-output .lm-Widget"
        )
        return page

    yield _open
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for index, page in enumerate(opened):
        name = request.node.name.replace("/", "_")
        suffix = f"-{index}" if index else ""
        try:
            page.screenshot(path=str(ARTIFACTS / f"{name}{suffix}.png"), full_page=True)
        finally:
            page.context.close()
    log = ARTIFACTS / f"{request.node.name.replace('/', '_')}.console.txt"
    if watch.messages:
        # Kept with the screenshots, allowed messages and plain warnings included.
        log.write_text("\n".join(str(m) for m in watch.messages) + "\n")
    else:
        log.unlink(missing_ok=True)  # a stale log from an earlier run would mislead


class Ui:
    """Checks on a rendered page (a fixture, so test modules need no imports from here)."""

    @staticmethod
    def assert_healthy(page: Any, *, figures: bool = True) -> None:
        assert_healthy(page, figures=figures)

    @staticmethod
    def figure_signature(page: Any) -> list[str]:
        return figure_signature(page)


@pytest.fixture
def ui() -> Ui:
    return Ui()


SAYS_WHY = """((gd.layout || {}).annotations || []).some(
    a => (a.text || '').includes('needs the per-message events'))"""
"""A figure that deliberately draws nothing: a tab that needs detail="events" says so
(charts.message_figure) when the dashboard holds the summary only."""


def assert_healthy(page: Any, *, figures: bool = True) -> None:
    """No widget front-end failure, no cell error, and (``figures``) every figure draws data."""
    text = page.inner_text("body")
    for bad in BAD_TEXT:
        assert bad.lower() not in text.lower(), f"the page shows {bad!r}:\n{text[:2000]}"
    if not figures:
        return
    blank = page.evaluate(
        f"""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
               .filter(gd => gd.offsetParent !== null)
               .filter(gd => !({SAYS_WHY}))
               .filter(gd => !(gd.data || []).some(t => {{
                   const n = v => (v && v.length) || 0;
                   return n(t.x) + n(t.y) + n(t.z) + n(t.values) + n(t.labels) > 0;
               }})).length"""
    )
    assert blank == 0, f"{blank} visible plotly figure(s) draw no data"


def figure_signature(page: Any) -> list[str]:
    """What the visible plotly figures draw (trace names and values), to see a change."""
    result: list[str] = page.evaluate(
        """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
               .filter(gd => gd.offsetParent !== null)
               .map(gd => JSON.stringify((gd.data || []).map(
                   t => [t.type, t.name, t.x, t.y, t.z, t.values, t.labels])))"""
    )
    return result
