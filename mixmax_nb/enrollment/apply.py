"""Plan and apply enrollments and cancels against Mixmax: the one I/O entry of enrollment.

``plan_enrollment`` / ``plan_cancel`` read what a decision needs (the sequence
and its templates, its recipients, the unsubscribe list, the local journals)
and return a plan from ``plan.py``; they write nothing.

``enroll`` / ``cancel_recipients`` apply a plan in batches under the client's
rate limiter with bounded concurrency, journaling every batch (``journal.py``):

- ``pending`` is written, fsync'd, *after* the limiter grants the batch its slot
  and *immediately before* the request, so a batch still queued when a run is
  interrupted is known not to have been sent (it does not need reconciling);
- ``done`` is written with Mixmax's per-recipient answer;
- a batch left ``pending`` (exception, cancelled task, kernel crash) has an
  unknown outcome: the next run reads the sequence's recipients first and only
  re-sends those it does not list. Drafts are not listed by Mixmax, so an unknown
  draft batch cannot be checked: the run stops with :class:`UnresolvedBatchError`
  and says how to settle it.

Writes go through ``client.run`` like every other call (the connection's schema,
the client's limiter and retry policy), so a write is repeated only after a 429
(refused before anything happened). Its ``before_send`` hook journals ``pending``
at the moment the request really leaves, not before the wait for a rate-limit slot.
"""

from __future__ import annotations

import asyncio
import json
import json.encoder
import logging
import warnings
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import pandas as pd

from .. import catalog
from ..config import Settings
from ..errors import InputError, MixmaxNbError, RateLimitedError
from .journal import (
    Journal,
    JournalBusyError,
    iter_headers,
    journal_dir,
    new_batch_id,
    read_lines,
    replay,
    sequence_history,
)
from .locks import SequenceLock, lock_path, read_writes
from .plan import (
    DEFAULT_DAILY_SEND_LIMIT,
    CancelPlan,
    EnrollmentPlan,
    Schedule,
    SequenceInfo,
    build_cancel_plan,
    build_plan,
    resolve_columns,
)
from .result import CancelResult, EnrollmentResult, Outcome, cancel_result, enrollment_result

if TYPE_CHECKING:
    from ..client import AsyncClient

log = logging.getLogger(__name__)
Unresolved = Literal["check", "assume_added", "resend"]
DEFAULT_CONCURRENCY = 4
"""Batches in flight at once. The limiter spaces request *starts* 0.5 s apart;
a `membrane` call takes 1-3 s, so a few must overlap to use the 120/min budget."""

ProgressFn = Callable[[Mapping[str, int]], None]


class UnresolvedBatchError(MixmaxNbError):
    """Some recipients were sent in a batch whose answer was lost and cannot be checked."""

    def __init__(self, message: str, *, emails: Sequence[str], plan_id: str, hint: str) -> None:
        self.emails = list(emails)
        self.plan_id = plan_id
        super().__init__(message, hint=hint)


# -- reading what a plan needs ----------------------------------------------------------


def _home(home: Any) -> Path:
    if home is not None:
        return Path(home)
    from ..config import Settings

    return Settings.from_env().home


async def _journal_dir(client: AsyncClient, home: Any, origin: tuple[str, str] | None) -> Path:
    if origin is not None and origin[0] == client.backend:
        account = origin[1]
    else:
        account = await client.account_key()
    return journal_dir(_home(home), client.backend, account)


def _check_sequence_id(sequence_id: Any) -> str:
    if not isinstance(sequence_id, str) or not sequence_id.strip():
        raise InputError(
            "A sequence id is required.",
            field="sequence_id",
            hint="client.sequences() lists them; use the `id` column.",
        )
    return sequence_id.strip()


async def load_sequence(client: AsyncClient, sequence_id: str) -> SequenceInfo:
    """The sequence with its stages' templates, or an InputError if it does not exist."""
    sequence_id = _check_sequence_id(sequence_id)
    records = await client.records("list-sequences", {"expand": "stages"})
    for record in records:
        if str(record.get("_id") or record.get("id")) == sequence_id:
            return SequenceInfo.from_record(record)
    named = [r for r in records if str(r.get("name", "")).strip() == sequence_id]
    hint = (
        f"That is the name of sequence {named[0].get('_id')!r}; pass its id."
        if len(named) == 1
        else "client.sequences() lists the sequences of this account; use the `id` column."
    )
    raise InputError(
        f"No sequence with id {sequence_id!r} in this account.", field="sequence_id", hint=hint
    )


async def _check_writable(client: AsyncClient, sequence: SequenceInfo) -> None:
    """Refuse at plan time what Mixmax would refuse batch after batch."""
    if sequence.archived:
        raise InputError(
            f"The sequence {sequence.name!r} is archived.",
            field="sequence_id",
            hint="Unarchive it in Mixmax first, or choose another sequence.",
        )
    if sequence.owner is None or sequence.write_roles is None:
        return
    me = str((await client.me()).get("_id") or "")
    if sequence.read_only_for(me or None):
        raise InputError(
            f"You only have read access to the sequence {sequence.name!r}.",
            field="sequence_id",
            hint="Ask its owner for read-write access, or choose one of your own sequences.",
        )


async def _listed(client: AsyncClient, sequence_id: str) -> tuple[pd.DataFrame, bool]:
    """The sequence's recipients as Mixmax lists them, and whether the 10,000 cap cut them."""
    from ..pages import RecipientsCapWarning

    with warnings.catch_warnings():
        # The plan carries its own note about the cap; one warning is enough.
        warnings.simplefilter("ignore", RecipientsCapWarning)
        frame = await client.recipients(sequence_id)
    return frame, len(frame) >= catalog.RECIPIENTS_CAP


async def plan_enrollment(
    client: AsyncClient,
    sequence_id: str,
    recipients: Any,
    *,
    email: str | None = None,
    variables: Mapping[str, str] | None = None,
    daily_limit: int = DEFAULT_DAILY_SEND_LIMIT,
    home: Any = None,
) -> EnrollmentPlan:
    """Decide who would be added to the sequence, and why not; writes nothing.

    ``recipients``: a DataFrame, a CSV path or file-like, or a list of emails.
    ``email``: the column with the address (default: guessed, ``email`` first).
    ``variables``: Mixmax variable -> column, e.g. ``{"First name": "first_name"}``;
    variables the templates need and you do not map are matched by column name.
    """
    from .input import read_recipients

    frame = read_recipients(recipients, email=email or "email")
    sequence = await load_sequence(client, sequence_id)
    resolve_columns(sequence, frame, email, variables)  # fail fast, before the big reads
    await _check_writable(client, sequence)
    account = await client.account_key()
    directory = journal_dir(_home(home), client.backend, account)
    # A run killed mid-batch left an answer unknown: settle it first (reading the
    # sequence), so this plan neither skips nor re-sends those people blindly.
    unsettled = await settle_journals(client, directory, sequence_id=sequence.id)
    # Read before the sequence: a write after this point shows as a changed count.
    lock_file = lock_path(Settings.from_env().lock_dir, client.backend, directory.name, sequence.id)
    seen = read_writes(lock_file)
    existing, capped = await _listed(client, sequence.id)
    unsubscribed = await client.unsubscribes()
    history = sequence_history(directory, sequence.id)
    plan = build_plan(
        sequence,
        frame,
        email=email,
        variables=variables,
        existing=existing,
        unsubscribed=unsubscribed,
        journaled=history,
        existing_capped=capped,
        daily_limit=daily_limit,
    )
    note = frame.attrs.get("encoding_note")
    plan.warnings = [*unsettled, *([note] if note else []), *plan.warnings]
    plan.origin = (client.backend, account)
    plan.seen_writes = seen
    return plan


async def settle_journals(
    client: AsyncClient, directory: Path, *, sequence_id: str | None = None
) -> list[str]:
    """Reconcile every journal (of one sequence, or all) whose batch answer was lost and
    that no run holds now; return what could not be settled, as sentences.

    A journal another run holds has its batch in flight, not lost: it is left alone."""
    notes: list[str] = []
    for path, header in iter_headers(directory):
        kind = header.get("kind")
        seq = header.get("sequence")
        if kind not in ("enroll", "cancel") or not isinstance(seq, str):
            continue
        if sequence_id is not None and seq != sequence_id:
            continue
        if not replay(read_lines(path)).unknown:
            continue
        try:
            journal = Journal.open(directory, path.stem)
        except JournalBusyError:
            continue
        with journal:
            state = journal.state()
            if not state.unknown:
                continue
            times = [_epoch(state.sent_at.get(b, "")) for b in set(state.unknown.values())]
            known = [t for t in times if t is not None]
            target = _Target(kind, seq, str(header.get("plan") or path.stem))
            try:
                await _settle_unknown(
                    client,
                    target,
                    journal,
                    state.unknown,
                    sent_at=min(known) if len(known) == len(times) else None,
                    draft=header.get("schedule") == "draft",
                    unresolved="check",
                )
            except UnresolvedBatchError as exc:
                notes.append(f"{exc.message} ({len(exc.emails):,} address(es); {exc.hint})")
    return notes


def _journal_rows(directory: Path, sequence_id: str | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path, header in iter_headers(directory):
        seq = header.get("sequence")
        if sequence_id is not None and seq != sequence_id:
            continue
        state = replay(read_lines(path))
        try:
            Journal.open(directory, path.stem).close()
            running = False
        except JournalBusyError:
            running = True
        count = int(header.get("count") or 0)
        answered = len(state.outcomes)
        rows.append(
            {
                "plan_id": path.stem,
                "kind": header.get("kind"),
                "sequence_id": seq,
                "schedule": header.get("schedule"),
                "recipients": count,
                "answered": answered,
                "unknown": len(state.unknown),
                "not_sent": max(0, count - answered - len(state.unknown)),
                "running": running,
                "started": pd.Timestamp(header["at"]) if header.get("at") else pd.NaT,
                "journal": str(path),
            }
        )
    return rows


def pending_frame(directory: Path, sequence_id: str | None = None) -> pd.DataFrame:
    """The journals with work left: running now, an answer lost (``unknown``), or
    recipients never reached (``not_sent``: run the same enrollment again to finish)."""
    columns = [
        "plan_id", "kind", "sequence_id", "schedule", "recipients", "answered", "unknown",
        "not_sent", "running", "started", "journal",
    ]  # fmt: skip
    rows = [
        r
        for r in _journal_rows(directory, sequence_id)
        if r["running"] or r["unknown"] or r["not_sent"]
    ]
    frame = pd.DataFrame(rows, columns=columns)
    for name in ("recipients", "answered", "unknown", "not_sent"):
        frame[name] = frame[name].astype("Int64")
    frame["running"] = frame["running"].astype("boolean")
    frame["started"] = pd.to_datetime(frame["started"], utc=True)
    return frame.sort_values("started", ignore_index=True)


async def pending_enrollments(
    client: AsyncClient, sequence_id: str | None = None, *, settle: bool = False, home: Any = None
) -> pd.DataFrame:
    """Unfinished enrollments and cancels of this account (see :func:`pending_frame`);
    ``settle=True`` first reconciles every lost answer against its sequence."""
    directory = journal_dir(_home(home), client.backend, await client.account_key())
    if settle:
        await settle_journals(client, directory, sequence_id=sequence_id)
    return pending_frame(directory, sequence_id)


async def plan_cancel(
    client: AsyncClient, sequence_id: str, emails: Any, *, active_only: bool = True
) -> CancelPlan:
    """Which of ``emails`` (a list, a Series, or a frame with an ``email`` column) would
    leave the sequence; writes nothing."""
    from .input import read_recipients

    frame = read_recipients(emails)
    column = "email" if "email" in frame.columns else None
    if column is None:
        from .variables import guess_email_column

        column = guess_email_column([str(c) for c in frame.columns])
        if column is None:
            raise InputError("No email column in the input.", field="emails")
    sequence = await load_sequence(client, sequence_id)
    existing, capped = await _listed(client, sequence.id)
    plan = build_cancel_plan(
        sequence,
        frame[column].tolist(),
        existing=existing,
        existing_capped=capped,
        active_only=active_only,
    )
    plan.origin = (client.backend, await client.account_key())
    return plan


# -- the batch engine ---------------------------------------------------------------------


@dataclass
class _Job:
    kind: Literal["enroll", "cancel"]
    action: str
    sequence_id: str
    plan_id: str
    items: list[dict[str, Any]]
    """One per address: ``{"email": ...}`` plus what the request carries for it."""
    batch_size: int
    payload: Callable[[list[dict[str, Any]]], dict[str, Any]]
    parse: Callable[[Any, list[str]], list[dict[str, Any]]]
    header: dict[str, Any]
    rows: Mapping[str, Any] = field(default_factory=dict)
    """Address -> input row, to name the row an error is about."""
    seen_writes: int | None = None
    """The sequence's write count when the plan read it (None: unknown, read again)."""
    sizes: dict[int, int] = field(default_factory=dict)
    """``id`` of one of ``items`` -> its encoded size: measured once, when the whole job
    is split up front, not again on every run (a resumed 50,000-row job would spend a
    second there, on the event loop, between two paced writes). By identity, not by
    address: the job holds its items, and two items never share a size by mistake."""

    def batches(self, items: list[dict[str, Any]], max_bytes: int) -> list[list[dict[str, Any]]]:
        rows = [self.rows.get(str(item["email"])) for item in items]
        sizes = [self._size(item) for item in items]
        return split_batches(items, self.payload, self.batch_size, max_bytes, rows, sizes)

    def _size(self, item: dict[str, Any]) -> int:
        size = self.sizes.get(id(item))
        if size is None:
            size = self.sizes[id(item)] = _encoded_size(item)
        return size


def _enroll_outcomes(output: Any, emails: list[str]) -> list[dict[str, Any]]:
    """Mixmax's per-recipient statuses, matched to what we sent (exactly, else by case)."""
    items = output.get("recipients") if isinstance(output, Mapping) else output
    by_exact: dict[str, dict[str, Any]] = {}
    by_key: dict[str, dict[str, Any]] = {}
    for item in items if isinstance(items, list) else ():
        if isinstance(item, Mapping) and item.get("email"):
            by_exact.setdefault(str(item["email"]), dict(item))
            by_key.setdefault(str(item["email"]).casefold(), dict(item))
    out: list[dict[str, Any]] = []
    for email in emails:
        got = by_exact.get(email) or by_key.get(email.casefold())
        if got is None:
            continue  # no answer for it: stays unknown, reconciled on the next run
        status = str(got.get("status") or "error")
        errors = got.get("errors") or ([got["error"]] if got.get("error") else [])
        detail = "; ".join(
            str(e.get("message", e)) if isinstance(e, Mapping) else str(e) for e in errors
        )
        if status == "duplicated" and not detail:
            detail = "Mixmax already had this recipient in the sequence"
        if status == "unsubscribed" and not detail:
            detail = "Mixmax refused an unsubscribed address"
        out.append({"email": email, "status": status, "detail": detail})
    return out


def _cancel_outcomes(output: Any, emails: list[str]) -> list[dict[str, Any]]:
    items = output.get("recipients") if isinstance(output, Mapping) else output
    exited: set[str] = set()
    for item in items if isinstance(items, list) else ():
        value = item.get("email") if isinstance(item, Mapping) else item
        if value:
            exited.add(str(value).casefold())
    return [
        {"email": e, "status": "cancelled", "detail": ""}
        if e.casefold() in exited
        else {"email": e, "status": "not_cancelled", "detail": "Mixmax did not list it as exited"}
        for e in emails
    ]


class _Run:
    """One application of a job: journal, progress, workers."""

    def __init__(
        self,
        client: AsyncClient,
        job: _Job,
        journal: Journal,
        *,
        concurrency: int,
        progress: bool,
        on_progress: ProgressFn | None,
        stop: Any,
    ) -> None:
        self.client = client
        self.job = job
        self.journal = journal
        self.concurrency = max(1, int(concurrency))
        self.show_progress = progress
        self.on_progress = on_progress
        self.stop = stop
        self._outcomes: dict[str, Outcome] = {}
        self._tally: Counter[str] = Counter()
        self.bar: Any = None
        self.sent_any = False
        """A batch left for Mixmax (its answer may or may not have come back)."""

    @property
    def outcomes(self) -> dict[str, Outcome]:
        return self._outcomes

    @outcomes.setter
    def outcomes(self, value: Mapping[str, Outcome]) -> None:
        self._outcomes = dict(value)
        self._tally = Counter(outcome.status for outcome in self._outcomes.values())

    def _record(self, email: str, outcome: Outcome) -> None:
        old = self._outcomes.get(email)
        if old is not None:
            self._tally[old.status] -= 1
        self._outcomes[email] = outcome
        self._tally[outcome.status] += 1

    def _counts(self) -> dict[str, int]:
        # Kept as a running tally: counting every outcome after each batch made a
        # 50,000-recipient job quadratic (4 s on the event loop, slots lost to pacing).
        counts: dict[str, int] = {"total": len(self.job.items), "done": len(self._outcomes)}
        counts.update((status, n) for status, n in self._tally.items() if n > 0)
        return counts

    def _report(self, advanced: int) -> None:
        counts = self._counts()
        if self.bar is not None:
            self.bar.update(advanced)
            self.bar.set_postfix(
                {k: v for k, v in counts.items() if k not in ("total", "done")}, refresh=False
            )
        if self.on_progress is not None:
            self.on_progress(counts)

    def _stopped(self) -> bool:
        return self.stop is not None and bool(self.stop.is_set())

    async def _send(self, batch: list[dict[str, Any]]) -> None:
        job = self.job
        emails = [str(item["email"]) for item in batch]
        payload = job.payload(batch)
        batch_id = new_batch_id()

        def pending() -> None:
            # Called once the limiter has granted the slot, right before the request.
            self.journal.write({"t": "pending", "batch": batch_id, "emails": emails})
            self.sent_any = True

        try:
            # The client's one write path: schema check, pacing, a write never retried
            # but after a 429.
            result = await self.client.run(job.action, payload, before_send=pending)
        except RateLimitedError as exc:
            # 429 after every retry: Mixmax refused before doing anything.
            self.journal.write({"t": "not_sent", "batch": batch_id, "error": str(exc)[:500]})
            raise
        output = result.get("output") if isinstance(result, Mapping) else result
        outcomes = job.parse(output, emails)
        self.journal.write(
            {
                "t": "done",
                "batch": batch_id,
                "run": result.get("actionRunId") if isinstance(result, Mapping) else None,
                "outcomes": outcomes,
            }
        )
        for item in outcomes:
            self._record(item["email"], Outcome.from_json({**item, "batch": batch_id}))
        self._report(len(outcomes))

    async def run(self, remaining: list[dict[str, Any]]) -> None:
        batches = self.job.batches(remaining, self.client.transport.max_input_bytes)
        if not batches:
            return
        pending = iter(batches)
        failures: list[BaseException] = []

        async def worker() -> None:
            # Stop taking new batches after the first failure or a stop request, but
            # let batches already sent finish: cancelling them would lose their answer.
            while not failures and not self._stopped():
                batch = next(pending, None)
                if batch is None:
                    return
                try:
                    await self._send(batch)
                except Exception as exc:
                    failures.append(exc)
                    return

        workers = [
            asyncio.create_task(worker()) for _ in range(min(self.concurrency, len(batches)))
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
        if failures:
            error = failures[0]
            counts = self._counts()
            error.add_note(
                f"{counts['done']:,} of {counts['total']:,} recipients have an answer. Run the "
                "same call again to finish: answered batches are not re-sent, and a batch whose "
                "answer was lost is checked against the sequence first."
            )
            raise error


_encode_text: Callable[[str], str] = json.encoder.encode_basestring  # what dumps uses


def _encoded_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON, as the request will carry it.

    Text and dicts of text (a recipient: its email and variables) are measured with
    the encoder's own string escaping, without building the document: a 50,000-row
    job is measured at every run, on the event loop between paced writes. Anything
    else goes through ``json.dumps``."""
    if isinstance(value, str):
        return len(_encode_text(value).encode("utf-8"))
    if type(value) is dict and all(type(k) is str for k in value):
        inner = sum(_encoded_size(k) + 1 + _encoded_size(v) for k, v in value.items())
        return 2 + inner + max(len(value) - 1, 0)
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def split_batches(
    items: list[dict[str, Any]],
    payload: Callable[[list[dict[str, Any]]], dict[str, Any]],
    max_count: int,
    max_bytes: int,
    rows: Sequence[Any] | None = None,
    sizes: Sequence[int] | None = None,
) -> list[list[dict[str, Any]]]:
    """Consecutive batches of at most ``max_count`` items whose encoded input stays within
    ``max_bytes`` (one command-line argument on the CLI path). Raises InputError naming
    the input row (``rows``, aligned with ``items``) when one item alone cannot fit; the
    whole split is done before anything is sent. ``sizes``: each item's encoded size,
    when the caller has measured them already."""
    overhead = _encoded_size(payload([]))
    room = max_bytes - overhead
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    used = 0
    for index, item in enumerate(items):
        size = (sizes[index] if sizes is not None else _encoded_size(item)) + 1  # and a comma
        if size > room:
            row = rows[index] if rows is not None else None
            raise _item_too_big(item, row, size + overhead, max_bytes)
        if current and (len(current) >= max_count or used + size > room):
            batches.append(current)
            current, used = [], 0
        current.append(item)
        used += size
    if current:
        batches.append(current)
    return batches


def _item_too_big(item: Mapping[str, Any], row: Any, size: int, limit: int) -> InputError:
    where = f" (input row {row})" if row is not None else ""
    return InputError(
        f"The recipient {item.get('email')!r}{where} makes an input of {size:,} bytes, more "
        f"than the {limit:,} this connection can take in one call.",
        field="variables",
        hint="Shorten that row's variables (or leave the long ones out), then run again; "
        "nothing was sent.",
    )


CLOCK_MARGIN_S = 120.0
"""How far Mixmax's clock and ours may disagree when we stop a reconciling scan early."""


def _epoch(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


async def _scan_recent(
    client: AsyncClient, sequence_id: str, wanted: set[str], sent_at: float | None
) -> tuple[dict[str, str], bool]:
    """Exact address -> state for the ``wanted`` addresses the sequence lists.

    Reading a 10,000-recipient list costs 200 requests (100 s at the rate limit),
    so the scan stops early when it safely can: once every wanted address is
    found, or -- when the list is observed to come newest first -- once it reaches
    recipients created well before the lost batch was sent (anything that batch
    added would have been listed above them). If the order is not newest first,
    the whole list is read.
    """
    from ..pages import RecipientsCapWarning, iter_pages

    cutoff_ms = (sent_at - CLOCK_MARGIN_S) * 1000 if sent_at is not None else None
    found: dict[str, str] = {}
    seen = 0
    newest_first = True
    previous: float | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecipientsCapWarning)
        pages = cast(
            AsyncGenerator[list[dict[str, Any]], None],
            iter_pages(client.run_action, "get-sequence-recipients", {"sequenceId": sequence_id}),
        )
        async for page in pages:
            oldest: float | None = None
            for record in page:
                seen += 1
                to = record.get("to")
                email = (to.get("email") if isinstance(to, Mapping) else None) or record.get(
                    "email"
                )
                if isinstance(email, str) and email in wanted:
                    found[email] = str(record.get("state") or "")
                created = record.get("createdAt")
                if not isinstance(created, int | float) or isinstance(created, bool):
                    newest_first = False
                    continue
                if previous is not None and created > previous:
                    newest_first = False
                previous = oldest = float(created)
            if len(found) == len(wanted):
                break
            if newest_first and cutoff_ms is not None and oldest is not None and oldest < cutoff_ms:
                break
        else:
            return found, seen >= catalog.RECIPIENTS_CAP
        await pages.aclose()
    return found, False


@dataclass(frozen=True)
class _Target:
    """What settling a journal needs to know about its plan."""

    kind: Literal["enroll", "cancel"]
    sequence_id: str
    plan_id: str


async def _settle_unknown(
    client: AsyncClient,
    job: _Job | _Target,
    journal: Journal,
    unknown: Mapping[str, str],
    *,
    sent_at: float | None,
    draft: bool,
    unresolved: Unresolved,
) -> None:
    """Decide what happened to addresses sent in batches whose answer was lost."""
    emails = list(unknown)
    success = "success" if job.kind == "enroll" else "cancelled"
    if unresolved == "assume_added":
        assumed = [{"email": e, "status": success} for e in emails]
        journal.write({"t": "reconciled", "present": assumed, "absent": [], "how": "assumed"})
        return
    if unresolved == "resend":
        journal.write({"t": "reconciled", "present": [], "absent": emails, "how": "resend"})
        return
    n = len(emails)
    if job.kind == "enroll" and draft:
        raise UnresolvedBatchError(
            f"{n:,} recipient(s) were sent as drafts in a batch whose answer was lost, and "
            "Mixmax does not list drafts, so they cannot be checked automatically.",
            emails=emails,
            plan_id=job.plan_id,
            hint=(
                "Look for them among the sequence's drafts in Mixmax (the addresses are in "
                "this error's .emails), then run the same enroll again with "
                "unresolved='assume_added' if they are there, or unresolved='resend' if not."
            ),
        )
    if job.kind == "enroll":
        states, capped = await _scan_recent(client, job.sequence_id, set(emails), sent_at)
    else:
        listed, capped = await _listed(client, job.sequence_id)
        states = {}
        for email, state in zip(
            listed["email"], listed.get("state", [None] * len(listed)), strict=True
        ):
            if isinstance(email, str):
                states[email] = "" if state is None or state is pd.NA else str(state)
    present: list[dict[str, Any]] = []
    absent: list[str] = []
    for email in emails:
        if job.kind == "enroll":
            # Exact case: a case variant in the list is someone else to Mixmax.
            if email in states:
                present.append({"email": email, "status": "success"})
            else:
                absent.append(email)
        elif email in states and states[email] != "active":
            present.append({"email": email, "status": "cancelled"})
        else:
            absent.append(email)  # still active or not listed: cancelling again is harmless
    if job.kind == "enroll" and capped and absent:
        raise UnresolvedBatchError(
            f"{len(absent):,} recipient(s) were sent in a batch whose answer was lost, and the "
            "sequence has more than the 10,000 recipients Mixmax lists, so their absence "
            "proves nothing.",
            emails=absent,
            plan_id=job.plan_id,
            hint=(
                "Check them in Mixmax (this error's .emails), then run the same enroll again "
                "with unresolved='assume_added' or unresolved='resend'."
            ),
        )
    journal.write({"t": "reconciled", "present": present, "absent": absent, "how": "listed"})


async def _apply(
    client: AsyncClient,
    job: _Job,
    *,
    home: Any,
    origin: tuple[str, str] | None,
    draft: bool,
    unresolved: Unresolved,
    concurrency: int,
    progress: bool,
    on_progress: ProgressFn | None,
    stop: Any,
) -> tuple[dict[str, Outcome], bool]:
    """Run the job to completion (or until stopped); return outcomes and whether it stopped."""
    if unresolved not in ("check", "assume_added", "resend"):
        raise InputError(
            f"Unknown unresolved={unresolved!r}.",
            field="unresolved",
            hint="Use 'check' (default), 'assume_added' or 'resend'.",
        )
    directory = await _journal_dir(client, home, origin)
    lock = await SequenceLock.acquire(
        lock_path(Settings.from_env().lock_dir, client.backend, directory.name, job.sequence_id),
        on_wait=lambda: _note_waiting(job),
    )
    try:
        return await _apply_locked(
            client,
            job,
            lock,
            directory,
            draft=draft,
            unresolved=unresolved,
            concurrency=concurrency,
            progress=progress,
            on_progress=on_progress,
            stop=stop,
        )
    finally:
        lock.release()


def _note_waiting(job: _Job) -> None:
    log.info(
        "waiting for another %s into sequence %s to finish (it holds the sequence's lock)",
        job.kind,
        job.sequence_id,
    )


async def _apply_locked(
    client: AsyncClient,
    job: _Job,
    lock: SequenceLock,
    directory: Path,
    *,
    draft: bool,
    unresolved: Unresolved,
    concurrency: int,
    progress: bool,
    on_progress: ProgressFn | None,
    stop: Any,
) -> tuple[dict[str, Outcome], bool]:
    with Journal.open(directory, job.plan_id) as journal:
        state = journal.state()
        if state.header is None:
            journal.write(job.header)
        if state.unknown:
            times = [_epoch(state.sent_at.get(b, "")) for b in set(state.unknown.values())]
            known = [t for t in times if t is not None]
            await _settle_unknown(
                client,
                job,
                journal,
                state.unknown,
                sent_at=min(known) if len(known) == len(times) else None,
                draft=draft,
                unresolved=unresolved,
            )
            state = journal.state()
        run = _Run(
            client,
            job,
            journal,
            concurrency=concurrency,
            progress=progress,
            on_progress=on_progress,
            stop=stop,
        )
        if state.unknown:  # settling must leave nothing unknown; never send blind
            raise MixmaxNbError(
                f"{len(state.unknown):,} recipient(s) still have an unknown outcome.",
                hint=f"Inspect the journal {journal.path} before running again.",
            )
        run.outcomes = dict(state.outcomes)
        remaining = [item for item in job.items if item["email"] not in run.outcomes]
        if job.kind == "enroll" and remaining:
            remaining = await _drop_added_meanwhile(client, job, journal, lock, remaining)
            run.outcomes = dict(journal.state().outcomes)
        if remaining:
            from tqdm.auto import tqdm

            # Only when asked: an explicit disable=False would override TQDM_DISABLE
            # (tqdm reads TQDM_* only for arguments not given), which make demo sets.
            quiet: dict[str, Any] = {} if progress else {"disable": True}
            run.bar = tqdm(
                total=len(job.items),
                initial=len(job.items) - len(remaining),
                desc=f"{job.kind} {job.sequence_id}",
                unit=" recipients",
                leave=True,
                **quiet,
            )
        try:
            await run.run(remaining)
        finally:
            if run.bar is not None:
                run.bar.close()
            if run.sent_any:
                # The sequence changed: plans that read it before now must look again;
                # this plan's own next run need not (the mark says it was us).
                lock.bump()
                journal.write({"t": "mark", "writes": lock.writes()})
        outcomes = journal.state().outcomes
        return outcomes, run._stopped()


async def _drop_added_meanwhile(
    client: AsyncClient,
    job: _Job,
    journal: Journal,
    lock: SequenceLock,
    items: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Leave out, before anything is sent, whoever another run put in the sequence after
    this plan read it: Mixmax would take a case variant of them as someone new.

    Other runs on this machine hold the same lock while they write and count their
    writes in it; when the count is still the one the plan saw, nothing changed and no
    request is needed. Otherwise the sequence is read again (and our own journals)."""
    now = lock.writes()
    if now == job.seen_writes or now == journal.state().writes:
        return items
    listed, _capped = await _listed(client, job.sequence_id)
    present: dict[str, str] = {
        str(e).casefold(): str(e) for e in listed["email"].dropna() if isinstance(e, str)
    }
    for key, note in sequence_history(journal.path.parent, job.sequence_id).items():
        present.setdefault(key, note)
    keep: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for item in items:
        email = str(item["email"])
        found = present.get(email.casefold())
        if found is None:
            keep.append(item)
        else:
            as_what = f" (as {found})" if found.casefold() == email.casefold() else f": {found}"
            dropped.append(
                {
                    "email": email,
                    "status": "duplicated",
                    "detail": "already in the sequence" + as_what + "; another run added it "
                    "after this plan was made, so it was not sent",
                }
            )
    if dropped:
        journal.write({"t": "done", "batch": "precheck-" + new_batch_id(), "outcomes": dropped})
    return keep


# -- public coroutines ----------------------------------------------------------------------


def _batch_size(value: int, maximum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise InputError(f"batch_size must be 1..{maximum}.", field="batch_size")
    return value


async def enroll(
    client: AsyncClient,
    plan: EnrollmentPlan,
    schedule: Any = "now",
    *,
    batch_size: int = catalog.ENROLL_BATCH_MAX,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: bool = True,
    on_progress: ProgressFn | None = None,
    stop: Any = None,
    unresolved: Unresolved = "check",
    home: Any = None,
) -> EnrollmentResult:
    """Add the plan's ``add`` rows to its sequence; safe to run again (see the module doc).

    ``schedule``: ``"now"``, a datetime (naive = UTC), or ``"draft"``.
    ``stop``: anything with ``is_set()`` (a threading/asyncio Event): when set, no
    new batch starts and the result marks the rest ``not_sent``.
    ``unresolved``: what to do with recipients whose batch's answer was lost and
    cannot be checked (drafts): ``"check"`` raises :class:`UnresolvedBatchError`.
    """
    if not isinstance(plan, EnrollmentPlan):
        raise InputError("enroll() takes the plan returned by plan_enrollment().", field="plan")
    sched = Schedule.parse(schedule)
    size = _batch_size(batch_size, catalog.ENROLL_BATCH_MAX)
    items = plan.recipients()
    if not items:
        return enrollment_result(plan, {}, None)
    plan_id = plan.fingerprint(sched, items)
    scheduled_at = sched.scheduled_at

    def payload(batch: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {"sequenceId": plan.sequence_id, "recipients": batch}
        if scheduled_at is not None:
            body["scheduledAt"] = scheduled_at
        return body

    job = _Job(
        kind="enroll",
        action="add-recipient-to-sequence",
        sequence_id=plan.sequence_id,
        plan_id=plan_id,
        items=items,
        batch_size=size,
        payload=payload,
        parse=_enroll_outcomes,
        header={
            "t": "plan",
            "kind": "enroll",
            "plan": plan_id,
            "sequence": plan.sequence_id,
            "schedule": sched.token,
            "count": len(items),
        },
        rows=dict(zip(plan.to_add["email"].astype(str), plan.to_add["row"], strict=True)),
        seen_writes=plan.seen_writes,
    )
    job.batches(items, client.transport.max_input_bytes)  # a row too big: refused up front
    outcomes, _ = await _apply(
        client,
        job,
        home=home,
        origin=getattr(plan, "origin", None),
        draft=sched.kind == "draft",
        unresolved=unresolved,
        concurrency=concurrency,
        progress=progress,
        on_progress=on_progress,
        stop=stop,
    )
    return enrollment_result(plan, outcomes, plan_id)


async def cancel_recipients(
    client: AsyncClient,
    plan: CancelPlan | str,
    emails: Any = None,
    *,
    batch_size: int = catalog.CANCEL_BATCH_MAX,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: bool = True,
    on_progress: ProgressFn | None = None,
    stop: Any = None,
    home: Any = None,
) -> CancelResult:
    """Remove recipients from a sequence: a :class:`CancelPlan`, or a sequence id and emails
    (planned first). Safe to run again: answered batches are not re-sent."""
    if isinstance(plan, str):
        if emails is None:
            raise InputError(
                "Give the addresses to cancel.",
                field="emails",
                hint="cancel_recipients(sequence_id, ['a@acme.com', ...]); it never cancels "
                "everyone at once.",
            )
        plan = await plan_cancel(client, plan, emails)
    if not isinstance(plan, CancelPlan):
        raise InputError("cancel_recipients() takes a CancelPlan or a sequence id.", field="plan")
    size = _batch_size(batch_size, catalog.CANCEL_BATCH_MAX)
    targets = plan.emails()
    if not targets:
        return cancel_result(plan, {}, None)
    plan_id = plan.fingerprint()
    sequence_id = plan.sequence_id
    job = _Job(
        kind="cancel",
        action="cancel-sequence-recipient",
        sequence_id=plan.sequence_id,
        plan_id=plan_id,
        items=[{"email": e} for e in targets],
        batch_size=size,
        payload=lambda batch: {
            "sequenceId": sequence_id,
            "emails": [item["email"] for item in batch],
        },
        parse=_cancel_outcomes,
        header={
            "t": "plan",
            "kind": "cancel",
            "plan": plan_id,
            "sequence": plan.sequence_id,
            "count": len(targets),
        },
    )
    outcomes, _ = await _apply(
        client,
        job,
        home=home,
        origin=getattr(plan, "origin", None),
        draft=False,
        unresolved="check",
        concurrency=concurrency,
        progress=progress,
        on_progress=on_progress,
        stop=stop,
    )
    return cancel_result(plan, outcomes, plan_id)
