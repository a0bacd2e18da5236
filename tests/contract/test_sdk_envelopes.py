"""Membrane's envelopes, as both stand-ins print them, match @membranehq/sdk's own schemas.

The sandbox (`python -m mixmax_nb.sandbox.cli`) and ``tests/fake_membrane.py`` imitate
the `membrane` CLI. Their JSON is only worth testing against if it is the JSON
Membrane sends, and the vendor publishes that as zod schemas in ``@membranehq/sdk``.
So this runs every command line ``mixmax_nb.transport.cli`` builds against both,
keeps the real stdout, and has ``sdk_envelopes.cjs`` validate each output with the
SDK's schema for it (connections, pages of connections and actions, action runs, action
run logs, and ErrorData for what a failing command prints), plus what zod alone lets
through: enumerated error keys, deprecated connection fields and fields a run log
record does not define. ``action-run-log get --details`` has no SDK schema (the OpenAPI
copy names it ``ActionRunLogRecordInDb`` without properties): it is checked against the
base record, ``BaseActionRunLogRecord``.

Not checked, because the SDK has no schema for them: ``login`` / ``login complete``
(a CLI-only OAuth hand-off that prints a URL or a short result), ``status`` (the
CLI's own account state, not an API object) and ``request`` (the CLI prints the
proxied exchange as ``{status, headers, data}``; the SDK's proxy returns the vendor's
raw body), nor ``--version`` (plain text).

* The SDK is installed once with npm into ``.cache/sdk/`` (gitignored), pinned to
  :data:`SDK_VERSION`, and reused while the installed version matches.
* Without node or npm (or when the install fails) the test skips with the reason on a
  developer machine; with ``CI`` set it fails instead (as tests/browser does).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeMembrane
from fake_membrane import RUN_LOG

from mixmax_nb.config import MIXMAX_APP_URL, Settings
from mixmax_nb.errors import (
    ActionFailedError,
    ConnectionNotReadyError,
    NotFoundError,
    NotLoggedInError,
    RateLimitedError,
    ServerError,
)
from mixmax_nb.sandbox.membrane import Emulator
from mixmax_nb.transport import cli
from mixmax_nb.transport.actions import LIST_PAGE_SIZE
from mixmax_nb.transport.base import error_from_payload

ROOT = Path(__file__).resolve().parents[2]
SDK_PACKAGE = "@membranehq/sdk"
SDK_VERSION = "0.28.3"
SDK_PREFIX = ROOT / ".cache" / "sdk"
CHECKER = Path(__file__).with_name("sdk_envelopes.cjs")
NPM_TIMEOUT_S = 300.0
CALL_TIMEOUT_S = 60.0
# The suite's pinned calendar (tests/conftest.py) is kept; every other toolkit
# variable of the developer's shell is dropped, as tests/conftest.py does per test.
KEPT_ENV = ("MIXMAX_NB_SANDBOX_REFERENCE_DATE", "MIXMAX_NB_SANDBOX_NOW")
UNKNOWN_ID = "0123456789abcdef01234567"  # 24 hex, as Membrane's ids, matching no action


# -- the SDK ----------------------------------------------------------------------------


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the SDK contract test cannot run on CI: {reason}", pytrace=False)
    pytest.skip(f"the SDK contract test needs Node.js and npm: {reason}")


def _installed_version() -> str | None:
    package = SDK_PREFIX / "node_modules" / "@membranehq" / "sdk" / "package.json"
    try:
        return str(json.loads(package.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        return None


@pytest.fixture(scope="session")
def membrane_sdk() -> Path:
    """The npm prefix holding @membranehq/sdk at SDK_VERSION (installed on first use)."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            _skip_or_fail(f"`{tool}` is not on PATH (install Node.js 20+ with npm)")
    SDK_PREFIX.mkdir(parents=True, exist_ok=True)
    # Two pytest runs at once (make test and an editor's) must not both run npm here.
    with open(SDK_PREFIX / ".install.lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version() == SDK_VERSION:
            return SDK_PREFIX
        argv = [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--no-update-notifier",
            "--save-exact",
            "--ignore-scripts",  # only the schemas are needed; run no package's scripts
            "--loglevel=error",
            "--prefix",
            str(SDK_PREFIX),
            f"{SDK_PACKAGE}@{SDK_VERSION}",
        ]
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            _skip_or_fail(f"`npm install` did not finish within {NPM_TIMEOUT_S:g} s")
        if done.returncode != 0 or _installed_version() != SDK_VERSION:
            tail = (done.stderr or done.stdout).strip()[-800:]
            _skip_or_fail(
                f"`npm install {SDK_PACKAGE}@{SDK_VERSION}` failed (exit {done.returncode}): {tail}"
            )
    return SDK_PREFIX


# -- collecting the outputs -------------------------------------------------------------


@dataclass
class Case:
    """One command line's output and the SDK schema it must match."""

    name: str
    # connection | connection_list | action_list | action_run | action_run_log |
    # action_run_log_details | error
    schema: str
    argv: list[str]
    value: Any
    raises: type[Exception] | None = None  # errors: what error_from_payload must give
    defects: list[str] = field(default_factory=list)  # found before the SDK is asked


class Runner:
    """Runs argv on one backend and records the output as a :class:`Case`."""

    def __init__(self, backend: str, command: list[str], env: dict[str, str]) -> None:
        self.backend = backend
        self.command = command
        self.env = env

    def __call__(
        self, label: str, schema: str, argv: list[str], *, raises: type[Exception] | None = None
    ) -> Case:
        done = subprocess.run(
            [*self.command, *argv],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=ROOT,
            timeout=CALL_TIMEOUT_S,
            check=False,
        )
        case = Case(f"{self.backend}: {label}", schema, argv, None, raises)
        try:
            case.value = json.loads(done.stdout)
        except json.JSONDecodeError:
            shown = (done.stdout or done.stderr).strip()[-300:]
            case.defects.append(f"stdout is not JSON (exit {done.returncode}): {shown!r}")
        # The transport reads stdout as a result on exit 0 and as ErrorData otherwise.
        if (schema == "error") != (done.returncode != 0):
            case.defects.append(f"exit code {done.returncode} for a {schema!r} output")
        return case


def _sandbox_db(template: Path, db: Path, start: str) -> tuple[Emulator, str | None]:
    """A copy of the seeded account in state ``start``, and its connection's id."""
    shutil.copyfile(template, db)
    emu = Emulator.open(Settings.from_env(), db=str(db), start=start)
    conns = emu.list_connections() if start != "logged-out" else []
    return emu, (conns[0]["id"] if conns else None)


def _action_id(listing: Case, key: str) -> str:
    for item in (listing.value or {}).get("items", []):
        if item.get("key") == key:
            return str(item["id"])
    raise AssertionError(f"{listing.name} lists no {key!r} action: {listing.value!r}")


def _sandbox_ready(run: Runner, template: Path, db: Path) -> list[Case]:
    emu, cid = _sandbox_db(template, db, "ready")
    emu.store.close()
    assert cid
    cases = [
        run("connection ensure (READY)", "connection", cli.argv_connection_ensure(MIXMAX_APP_URL)),
        run("connection get", "connection", cli.argv_connection_get(cid, wait=False, timeout=30)),
        run(
            "connection get --wait",
            "connection",
            cli.argv_connection_get(cid, wait=True, timeout=5),
        ),
        run("connection list", "connection_list", cli.argv_connection_list()),
    ]
    first = run(
        "action list (a page with a cursor)", "action_list", cli.argv_action_list(cid, None, 5)
    )
    cursor = (first.value or {}).get("cursor")
    assert cursor, f"a 5-item page of 20 actions gave no cursor: {first.value!r}"
    listing = run("action list", "action_list", cli.argv_action_list(cid, None, LIST_PAGE_SIZE))
    me, message = _action_id(listing, "get-current-user"), _action_id(listing, "get-message")
    bad_input = cli.argv_action_run(message, cid, {})
    cases += [
        first,
        listing,
        run("action list --cursor", "action_list", cli.argv_action_list(cid, None, 5, cursor)),
        run(
            "action list --intent",
            "action_list",
            cli.argv_action_list(cid, "list my sequences", LIST_PAGE_SIZE),
        ),
        run("action run <id>", "action_run", cli.argv_action_run(me, cid, {})),
        run("act --key", "action_run", cli.argv_act("get-current-user", cid, {})),
        run(
            "action run <unknown id>",
            "error",
            cli.argv_action_run(UNKNOWN_ID, cid, {}),
            raises=NotFoundError,
        ),
        run(
            "act --key=<unknown key>",
            "error",
            cli.argv_act("no-such-action", cid, {}),
            raises=NotFoundError,
        ),
        run("action run (input fails the schema)", "error", bad_input, raises=ActionFailedError),
        # Not one the transport builds (it always sends JSON), but the CLI's answer to
        # a malformed --input is ErrorData too.
        run(
            "action run (--input is not JSON)",
            "error",
            [*bad_input[:-2], "--input={not json", "--json"],
            raises=ActionFailedError,
        ),
        run(
            "action run get-message (Mixmax 404)",
            "error",
            cli.argv_action_run(message, cid, {"messageId": "nope"}),
            raises=NotFoundError,
        ),
    ]
    return cases + _run_logs(run, cases)


def _run_id(case: Case) -> str:
    """The actionRunId of a run's output or of its error."""
    value = case.value if isinstance(case.value, dict) else {}
    rid = value.get("actionRunId") or (value.get("data") or {}).get("actionRunId")
    assert rid, f"{case.name} gave no actionRunId: {case.value!r}"
    return str(rid)


def _run_logs(run: Runner, cases: list[Case]) -> list[Case]:
    """The logs of runs made above: a success, a Mixmax failure, refused input."""
    by_name = {c.name.split(": ", 1)[1]: c for c in cases}
    out: list[Case] = []
    for label in (
        "action run <id>",
        "action run get-message (Mixmax 404)",
        "action run (input fails the schema)",
    ):
        rid = _run_id(by_name[label])
        out.append(run(f"action-run-log get ({label})", "action_run_log", _log(rid)))
        out.append(
            run(f"action-run-log get --details ({label})", "action_run_log_details", _log(rid, 1))
        )
    out.append(
        run("action-run-log get <unknown id>", "error", _log(UNKNOWN_ID), raises=NotFoundError)
    )
    return out


def _log(run_id: str, details: int = 0) -> list[str]:
    return cli.argv_action_run_log(run_id, details=bool(details))


def _sandbox_needs_connect(run: Runner, template: Path, db: Path) -> list[Case]:
    emu, _ = _sandbox_db(template, db, "needs-connect")
    emu.store.close()
    building = run(
        "connection ensure (BUILDING)", "connection", cli.argv_connection_ensure(MIXMAX_APP_URL)
    )
    cid = str((building.value or {}).get("id", "missing"))
    listing = run(
        "action list (not READY)", "action_list", cli.argv_action_list(cid, None, LIST_PAGE_SIZE)
    )
    return [
        building,
        run(
            "connection get (BUILDING)",
            "connection",
            cli.argv_connection_get(cid, wait=False, timeout=30),
        ),
        run(
            "connection get --wait (CLIENT_ACTION_REQUIRED)",
            "connection",
            cli.argv_connection_get(cid, wait=True, timeout=5),
        ),
        listing,
        run(
            "action run (connection not READY)",
            "error",
            cli.argv_action_run(_action_id(listing, "get-current-user"), cid, {}),
            raises=ConnectionNotReadyError,
        ),
    ]


def _sandbox_states(run: Runner, template: Path, db: Path) -> list[Case]:
    emu, cid = _sandbox_db(template, db, "ready")
    assert cid
    get = cli.argv_connection_get(cid, wait=False, timeout=30)
    try:
        emu.set_connection_state("CLIENT_ACTION_REQUIRED", cid)
        cases = [
            run("connection get (reconnect required)", "connection", get),
            run(
                "act (connection not READY)",
                "error",
                cli.argv_act("get-current-user", cid, {}),
                raises=ConnectionNotReadyError,
            ),
        ]
        for state in ("CONFIGURATION_ERROR", "SETUP_FAILED", "DISCONNECTING"):
            emu.set_connection_state(state, cid)
            cases.append(run(f"connection get ({state})", "connection", get))
            cases.append(
                run(f"connection list ({state})", "connection_list", cli.argv_connection_list())
            )
    finally:
        emu.store.close()
    return cases


def _sandbox_faults(run: Runner, template: Path, db: Path) -> list[Case]:
    emu, cid = _sandbox_db(template, db, "ready")
    assert cid
    act = cli.argv_act("get-current-user", cid, {})
    faults: list[tuple[str, type[Exception]]] = [
        ("rate_limit", RateLimitedError),
        ("server_error", ServerError),
        ("defunct", ConnectionNotReadyError),  # last: it leaves the connection defunct
    ]
    cases: list[Case] = []
    try:
        for kind, raises in faults:
            emu.conditions.inject(kind)
            cases.append(run(f"act ({kind} fault)", "error", act, raises=raises))
    finally:
        emu.store.close()
    cases.append(
        run(
            "connection get (defunct)",
            "connection",
            cli.argv_connection_get(cid, wait=False, timeout=30),
        )
    )
    return cases


def _sandbox_logged_out(run: Runner, template: Path, db: Path) -> list[Case]:
    emu, _ = _sandbox_db(template, db, "logged-out")
    emu.store.close()
    return [
        run(
            "connection list (logged out)",
            "error",
            cli.argv_connection_list(),
            raises=NotLoggedInError,
        ),
        run(
            "connection ensure (logged out)",
            "error",
            cli.argv_connection_ensure(MIXMAX_APP_URL),
            raises=NotLoggedInError,
        ),
        run(
            "action run (logged out)",
            "error",
            cli.argv_action_run(UNKNOWN_ID, UNKNOWN_ID, {}),
            raises=NotLoggedInError,
        ),
        run(
            "action-run-log get (logged out)",
            "error",
            _log(UNKNOWN_ID),
            raises=NotLoggedInError,
        ),
    ]


def _fake(run: Runner) -> list[Case]:
    """The fake's own answers (its defaults); scripted replies are each test's data."""
    cid = "conn_mixmax_1"
    listing = run("action list", "action_list", cli.argv_action_list(cid, None, LIST_PAGE_SIZE))
    run_me = cli.argv_action_run(_action_id(listing, "get-current-user"), cid, {})
    return [
        run("connection ensure", "connection", cli.argv_connection_ensure(MIXMAX_APP_URL)),
        run("connection get", "connection", cli.argv_connection_get(cid, wait=False, timeout=30)),
        run(
            "connection get --wait",
            "connection",
            cli.argv_connection_get(cid, wait=True, timeout=5),
        ),
        run("connection list", "connection_list", cli.argv_connection_list()),
        listing,
        run(
            "action list --intent",
            "action_list",
            cli.argv_action_list(cid, "list my sequences", LIST_PAGE_SIZE),
        ),
        run("action list --cursor", "action_list", cli.argv_action_list(cid, None, 5, "5")),
        run("action run <id>", "action_run", run_me),
        run("act --key", "action_run", cli.argv_act("get-current-user", cid, {"x": 1})),
        run(
            "action run <unknown id>",
            "error",
            cli.argv_action_run(UNKNOWN_ID, cid, {}),
            raises=NotFoundError,
        ),
        run(
            "action run (--input is not JSON)",
            "error",
            [*run_me[:-2], "--input={not json", "--json"],
            raises=ActionFailedError,
        ),
        run("unknown command", "error", ["frobnicate", "--json"], raises=ActionFailedError),
        run("action-run-log get", "action_run_log", _log("run_123")),
        run("action-run-log get --details", "action_run_log_details", _log("run_123", 1)),
        run(
            "action-run-log get <unknown id>",
            "error",
            _log(UNKNOWN_ID),
            raises=NotFoundError,
        ),
    ]


@pytest.fixture(scope="module")
def envelopes(small_template: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    """Every output of both backends, collected once for this module's tests."""
    tmp = tmp_path_factory.mktemp("sdk_envelopes")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("MIXMAX_NB_", "FAKE_MEMBRANE_")) and name not in KEPT_ENV:
                mp.delenv(name)
        mp.setenv("MIXMAX_NB_HOME", str(tmp / "home"))
        fake = FakeMembrane(tmp / "fake_membrane")
        sandbox_cmd = [sys.executable, "-m", "mixmax_nb.sandbox.cli"]

        def sandbox(group: Callable[[Runner, Path, Path], list[Case]]) -> Callable[[], list[Case]]:
            db = tmp / f"{group.__name__.strip('_')}.sqlite"
            env = {**os.environ, "MIXMAX_NB_SANDBOX_DB": str(db)}
            return lambda: group(Runner("sandbox", sandbox_cmd, env), small_template, db)

        fake_env = {**os.environ, "FAKE_MEMBRANE_DIR": str(fake.dir)}
        groups = [
            sandbox(_sandbox_ready),
            sandbox(_sandbox_needs_connect),
            sandbox(_sandbox_states),
            sandbox(_sandbox_faults),
            sandbox(_sandbox_logged_out),
            lambda: _fake(Runner("fake_membrane", [str(fake.bin)], fake_env)),
        ]
        # Each group has a database (or fake) of its own, so they run side by side;
        # within a group the calls stay in order (later ones depend on earlier state).
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(group) for group in groups]
            return [case for future in futures for case in future.result()]


# -- the tests --------------------------------------------------------------------------


def _check(prefix: Path, cases: list[Case], tmp: Path) -> dict[str, Any]:
    path = tmp / "cases.json"
    path.write_text(
        json.dumps([{"name": c.name, "schema": c.schema, "value": c.value} for c in cases]),
        encoding="utf-8",
    )
    done = subprocess.run(
        ["node", str(CHECKER), str(prefix), str(path)],
        capture_output=True,
        text=True,
        timeout=CALL_TIMEOUT_S,
        check=False,
    )
    assert done.returncode in (0, 1), f"{CHECKER.name} failed:\n{done.stderr}{done.stdout}"
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_every_envelope_matches_the_sdk_schemas(
    envelopes: list[Case], membrane_sdk: Path, tmp_path: Path
) -> None:
    checkable = [c for c in envelopes if not c.defects]
    report = _check(membrane_sdk, checkable, tmp_path)
    assert report["sdk"] == SDK_VERSION
    assert report["checked"] == len(checkable)
    by_case: dict[str, list[str]] = {c.name: list(c.defects) for c in envelopes}
    for problem in report["problems"]:
        by_case[problem["case"]].append(f"{problem['path'] or '(root)'}: {problem['message']}")
    argv = {c.name: " ".join(c.argv) for c in envelopes}
    lines = [
        f"{name}\n    $ membrane {argv[name]}\n" + "".join(f"    - {p}\n" for p in problems)
        for name, problems in by_case.items()
        if problems
    ]
    assert not lines, (
        f"{sum(map(len, by_case.values()))} envelope problem(s) against "
        f"{SDK_PACKAGE}@{SDK_VERSION}:\n" + "".join(lines)
    )


def test_error_envelopes_map_to_the_toolkit_exceptions(envelopes: list[Case]) -> None:
    """SDK-valid error keys must still reach the right exception (transport/base.py)."""
    wrong = []
    for case in envelopes:
        if case.schema != "error" or case.raises is None or not isinstance(case.value, dict):
            continue
        got = type(error_from_payload(case.value))
        if got is not case.raises:
            wrong.append(f"{case.name}: {got.__name__}, not {case.raises.__name__}: {case.value}")
    assert not wrong, "\n".join(wrong)


def test_every_schema_and_backend_is_exercised(envelopes: list[Case]) -> None:
    seen = {(c.name.split(":")[0], c.schema) for c in envelopes}
    schemas = (
        "connection",
        "connection_list",
        "action_list",
        "action_run",
        "action_run_log",
        "action_run_log_details",
        "error",
    )
    missing = {(b, s) for b in ("sandbox", "fake_membrane") for s in schemas} - seen
    assert not missing, missing
    states = {
        c.value.get("state")
        for c in envelopes
        if c.schema == "connection" and isinstance(c.value, dict)
    }
    assert {"READY", "BUILDING", "CLIENT_ACTION_REQUIRED"} <= states, states


def test_the_checker_reports_what_the_sdk_refuses(membrane_sdk: Path, tmp_path: Path) -> None:
    """So a checker that passes everything cannot go unnoticed."""
    conn = {
        "id": "c1",
        "name": "Mixmax",
        "userId": "u1",
        "createdAt": "2025-06-02T10:00:00.000Z",
        "updatedAt": "2025-06-02T10:00:00.000Z",
    }
    bad = [
        ("no userId", "connection", {k: v for k, v in conn.items() if k != "userId"}),
        ("state", "connection", {**conn, "state": "CONNECTED"}),
        (
            "client action",
            "connection",
            {**conn, "clientAction": {"type": "x", "description": "d"}},
        ),
        ("deprecated", "connection_list", {"items": [{**conn, "disconnected": True}]}),
        ("error key", "error", {"type": "connection", "key": "not_ready", "message": "m"}),
        ("error type", "error", {"type": "oops", "message": "m"}),
        ("nested error", "connection", {**conn, "errors": [{"type": "bad_request", "key": "k"}]}),
        ("no name", "action_list", {"items": [{"id": "a1"}]}),
        ("run log status", "action_run_log", {**RUN_LOG, "status": "failed"}),
        ("run log field", "action_run_log", {**RUN_LOG, "sandbox": True}),
        (
            "run log error",
            "action_run_log_details",
            {**RUN_LOG, "status": "error", "error": {"type": "bad_request", "key": "nope"}},
        ),
        ("run log no error", "action_run_log_details", {**RUN_LOG, "status": "error"}),
        (
            "run log ids",
            "action_run_log",
            {k: v for k, v in RUN_LOG.items() if k != "integrationActionId"},
        ),
    ]
    cases = [Case(name, schema, [], value) for name, schema, value in bad]
    report = _check(membrane_sdk, cases, tmp_path)
    found = {(p["case"], p["path"]) for p in report["problems"]}
    assert found == {
        ("no userId", "userId"),
        ("state", "state"),
        ("client action", "clientAction.type"),
        ("deprecated", "items.0.disconnected"),
        ("error key", "key"),
        ("error type", "type"),
        ("nested error", "errors.0.message"),
        ("nested error", "errors.0.key"),
        ("no name", "items.0.name"),
        ("run log status", "status"),
        ("run log field", "sandbox"),
        ("run log error", "error.message"),
        ("run log error", "error.key"),
        ("run log no error", "error"),
        ("run log ids", "integrationActionId"),
    }, report["problems"]
