"""EnrollmentForm, driven headless: set ``.value``, ``.click()``, read the HTML and Output.

Each test body runs inside an event loop (``asyncio.run``), as a kernel cell would,
so the form's work runs as real tasks; a test awaits ``form.wait()`` where a person
would wait for the spinner. The account is the ``small`` sandbox in memory; the
journal lives in the per-test home set by conftest. "Exactly once" is counted on
the sandbox's own store (drafts included), not through the form.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import datetime as dt
import io
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pandas as pd
import pytest
from enroll_fake import LoseAnswers

import mixmax_nb as mx
from mixmax_nb.client import AsyncClient
from mixmax_nb.enrollment import SequenceInfo
from mixmax_nb.widgets.enroll import NO_COLUMN, EnrollmentForm, csv_download_link

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def client() -> mx.Client:
    return mx.connect("sandbox", size="small", db=":memory:")


@pytest.fixture
def adversarial_client() -> mx.Client:
    """The same account with hostile names on purpose: the form must show them as text."""
    return mx.connect("sandbox", size="small", db=":memory:", names="adversarial")


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())  # type: ignore[arg-type]


def own_sequence(client: mx.Client, uses: str = "firstName") -> str:
    """An active sequence of the user's own whose templates use ``uses``."""
    seqs = client.sequences()
    me = client.me()["_id"]
    mine = seqs["user_id"].eq(me) & ~seqs["archived"].fillna(False).astype(bool)
    return str(seqs.loc[mine & seqs["variables"].fillna("").str.contains(uses), "id"].iloc[0])


def server_counts(client: mx.Client, sequence_id: str) -> Counter[str]:
    """Exact addresses in the sequence on the server, drafts included."""
    store = client.transport.emulator.store  # type: ignore[attr-defined]
    rows = store.read("SELECT email FROM recipients WHERE sequence_id = ?", (sequence_id,))
    return Counter(r["email"] for r in rows)


def people(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Email": [f"form.person{i}@prospect.example" for i in range(start, start + n)],
            "First Name": [f"N{i}" for i in range(start, start + n)],
            "Company": ["Prospect Inc"] * n,
            "Title": ["VP"] * n,
        }
    )


def output_text(form: EnrollmentForm) -> str:
    return "".join(o.get("text", "") for o in form.output.outputs)


def html_values(form: EnrollmentForm) -> list[str]:
    return [
        form.status.value,
        form.sequence_info.value,
        form.source_info.value,
        form.preview.value,
        form.confirm_text.value,
        form.progress_text.value,
        form.results.value,
        form.download.value,
    ]


def download_csv(form: EnrollmentForm) -> list[dict[str, str]]:
    match = re.search(r"base64,([A-Za-z0-9+/=]+)", form.download.value)
    assert match, form.download.value
    text = base64.b64decode(match.group(1)).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


async def loaded(client: Any, frame: pd.DataFrame | None, sequence_id: str, **kw: Any):
    form = EnrollmentForm(client, frame, sequence_id=sequence_id, **kw)
    await form.wait()
    assert form.sequence.value == sequence_id
    return form


def test_sequences_searchable_with_stages_active_count_and_marks(
    adversarial_client: mx.Client,
) -> None:
    client = adversarial_client

    async def body() -> None:
        form = EnrollmentForm(client)
        await form.wait()
        labels = [label for label, _ in form.sequence.options]
        assert len(labels) == len(client.sequences())
        assert all("stage" in label for label in labels)
        assert any("READ-ONLY" in label for label in labels)  # the sandbox shares one read-only
        assert "READ-ONLY" in labels[-1], "writable sequences come first"

        form.search.value = "enterprise"
        assert len(form.sequence.options) == 1
        await form.wait()  # the active count is read in the background
        info = form.sequence_info.value
        assert "&lt;b&gt;Enterprise&lt;/b&gt;" in info and "<b>Enterprise</b>" not in info
        assert re.search(r"Active recipients: \d+", info), info
        assert "<ol><li>day +0: email" in info
        form.search.value = "no such sequence at all"
        assert form.sequence.options == () and "No sequence matches" in form.sequence_info.value
        form.search.value = ""
        assert len(form.sequence.options) == len(labels)

    run(body)


def test_archived_and_read_only_labels() -> None:
    form = EnrollmentForm(None, load=False)
    form.me = "u1"
    archived = SequenceInfo(id="s1", name=HOSTILE, archived=True)
    shared = SequenceInfo(id="s2", name="Shared", owner="u2", write_roles=("read-only",))
    assert form._label(archived).endswith("ARCHIVED")
    assert form._label(shared).endswith("READ-ONLY")
    form.infos = {"s1": archived, "s2": shared}
    form.stages = {"s1": [], "s2": []}
    form._filter_sequences()
    assert "Archived" in form.sequence_info.value
    assert (
        "&lt;script&gt;" in form.sequence_info.value and "<script>" not in form.sequence_info.value
    )


# -- the whole flow -------------------------------------------------------------------------


def test_every_step_then_confirm_twice_enrolls_once(client: mx.Client) -> None:
    sequence_id = own_sequence(client)
    good = people(4)
    frame = pd.concat(
        [
            good,
            pd.DataFrame(
                {
                    "Email": ["not-an-email", good["Email"][0].upper()],
                    "First Name": ["X", "Y"],
                    "Company": ["Co", "Co"],
                    "Title": ["VP", "VP"],
                }
            ),
        ],
        ignore_index=True,
    )

    async def body() -> None:
        form = await loaded(client, frame, sequence_id)
        assert "6 rows from the DataFrame given" in form.source_info.value
        # Columns guessed by name, and editable.
        assert form.email_column.value == "Email"
        assert form.mapping()["firstName"] == "First Name"
        assert form.mapping()["company"] == "Company"
        # Confirm before Preview does nothing but say so.
        assert form.confirm() is None and "Preview first" in output_text(form)

        form.preview_button.click()
        await form.wait()
        assert "add: 4" in form.preview.value
        assert "invalid email" in form.preview.value and "duplicate in input" in form.preview.value
        assert "Rows to skip (2)" in form.preview.value
        assert "exactly 4 recipient(s)" in form.confirm_text.value
        assert (
            "sending day(s)" in form.confirm_text.value and "500 a day" in form.confirm_text.value
        )
        assert form.confirm_button.layout.display != "none"

        # An edit after Preview discards the plan: Confirm must apply what was shown.
        form.variable_dropdowns["company"].value = NO_COLUMN
        assert form.plan is None and form.confirm_button.layout.display == "none"
        form.variable_dropdowns["company"].value = "Company"
        form.preview_button.click()
        await form.wait()

        form.confirm_button.click()
        await form.wait()
        assert form.result is not None and form.result.complete
        assert "Done: 4 enrolled" in form.status.value
        assert form.progress.value == 4
        assert "success: 4" in form.results.value
        rows = download_csv(form)
        assert [r["outcome"] for r in rows].count("success") == 4
        assert {r["outcome"] for r in rows} == {"success", "skipped"}

        # Confirm again: the journal answers, nothing is sent.
        sent_before = server_counts(client, sequence_id)
        form.confirm_button.click()
        await form.wait()
        assert server_counts(client, sequence_id) == sent_before
        assert "Done: 4 enrolled" in form.status.value

        # A fresh Preview now skips them all as already in the sequence.
        form.preview_button.click()
        await form.wait()
        assert "already in the sequence: 5" in form.preview.value
        assert "Nobody to enroll" in form.confirm_text.value
        assert form.confirm_button.layout.display == "none"

    run(body)
    counts = server_counts(client, sequence_id)
    assert all(counts[e] == 1 for e in good["Email"])
    assert counts[good["Email"][0].upper()] == 0


def test_schedule_at_and_draft(client: mx.Client) -> None:
    sequence_id = own_sequence(client)

    async def body() -> None:
        form = await loaded(client, people(3, start=100), sequence_id)
        form.schedule.value = "at"
        assert form.schedule_at.layout.display != "none"
        form.preview_button.click()
        await form.wait()
        assert "Choose the date and time" in output_text(form)
        form.schedule_at.value = dt.datetime(2020, 1, 1, 9, tzinfo=dt.UTC)
        form.preview_button.click()
        await form.wait()
        assert "in the past" in output_text(form)
        start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
        form.schedule_at.value = start
        form.preview_button.click()
        await form.wait()
        assert f"starting {start:%a %Y-%m-%d %H:%M} UTC" in form.confirm_text.value

        form.schedule.value = "draft"
        assert form.plan is None
        form.preview_button.click()
        await form.wait()
        assert "as drafts" in form.confirm_text.value
        form.confirm_button.click()
        await form.wait()
        assert form.result is not None and form.result.complete

    run(body)
    counts = server_counts(client, sequence_id)
    assert all(counts[e] == 1 for e in people(3, start=100)["Email"])


# -- recipients: upload and paste ----------------------------------------------------------


def upload(form: EnrollmentForm, name: str, data: bytes) -> None:
    form.upload.value = (
        {
            "name": name,
            "type": "text/csv",
            "size": len(data),
            "last_modified": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            "content": memoryview(data),
        },
    )


def test_hostile_csv_upload_stays_escaped_and_csv_is_spreadsheet_safe(client: mx.Client) -> None:
    sequence_id = own_sequence(client)
    hostile_column = "<img src=x onerror=alert(2)>"
    lines = [
        f"E-mail;fname;Organisation;Job Title;{hostile_column}",
        f'"{HOSTILE}";Eve;Evil;CEO;x',
        '"=HYPERLINK(""http://evil.example"",""click"")";Eve;Evil;CEO;x',
        "",
        'safe.one@prospect.example;"=cmd|\' /C calc\'!A0";Acme;"VP; Sales";x',
        f"safe.two@prospect.example;{HOSTILE};Acme;VP;x",
        "@SUM(A1)@prospect.example;Eve;Acme;VP;x",
        ";;;;",
    ]
    data = "\ufeff".encode() + "\r\n".join(lines).encode("utf-8")

    async def body() -> None:
        form = await loaded(client, None, sequence_id)
        upload(form, f"{HOSTILE}.csv", data)
        assert "5 rows from the file" in form.source_info.value
        assert form.email_column.value == "E-mail"
        assert form.mapping()["firstName"] == "fname"
        assert form.mapping()["company"] == "Organisation"
        form.preview_button.click()
        await form.wait()
        form.confirm_button.click()
        await form.wait()
        assert form.result is not None
        for value in html_values(form):
            assert "<script" not in value and "<img" not in value, value
        assert "&lt;script&gt;" in form.preview.value
        assert "&lt;script&gt;" in form.results.value
        assert "&lt;img src=x" in form.source_info.value
        rows = download_csv(form)
        for row in rows:
            for cell in [*row.values(), *row.keys()]:
                assert not cell.startswith(("=", "+", "-", "@")), cell
        assert any(r["email_input"].startswith("'=HYPERLINK") for r in rows)
        assert [r["outcome"] for r in rows].count("success") == 2

    run(body)


def test_upload_errors_and_paste(client: mx.Client) -> None:
    sequence_id = own_sequence(client)

    async def body() -> None:
        form = await loaded(client, None, sequence_id)
        form.preview_button.click()
        await form.wait()
        assert "no recipients yet" in output_text(form)
        upload(form, "bad.csv", b'email,name\n"unclosed,x\n')
        upload(form, "empty.csv", b"\n\n")
        assert "Reading empty.csv failed" in output_text(form)
        form.paste_button.click()
        assert "paste box is empty" in output_text(form)

        form.paste.value = "a.paste@prospect.example, Jane Doe <jane.paste@prospect.example>\nnope"
        form.paste_button.click()
        assert "3 rows from the pasted text" in form.source_info.value
        assert form.email_column.value == "email"
        # The sequence needs {{firstName}}; a paste has only addresses: said, not crashed.
        form.preview_button.click()
        await form.wait()
        text = output_text(form)
        assert "Preview failed" in text and "Fix it above" in text
        assert "error" in form.status.value

    run(body)


# -- stopping, cancelling, failing, and finishing without duplicates ---------------------------


def test_cancel_midway_then_confirm_again_enrolls_each_once(client: mx.Client) -> None:
    sequence_id = own_sequence(client)
    frame = people(30, start=200)
    slow = LoseAnswers(client.transport, delay=0.02)
    aio = AsyncClient(slow)

    async def body() -> None:
        form = await loaded(aio, frame, sequence_id, batch_size=5, concurrency=1)
        form.preview_button.click()
        await form.wait()
        task = form.confirm()
        assert task is not None and form.runner.cancel_button.layout.display != "none"
        assert form.confirm_button.disabled and form.preview_button.disabled
        for _ in range(500):
            if form.counts.get("done", 0) >= 10:
                break
            await asyncio.sleep(0.005)
        form.runner.cancel_button.click()
        await form.wait()
        assert task.cancelled()
        status = form.status.value
        assert "Cancelled" in status and "Confirm again" in status and "not sent again" in status
        assert re.search(r"1\d of 30 answered", status), status
        assert not form.confirm_button.disabled
        assert 10 <= sum(server_counts(client, sequence_id)[e] for e in frame["Email"]) < 30

        form.confirm_button.click()
        await form.wait()
        assert form.result is not None and form.result.complete
        assert "Done: 30 enrolled" in form.status.value

    run(body)
    counts = server_counts(client, sequence_id)
    assert all(counts[e] == 1 for e in frame["Email"])


def test_stop_then_confirm_again(client: mx.Client) -> None:
    sequence_id = own_sequence(client)
    frame = people(20, start=300)
    aio = AsyncClient(LoseAnswers(client.transport, delay=0.02))

    async def body() -> None:
        form = await loaded(aio, frame, sequence_id, batch_size=5, concurrency=1)
        form.preview_button.click()
        await form.wait()
        form.confirm_button.click()
        assert form.stop_button.layout.display != "none"
        for _ in range(500):
            if form.counts.get("done", 0) >= 5:
                break
            await asyncio.sleep(0.005)
        form.stop_button.click()
        await form.wait()
        assert form.result is not None and not form.result.complete
        assert "Stopped" in form.status.value and "Confirm again" in form.status.value
        assert "not_sent" in form.results.value
        assert form.stop_button.layout.display == "none"
        form.confirm_button.click()
        await form.wait()
        assert form.result.complete and "Done: 20 enrolled" in form.status.value

    run(body)
    counts = server_counts(client, sequence_id)
    assert all(counts[e] == 1 for e in frame["Email"])


def test_service_error_is_shown_and_confirm_again_finishes(client: mx.Client) -> None:
    sequence_id = own_sequence(client)
    frame = people(15, start=400)

    async def body() -> None:
        form = await loaded(client, frame, sequence_id, batch_size=5, concurrency=1)
        form.preview_button.click()
        await form.wait()
        client.transport.faults.inject("server_error", after=1)  # type: ignore[attr-defined]
        form.confirm_button.click()
        await form.wait()
        text = output_text(form)
        assert "Enrolling failed" in text and "Click Confirm again" in text
        assert "of 15 recipients have an answer" in text  # the engine's note is shown
        form.confirm_button.click()
        await form.wait()
        assert form.result is not None and form.result.complete

    run(body)
    counts = server_counts(client, sequence_id)
    assert all(counts[e] == 1 for e in frame["Email"])


def test_lost_draft_answer_shows_unresolved_addresses(client: mx.Client) -> None:
    sequence_id = own_sequence(client)
    frame = people(6, start=500)
    aio = AsyncClient(LoseAnswers(client.transport, lose=frozenset({1})))

    async def body() -> None:
        form = await loaded(aio, frame, sequence_id, batch_size=3, concurrency=1)
        form.schedule.value = "draft"
        form.preview_button.click()
        await form.wait()
        form.confirm_button.click()
        await form.wait()
        assert "Enrolling failed" in output_text(form)
        form.confirm_button.click()  # the lost draft batch cannot be checked: say so
        await form.wait()
        text = output_text(form)
        assert "Unsettled addresses" in text and frame["Email"][0] in text
        assert "unresolved='assume_added'" in text

    run(body)
    counts = server_counts(client, sequence_id)
    assert all(counts[e] <= 1 for e in frame["Email"])


def test_download_link_is_escaped() -> None:
    link = csv_download_link('a,b\n"=1",x\n', '"><script>.csv')
    assert "<script" not in link and 'download="script_.csv"' in link


def test_registered_lazily() -> None:
    assert mx.widgets.EnrollmentForm is EnrollmentForm
