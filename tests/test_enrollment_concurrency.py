"""Exactly once when runs overlap or die: the sequence lock, the fresh look before
sending, settling a lost answer when the same cell runs again, byte-sized batches.

Counted on the server side (the sandbox's own table). The slower cross-process and
kill -9 variants through the `membrane` subprocess are rows of the fault matrix."""

from __future__ import annotations

import asyncio
import json
import stat
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from enroll_fake import SEQ, FakeMixmax, LoseAnswers, lost_answer
from hypothesis import given, settings
from hypothesis import strategies as st

import mixmax_nb as mx
from mixmax_nb.client import AsyncClient
from mixmax_nb.config import Settings
from mixmax_nb.enrollment import enroll, plan_enrollment
from mixmax_nb.enrollment.apply import _encoded_size, split_batches
from mixmax_nb.errors import InputError, ServerError
from mixmax_nb.sandbox.membrane import Emulator, SandboxTransport
from mixmax_nb.transport.limits import RetryPolicy

FAST = RetryPolicy(attempts=2, base=0.0, jitter=0.0)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def sandbox_client(db: Path) -> AsyncClient:
    return AsyncClient(SandboxTransport.open(size="small", db=str(db)), retry=FAST)


def own_sequence(client: AsyncClient) -> tuple[str, list[str]]:
    async def pick() -> tuple[str, list[str]]:
        me = (await client.me())["_id"]
        seqs = await client.sequences()
        mine = seqs.loc[seqs["user_id"].eq(me) & ~seqs["archived"].fillna(False).astype(bool)]
        sid = str(mine["id"].iloc[0])
        from mixmax_nb.enrollment.apply import load_sequence

        return sid, list((await load_sequence(client, sid)).required)

    return run(pick())


def people(emails: list[str], required: list[str]) -> pd.DataFrame:
    data: dict[str, list[str]] = {"email": emails}
    for name in required:
        data[name] = [f"{name} {i}" for i in range(len(emails))]
    return pd.DataFrame(data)


def server_keys(db: Path, sequence_id: str) -> Counter[str]:
    """How many times each address (case-folded) is in the sequence on the server."""
    emu = Emulator.open(Settings.from_env(), db=str(db))
    try:
        rows = emu.store.read("SELECT email FROM recipients WHERE sequence_id = ?", (sequence_id,))
    finally:
        emu.store.close()
    return Counter(str(r["email"]).casefold() for r in rows)


# -- the sandbox itself: exact duplicates refused atomically, case variants let in ------------


def test_the_sandbox_refuses_an_exact_duplicate_from_two_writers_at_once(tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite"
    first = Emulator.open(Settings.from_env(), db=str(db), size="small", start="ready")
    second = Emulator.open(Settings.from_env(), db=str(db))  # another process's connection
    sid = next(
        json.loads(r["doc"])["_id"]
        for r in first.store.read("SELECT doc FROM docs WHERE kind = 'sequences'")
        if not json.loads(r["doc"]).get("archived")
        and json.loads(r["doc"])["userId"] == first.store.get_meta("current_user_id")
    )
    body = {"recipients": [{"email": "ann@race.example"}], "allowMissingVariables": True}
    statuses: list[str] = []
    barrier = threading.Barrier(2)

    def add(emu: Emulator) -> None:
        barrier.wait()
        answer = emu.mixmax.handle("POST", f"sequences/{sid}/recipients", None, body)
        statuses.append(answer.body["recipients"][0]["status"])

    threads = [threading.Thread(target=add, args=(e,)) for e in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(statuses) == ["duplicated", "success"]
    # Mixmax matches case-sensitively: a case variant is someone new to it.
    variant = {"recipients": [{"email": "Ann@race.example"}], "allowMissingVariables": True}
    answer = first.mixmax.handle("POST", f"sequences/{sid}/recipients", None, variant)
    assert answer.body["recipients"][0]["status"] == "success"
    first.store.close()
    second.store.close()


# -- the toolkit: overlapping plans into one sequence -------------------------------------------


def test_overlapping_plans_applied_at_once_enroll_everyone_once(tmp_path: Path) -> None:
    db = tmp_path / "account.sqlite"
    a, b = sandbox_client(db), sandbox_client(db)
    sid, required = own_sequence(a)
    shared = [f"shared.{i}@overlap.example" for i in range(300)]
    only_a = [f"a.{i}@overlap.example" for i in range(150)]
    only_b = [f"b.{i}@overlap.example" for i in range(150)]
    # B has the shared addresses with other capitals: Mixmax alone would take both.
    shouted = [e.replace("shared", "Shared").replace("overlap", "OVERLAP") for e in shared]
    plan_a = run(plan_enrollment(a, sid, people(shared + only_a, required)))
    plan_b = run(plan_enrollment(b, sid, people(shouted + only_b, required)))
    assert plan_a.summary().to_add == 450 and plan_b.summary().to_add == 450

    async def both() -> list[Any]:
        return list(
            await asyncio.gather(
                enroll(a, plan_a, progress=False, batch_size=50),
                enroll(b, plan_b, progress=False, batch_size=50),
            )
        )

    results = run(both())
    counts = server_keys(db, sid)
    wanted = {e.casefold() for e in shared + only_a + only_b}
    assert {k: counts[k] for k in wanted} == dict.fromkeys(wanted, 1)
    outcomes = Counter(str(o) for r in results for o in r.frame["outcome"])
    assert outcomes == Counter({"success": 600, "duplicated": 300})
    dup = next(r for r in results if (r.frame["outcome"] == "duplicated").any()).frame
    note = dup.loc[dup["outcome"] == "duplicated", "detail"].iloc[0]
    assert "another run added it after this plan was made" in note


def test_a_plan_applied_after_another_run_looks_again_first(tmp_path: Path) -> None:
    db = tmp_path / "account.sqlite"
    a, b = sandbox_client(db), sandbox_client(db)
    sid, required = own_sequence(a)
    frame = people([f"late.{i}@x.example" for i in range(40)], required)
    plan_b = run(plan_enrollment(b, sid, frame.assign(email=frame["email"].str.upper())))
    run(enroll(a, run(plan_enrollment(a, sid, frame)), progress=False))
    result = run(enroll(b, plan_b, progress=False))
    assert set(result.frame["outcome"]) == {"duplicated"}
    assert set(server_keys(db, sid).values()) == {1}


def test_an_unchanged_sequence_is_not_read_again(tmp_path: Path) -> None:
    fake = FakeMixmax()
    client = AsyncClient(fake, retry=FAST)
    frame = pd.DataFrame({"email": ["x@acme.com"], "first_name": ["X"]})
    plan = run(plan_enrollment(client, SEQ, frame))
    reads = fake.action_calls("get-sequence-recipients")
    run(enroll(client, plan, progress=False))
    assert fake.action_calls("get-sequence-recipients") == reads


# -- a run that died mid-batch, then the same cell again ------------------------------------------


def test_the_same_cell_again_settles_a_lost_answer_and_finishes(tmp_path: Path) -> None:
    fake = FakeMixmax()
    client = AsyncClient(fake, retry=FAST)
    frame = pd.DataFrame(
        {"email": [f"p{i}@acme.com" for i in range(250)], "first_name": ["P"] * 250}
    )
    plan = run(plan_enrollment(client, SEQ, frame))
    fake.faults[2] = ("after", lost_answer())  # batch 2 reached Mixmax, its answer did not
    with pytest.raises(ServerError):
        run(enroll(client, plan, progress=False, batch_size=100, concurrency=1))
    pending = run(client.pending_enrollments())
    assert list(pending[["unknown", "not_sent", "running"]].iloc[0]) == [100, 50, False]
    # What a person does: run the same cell again. The new plan settles the old
    # journal first (reads the sequence), then adds exactly who is missing.
    again = run(plan_enrollment(client, SEQ, frame))
    assert again.summary().to_add == 50
    assert not again.skipped["detail"].str.contains("unknown outcome").any()
    run(enroll(client, again, progress=False))
    for email in frame["email"]:
        assert fake.count(email) == 1, email
    assert run(client.pending_enrollments()).query("unknown > 0").empty


def test_pending_enrollments_settles_on_request(tmp_path: Path) -> None:
    fake = FakeMixmax()
    client = AsyncClient(fake, retry=FAST)
    frame = pd.DataFrame({"email": [f"q{i}@acme.com" for i in range(10)], "first_name": ["Q"] * 10})
    fake.faults[1] = ("after", lost_answer())
    with pytest.raises(ServerError):
        run(enroll(client, run(plan_enrollment(client, SEQ, frame)), progress=False))
    assert int(run(client.pending_enrollments())["unknown"].sum()) == 10
    settled = run(client.pending_enrollments(settle=True))
    assert settled.empty  # all 10 were found in the sequence: nothing left to do


def test_lost_answers_on_the_sandbox_then_a_new_plan_enroll_once(tmp_path: Path) -> None:
    db = tmp_path / "account.sqlite"
    inner = SandboxTransport.open(size="small", db=str(db))
    lossy = LoseAnswers(inner, lose={3})
    client = AsyncClient(lossy, retry=FAST)
    sid, required = own_sequence(client)
    frame = people([f"k{i}@kill.example" for i in range(500)], required)
    with pytest.raises(ServerError):
        run(enroll(client, run(plan_enrollment(client, sid, frame)), progress=False, concurrency=1))
    lossy.lose = set()
    run(enroll(client, run(plan_enrollment(client, sid, frame)), progress=False))
    counts = server_keys(db, sid)
    assert [counts[e] for e in frame["email"]] == [1] * 500


# -- batches sized by bytes -----------------------------------------------------------------


def test_batches_are_split_by_encoded_bytes_as_well_as_count() -> None:
    items = [{"email": f"r{i}@x.example", "variables": {"bio": "é" * 1500}} for i in range(250)]

    def payload(batch: list[dict[str, Any]]) -> dict[str, Any]:
        return {"sequenceId": "s" * 24, "recipients": batch}

    batches = split_batches(items, payload, 100, 131_063)
    assert sum(len(b) for b in batches) == 250
    sizes = [
        len(json.dumps(payload(b), ensure_ascii=False, separators=(",", ":")).encode())
        for b in batches
    ]
    assert max(sizes) <= 131_063 and len(batches) == 6
    assert [len(b) for b in split_batches(items[:10], payload, 4, 10**9)] == [4, 4, 2]


_TEXT = st.text(max_size=8) | st.sampled_from(["é", "\u2028", '"', "\\", "\x00", "😀"])
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(value=_VALUES)
def test_encoded_size_is_the_bytes_json_dumps_gives(value: Any) -> None:
    # The batch splitter measures recipients without encoding them; it must agree with
    # what the request will carry, byte for byte (escapes, non-ASCII, nesting).
    want = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    assert _encoded_size(value) == want


def _sandbox_command(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "membrane"
    path.parent.mkdir()
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mixmax_nb.sandbox.cli "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def cli_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[mx.Client, Path]:
    """A client on the real subprocess path, the sandbox command behind it."""
    db = tmp_path / "cli.sqlite"
    Emulator.open(Settings.from_env(), db=str(db), size="small", start="ready").store.close()
    monkeypatch.setenv("MIXMAX_NB_SANDBOX_DB", str(db))
    monkeypatch.setenv("MIXMAX_NB_MEMBRANE_BIN", str(_sandbox_command(tmp_path)))
    return mx.connect("membrane"), db


@pytest.mark.integration
def test_big_variables_go_in_smaller_batches_through_the_cli(
    cli_client: tuple[mx.Client, Path],
) -> None:
    client, db = cli_client
    sid, required = own_sequence(client.aio)
    frame = people([f"big{i}@vars.example" for i in range(250)], required)
    frame["Notes"] = "x" * 1500  # 250 x 1.5 KB: one batch of 100 would be 159 KB
    plan = client.plan_enrollment(sid, frame, variables={"Notes": "Notes"})
    result = client.enroll(plan, progress=False)
    assert set(result.frame["outcome"]) == {"success"}
    counts = server_keys(db, sid)
    assert [counts[e] for e in frame["email"]] == [1] * 250


@pytest.mark.integration
def test_one_row_too_big_for_any_call_is_named_before_anything_is_sent(
    cli_client: tuple[mx.Client, Path],
) -> None:
    client, db = cli_client
    sid, required = own_sequence(client.aio)
    frame = people([f"row{i}@vars.example" for i in range(5)], required)
    frame["Notes"] = ["short"] * 3 + ["y" * 200_000, "short"]
    plan = client.plan_enrollment(sid, frame, variables={"Notes": "Notes"})
    with pytest.raises(InputError, match=r"row3@vars\.example.*input row 4"):
        client.enroll(plan, progress=False)
    counts = server_keys(db, sid)
    assert not any(counts[e] for e in frame["email"])


def test_the_cli_refuses_an_argument_over_the_kernel_limit(
    cli_client: tuple[mx.Client, Path],
) -> None:
    client, _db = cli_client
    with pytest.raises(InputError, match="more than the 131,072 bytes"):
        client.run_action(
            "create-message", {"to": [{"email": "a@x.example"}], "body": "z" * 140_000}
        )
