"""Enrollment and cancel plans: who would be added or removed, and why not (pure).

Nothing here performs I/O. The apply side (``apply.py``) reads the sequence, its
recipients and the unsubscribe list, hands them in as DataFrames, and gets back
a plan a person can inspect before anything is written.

Rules, checked in this order for every input row (the first that matches wins):

1. ``invalid_email``       email-validator rejects the address (no network look-up);
2. ``unsubscribed``        the address (case-insensitively) or its domain is unsubscribed;
3. ``already_in_sequence`` the address or a case variant of it is in the sequence
                           (any state: Mixmax answers ``duplicated`` for past recipients,
                           and would mail a case variant a second time);
4. ``missing_variables``   a variable the templates need has no value in this row;
5. ``duplicate_in_input``  an earlier row that is being added has the same address,
                           case variants included.

Rule 5 comes last on purpose: a row skipped for a missing value does not claim
the address, so a later complete row for the same person is still added.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import pandas as pd

from ..errors import InputError
from .emails import Checked, check_emails, email_key
from .variables import describe_mapping, guess_columns, guess_email_column, required_variables

DEFAULT_DAILY_SEND_LIMIT = 500  # Mixmax's default per-user daily limit (max 1,000)
ADD, SKIP, CANCEL = "add", "skip", "cancel"
INVALID = "invalid_email"
UNSUBSCRIBED = "unsubscribed"
IN_SEQUENCE = "already_in_sequence"
MISSING = "missing_variables"
DUPLICATE = "duplicate_in_input"
NOT_IN_SEQUENCE = "not_in_sequence"
NOT_ACTIVE = "not_active"
ENROLL_REASONS = (INVALID, UNSUBSCRIBED, IN_SEQUENCE, MISSING, DUPLICATE)
CANCEL_REASONS = (INVALID, DUPLICATE, NOT_IN_SEQUENCE, NOT_ACTIVE)
REASON_TEXT = {
    INVALID: "invalid email",
    UNSUBSCRIBED: "unsubscribed",
    IN_SEQUENCE: "already in the sequence",
    MISSING: "missing required variables",
    DUPLICATE: "duplicate in input",
    NOT_IN_SEQUENCE: "not in the sequence",
    NOT_ACTIVE: "not active",
}
PREVIEW_ROWS = 20


# -- inputs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SequenceInfo:
    """What planning needs to know about the target sequence."""

    id: str
    name: str = ""
    variables: tuple[str, ...] = ()
    """Names the sequence says it uses (Mixmax's ``variables``)."""
    templates: tuple[str, ...] = ()
    """Every stage's subject and HTML body."""
    owner: str | None = None
    """``userId`` of the sequence's owner."""
    write_roles: tuple[str, ...] | None = None
    """Roles it is shared with (users and teams); None when Mixmax did not say."""
    archived: bool = False

    def read_only_for(self, user_id: str | None) -> bool:
        """True only when the record shows this user cannot add recipients.

        Owners can; others need a ``read-write`` share. When the record carries no
        sharing information we cannot tell, and let Mixmax decide.
        """
        if user_id is None or self.owner is None or self.owner == user_id:
            return False
        if self.write_roles is None:
            return False
        return "read-write" not in self.write_roles

    @property
    def required(self) -> list[str]:
        return required_variables(self.variables, self.templates)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> SequenceInfo:
        """From a raw ``list-sequences`` record (``expand=stages`` for the templates)."""
        templates: list[str] = []
        for stage in record.get("stages") or ():
            if isinstance(stage, Mapping):
                templates.extend(str(stage.get(k) or "") for k in ("subject", "body"))
        raw_vars = record.get("variables") or ()
        names = [v.get("name", "") if isinstance(v, Mapping) else v for v in raw_vars]
        shared = record.get("shared")
        roles: tuple[str, ...] | None = None
        if isinstance(shared, Mapping):
            entries = [*(shared.get("users") or ()), *(shared.get("teams") or ())]
            roles = tuple(str(e.get("role")) for e in entries if isinstance(e, Mapping))
        owner = record.get("userId")
        return cls(
            id=str(record.get("_id") or record.get("id") or ""),
            name=str(record.get("name") or ""),
            variables=tuple(str(n) for n in names if n),
            templates=tuple(t for t in templates if t),
            owner=str(owner) if owner else None,
            write_roles=roles,
            archived=bool(record.get("archived")),
        )


@dataclass(frozen=True)
class Schedule:
    """When added recipients start: ``now``, at a time, or as drafts (not started)."""

    kind: Literal["now", "at", "draft"]
    at: datetime | None = None

    @classmethod
    def parse(cls, value: Any, *, now: datetime | None = None) -> Schedule:
        """``"now"``/None, ``"draft"``, a datetime, a pandas Timestamp or an ISO string.

        Naive times are UTC, as everywhere in the toolkit. A time more than a
        minute in the past is refused: Mixmax would send at once, which is rarely
        what a typo in a date meant.
        """
        if isinstance(value, Schedule):
            return value
        if value is None or (isinstance(value, str) and value.strip().lower() == "now"):
            return cls("now")
        if isinstance(value, str) and value.strip().lower() == "draft":
            return cls("draft")
        if isinstance(value, bool) or not isinstance(value, str | datetime | date):
            raise InputError(
                f"Unknown schedule {value!r}.",
                field="schedule",
                hint='Use "now", "draft" or a datetime, e.g. datetime(2026, 1, 5, 9, tzinfo=UTC).',
            )
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError):
            raise InputError(
                f"Cannot read {value!r} as a date and time.",
                field="schedule",
                hint='Use "now", "draft", a datetime or an ISO string like "2026-01-05T09:00Z".',
            ) from None
        if pd.isna(stamp):
            raise InputError("The schedule is empty (NaT).", field="schedule")
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        at = stamp.to_pydatetime()
        current = now or datetime.now(UTC)
        if at < current - timedelta(minutes=1):
            raise InputError(
                f"The schedule {at.isoformat()} is in the past.",
                field="schedule",
                hint='Use "now" to start at once, or a future time.',
            )
        return cls("at", at)

    @property
    def token(self) -> str:
        """Identity in the plan id. ``now`` stays ``now``: re-running later is the same job."""
        if self.kind == "at" and self.at is not None:
            return f"at:{self.epoch_ms}"
        return self.kind

    @property
    def epoch_ms(self) -> int | None:
        return int(self.at.timestamp() * 1000) if self.at is not None else None

    @property
    def scheduled_at(self) -> int | bool | None:
        """The request's ``scheduledAt``: None (omit: now), epoch ms, or False (draft)."""
        if self.kind == "draft":
            return False
        return self.epoch_ms

    def start_day(self, today: date) -> date | None:
        if self.kind == "draft":
            return None
        return self.at.date() if self.at is not None else today

    def describe(self) -> str:
        if self.kind == "draft":
            return "as drafts (nothing sends until they are activated in Mixmax)"
        if self.at is not None:
            return f"starting {self.at:%a %Y-%m-%d %H:%M} UTC"
        return "starting now"


# -- sending days ----------------------------------------------------------------------


def next_weekday(day: date) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def sending_days(count: int, daily_limit: int, start: date) -> list[tuple[date, int]]:
    """First emails per weekday when ``count`` start on ``start`` at ``daily_limit`` a day.

    Mixmax moves what exceeds the daily limit to the next weekday. The limit is
    per user across all sequences, so this is a best case.
    """
    if daily_limit < 1:
        raise InputError("The daily send limit must be at least 1.", field="daily_limit")
    days: list[tuple[date, int]] = []
    day = next_weekday(start)
    left = count
    while left > 0:
        today = min(left, daily_limit)
        days.append((day, today))
        left -= today
        day = next_weekday(day + timedelta(days=1))
    return days


# -- shared helpers -----------------------------------------------------------------------


def _column(frame: pd.DataFrame, email: str | None) -> str:
    columns = [str(c) for c in frame.columns]
    if email is not None:
        if email in columns:
            return email
        hint = guess_email_column(columns)
        raise InputError(
            f"The input has no column {email!r}.",
            field="email",
            hint=(f"Did you mean email={hint!r}? " if hint else "")
            + f"Columns: {', '.join(map(repr, columns[:20]))}.",
        )
    found = guess_email_column(columns)
    if found is None:
        raise InputError(
            "No email column found in the input.",
            field="email",
            hint=f"Name it with email='<column>'. Columns: {', '.join(map(repr, columns[:20]))}.",
        )
    return found


def _emails_index(values: Iterable[Any]) -> set[str]:
    keys: set[str] = set()
    for item in check_emails(values):
        if item.email is not None:
            keys.add(email_key(item.email))
        elif item.original.strip():
            keys.add(item.original.strip().casefold())
    return keys


def _unsubscribe_index(unsubscribed: Any) -> tuple[set[str], set[str]]:
    """(address keys, domains): entries without a local part block a whole domain."""
    if unsubscribed is None:
        return set(), set()
    values = unsubscribed["email"] if isinstance(unsubscribed, pd.DataFrame) else unsubscribed
    addresses: list[str] = []
    domains: set[str] = set()
    for value in values:
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            continue
        text = str(value).strip()
        if "@" not in text or text.startswith("@"):
            if text.strip("@"):
                domains.add(text.strip("@").casefold())
        else:
            addresses.append(text)
    return _emails_index(addresses), domains


def _existing_index(existing: pd.DataFrame | None) -> dict[str, list[tuple[str, str]]]:
    """key -> [(exact address, state)] of the sequence's listed recipients."""
    index: dict[str, list[tuple[str, str]]] = {}
    if existing is None or existing.empty:
        return index
    states = existing["state"] if "state" in existing.columns else [None] * len(existing)
    for email, state in zip(existing["email"], states, strict=True):
        if email is None or email is pd.NA or not isinstance(email, str) or not email:
            continue
        label = "unknown state" if state is None or state is pd.NA else str(state)
        index.setdefault(email.strip().casefold(), []).append((email, label))
    return index


def _text_or_none(value: Any) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            value = int(value)  # 42.0 read from a numeric column is "42" to a person
    text = str(value).strip()
    return text or None


def _html_table(frame: pd.DataFrame, limit: int = PREVIEW_ROWS) -> str:
    # escape=True is pandas' default; spelled out because the cells are other people's data.
    return str(frame.head(limit).to_html(escape=True, index=False, na_rep="", render_links=False))


def _category(values: Sequence[str | None], categories: Sequence[str]) -> pd.Categorical:
    return pd.Categorical(list(values), categories=list(categories))


# -- the enrollment plan -------------------------------------------------------------------


@dataclass
class PlanSummary:
    """Counts per decision and the projected sending days; prints and renders as HTML."""

    sequence_id: str
    sequence_name: str
    total: int
    to_add: int
    skipped: dict[str, int]
    schedule: str
    daily_limit: int
    days: list[tuple[date, int]]
    warnings: list[str] = field(default_factory=list)

    @property
    def sending_days(self) -> int:
        return len(self.days)

    @property
    def first_day(self) -> date | None:
        return self.days[0][0] if self.days else None

    @property
    def last_day(self) -> date | None:
        return self.days[-1][0] if self.days else None

    @property
    def counts(self) -> pd.DataFrame:
        rows = [("add", "", self.to_add)] + [
            ("skip", REASON_TEXT.get(r, r), n) for r, n in self.skipped.items() if n
        ]
        return pd.DataFrame(rows, columns=["action", "reason", "rows"])

    def lines(self) -> list[str]:
        name = f"{self.sequence_name!r} " if self.sequence_name else ""
        out = [
            f"Sequence {name}({self.sequence_id}): {self.total:,} input rows.",
            f"  add: {self.to_add:,}",
        ]
        out += [f"  skip, {REASON_TEXT.get(r, r)}: {n:,}" for r, n in self.skipped.items() if n]
        if self.to_add and self.days:
            first, last = self.days[0][0], self.days[-1][0]
            span = f"{first:%a %Y-%m-%d}" + (f" to {last:%a %Y-%m-%d}" if last != first else "")
            out.append(
                f"First emails at {self.daily_limit:,}/day on weekdays: "
                f"{len(self.days)} sending day(s), {span} (at best: the daily limit "
                "is shared with your other sequences)."
            )
        elif self.to_add:
            out.append(f"Schedule: {self.schedule}.")
        out += [f"Note: {w}" for w in self.warnings]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{html.escape(line.strip())}</li>" for line in self.lines()[1:])
        head = html.escape(self.lines()[0])
        return f"<div><b>{head}</b><ul>{items}</ul></div>"


class EnrollmentPlan:
    """One row per input row with the decision taken; nothing has been written.

    ``frame`` columns: ``row`` (1-based input row), ``email_input`` (as given),
    ``email`` (normalized; what is sent), ``key`` (case-insensitive identity),
    ``variables`` (dict of the values sent), ``action`` (``add``/``skip``),
    ``reason`` (why skipped), ``detail`` (readable explanation).
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        sequence: SequenceInfo,
        email_column: str,
        variable_columns: Mapping[str, str],
        required: Sequence[str],
        daily_limit: int = DEFAULT_DAILY_SEND_LIMIT,
        warnings: Sequence[str] = (),
        created_at: datetime | None = None,
    ) -> None:
        self.frame = frame
        self.sequence = sequence
        self.email_column = email_column
        self.variable_columns = dict(variable_columns)
        self.required = list(required)
        self.daily_limit = daily_limit
        self.warnings = list(warnings)
        self.created_at = created_at or datetime.now(UTC)
        self.origin: tuple[str, str] | None = None
        """(backend, account) the plan was read from; set by ``plan_enrollment``."""
        self.seen_writes: int | None = None
        """The sequence's write count (``locks``) when the plan read it; set by
        ``plan_enrollment``. None: applying reads the sequence again first."""

    @property
    def sequence_id(self) -> str:
        return self.sequence.id

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def to_add(self) -> pd.DataFrame:
        return self.frame.loc[self.frame["action"] == ADD]

    @property
    def skipped(self) -> pd.DataFrame:
        return self.frame.loc[self.frame["action"] != ADD]

    def recipients(self) -> list[dict[str, Any]]:
        """The ``add`` rows as Mixmax recipients, in input order."""
        rows = self.to_add
        out: list[dict[str, Any]] = []
        emails, values = rows["email"].tolist(), rows["variables"].tolist()
        for email, variables in zip(emails, values, strict=True):
            item: dict[str, Any] = {"email": str(email)}
            if variables:
                item["variables"] = dict(variables)
            out.append(item)
        return out

    def fingerprint(
        self, schedule: Schedule, recipients: list[dict[str, Any]] | None = None
    ) -> str:
        """The plan id: the same sequence, ``add`` rows and schedule give the same id.
        ``recipients``: :meth:`recipients`, when the caller already has them."""
        payload = {
            "v": 1,
            "kind": "enroll",
            "sequence": self.sequence.id,
            "schedule": schedule.token,
            "recipients": self.recipients() if recipients is None else recipients,
        }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "enroll-" + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]

    def summary(self, schedule: Any = "now", *, today: date | None = None) -> PlanSummary:
        """Counts per action/reason and the sending days at the daily limit."""
        sched = schedule if isinstance(schedule, Schedule) else Schedule.parse(schedule)
        reasons = Counter(str(r) for r in self.frame["reason"].dropna())
        to_add = int((self.frame["action"] == ADD).sum())
        start = sched.start_day(today or datetime.now(UTC).date())
        days = sending_days(to_add, self.daily_limit, start) if start is not None else []
        return PlanSummary(
            sequence_id=self.sequence.id,
            sequence_name=self.sequence.name,
            total=len(self.frame),
            to_add=to_add,
            skipped={r: reasons.get(r, 0) for r in ENROLL_REASONS},
            schedule=sched.describe(),
            daily_limit=self.daily_limit,
            days=days,
            warnings=list(self.warnings),
        )

    def __repr__(self) -> str:
        return f"<EnrollmentPlan {self.sequence.id}: {len(self.to_add)} to add of {len(self)}>"

    def _repr_html_(self) -> str:
        skipped = self.skipped[["row", "email_input", "reason", "detail"]]
        more = (
            f"<p>Rows skipped (first {PREVIEW_ROWS}):</p>{_html_table(skipped)}"
            if len(skipped)
            else ""
        )
        return self.summary()._repr_html_() + more


def resolve_columns(
    sequence: SequenceInfo,
    frame: pd.DataFrame,
    email: str | None = None,
    variables: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, str], list[str]]:
    """(email column, variable -> column, required variables), or an InputError saying
    what to fix. Cheap: run it before reading anything from Mixmax."""
    email_column = _column(frame, email)
    columns = [str(c) for c in frame.columns]
    required = sequence.required
    mapping = dict(variables or {})
    for var, col in mapping.items():
        if not isinstance(var, str) or not var.strip():
            raise InputError("Variable names must be non-empty text.", field="variables")
        if col not in columns:
            raise InputError(
                f"Variable {var!r} is mapped to column {col!r}, which the input does not have.",
                field="variables",
                hint=f"Columns: {', '.join(map(repr, columns[:20]))}.",
            )
    unmapped = [r for r in required if r not in mapping]
    free = [c for c in columns if c != email_column and c not in mapping.values()]
    mapping.update(guess_columns(unmapped, free))
    still = [r for r in required if r not in mapping]
    if still:
        listed = ", ".join(f"{{{{{v}}}}}" for v in still)
        example = ", ".join(f"{v!r}: '<column>'" for v in still)
        raise InputError(
            f"The sequence's templates use {listed} but no input column is mapped to "
            f"{'it' if len(still) == 1 else 'them'}.",
            field="variables",
            hint=f"Pass variables={{{example}}}. Columns: {', '.join(map(repr, columns[:20]))}.",
        )
    return email_column, mapping, required


def build_plan(
    sequence: SequenceInfo,
    frame: pd.DataFrame,
    *,
    email: str | None = None,
    variables: Mapping[str, str] | None = None,
    existing: pd.DataFrame | None = None,
    unsubscribed: Any = None,
    journaled: Mapping[str, str] | None = None,
    existing_capped: bool = False,
    daily_limit: int = DEFAULT_DAILY_SEND_LIMIT,
) -> EnrollmentPlan:
    """Decide, row by row, who would be added to ``sequence`` (see the module docstring).

    ``variables`` maps a Mixmax variable name to the input column holding its
    values (``{"First name": "first_name"}``); required variables not given are
    matched to columns by name. ``existing``: the sequence's recipients (``email``,
    ``state``); ``unsubscribed``: the unsubscribe list (frame with ``email`` or
    addresses); ``journaled``: key -> note for addresses this toolkit already
    added to the sequence (from the local journal; covers drafts Mixmax hides).
    """
    if not isinstance(frame, pd.DataFrame):
        raise InputError("Recipients must be a DataFrame here.", field="recipients")
    if frame.empty:
        raise InputError(
            "There are no recipients in the input.",
            field="recipients",
            hint="Give at least one row with an email address.",
        )
    if daily_limit < 1:
        raise InputError("The daily send limit must be at least 1.", field="daily_limit")
    email_column, mapping, required = resolve_columns(sequence, frame, email, variables)

    checked: list[Checked] = check_emails(frame[email_column].tolist())
    values = {var: [_text_or_none(v) for v in frame[col].tolist()] for var, col in mapping.items()}
    unsub_keys, unsub_domains = _unsubscribe_index(unsubscribed)
    in_sequence = _existing_index(existing)
    earlier = dict(journaled or {})

    n = len(frame)
    out_email: list[str | None] = [None] * n
    out_key: list[str | None] = [None] * n
    out_vars: list[dict[str, str]] = [{}] * n
    actions: list[str] = [SKIP] * n
    reasons: list[str | None] = [None] * n
    details: list[str] = [""] * n
    taken: dict[str, tuple[int, str]] = {}
    for i in range(n):
        item = checked[i]
        row_vars = {var: vals[i] for var, vals in values.items() if vals[i] is not None}
        out_vars[i] = row_vars  # type: ignore[assignment]
        if item.email is None:
            reasons[i], details[i] = INVALID, item.error or "not a valid address"
            continue
        address = item.email
        key = email_key(address)
        out_email[i], out_key[i] = address, key
        domain = key.rpartition("@")[2]
        if key in unsub_keys:
            reasons[i], details[i] = UNSUBSCRIBED, "on the unsubscribe list"
        elif domain in unsub_domains:
            reasons[i], details[i] = UNSUBSCRIBED, f"the domain {domain} is unsubscribed"
        elif key in in_sequence:
            found = in_sequence[key]
            listed = ", ".join(f"{e} ({s})" for e, s in found[:3])
            variant = "" if any(e == address for e, _ in found) else "; a case variant, which "
            variant += "Mixmax would have mailed again" if variant else ""
            reasons[i], details[i] = IN_SEQUENCE, f"in the sequence as {listed}{variant}"
        elif key in earlier:
            reasons[i], details[i] = IN_SEQUENCE, earlier[key]
        elif missing := [r for r in required if r not in row_vars]:
            reasons[i], details[i] = MISSING, "no value for " + ", ".join(missing)
        elif key in taken:
            row, first = taken[key]
            same = "" if first == address else f" ({first}: a case variant)"
            reasons[i], details[i] = DUPLICATE, f"same address as row {row}{same}"
        else:
            actions[i] = ADD
            taken[key] = (i + 1, address)

    plan_frame = pd.DataFrame(
        {
            "row": pd.array(range(1, n + 1), dtype="Int64"),
            "email_input": pd.array([c.original for c in checked], dtype="string"),
            "email": pd.array(out_email, dtype="string"),
            "key": pd.array(out_key, dtype="string"),
            "variables": pd.Series(out_vars, dtype=object),
            "action": _category(actions, (ADD, SKIP)),
            "reason": _category(reasons, ENROLL_REASONS),
            "detail": pd.array(details, dtype="string"),
        }
    )
    warnings: list[str] = []
    if existing_capped:
        warnings.append(
            "Mixmax lists only the first 10,000 recipients of a sequence, so people beyond "
            "that could not be checked; Mixmax still reports exact duplicates as `duplicated`."
        )
    if mapping:
        warnings.append(f"Variables: {describe_mapping(mapping)}.")
    return EnrollmentPlan(
        plan_frame,
        sequence=sequence,
        email_column=email_column,
        variable_columns=mapping,
        required=required,
        daily_limit=daily_limit,
        warnings=warnings,
    )


# -- the cancel plan -------------------------------------------------------------------


class CancelPlan:
    """Which of the given addresses would leave the sequence; nothing has been written.

    ``frame`` columns: ``row``, ``email_input``, ``email``, ``key``, ``targets``
    (the exact addresses in the sequence to cancel: case variants included),
    ``state``, ``action`` (``cancel``/``skip``), ``reason``, ``detail``.
    """

    def __init__(self, frame: pd.DataFrame, *, sequence: SequenceInfo, warnings: Sequence[str]):
        self.frame = frame
        self.sequence = sequence
        self.warnings = list(warnings)
        self.origin: tuple[str, str] | None = None

    @property
    def sequence_id(self) -> str:
        return self.sequence.id

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def to_cancel(self) -> pd.DataFrame:
        return self.frame.loc[self.frame["action"] == CANCEL]

    def emails(self) -> list[str]:
        """Every exact address to send, in input order, once each."""
        out: dict[str, None] = {}
        for targets in self.to_cancel["targets"]:
            out.update(dict.fromkeys(targets))
        return list(out)

    def fingerprint(self) -> str:
        payload = {"v": 1, "kind": "cancel", "sequence": self.sequence.id, "emails": self.emails()}
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "cancel-" + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]

    def summary(self) -> str:
        reasons = Counter(str(r) for r in self.frame["reason"].dropna())
        lines = [
            f"Sequence {self.sequence.name!r} ({self.sequence.id}): {len(self):,} input rows.",
            f"  cancel: {len(self.to_cancel):,} ({len(self.emails()):,} addresses)",
        ]
        lines += [f"  skip, {REASON_TEXT[r]}: {reasons[r]:,}" for r in CANCEL_REASONS if reasons[r]]
        lines += [f"Note: {w}" for w in self.warnings]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<CancelPlan {self.sequence.id}: {len(self.to_cancel)} to cancel of {len(self)}>"

    def _repr_html_(self) -> str:
        text = html.escape(self.summary()).replace("\n", "<br>")
        return f"<div>{text}</div>{_html_table(self.frame.drop(columns=['key']))}"


def build_cancel_plan(
    sequence: SequenceInfo,
    emails: Sequence[Any],
    *,
    existing: pd.DataFrame | None,
    existing_capped: bool = False,
    active_only: bool = True,
) -> CancelPlan:
    """Decide which addresses to cancel: those in the sequence (case-insensitively) and active.

    When Mixmax's list was cut at 10,000, an address not found may still be
    there; it is then sent anyway (cancelling someone absent does nothing).
    """
    if not len(emails):
        raise InputError("No email addresses to cancel.", field="emails")
    checked = check_emails(list(emails))
    in_sequence = _existing_index(existing)
    n = len(checked)
    targets: list[list[str]] = [[] for _ in range(n)]
    states: list[str | None] = [None] * n
    actions: list[str] = [SKIP] * n
    reasons: list[str | None] = [None] * n
    details: list[str] = [""] * n
    taken: dict[str, int] = {}
    for i, item in enumerate(checked):
        if item.email is None:
            reasons[i], details[i] = INVALID, item.error or "not a valid address"
            continue
        key = email_key(item.email)
        found = in_sequence.get(key, [])
        active = [e for e, s in found if s == "active"] if active_only else [e for e, _ in found]
        states[i] = ", ".join(sorted({s for _, s in found})) or None
        if key in taken:
            reasons[i], details[i] = DUPLICATE, f"same address as row {taken[key]}"
        elif not found and not existing_capped:
            reasons[i], details[i] = NOT_IN_SEQUENCE, "not among the sequence's recipients"
        elif found and not active:
            reasons[i], details[i] = NOT_ACTIVE, f"already exited ({states[i]})"
        else:
            actions[i] = CANCEL
            targets[i] = active or [item.email]
            taken[key] = i + 1
            if not found:
                details[i] = "not in the first 10,000 listed; sent anyway"
    frame = pd.DataFrame(
        {
            "row": pd.array(range(1, n + 1), dtype="Int64"),
            "email_input": pd.array([c.original for c in checked], dtype="string"),
            "email": pd.array([c.email for c in checked], dtype="string"),
            "key": pd.array([c.key for c in checked], dtype="string"),
            "targets": pd.Series(targets, dtype=object),
            "state": pd.array(states, dtype="string"),
            "action": _category(actions, (CANCEL, SKIP)),
            "reason": _category(reasons, CANCEL_REASONS),
            "detail": pd.array(details, dtype="string"),
        }
    )
    warnings = []
    if existing_capped:
        warnings.append("Mixmax lists only the first 10,000 recipients; see `detail`.")
    return CancelPlan(frame, sequence=sequence, warnings=warnings)
