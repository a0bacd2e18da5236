"""Sequence enrollment: plan (pure), preview, apply (one I/O entry), never twice.

- :mod:`.emails`     address checks and case-insensitive keys (pure)
- :mod:`.variables`  variables a sequence's templates need; column guessing (pure)
- :mod:`.plan`       :class:`EnrollmentPlan` / :class:`CancelPlan` and their rules (pure)
- :mod:`.result`     :class:`EnrollmentResult` / :class:`CancelResult`, spreadsheet-safe CSV (pure)
- :mod:`.journal`    the local JSON-lines journal (file I/O only)
- :mod:`.locks`      one write lock per account and sequence, machine-wide (file I/O only)
- :mod:`.apply`      ``plan_enrollment``, ``enroll``, ``plan_cancel``, ``cancel_recipients``
                     against an AsyncClient (the only module here that talks to Mixmax)
"""

from __future__ import annotations

from ..data.export import safe_csv
from .apply import (
    UnresolvedBatchError,
    cancel_recipients,
    enroll,
    pending_enrollments,
    plan_cancel,
    plan_enrollment,
)
from .emails import check_email, email_key, normalize_email, split_pasted
from .journal import JournalBusyError
from .locks import SequenceBusyError
from .plan import (
    DEFAULT_DAILY_SEND_LIMIT,
    CancelPlan,
    EnrollmentPlan,
    PlanSummary,
    Schedule,
    SequenceInfo,
    build_cancel_plan,
    build_plan,
    sending_days,
)
from .result import CancelResult, EnrollmentResult
from .variables import guess_columns, guess_email_column, required_variables

__all__ = [
    "DEFAULT_DAILY_SEND_LIMIT",
    "CancelPlan",
    "CancelResult",
    "EnrollmentPlan",
    "EnrollmentResult",
    "JournalBusyError",
    "PlanSummary",
    "Schedule",
    "SequenceBusyError",
    "SequenceInfo",
    "UnresolvedBatchError",
    "build_cancel_plan",
    "build_plan",
    "cancel_recipients",
    "check_email",
    "email_key",
    "enroll",
    "guess_columns",
    "guess_email_column",
    "normalize_email",
    "pending_enrollments",
    "plan_cancel",
    "plan_enrollment",
    "required_variables",
    "safe_csv",
    "sending_days",
    "split_pasted",
]
