"""Enrollment end to end against the embedded sandbox: plan rules on a seeded account,
and interruptions followed by a re-run, counted on the server side."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pandas as pd
import pytest
from enroll_fake import LoseAnswers

import mixmax_nb as mx
from mixmax_nb.client import AsyncClient
from mixmax_nb.enrollment import enroll, plan_enrollment
from mixmax_nb.errors import ServerError


@pytest.fixture
def client() -> mx.Client:
    return mx.connect("sandbox", size="small", db=":memory:")


def _sequence(client: mx.Client) -> pd.Series:
    """One of the user's own, active sequences that uses {{firstName}}."""
    seqs = client.sequences()
    me = client.me()["_id"]
    mine = seqs["user_id"].eq(me) & ~seqs["archived"].fillna(False).astype(bool)
    uses = seqs["variables"].fillna("").str.contains("firstName")
    return seqs.loc[mine & uses].iloc[0]


def server_counts(client: mx.Client, sequence_id: str) -> Counter[str]:
    """Exact addresses in the sequence on the server, drafts included."""
    store = client.transport.emulator.store  # type: ignore[attr-defined]
    rows = store.read("SELECT email FROM recipients WHERE sequence_id = ?", (sequence_id,))
    return Counter(r["email"] for r in rows)


def people(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Email": [f"new.person{i}@prospect.example" for i in range(n)],
            "First Name": [f"N{i}" for i in range(n)],
            "Company": ["Prospect Inc"] * n,
            "Title": ["VP"] * n,
        }
    )


def test_plan_rules_on_the_seeded_account(client: mx.Client):
    seq = _sequence(client)
    listed = client.recipients(seq["id"])
    member = str(listed["email"].iloc[0])
    unsub = str(client.unsubscribes()["email"].iloc[0])
    frame = pd.concat(
        [
            pd.DataFrame(
                {
                    "Email": [member.upper(), unsub.title(), "not-an-email", "x@prospect.example"],
                    "First Name": ["A", "B", "C", ""],
                    "Company": ["Co"] * 4,
                    "Title": ["VP"] * 4,
                }
            ),
            people(3),
            people(1).assign(Email=lambda f: f["Email"].str.upper()),
        ],
        ignore_index=True,
    )
    plan = client.aio  # the sync Client's methods are added later; use the coroutines here
    result = asyncio.run(plan_enrollment(plan, seq["id"], frame))
    reasons = [None if pd.isna(r) else r for r in result.frame["reason"]]
    expected_missing = "missing_variables" if "firstName" in result.required else None
    assert reasons == [
        "already_in_sequence",
        "unsubscribed",
        "invalid_email",
        expected_missing,
        None,
        None,
        None,
        "duplicate_in_input",
    ]
    summary = result.summary()
    assert summary.to_add == 3
    assert summary.sending_days == 1


def _client_with(transport: Any) -> AsyncClient:
    return AsyncClient(transport)


def test_read_only_sequence_is_refused_at_plan_time(client: mx.Client):
    seqs = client.sequences()
    me = client.me()["_id"]
    others = seqs.loc[seqs["user_id"].ne(me)]
    aio = client.aio
    messages = []
    for sequence_id in others["id"]:
        try:
            asyncio.run(plan_enrollment(aio, sequence_id, people(1)))
        except mx.InputError as exc:
            messages.append(str(exc))
    assert messages
    assert all("read access" in m or "archived" in m for m in messages)


def test_server_error_after_n_batches_then_rerun(client: mx.Client):
    seq = _sequence(client)
    frame = people(45)
    aio = client.aio
    plan = asyncio.run(plan_enrollment(aio, seq["id"], frame))
    client.transport.faults.inject("server_error", after=2)  # type: ignore[attr-defined]
    with pytest.raises(ServerError):
        asyncio.run(enroll(aio, plan, batch_size=10, concurrency=1, progress=False))
    result = asyncio.run(enroll(aio, plan, batch_size=10, concurrency=1, progress=False))
    assert result.complete and result.frame["outcome"].eq("success").all()
    counts = server_counts(client, seq["id"])
    assert all(counts[e] == 1 for e in frame["Email"])


def test_lost_answers_and_a_cancelled_task_then_rerun(client: mx.Client):
    seq = _sequence(client)
    frame = people(80)
    wrapped = LoseAnswers(client.transport, lose={2}, delay=0.01)
    aio = _client_with(wrapped)
    plan = asyncio.run(plan_enrollment(aio, seq["id"], frame))

    with pytest.raises(ServerError):
        asyncio.run(enroll(aio, plan, batch_size=10, concurrency=1, progress=False))

    async def cancel_midway() -> None:
        task = asyncio.ensure_future(
            enroll(aio, plan, batch_size=10, concurrency=2, progress=False)
        )
        await asyncio.sleep(0.035)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_midway())
    result = asyncio.run(enroll(aio, plan, batch_size=10, concurrency=2, progress=False))
    assert result.complete
    assert result.frame["outcome"].eq("success").all()
    assert result.frame["reconciled"].sum() >= 10  # batch 2 at least was found, not re-sent
    counts = server_counts(client, seq["id"])
    assert all(counts[e] == 1 for e in frame["Email"])


def test_drafts_are_journaled_and_never_re_added(client: mx.Client):
    seq = _sequence(client)
    aio = client.aio
    plan = asyncio.run(plan_enrollment(aio, seq["id"], people(5)))
    asyncio.run(enroll(aio, plan, schedule="draft", progress=False))
    again = asyncio.run(plan_enrollment(aio, seq["id"], people(5)))
    assert (again.frame["action"] == "skip").all()
    counts = server_counts(client, seq["id"])
    assert all(counts[e] == 1 for e in people(5)["Email"])
