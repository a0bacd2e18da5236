"""Bad input: every action with arbitrary input, malformed CSVs, hostile CLI arguments,
hostile text in every widget and chart, and spreadsheet-safe exports.

The rule everywhere: a person's bad input gives an :class:`InputError` that names the
field (or another toolkit error saying what to do), never a crash, never a half-sent
request; text from the account is shown as text, never run as markup or a formula.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import stat
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from widget_text import html_values

import mixmax_nb as mx
from mixmax_nb import catalog
from mixmax_nb.client import AsyncClient
from mixmax_nb.errors import InputError, MixmaxNbError
from mixmax_nb.transport.cli import CliTransport

KEYS = [a.key for a in catalog.ACTIONS]
HOSTILE = (
    '<script>alert("pwn")</script><img src=x onerror=alert(1)>'
    "\u202e\u05e9\u05dc\u05d5\u05dd"  # RTL override + Hebrew
    '=HYPERLINK("http://evil.example")'
)
LONG = "A" * 20_000 + "<b>"
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def caught(fn: Any) -> MixmaxNbError | None:
    """Run ``fn``; return the toolkit error it raised (anything else propagates)."""
    try:
        fn()
    except MixmaxNbError as exc:
        return exc
    return None


class Counting:
    """Wraps a transport: counts what actually went out."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sent = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def run_action(self, key: str, input: Any) -> Any:
        self.sent += 1
        return await self.inner.run_action(key, input)


@cache
def _sandbox() -> Counting:
    return Counting(mx.connect("sandbox", size="small", db=":memory:").transport)


# -- arbitrary input for every action ----------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


def inputs_for(key: str) -> st.SearchStrategy[dict[str, Any]]:
    props = sorted(catalog.BY_KEY[key].input_schema.get("properties", {}))
    known = (
        st.dictionaries(st.sampled_from(props), json_values, max_size=len(props))
        if props
        else st.just({})
    )
    anything = st.dictionaries(st.text(max_size=12), json_values, max_size=4)
    return known | anything


@pytest.mark.parametrize("key", KEYS)
@SETTINGS
@given(data=st.data())
def test_every_action_validates_or_answers_never_crashes(key: str, data: st.DataObject) -> None:
    transport = _sandbox()
    client = AsyncClient(transport)  # type: ignore[arg-type]
    payload = data.draw(inputs_for(key))
    before = transport.sent
    error = caught(lambda: asyncio.run(client.run(key, payload)))
    if isinstance(error, InputError):
        assert transport.sent == before, "a rejected input must not be sent"
        # The field is named -- unless it is the empty string, quoted in the message.
        assert error.field or "'' was unexpected" in str(error), f"no field named: {error}"
        assert "nothing was sent" in str(error)
    elif error is not None:
        # The input was valid but the account says no (unknown id, ...): a clear error.
        assert str(error).strip()


def test_unknown_action_key_and_non_mapping_input() -> None:
    client = AsyncClient(_sandbox())  # type: ignore[arg-type]
    with pytest.raises(InputError) as err:
        asyncio.run(client.run("", {}))
    assert err.value.field == "key"
    with pytest.raises(InputError) as err2:
        asyncio.run(client.run("get-message", {"messageId": 7}))
    assert err2.value.field == "messageId"


# -- malformed CSVs into plan_enrollment ---------------------------------------------------


@cache
def _sequence_id() -> str:
    client = mx.Client(_sandbox().inner)
    seqs = client.sequences()
    me = client.me()["_id"]
    mine = seqs.loc[seqs["user_id"].eq(me) & ~seqs["archived"].fillna(False).astype(bool)]
    return str(mine["id"].iloc[0])


MALFORMED = [
    b"",
    b"\x00\x01\x02\xff\xfe garbage",
    b"email\n",
    b"name,company\nAna,Acme\n",
    b'email,name\n"unterminated@x.example,Ana\n',
    b"email;;;\n;;;\n;;;\n",
    b"\xef\xbb\xbfemail,name\nana@x.example,Ana,extra,fields,here\n",
    ("email,note\n" + "a@x.example," + "x" * 200_000 + "\n").encode(),
    b"email\n=cmd|' /C calc'!A0@x.example\n-2+3@x.example\n",
    "email,First Name\n\u202eana@x.example,\u05e9\u05dc\u05d5\u05dd\n".encode("utf-16"),
]


@pytest.mark.parametrize("raw", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_csv_gives_an_input_error_or_a_plan(raw: bytes) -> None:
    client = mx.Client(_sandbox().inner)
    plans: list[Any] = []
    error = caught(lambda: plans.append(client.plan_enrollment(_sequence_id(), io.BytesIO(raw))))
    if error is not None:
        assert str(error).strip()
    else:
        assert plans[0].summary().to_add >= 0  # a plan, readable, whatever the input


@SETTINGS
@given(text=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=300))
def test_arbitrary_csv_text_never_crashes_the_planner(text: str) -> None:
    client = mx.Client(_sandbox().inner)
    caught(lambda: client.plan_enrollment(_sequence_id(), io.BytesIO(text.encode("utf-8"))))


# -- hostile values as CLI arguments, through the real subprocess ---------------------------


@pytest.fixture(scope="module")
def sandbox_cli(tmp_path_factory: pytest.TempPathFactory) -> tuple[CliTransport, Any]:
    """The real CliTransport running the sandbox command on a fresh small account."""
    from mixmax_nb.config import Settings
    from mixmax_nb.sandbox.membrane import Emulator

    root = tmp_path_factory.mktemp("cli-args")
    wrapper = root / "membrane"
    wrapper.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" -m mixmax_nb.sandbox.cli "$@"\n', encoding="utf-8"
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    db = root / "account.sqlite"
    mp = pytest.MonkeyPatch()
    mp.setenv("MIXMAX_NB_SANDBOX_DB", str(db))
    settings_ = Settings.from_env().with_(timeout=30.0)
    control = Emulator.open(settings_, db=str(db), size="small", start="ready")
    ready = [c for c in control.list_connections() if c["state"] == "READY"]
    transport = CliTransport(settings_, binary=str(wrapper), connection_id=ready[0]["id"])
    yield transport, control
    control.store.close()
    mp.undo()


TRICKY = [
    "--json",
    "-rf",
    "--connectionId=evil",
    "say \"hi\" and 'bye'",
    "line one\nline two\r\nline three",
    "tab\tand\\backslash and $HOME and `id` and $(id)",
    "\u202eRTL \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",
    "emoji \U0001f600 and NUL-free",
    "x" * 5000,
]


@pytest.mark.parametrize("value", TRICKY, ids=range(len(TRICKY)))
def test_cli_arguments_arrive_intact(sandbox_cli: tuple[CliTransport, Any], value: str) -> None:
    """A draft whose subject and body are hostile comes back exactly as written."""
    transport, _control = sandbox_cli
    client = AsyncClient(transport)

    async def body() -> dict[str, Any]:
        created = await client.run_action(
            "create-message",
            {"to": [{"email": "argv@prospect.example"}], "subject": value, "body": value},
        )
        return await client.run_action("get-message", {"messageId": created["_id"]})

    answers: list[dict[str, Any]] = []
    error = caught(lambda: answers.append(asyncio.run(body())))
    if error is not None:  # longer than the schema allows: refused before sending
        assert isinstance(error, InputError) and error.field == "subject"
        return
    got = answers[0]
    assert got["subject"] == value
    assert got["body"] == value


def test_positional_values_starting_with_a_dash_are_refused(
    sandbox_cli: tuple[CliTransport, Any],
) -> None:
    transport, _ = sandbox_cli
    with pytest.raises(InputError) as err:
        asyncio.run(transport.get_connection("--help"))
    assert err.value.field == "connection_id"
    with pytest.raises(MixmaxNbError):
        asyncio.run(transport.login_complete("-x-secret-code"))


def test_fake_membrane_receives_one_argv_item_per_value(fake_membrane: Any) -> None:
    """The argv itself: every hostile value travels as one JSON item, never split."""
    fake_membrane.on("action run", {"json": {"output": {"_id": "m1"}, "actionRunId": "r1"}})
    transport = CliTransport(connection_id="conn_mixmax_1")
    payload = {"to": [{"email": "a@b.example"}], "subject": "\n".join(TRICKY[:7])}
    asyncio.run(transport.run_action("create-message", payload))
    argv = fake_membrane.calls()[-1]
    inputs = [a for a in argv if a.startswith("--input=")]
    assert len(inputs) == 1
    assert json.loads(inputs[0].removeprefix("--input=")) == payload
    assert "--json" in argv and argv.count("--json") == 1


def test_lone_surrogate_in_a_value_is_an_input_error_not_a_crash(fake_membrane: Any) -> None:
    """Text pasted from a broken source may hold a lone surrogate; argv cannot carry it."""
    transport = CliTransport(connection_id="conn_mixmax_1")
    with pytest.raises(MixmaxNbError, match="cannot be encoded"):
        asyncio.run(transport.run_action("create-message", {"subject": "bad \ud800 text"}))


# -- hostile text in every widget and chart -------------------------------------------------

# Raw tags only: an escaped "&lt;img src=x onerror=...&gt;" is inert text.
_RAW_MARKUP = re.compile(r"<script|<img", re.IGNORECASE)


def _poison(store: Any) -> None:
    """Hostile names everywhere the account shows text: sequences, teams, subjects, links."""
    with store.tx() as conn:
        for kind, fields in (
            ("sequence", ("name",)),
            ("team", ("name",)),
            ("snippet", ("name", "title")),
        ):
            for field in fields:
                conn.execute(
                    f"UPDATE docs SET doc = json_set(doc, '$.{field}', ?) WHERE kind = ?",
                    (HOSTILE + " " + LONG[:300], kind),
                )
        conn.execute("UPDATE messages SET subject = ?", (HOSTILE,))
        conn.execute(
            "UPDATE events SET link_url = ?, link_text = ?, file_name = ?",
            (HOSTILE, HOSTILE, HOSTILE),
        )


@pytest.fixture(scope="module")
def hostile_client() -> mx.Client:
    # Adversarial names (senders, recipients, polls, rules...), poisoned further below.
    client = mx.connect("sandbox", size="small", db=":memory:", names="adversarial")
    _poison(client.transport.emulator.store)  # type: ignore[attr-defined]
    return client


def test_dashboard_on_a_hostile_account_stays_inert(
    hostile_client: mx.Client, tmp_path: Path
) -> None:
    from mixmax_nb.widgets.dashboard import EngagementDashboard

    board = EngagementDashboard(hostile_client)
    assert board.data is not None
    board.redraw(all_tabs=True)
    for html in html_values(board.widget):
        assert not _RAW_MARKUP.search(html), html[:300]
    for name, fig in board.figures.items():
        text = fig.to_json()
        assert not _RAW_MARKUP.search(text), f"{name}: raw markup in the figure"
    html_path, csv_path = board.export(tmp_path / "report", include_plotlyjs=False)
    report = html_path.read_text(encoding="utf-8")
    assert "<script>alert" not in report
    _assert_spreadsheet_safe(csv_path.read_text(encoding="utf-8-sig"))


def test_every_chart_escapes_hostile_labels(hostile_client: mx.Client) -> None:
    from mixmax_nb import analytics
    from mixmax_nb.widgets.dashboard import EngagementDashboard

    board = EngagementDashboard(hostile_client, load=True)
    assert board.data is not None
    figures = board.figures_for(board.metrics())
    assert figures
    for name, fig in figures.items():
        assert not _RAW_MARKUP.search(fig.to_json()), name
    assert analytics  # the metrics above went through analytics


def test_enrollment_form_shows_hostile_rows_as_text(hostile_client: mx.Client) -> None:
    from mixmax_nb.widgets.enroll import EnrollmentForm

    rows = pd.DataFrame(
        {"email": [f"p{i}@prospect.example" for i in range(3)], "firstName": [HOSTILE, LONG, "ok"]}
    )

    async def body() -> EnrollmentForm:
        form = EnrollmentForm(hostile_client, rows)
        if form.task is not None:  # the sequences being read
            await asyncio.wait([form.task])
        task = form.preview_plan()
        if task is not None:
            await asyncio.wait([task])
        return form

    form = asyncio.run(body())
    for html in html_values(form.widget):
        assert not _RAW_MARKUP.search(html), html[:300]


def test_connect_wizard_shows_hostile_names_as_text() -> None:
    from mixmax_nb.sandbox.membrane import SandboxTransport
    from mixmax_nb.widgets.connect import ConnectWizard

    async def body() -> ConnectWizard:
        transport = SandboxTransport.open(db=":memory:", size="small", start="logged-out")
        store = transport.emulator.store
        with store.tx() as conn:
            conn.execute(
                "UPDATE docs SET doc = json_set(doc, '$.name', ?) WHERE kind = 'user'", (HOSTILE,)
            )
        wizard = ConnectWizard(transport=transport)
        await wizard.autopilot()
        return wizard

    wizard = asyncio.run(body())
    for html in html_values(wizard.widget):
        assert not _RAW_MARKUP.search(html), html[:300]


# -- exports open safely in a spreadsheet ---------------------------------------------------

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _assert_spreadsheet_safe(text: str) -> None:
    for row in csv.reader(io.StringIO(text, newline="")):
        for cell in row:
            if cell and cell[0] in _FORMULA:
                # Numbers may be negative; anything else starting like a formula is defused.
                assert re.fullmatch(r"-?\d+(\.\d+)?(e-?\d+)?", cell), f"formula-like cell: {cell!r}"


@SETTINGS
@given(cells=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=8))
def test_result_csv_defuses_formulas(cells: list[str]) -> None:
    from mixmax_nb.data.export import safe_csv

    frame = pd.DataFrame({"email": cells, "note": [f"={c}" for c in cells]})
    text = safe_csv(frame)
    assert text is not None
    _assert_spreadsheet_safe(text)


@SETTINGS
@given(cells=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=8))
def test_dashboard_csv_defuses_formulas(cells: list[str]) -> None:
    from mixmax_nb.widgets.dashboard import EngagementDashboard

    table = pd.DataFrame({"sequence": cells, "sent": range(len(cells))})
    _assert_spreadsheet_safe(EngagementDashboard.report_csv(table))


def test_a_bare_carriage_return_cannot_start_a_formula_row() -> None:
    import csv
    import io

    from mixmax_nb.data.export import safe_csv

    frame = pd.DataFrame({"note": ["ok\r+1+2", "a\n=HYPERLINK(1)", "\r\t"], "n": [1, 2, 3]})
    text = safe_csv(frame)
    assert text is not None
    # Quoted, a line break is part of its cell (unquoted, `\r` ended the row and
    # `+1+2` began the next one as a formula).
    assert '"ok\r+1+2"' in text and '"a\n=HYPERLINK(1)"' in text
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert [r[0] for r in rows[1:]] == ["ok\r+1+2", "a\n=HYPERLINK(1)", "'\r\t"]


def test_categorical_cells_are_defused_too() -> None:
    from mixmax_nb.data.export import safe_csv

    frame = pd.DataFrame({"sequence": pd.Categorical(["=cmd|' /C calc'!A0", "plain"])})
    text = safe_csv(frame)
    assert text is not None and "\"'=cmd|" in text


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (10**5000, "cannot be sent as JSON"),
        (float("nan"), "cannot be sent as JSON"),
        (object(), "cannot be sent as JSON"),
    ],
    ids=["10**5000", "nan", "object"],
)
def test_input_json_cannot_carry_is_an_input_error(value: Any, words: str) -> None:
    client = mx.connect("sandbox", size="small", db=":memory:")
    with pytest.raises(InputError, match=words):
        client.run_action("list-sequences", {"limit": 5, "x": value})


def test_input_nested_a_thousand_deep_is_an_input_error() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(1000):
        node["n"] = {}
        node = node["n"]
    client = mx.connect("sandbox", size="small", db=":memory:")
    with pytest.raises(InputError, match="nests more than 64 levels"):
        client.run_action("create-message", {"to": [{"email": "a@x.example"}], "meta": deep})
