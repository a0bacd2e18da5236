"""Applying plans: batches, outcomes, the journal, and never twice after an interruption."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from enroll_fake import SEQ, FakeMixmax, lost_answer, refused, sequence

from mixmax_nb.client import AsyncClient
from mixmax_nb.enrollment import (
    CancelPlan,
    EnrollmentPlan,
    JournalBusyError,
    UnresolvedBatchError,
    cancel_recipients,
    enroll,
    plan_cancel,
    plan_enrollment,
)
from mixmax_nb.enrollment.journal import Journal, journal_dir
from mixmax_nb.errors import InputError, RateLimitedError, ServerError
from mixmax_nb.transport.limits import RetryPolicy


def people(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "email": [f"person{i}@acme.com" for i in range(start, start + n)],
            "first_name": [f"P{i}" for i in range(start, start + n)],
        }
    )


@pytest.fixture
def fake() -> FakeMixmax:
    return FakeMixmax()


@pytest.fixture
def client(fake: FakeMixmax) -> AsyncClient:
    return AsyncClient(fake, retry=RetryPolicy(attempts=2, base=0.0, jitter=0.0))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _plan(client: AsyncClient, frame: Any, **kw: Any) -> EnrollmentPlan:
    return await plan_enrollment(client, SEQ, frame, **kw)


def values(series: pd.Series) -> list[Any]:
    """Cells as plain Python values, missing ones as None."""
    return [None if pd.isna(v) else v for v in series.astype(object)]


def everyone_once(fake: FakeMixmax, frame: pd.DataFrame) -> None:
    for email in frame["email"]:
        assert fake.count(email) == 1, email
    assert len(fake.emails()) == len(frame)


# -- planning against the account -----------------------------------------------------------


def test_plan_reads_sequence_recipients_and_unsubscribes(client: AsyncClient, fake: FakeMixmax):
    fake.seed("Known@acme.com")
    fake.unsubscribed.append("GONE@acme.com")
    frame = pd.DataFrame(
        {
            "email": ["known@acme.com", "gone@acme.com", "new@acme.com", "bad"],
            "first_name": ["K", "G", "N", "B"],
        }
    )
    plan = run(_plan(client, frame))
    got = dict(zip(plan.frame["email_input"], values(plan.frame["reason"]), strict=True))
    assert got == {
        "known@acme.com": "already_in_sequence",
        "gone@acme.com": "unsubscribed",
        "new@acme.com": None,
        "bad": "invalid_email",
    }
    assert plan.required == ["First name"]
    assert plan.variable_columns == {"First name": "first_name"}
    assert fake.writes == 0  # planning writes nothing


def test_plan_unknown_sequence_is_an_input_error(client: AsyncClient):
    with pytest.raises(InputError, match="No sequence with id 'nope'"):
        run(plan_enrollment(client, "nope", people(1)))


def test_plan_sequence_name_hints_its_id(client: AsyncClient):
    with pytest.raises(InputError) as info:
        run(plan_enrollment(client, "Q3 outreach", people(1)))
    assert SEQ in str(info.value)


def test_plan_missing_email_column_fails_before_reading_recipients(
    client: AsyncClient, fake: FakeMixmax
):
    with pytest.raises(InputError, match="no column 'mail'"):
        run(plan_enrollment(client, SEQ, people(2), email="mail"))
    assert fake.action_calls("get-sequence-recipients") == 0


def test_plan_unmapped_required_variable(client: AsyncClient, fake: FakeMixmax):
    frame = pd.DataFrame({"email": ["a@acme.com"], "company": ["Acme"]})
    with pytest.raises(InputError, match=r"\{\{First name\}\}") as info:
        run(plan_enrollment(client, SEQ, frame))
    assert "variables=" in (info.value.hint or "")
    assert fake.action_calls("get-sequence-recipients") == 0


# -- happy path and idempotence ------------------------------------------------------------


def test_enroll_in_batches_and_rerun_sends_nothing(client: AsyncClient, fake: FakeMixmax):
    frame = people(250)
    plan = run(_plan(client, frame))
    result = run(enroll(client, plan, batch_size=100, progress=False))
    assert fake.writes == 3  # ceil(250 / 100)
    assert result.frame["outcome"].eq("success").all()
    assert result.complete
    everyone_once(fake, frame)

    calls_before = len(fake.calls)
    again = run(enroll(client, plan, batch_size=100, progress=False))
    assert len(fake.calls) == calls_before  # not one request
    pd.testing.assert_series_equal(again.frame["outcome"], result.frame["outcome"])


def test_outcomes_reported_per_recipient(client: AsyncClient, fake: FakeMixmax):
    frame = pd.DataFrame(
        {"email": ["a@acme.com", "b@acme.com", "x"], "first_name": ["A", "B", "X"]}
    )
    plan = run(_plan(client, frame))
    # Between planning and applying, someone else adds b and unsubscribes a.
    fake.seed("b@acme.com")
    fake.unsubscribed.append("a@acme.com")
    result = run(enroll(client, plan, progress=False))
    assert list(result.frame["outcome"].astype(str)) == ["unsubscribed", "duplicated", "skipped"]
    assert "valid" in str(result.frame["detail"].iloc[2]) or "@" in str(
        result.frame["detail"].iloc[2]
    )


def test_error_status_carries_its_reason(client: AsyncClient, fake: FakeMixmax):
    frame = people(2)
    plan = run(_plan(client, frame))
    # Edit the plan by hand: drop the variable from one row (as a careless edit would).
    plan.frame.at[0, "variables"] = {}
    result = run(enroll(client, plan, progress=False))
    row = result.frame.iloc[0]
    assert row["outcome"] == "error"
    assert "Missing variable: First name" in row["detail"]


def test_schedule_at_and_draft_payloads(client: AsyncClient, fake: FakeMixmax):
    plan = run(_plan(client, people(3)))
    run(enroll(client, plan, schedule="2099-01-05T09:00:00Z", progress=False))
    sent = [d for k, d in fake.calls if k == "add-recipient-to-sequence"][-1]
    assert sent["scheduledAt"] == int(datetime(2099, 1, 5, 9, tzinfo=UTC).timestamp() * 1000)

    fake2 = FakeMixmax()
    fake2.account_key = "another-account"
    client2 = AsyncClient(fake2)
    plan2 = run(plan_enrollment(client2, SEQ, people(3)))
    run(enroll(client2, plan2, schedule="draft", progress=False))
    sent = [d for k, d in fake2.calls if k == "add-recipient-to-sequence"][-1]
    assert sent["scheduledAt"] is False
    assert fake2.emails() and not run(client2.recipients(SEQ)).shape[0]  # drafts hidden


def test_now_sends_no_scheduled_at(client: AsyncClient, fake: FakeMixmax):
    run(enroll(client, run(_plan(client, people(1))), progress=False))
    sent = [d for k, d in fake.calls if k == "add-recipient-to-sequence"][-1]
    assert "scheduledAt" not in sent


def test_bad_schedule_and_batch_size(client: AsyncClient):
    plan = run(_plan(client, people(1)))
    with pytest.raises(InputError, match="past"):
        run(enroll(client, plan, schedule="2001-01-01T00:00Z", progress=False))
    with pytest.raises(InputError, match="as a date"):
        run(enroll(client, plan, schedule="tomorrow-ish", progress=False))
    with pytest.raises(InputError, match="batch_size"):
        run(enroll(client, plan, batch_size=101, progress=False))


def test_bounded_concurrency(client: AsyncClient, fake: FakeMixmax):
    fake.write_delay = 0.01
    plan = run(_plan(client, people(50)))
    run(enroll(client, plan, batch_size=5, concurrency=3, progress=False))
    assert fake.max_in_flight == 3
    everyone_once(fake, people(50))


def test_on_progress_counts(client: AsyncClient):
    seen: list[dict[str, int]] = []
    plan = run(_plan(client, people(30)))
    run(enroll(client, plan, batch_size=10, concurrency=1, progress=False, on_progress=seen.append))
    assert [s["done"] for s in seen] == [10, 20, 30]
    assert seen[-1]["success"] == 30


def test_on_progress_counts_carry_over_a_resume(client: AsyncClient, fake: FakeMixmax):
    # The running tally starts from the journal's outcomes on a second run, and a
    # reconciled answer replaces the lost one instead of being counted twice.
    seen: list[dict[str, int]] = []
    plan = run(_plan(client, people(30)))
    fake.faults[2] = ("after", lost_answer())
    with pytest.raises(ServerError):
        run(enroll(client, plan, batch_size=10, concurrency=1, progress=False))
    run(enroll(client, plan, batch_size=10, concurrency=1, progress=False, on_progress=seen.append))
    assert [s["done"] for s in seen] == [30]
    assert {k: v for k, v in seen[-1].items() if k not in ("total", "done")} == {"success": 30}
    everyone_once(fake, people(30))


def test_stop_event_leaves_rest_not_sent_then_finishes(client: AsyncClient, fake: FakeMixmax):
    stop = threading.Event()
    plan = run(_plan(client, people(40)))

    def after_first(counts: Any) -> None:
        stop.set()

    result = run(
        enroll(
            client,
            plan,
            batch_size=10,
            concurrency=1,
            progress=False,
            on_progress=after_first,
            stop=stop,
        )
    )
    assert fake.writes == 1
    assert result.frame["outcome"].value_counts()["not_sent"] == 30
    assert not result.complete
    final = run(enroll(client, plan, batch_size=10, progress=False))
    assert final.complete
    everyone_once(fake, people(40))


# -- the journal ---------------------------------------------------------------------------


def _journal_path(client: AsyncClient, plan: EnrollmentPlan, schedule: str = "now") -> Path:
    from mixmax_nb.config import Settings
    from mixmax_nb.enrollment import Schedule

    home = Settings.from_env().home
    return (
        journal_dir(home, "sandbox", "acct-test")
        / f"{plan.fingerprint(Schedule.parse(schedule))}.jsonl"
    )


def test_journal_file_is_private_and_ordered(client: AsyncClient):
    plan = run(_plan(client, people(20)))
    run(enroll(client, plan, batch_size=10, concurrency=1, progress=False))
    path = _journal_path(client, plan)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Every directory level the journal created is private, whatever the umask.
    for level in (path.parent, path.parent.parent, path.parent.parent.parent):
        assert stat.S_IMODE(level.stat().st_mode) == 0o700, level
    kinds = [json.loads(line)["t"] for line in path.read_text().splitlines()]
    assert kinds == ["plan", "pending", "done", "pending", "done", "mark"]


def test_journal_directories_are_private_under_a_wide_umask(client: AsyncClient):
    old = os.umask(0)
    try:
        plan = run(_plan(client, people(2)))
        run(enroll(client, plan, progress=False))
    finally:
        os.umask(old)
    path = _journal_path(client, plan)
    for level in (path.parent, path.parent.parent, path.parent.parent.parent):
        assert stat.S_IMODE(level.stat().st_mode) == 0o700, level


def test_journal_is_locked_while_applying(client: AsyncClient, tmp_path: Path):
    plan = run(_plan(client, people(3)))
    path = _journal_path(client, plan)
    with Journal.open(path.parent, path.stem), pytest.raises(JournalBusyError):
        run(enroll(client, plan, progress=False))


def test_an_open_journal_reads_on_from_where_it_last_read(tmp_path: Path):
    # state() folds only what was appended since its last call; it must equal a
    # replay of the whole file at every step, and a caller changing what it got
    # must not change the next answer.
    from mixmax_nb.enrollment.journal import read_lines, replay

    with Journal.open(tmp_path, "plan-x") as journal:
        steps = [
            {"t": "plan", "plan": "plan-x"},
            {"t": "pending", "batch": "b1", "emails": ["a@x.example", "b@x.example"]},
            {
                "t": "done",
                "batch": "b1",
                "outcomes": [{"email": "a@x.example", "status": "success"}],
            },
            {"t": "pending", "batch": "b2", "emails": ["c@x.example"]},
            {"t": "not_sent", "batch": "b2", "error": "429"},
            {"t": "reconciled", "present": [{"email": "b@x.example", "status": "success"}]},
            {"t": "mark", "writes": 3},
        ]
        for record in steps:
            journal.write(record)
            got = journal.state()
            assert got == replay(read_lines(journal.path))
            got.outcomes.clear()
            got.unknown["zz@x.example"] = "b9"
        with journal.path.open("a") as fh:
            fh.write('{"t": "done", "batch": "b2", "outco')  # torn tail: not folded yet
        assert journal.state() == replay(read_lines(journal.path))
        assert set(journal.state().outcomes) == {"a@x.example", "b@x.example"}
        assert journal.state().writes == 3


def test_torn_last_line_is_ignored(client: AsyncClient, fake: FakeMixmax):
    plan = run(_plan(client, people(10)))
    fake.faults[1] = ("after", lost_answer())
    with pytest.raises(ServerError):
        run(enroll(client, plan, batch_size=10, progress=False))
    path = _journal_path(client, plan)
    with path.open("a") as fh:
        fh.write('{"t": "done", "batch": "x", "outco')  # a crash mid-write
    result = run(enroll(client, plan, batch_size=10, progress=False))
    assert result.frame["outcome"].eq("success").all()
    assert result.frame["reconciled"].all()
    everyone_once(fake, people(10))


def test_new_plan_skips_addresses_the_journal_sent_as_drafts(client: AsyncClient, fake: FakeMixmax):
    plan = run(_plan(client, people(5)))
    run(enroll(client, plan, schedule="draft", progress=False))
    again = run(_plan(client, people(7)))  # Mixmax lists none of the 5 drafts
    assert list(again.frame["action"].astype(str)) == ["skip"] * 5 + ["add"] * 2
    assert "journal" in str(again.frame["detail"].iloc[0])


# -- interruptions: every intended recipient enrolled exactly once -----------------------------


def test_exception_after_n_batches_then_rerun(client: AsyncClient, fake: FakeMixmax):
    frame = people(100)
    plan = run(_plan(client, frame))
    fake.faults[4] = ("before", ServerError("boom"))  # refused, but we cannot know that
    with pytest.raises(ServerError) as info:
        run(enroll(client, plan, batch_size=10, concurrency=1, progress=False))
    assert "Run the same call again" in "".join(getattr(info.value, "__notes__", []))
    assert len(fake.emails()) == 30
    result = run(enroll(client, plan, batch_size=10, concurrency=1, progress=False))
    assert result.complete and result.frame["outcome"].eq("success").all()
    everyone_once(fake, frame)
    # Batch 4 was unknown: the re-run read the sequence, found none of it, re-sent it.
    assert fake.action_calls("get-sequence-recipients") >= 2


def test_write_applied_but_answer_lost_is_reconciled_not_resent(
    client: AsyncClient, fake: FakeMixmax
):
    frame = people(30)
    plan = run(_plan(client, frame))
    fake.faults[2] = ("after", lost_answer())
    with pytest.raises(ServerError):
        run(enroll(client, plan, batch_size=10, concurrency=1, progress=False))
    writes = fake.writes
    result = run(enroll(client, plan, batch_size=10, concurrency=1, progress=False))
    assert fake.writes == writes + 1  # only batch 3: batch 2 was found in the sequence
    assert int(result.frame["reconciled"].sum()) == 10
    assert result.frame["outcome"].eq("success").all()
    everyone_once(fake, frame)


def test_write_errors_are_not_retried(client: AsyncClient, fake: FakeMixmax):
    plan = run(_plan(client, people(10)))
    fake.faults[1] = ("after", lost_answer())
    with pytest.raises(ServerError):
        run(enroll(client, plan, progress=False))
    assert fake.writes == 1


def test_429_is_retried_and_journaled_not_sent(client: AsyncClient, fake: FakeMixmax):
    plan = run(_plan(client, people(10)))
    fake.faults[1] = ("before", refused())
    result = run(enroll(client, plan, progress=False))  # attempt 2 succeeds
    assert fake.writes == 2 and result.complete
    everyone_once(fake, people(10))

    fake2 = FakeMixmax()
    fake2.account_key = "another-account"  # its own journals
    client2 = AsyncClient(fake2, retry=RetryPolicy(attempts=1))
    plan2 = run(plan_enrollment(client2, SEQ, people(10)))
    fake2.faults[1] = ("before", refused())
    with pytest.raises(RateLimitedError):
        run(enroll(client2, plan2, progress=False))
    run(enroll(client2, plan2, progress=False))
    # The refused batch was journaled not_sent: no need to read the sequence to re-send it.
    assert fake2.action_calls("get-sequence-recipients") == 1  # the plan's read only
    everyone_once(fake2, people(10))


def test_cancelled_task_then_rerun(client: AsyncClient, fake: FakeMixmax):
    frame = people(60)
    fake.write_delay = 0.05

    async def main() -> None:
        plan = await _plan(client, frame)
        fake.on_write = None
        task = asyncio.ensure_future(
            enroll(client, plan, batch_size=10, concurrency=2, progress=False)
        )
        third = asyncio.Event()
        fake.on_write = lambda n: third.set() if n == 3 else None
        await third.wait()
        task.cancel()  # the widget's Cancel, or a kernel interrupt
        with pytest.raises(asyncio.CancelledError):
            await task
        assert 0 < len(fake.emails()) < 60
        fake.write_delay = 0.0
        result = await enroll(client, plan, batch_size=10, concurrency=2, progress=False)
        assert result.complete and result.frame["outcome"].eq("success").all()

    run(main())
    everyone_once(fake, frame)


def test_cancel_while_waiting_for_a_slot_leaves_nothing_to_reconcile(fake: FakeMixmax):
    from mixmax_nb.transport.limits import RateLimiter

    client = AsyncClient(fake)

    async def plan_then_limit() -> None:
        plan = await _plan(client, people(20))
        client.limiter = RateLimiter(rate=1, per=3600)
        task = asyncio.ensure_future(
            enroll(client, plan, batch_size=10, concurrency=2, progress=False)
        )
        first = asyncio.Event()
        fake.on_write = lambda n: first.set()
        await first.wait()
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        path = _journal_path(client, plan)
        kinds = [json.loads(line)["t"] for line in path.read_text().splitlines()]
        assert kinds.count("pending") == 1 and kinds.count("done") == 1

    run(plan_then_limit())


def test_crash_mid_batch_simulated_by_a_pending_line(client: AsyncClient, fake: FakeMixmax):
    """A kernel crash after `pending` and the server's write, before `done`."""
    frame = people(20)
    plan = run(_plan(client, frame))
    fake.faults[1] = ("after", KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        run(enroll(client, plan, batch_size=10, concurrency=1, progress=False))
    result = run(enroll(client, plan, batch_size=10, concurrency=1, progress=False))
    assert result.complete
    everyone_once(fake, frame)


def test_draft_batch_with_lost_answer_is_refused_then_settled(
    client: AsyncClient, fake: FakeMixmax
):
    frame = people(20)
    plan = run(_plan(client, frame))
    fake.faults[1] = ("after", lost_answer())
    with pytest.raises(ServerError):
        run(enroll(client, plan, schedule="draft", batch_size=10, concurrency=1, progress=False))
    writes = fake.writes
    with pytest.raises(UnresolvedBatchError) as info:
        run(enroll(client, plan, schedule="draft", batch_size=10, progress=False))
    assert fake.writes == writes  # nothing re-sent
    assert len(info.value.emails) == 10
    assert "assume_added" in (info.value.hint or "")
    result = run(
        enroll(
            client,
            plan,
            schedule="draft",
            batch_size=10,
            progress=False,
            unresolved="assume_added",
        )
    )
    assert result.complete
    everyone_once(fake, frame)


def test_unresolved_resend_for_drafts(client: AsyncClient, fake: FakeMixmax):
    frame = people(10)
    plan = run(_plan(client, frame))
    fake.faults[1] = ("before", lost_answer())  # nothing applied, but we cannot know
    with pytest.raises(ServerError):
        run(enroll(client, plan, schedule="draft", progress=False))
    run(enroll(client, plan, schedule="draft", progress=False, unresolved="resend"))
    everyone_once(fake, frame)


def test_empty_plan_sends_nothing(client: AsyncClient, fake: FakeMixmax):
    plan = run(_plan(client, pd.DataFrame({"email": ["bad"], "first_name": ["x"]})))
    result = run(enroll(client, plan, progress=False))
    assert fake.writes == 0 and list(result.frame["outcome"]) == ["skipped"]


def test_enroll_rejects_a_non_plan(client: AsyncClient):
    with pytest.raises(InputError, match="plan_enrollment"):
        run(enroll(client, people(1), progress=False))  # type: ignore[arg-type]


# -- cancel ----------------------------------------------------------------------------------


def test_cancel_plan_and_apply_idempotent(client: AsyncClient, fake: FakeMixmax):
    for email in ["a@acme.com", "B@acme.com", "c@acme.com"]:
        fake.seed(email)
    fake.seed("done@acme.com", state="completed")
    plan = run(
        plan_cancel(client, SEQ, ["a@acme.com", "b@acme.com", "done@acme.com", "zz@acme.com"])
    )
    assert isinstance(plan, CancelPlan)
    assert plan.emails() == ["a@acme.com", "B@acme.com"]  # the exact case Mixmax holds
    reasons = list(values(plan.frame["reason"]))
    assert reasons == [None, None, "not_active", "not_in_sequence"]
    result = run(cancel_recipients(client, plan, progress=False))
    assert list(result.frame["outcome"].astype(str)) == [
        "cancelled",
        "cancelled",
        "skipped",
        "skipped",
    ]
    writes = fake.writes
    run(cancel_recipients(client, plan, progress=False))
    assert fake.writes == writes


def test_cancel_by_sequence_and_emails_with_lost_answer(client: AsyncClient, fake: FakeMixmax):
    for i in range(15):
        fake.seed(f"p{i}@acme.com")
    fake.faults[1] = ("after", lost_answer())
    emails = [f"p{i}@acme.com" for i in range(15)]
    plan = run(plan_cancel(client, SEQ, emails))
    with pytest.raises(ServerError):
        run(cancel_recipients(client, plan, batch_size=10, concurrency=1, progress=False))
    result = run(cancel_recipients(client, plan, batch_size=10, concurrency=1, progress=False))
    assert result.frame["outcome"].eq("cancelled").all()
    assert int(result.frame["reconciled"].sum()) == 10
    assert all(r["state"] == "completed" for r in fake.rows[SEQ])


def test_cancel_needs_emails(client: AsyncClient):
    with pytest.raises(InputError, match="addresses"):
        run(cancel_recipients(client, SEQ))


def test_results_html_escapes_data(client: AsyncClient, fake: FakeMixmax):
    frame = pd.DataFrame(
        {"email": ["<script>alert(1)</script>", "ok@acme.com"], "first_name": ["<b>x</b>", "y"]}
    )
    plan = run(_plan(client, frame))
    result = run(enroll(client, plan, progress=False))
    for text in (plan._repr_html_(), result._repr_html_()):
        assert "<script>" not in text and "&lt;script&gt;" in text


def test_other_sequence_variables(fake: FakeMixmax):
    other = sequence(
        "aaaaaaaaaaaaaaaaaaaaaaaa", variables=(), subject="Hi", body="<p>{{Company}}</p>"
    )
    fake2 = FakeMixmax([other])
    client2 = AsyncClient(fake2)
    frame = pd.DataFrame({"email": ["a@acme.com"], "Company Name": ["Acme"]})
    plan = run(plan_enrollment(client2, other["_id"], frame))
    assert plan.variable_columns == {"Company": "Company Name"}
    assert plan.recipients() == [{"email": "a@acme.com", "variables": {"Company": "Acme"}}]
    assert os.environ["MIXMAX_NB_HOME"]  # the conftest keeps journals in tmp
