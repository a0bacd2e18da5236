"""Customer data comes back exactly as Mixmax holds it, on both ways in: text that
looks like a credential (a subject "Reset token: ...", a link "?token=...") is data,
and is neither rewritten nor able to break a listing."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mixmax_nb.client import AsyncClient
from mixmax_nb.sandbox import seed
from mixmax_nb.sandbox.store import Store
from mixmax_nb.transport.limits import NoLimit

from .conftest import REFERENCE, SEED, Harness, run

HOSTILE_SUBJECT = 'Reset token: abcd"ef'
SENT_SUBJECT = "Your password: hunter22"
LINK = "https://x.example/reset?token=abcd1234&apiToken=zzzz9999"
VARIABLE = 'password: abcd"ef'


@pytest.fixture(scope="module")
def small_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The account with adversarial names (markup, quotes, emoji, right-to-left text in
    its own names and subjects), so every listing below carries hostile text too."""
    path = tmp_path_factory.mktemp("sandbox-adversarial") / "template.sqlite"
    store = Store.open(path)
    ref = date.fromisoformat(REFERENCE)
    seed.build(store, seed=SEED, size="small", reference_date=ref, names="adversarial")
    with store.lock:
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path


def test_credential_looking_text_survives_every_listing(sandbox: Harness) -> None:
    h = sandbox
    client = AsyncClient(h.transport, limiter=NoLimit())  # pacing is not what is tested
    draft = h.action(
        "create-message",
        {
            "to": [{"email": "jane@new.example", "name": "Jane"}],
            "subject": HOSTILE_SUBJECT,
            "body": f'<p><a href="{LINK}">reset</a></p>',
        },
    )
    sent = h.action(
        "create-message",
        {"to": [{"email": "joe@new.example"}], "subject": SENT_SUBJECT, "body": "<p>x</p>"},
    )
    h.action("send-message", {"messageId": sent["_id"]})

    messages = run(client.messages())
    subjects = set(messages["subject"].dropna())
    assert {HOSTILE_SUBJECT, SENT_SUBJECT} <= subjects
    assert any(s.startswith('<b>Bold</b> offer & "quotes" for ') for s in subjects)
    one = run(client.message(draft["_id"]))
    assert one["subject"] == HOSTILE_SUBJECT and LINK in one["body"]

    feed = run(client.request("/livefeed", query={"limit": 5}))["body"]["results"]
    assert SENT_SUBJECT in {m["subject"] for m in feed}
    # The engagement of the last day's seeded sends of the sequence that sent the last
    # hostile subject: one sequence, because through the CLI each engaged message is a
    # request of its own. Every event carries its message's subject, character for
    # character.
    hostile = messages["subject"].str.startswith('<b>Bold</b> offer & "quotes" for ')
    seeded = messages.loc[hostile.fillna(False) & messages["sequence_id"].notna()]
    latest = seeded.loc[seeded["sent_at"].idxmax()]
    recent = latest["sent_at"] - pd.Timedelta(days=1)
    events = run(client.events(since=recent, sequence_id=str(latest["sequence_id"])))
    assert len(events) > 0
    assert events["subject"].str.startswith('<b>Bold</b> offer & "quotes" for ').any()
    subject_of = messages.set_index("id")["subject"]
    assert events["subject"].tolist() == events["message_id"].map(subject_of).tolist()

    me = h.action("get-current-user")["_id"]
    seqs = run(client.sequences())
    sid = str(
        seqs.loc[seqs["user_id"].eq(me) & ~seqs["archived"].fillna(False).astype(bool), "id"].iloc[
            0
        ]
    )
    body: dict[str, Any] = {
        "sequenceId": sid,
        "recipients": [{"email": "vars@new.example", "variables": {"Notes": VARIABLE}}],
        "allowMissingVariables": True,
    }
    assert h.action("add-recipient-to-sequence", body)["recipients"][0]["status"] == "success"
    recipients = run(client.recipients(sid))
    row = recipients.loc[recipients["email"] == "vars@new.example"].iloc[0]
    assert row["variables"]["Notes"] == VARIABLE
