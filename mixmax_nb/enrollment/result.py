"""What an applied plan did, one row per input row (pure).

Outcomes are what Mixmax reported per recipient (``success``, ``duplicated``,
``unsubscribed``, ``error`` with its reason), ``skipped`` for rows the plan left
out, and ``not_sent`` for rows a stopped run never reached (run it again to
finish). ``reconciled`` marks outcomes learned by reading the sequence after a
batch whose answer was lost, rather than from the batch's own answer.

:func:`safe_csv` writes a results table that is safe to open in a spreadsheet:
cells that a spreadsheet would run as a formula are prefixed with ``'``.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..data.export import safe_csv
from .plan import ADD, CANCEL, PREVIEW_ROWS, CancelPlan, EnrollmentPlan, _html_table

ENROLL_OUTCOMES = ("success", "duplicated", "unsubscribed", "error", "skipped", "not_sent")
CANCEL_OUTCOMES = ("cancelled", "not_cancelled", "skipped", "not_sent")


@dataclass(frozen=True)
class Outcome:
    """One recipient's outcome as recorded in the journal."""

    status: str
    detail: str = ""
    reconciled: bool = False
    batch: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Outcome:
        return cls(
            status=str(data.get("status") or "error"),
            detail=str(data.get("detail") or ""),
            reconciled=bool(data.get("reconciled")),
            batch=data.get("batch"),
        )


class _Result:
    frame: pd.DataFrame
    title: str

    def counts(self) -> pd.Series:
        return self.frame["outcome"].value_counts(sort=False)

    def summary(self) -> str:
        counts = Counter(str(v) for v in self.frame["outcome"])
        parts = [f"{k}: {v:,}" for k, v in counts.items() if v]
        reconciled = int(self.frame["reconciled"].sum())
        extra = f" ({reconciled:,} confirmed by reading the sequence)" if reconciled else ""
        return f"{self.title}: " + ", ".join(parts) + extra

    def to_csv(self, path: str | Path | None = None) -> str | None:
        """The results as a CSV that is safe to open in a spreadsheet."""
        return safe_csv(self.frame, path)

    def __len__(self) -> int:
        return len(self.frame)

    def _repr_html_(self) -> str:
        problems = self.frame.loc[~self.frame["outcome"].isin(["success", "cancelled"])]
        table = (
            f"<p>Other outcomes (first {PREVIEW_ROWS}):</p>{_html_table(problems)}"
            if len(problems)
            else ""
        )
        return f"<div><b>{html.escape(self.summary())}</b></div>{table}"


class EnrollmentResult(_Result):
    """One row per input row: ``row``, ``email_input``, ``email``, ``outcome``, ``detail``,
    ``reconciled``, ``batch``. ``plan_id`` names the journal that recorded it."""

    def __init__(self, frame: pd.DataFrame, *, plan_id: str | None, sequence_id: str) -> None:
        self.frame = frame
        self.plan_id = plan_id
        self.sequence_id = sequence_id
        self.title = f"Enrollment into {sequence_id}"

    @property
    def enrolled(self) -> pd.DataFrame:
        return self.frame.loc[self.frame["outcome"] == "success"]

    @property
    def complete(self) -> bool:
        return not bool((self.frame["outcome"] == "not_sent").any())

    def __repr__(self) -> str:
        return f"<EnrollmentResult {self.summary()}>"


class CancelResult(_Result):
    def __init__(self, frame: pd.DataFrame, *, plan_id: str | None, sequence_id: str) -> None:
        self.frame = frame
        self.plan_id = plan_id
        self.sequence_id = sequence_id
        self.title = f"Cancel in {sequence_id}"

    def __repr__(self) -> str:
        return f"<CancelResult {self.summary()}>"


def enrollment_result(
    plan: EnrollmentPlan, outcomes: Mapping[str, Outcome], plan_id: str | None
) -> EnrollmentResult:
    """Join the plan's rows with the recorded outcomes (by exact address sent)."""
    frame = plan.frame
    status: list[str] = []
    detail: list[str] = []
    reconciled: list[bool] = []
    batch: list[str | None] = []
    for action, email, reason_detail in zip(
        frame["action"], frame["email"], frame["detail"], strict=True
    ):
        if action != ADD:
            status.append("skipped")
            detail.append(str(reason_detail))
            reconciled.append(False)
            batch.append(None)
            continue
        got = outcomes.get(str(email))
        if got is None:
            status.append("not_sent")
            detail.append("not sent yet: run enroll(plan) again to finish")
            reconciled.append(False)
            batch.append(None)
        else:
            status.append(got.status if got.status in ENROLL_OUTCOMES else "error")
            detail.append(got.detail)
            reconciled.append(got.reconciled)
            batch.append(got.batch)
    out = pd.DataFrame(
        {
            "row": frame["row"],
            "email_input": frame["email_input"],
            "email": frame["email"],
            "outcome": pd.Categorical(status, categories=list(ENROLL_OUTCOMES)),
            "reason": frame["reason"],
            "detail": pd.array(detail, dtype="string"),
            "reconciled": pd.array(reconciled, dtype="boolean"),
            "batch": pd.array(batch, dtype="string"),
        }
    )
    return EnrollmentResult(out, plan_id=plan_id, sequence_id=plan.sequence_id)


def cancel_result(
    plan: CancelPlan, outcomes: Mapping[str, Outcome], plan_id: str | None
) -> CancelResult:
    frame = plan.frame
    status: list[str] = []
    detail: list[str] = []
    reconciled: list[bool] = []
    for action, targets, reason_detail in zip(
        frame["action"], frame["targets"], frame["detail"], strict=True
    ):
        if action != CANCEL:
            status.append("skipped")
            detail.append(str(reason_detail))
            reconciled.append(False)
            continue
        got = [outcomes.get(t) for t in targets]
        if any(g is None for g in got):
            status.append("not_sent")
            detail.append("not sent yet: run cancel_recipients again to finish")
            reconciled.append(False)
            continue
        done = [g for g in got if g is not None]
        ok = all(g.status == "cancelled" for g in done)
        status.append("cancelled" if ok else "not_cancelled")
        detail.append("; ".join(dict.fromkeys(g.detail for g in done if g.detail)))
        reconciled.append(any(g.reconciled for g in done))
    out = pd.DataFrame(
        {
            "row": frame["row"],
            "email_input": frame["email_input"],
            "email": frame["email"],
            "outcome": pd.Categorical(status, categories=list(CANCEL_OUTCOMES)),
            "reason": frame["reason"],
            "detail": pd.array(detail, dtype="string"),
            "reconciled": pd.array(reconciled, dtype="boolean"),
        }
    )
    return CancelResult(out, plan_id=plan_id, sequence_id=plan.sequence_id)
