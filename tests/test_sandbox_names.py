"""The sandbox's two names profiles: ``default`` reads like a real company, ``adversarial``
is the same account with hostile text on purpose (see ``mixmax_nb/sandbox/names.py``).

What is proved here: both profiles draw exactly the same account (ids, counts, times,
rates) and differ only in words; the default one shows no markup anywhere; how a
person or a test picks a profile (``names=``, ``MIXMAX_NB_SANDBOX_NAMES``, the
command's ``--names``) and that databases, caches and account keys of the two never
mix; and that hostile text a person writes into the default account is still shown
inertly.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import unicodedata
from contextlib import redirect_stdout
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from widget_text import html_values

import mixmax_nb as mx
from mixmax_nb.config import Settings
from mixmax_nb.sandbox import account, cli, seed
from mixmax_nb.sandbox import names as N
from mixmax_nb.sandbox.membrane import SandboxTransport
from mixmax_nb.sandbox.store import Store
from mixmax_nb.sandbox.templating import variables_in

REF = date(2025, 6, 2)  # tests/conftest.py pins the same day
HOSTILE = '<script>alert("typed")</script><img src=x onerror=alert(1)>'
_RAW_MARKUP = re.compile(r"<script|<img", re.IGNORECASE)
_MARKUP = re.compile(r"[<>]|script", re.IGNORECASE)


def _display_strings(words: N.Names) -> list[str]:
    """Every string of a profile a person reads as text (bodies are HTML by nature)."""
    out = [name for name, _slug in words.first_names + words.last_names + words.companies]
    out += list(words.team_names + words.sequence_names + words.email_subjects)
    out += list(words.one_off_subjects)
    for question, options in words.poll_questions:
        out += [question, *options]
    out += [name for name, _event in words.rule_names]
    return out


# -- the profiles themselves -------------------------------------------------------------


def test_profiles_have_the_same_shape_entry_for_entry() -> None:
    """Same lengths and the same variables everywhere: the generator's draws cannot differ."""
    default, adversarial = N.PROFILES["default"], N.PROFILES["adversarial"]
    assert N.NAME_PROFILES == ("default", "adversarial")
    for field in N.Names.__dataclass_fields__:
        a, b = getattr(default, field), getattr(adversarial, field)
        assert len(a) == len(b), field
        for x, y in zip(a, b, strict=True):
            assert type(x) is type(y), field
            if isinstance(x, str):
                assert variables_in(x) == variables_in(y), (field, x, y)
    for (_q1, o1), (_q2, o2) in zip(
        default.poll_questions, adversarial.poll_questions, strict=True
    ):
        assert len(o1) == len(o2)
    for group in ("first_names", "last_names"):
        slugs = [slug for _name, slug in getattr(default, group)]
        assert len(set(slugs)) == len(slugs) and all(s.isascii() and s.isalpha() for s in slugs)
    with pytest.raises(ValueError, match="names must be one of"):
        N.profile("friendly")


def test_default_names_look_like_a_real_company() -> None:
    for text in _display_strings(N.DEFAULT):
        assert not _MARKUP.search(text), text
        # Latin letters (accents are fine), ASCII and the em dash: no emoji, no
        # right-to-left text, no control characters.
        odd = [c for c in text if not c.isascii() and not unicodedata.name(c).startswith("LATIN")]
        assert set(odd) <= {"—"}, (text, odd)
    for body in N.DEFAULT.email_bodies:
        assert set(re.findall(r"</?([a-z]+)", body)) <= {"p", "a"}, body
        assert "script" not in body.lower() and "onerror" not in body.lower()
    # The adversarial profile keeps the hostile text it exists for.
    hostile = _display_strings(N.ADVERSARIAL)
    assert any("<script>" in t for t in hostile) and any("<b>" in t for t in hostile)
    assert any(
        not unicodedata.name(c, "").startswith("LATIN") and ord(c) > 0x2000
        for t in hostile
        for c in t
    )


# -- the same account, other words ---------------------------------------------------------


def _numbers(store: Store) -> list[Any]:
    """What must not depend on the profile: ids, numbers, times, states, in row order."""
    out: list[Any] = []
    for table, columns in (
        ("users", "_id, timezone, is_current, created"),
        ("docs", "kind, _id, sort_key"),
        ("recipients", "*"),
        ("messages", "_id, created, updated, user_id, sent, scheduled, sequence_id"),
        ("events", "_id, type, ts, message_id, user_id, sequence_id, city, link_url"),
    ):
        rows = store.read(f"SELECT {columns} FROM {table} ORDER BY rowid")
        if table == "recipients":  # its text columns hold names and variables
            out += [(r["_id"], r["sequence_id"], r["state"], r["created"]) for r in rows]
        else:
            out += [tuple(r) for r in rows]
    return out


def test_both_profiles_draw_exactly_the_same_account() -> None:
    stores = {}
    for names in N.NAME_PROFILES:
        stores[names] = Store.open(":memory:")
        seed.build(stores[names], seed=7, size="small", reference_date=REF, names=names)
    default, adversarial = stores["default"], stores["adversarial"]
    assert default.get_meta("counts") == adversarial.get_meta("counts")
    assert _numbers(default) == _numbers(adversarial)
    assert default.get_meta("names") == "default"
    assert adversarial.get_meta("names") == "adversarial"
    # ... and only the words differ.
    seq_names = {
        k: [r["name"] for r in s.read("SELECT name FROM docs WHERE kind = 'sequences'")]
        for k, s in stores.items()
    }
    assert seq_names["default"] != seq_names["adversarial"]
    assert any("<" in n for n in seq_names["adversarial"])


# -- what a newcomer sees -------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_client() -> mx.Client:
    return mx.connect("sandbox", size="small", db=":memory:")


def test_default_account_shows_no_markup_anywhere(default_client: mx.Client) -> None:
    assert default_client.transport.emulator.names == "default"  # type: ignore[attr-defined]
    store = default_client.transport.emulator.store  # type: ignore[attr-defined]
    texts: list[str] = [r["name"] for r in store.read("SELECT name FROM users")]
    for r in store.read("SELECT first_name, last_name, company, email FROM contacts"):
        texts += list(r)
    for r in store.read("SELECT kind, doc FROM docs"):
        doc = json.loads(r["doc"])
        texts += [str(doc.get(k)) for k in ("name", "title", "question") if doc.get(k)]
        texts += [o["text"] for o in doc.get("options", [])]
        texts += [s["subject"] for s in doc.get("stages", [])]
    texts += [r["subject"] for r in store.read("SELECT DISTINCT subject FROM messages")]
    texts += [
        str(v)
        for r in store.read("SELECT DISTINCT link_text, file_name FROM events")
        for v in r
        if v
    ]
    bad = [t for t in texts if _MARKUP.search(t or "")]
    assert not bad, bad[:5]
    # The quickstart's first rows (README) and the other first views.
    quick = default_client.sequences()[["name", "stage_count"]].head()
    assert not quick["name"].str.contains(_MARKUP).any(), quick
    members = default_client.team_members()
    for frame in (default_client.teams(), default_client.snippets(), default_client.rules()):
        assert not frame["name"].astype(str).str.contains(_MARKUP).any(), frame["name"]
    assert not members.astype(str).apply(lambda c: c.str.contains(_MARKUP)).any().any()


def test_default_dashboard_tells_the_same_story_in_plain_words() -> None:
    """The numbers of tests/test_widgets_dashboard.py's verdict (adversarial names),
    on the default names: same account, same story."""
    client = mx.connect("sandbox", size="small", db=":memory:")
    board = mx.widgets.EngagementDashboard(client)
    board.tab.value = "compare"
    assert board.verdict.value == (
        "Re-engage closed-lost gets more replies than Enterprise cold outreach: "
        "+12.3 points in its favour. Enterprise cold outreach: 7.9% of 189; "
        "Re-engage closed-lost: 20.2% of 163."
    )
    for text in (board.cards.value, board.table.value, board.verdict.value):
        assert "&lt;" not in text and "<script" not in text


# -- hostile text a person writes into the default account ---------------------------------


def test_hostile_text_written_into_the_default_account_is_shown_inertly(tmp_path: Path) -> None:
    from mixmax_nb.widgets.dashboard import EngagementDashboard
    from mixmax_nb.widgets.enroll import EnrollmentForm

    client = mx.connect("sandbox", size="small", db=":memory:")
    store = client.transport.emulator.store  # type: ignore[attr-defined]
    me = client.me()["_id"]
    seqs = client.sequences()
    mine = seqs["user_id"].eq(me) & ~seqs["archived"].fillna(False).astype(bool)
    sequence_id = str(seqs.loc[mine, "id"].iloc[0])
    # A person renames their sequence in Mixmax to something hostile ...
    with store.tx() as conn:
        conn.execute(
            "UPDATE docs SET doc = json_set(doc, '$.name', ?), name = lower(?) "
            "WHERE kind = 'sequences' AND _id = ?",
            (f"{HOSTILE} launch", f"{HOSTILE} launch", sequence_id),
        )
    # ... writes a draft with it ...
    draft = client.create_draft(
        to="pat@prospect.example", subject=HOSTILE, body=f"<p>Hi</p>{HOSTILE}"
    )
    preview = draft._repr_html_()
    assert not _RAW_MARKUP.search(preview.split("srcdoc=")[0]), preview[:300]
    assert "&lt;script&gt;" in preview and "<script" not in preview
    assert client.message(draft.id)["subject"] == HOSTILE  # the data itself is verbatim

    # ... and enrolls a recipient whose name is hostile: the form shows it all as text.
    rows = pd.DataFrame(
        {
            "email": ["pat@prospect.example"],
            "firstName": [HOSTILE],
            "lastName": ["Lee"],
            "company": [HOSTILE],
            "title": ["CTO"],
        }
    )

    async def body() -> EnrollmentForm:
        form = EnrollmentForm(client, rows, sequence_id=sequence_id)
        await form.wait()
        assert form.sequence.value == sequence_id
        form.preview_button.click()
        await form.wait()
        form.confirm_button.click()
        await form.wait()
        return form

    form = asyncio.run(body())
    assert form.result is not None
    assert "&lt;script&gt;" in form.sequence_info.value
    assert "&lt;script&gt;" in form.preview.value and "success: 1" in form.results.value
    for html in html_values(form.widget):
        assert not _RAW_MARKUP.search(html), html[:300]
    enrolled = client.recipients(sequence_id)
    row = enrolled.loc[enrolled["email"] == "pat@prospect.example"].iloc[0]
    assert row["variables"]["company"] == HOSTILE  # stored verbatim, shown escaped

    board = EngagementDashboard(client)
    assert board.data is not None
    board.redraw(all_tabs=True)
    for html in html_values(board.widget):
        assert not _RAW_MARKUP.search(html), html[:300]
    assert any("&lt;script&gt;" in html for html in html_values(board.widget))
    for name, fig in board.figures.items():
        assert not _RAW_MARKUP.search(fig.to_json()), name
    html_path, _csv = board.export(tmp_path / "report", include_plotlyjs=False)
    assert "<script>alert" not in html_path.read_text(encoding="utf-8")


# -- how a profile is picked, and kept apart -----------------------------------------------


def test_names_are_picked_like_the_other_sandbox_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().sandbox_names == "default"
    assert Settings.from_env({}).sandbox_names == "default"
    assert Settings.from_env({"MIXMAX_NB_SANDBOX_NAMES": "adversarial"}).sandbox_names == (
        "adversarial"
    )
    client = mx.connect("sandbox", size="small", db=":memory:", names="adversarial")
    assert client.transport.emulator.names == "adversarial"  # type: ignore[attr-defined]
    monkeypatch.setenv("MIXMAX_NB_SANDBOX_NAMES", "adversarial")
    from_env = mx.connect("sandbox", size="small", db=":memory:")
    assert from_env.transport.emulator.names == "adversarial"  # type: ignore[attr-defined]
    assert from_env.sequences()["name"].str.contains("<").any()
    monkeypatch.setenv("MIXMAX_NB_SANDBOX_NAMES", "friendly")
    with pytest.raises(ValueError, match="names must be one of"):
        mx.connect("sandbox", size="small", db=":memory:")


def test_databases_caches_and_account_keys_of_two_profiles_never_mix(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", sandbox_reference_date=REF.isoformat())
    a = SandboxTransport.open(settings, size="small")
    b = SandboxTransport.open(settings, size="small", names="adversarial")
    paths = {Path(t.emulator.store.path).name for t in (a, b)}
    assert paths == {"account-small-seed7-default.sqlite", "account-small-seed7-adversarial.sqlite"}
    assert a.account_key.startswith("sandbox-default-")
    assert b.account_key.startswith("sandbox-adversarial-")
    assert a.account_key.removeprefix("sandbox-default-") != b.account_key.split("-")[-1]
    # The cache of a bigger size is one file per profile, and pruned per profile.
    cached = {
        n: account.cache_path(settings, seed=7, size="default", reference=REF, names=n)
        for n in N.NAME_PROFILES
    }
    assert cached["default"] != cached["adversarial"]
    assert all(n in cached[n].name for n in N.NAME_PROFILES)
    cache = cached["default"].parent
    cache.mkdir(parents=True)
    for path in cached.values():
        path.write_bytes(b"")
    assert account.prune_cache(cache, keep=cached["default"]) == []  # two groups of one


def test_an_existing_database_keeps_its_names_until_reset(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", sandbox_reference_date=REF.isoformat())
    db = str(tmp_path / "mine.sqlite")
    first = SandboxTransport.open(settings, size="small", db=db)
    assert first.emulator.names == "default"
    first.emulator.store.close()
    # Opened as is when nothing is asked; refused when another profile is asked for.
    assert SandboxTransport.open(settings, db=db).emulator.names == "default"
    with pytest.raises(ValueError, match="holds the 'default' names"):
        SandboxTransport.open(settings, db=db, names="adversarial")
    again = SandboxTransport.open(settings, db=db)
    again.emulator.reset(names="adversarial")
    assert again.emulator.names == "adversarial"
    again.emulator.reset()  # a reset keeps the profile
    assert again.emulator.names == "adversarial"
    assert SandboxTransport.open(settings, db=db, names="adversarial").connection_id


def test_the_command_takes_names_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIXMAX_NB_SANDBOX_DB", str(tmp_path / "cli.sqlite"))

    def command(*argv: str) -> tuple[int, Any]:
        out = io.StringIO()
        with redirect_stdout(out):
            code = cli.main(list(argv))
        return code, json.loads(out.getvalue())

    assert command("sandbox", "init", "--size", "small", "--names", "adversarial")[0] == 0
    code, info = command("sandbox", "info")
    assert code == 0 and info["names"] == "adversarial" and info["size"] == "small"
    code, error = command("sandbox", "init", "--names", "default")
    assert code == 2 and "holds the 'adversarial' names" in error["message"]
    assert command("sandbox", "init", "--names", "default", "--reset")[0] == 0
    assert command("sandbox", "info")[1]["names"] == "default"
    assert command("sandbox", "reset", "--names", "adversarial")[1]["names"] == "adversarial"
    code, error = command("sandbox", "reset", "--names", "friendly")
    assert code == 2 and "names must be one of" in error["message"]
    assert command("sandbox", "info")[1]["names"] == "adversarial"
