"""The unsubscribe list: plan who would be added or removed, then apply with confirm.

Handed the client (``AsyncClient.plan_unsubscribe`` / ``apply_unsubscribes`` call these);
the writes go through ``client.run``, the one write path, and are never retried.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any, Final, Literal

from ..errors import InputError, MixmaxNbError

if TYPE_CHECKING:
    import pandas as pd

    from ..client import AsyncClient

EMAIL: Final = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
"""What passes as an address here (Mixmax checks the rest)."""

UnsubscribeAction = Literal["add", "remove"]


@dataclass(frozen=True)
class UnsubscribePlan:
    """What adding to / removing from the unsubscribe list would do (nothing written yet).

    ``rows``: one row per distinct address given: ``email``, ``name``, ``status``
    (``will add``, ``already unsubscribed``, ``will remove``, ``not on the list``,
    ``invalid``).
    """

    action: UnsubscribeAction
    rows: pd.DataFrame

    @property
    def to_apply(self) -> list[dict[str, str]]:
        todo = self.rows[self.rows["status"].isin(["will add", "will remove"])]
        out = []
        for record in todo.to_dict("records"):
            item = {"email": str(record["email"])}
            if self.action == "add" and isinstance(record.get("name"), str) and record["name"]:
                item["name"] = record["name"]
            out.append(item)
        return out

    def summary(self) -> str:
        counts = self.rows["status"].value_counts()
        parts = [f"{int(n)} {status}" for status, n in counts.items()]
        verb = "unsubscribe" if self.action == "add" else "resubscribe"
        return f"{verb}: " + (", ".join(parts) if parts else "no addresses")

    def _repr_html_(self) -> str:
        return (
            f"<p>{html.escape(self.summary())}. Nothing is written until "
            "<code>client.apply_unsubscribes(plan, confirm=True)</code>.</p>"
            + self.rows.to_html(index=False, escape=True)
        )


def parse_emails(emails: str | Iterable[Any]) -> list[tuple[str, str]]:
    """(email, name) pairs from a pasted string, a list of strings or of dicts."""
    items: Iterable[Any] = re.split(r"[\n,;]+", emails) if isinstance(emails, str) else emails
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for item in items:
        if isinstance(item, Mapping):
            email, name = str(item.get("email") or "").strip(), str(item.get("name") or "")
        else:
            # "Jane Doe <jane@acme.com>" as a mail client writes it.
            name, email = parseaddr(str(item).strip())
            if not email or "@" not in email:
                email, name = str(item).strip(), ""
        if not email or email.lower() in seen:
            continue
        seen.add(email.lower())
        out.append((email, name.strip()))
    return out


async def plan(client: AsyncClient, emails: Any, action: UnsubscribeAction) -> UnsubscribePlan:
    """Read the current list and say, per address, what ``action`` would do."""
    import pandas as pd

    given = parse_emails(emails)
    if not given:
        raise InputError("No email address given.", field="emails")
    current = await client.unsubscribes()
    # Mixmax matches unsubscribes without regard to case (sandbox README, assumption 18).
    listed = {str(e).lower() for e in current["email"].dropna()}
    rows = []
    for email, name in given:
        if not EMAIL.match(email):
            status = "invalid"
        elif action == "add":
            status = "already unsubscribed" if email.lower() in listed else "will add"
        else:
            status = "will remove" if email.lower() in listed else "not on the list"
        rows.append({"email": email, "name": name, "status": status})
    frame = pd.DataFrame(rows, columns=["email", "name", "status"]).astype("string")
    return UnsubscribePlan(action, frame)


async def apply(
    client: AsyncClient, plan: UnsubscribePlan, *, confirm: bool = False
) -> pd.DataFrame:
    """Carry out a plan's ``will add`` / ``will remove`` rows, only with ``confirm=True``."""
    import pandas as pd

    if confirm is not True:
        raise InputError(
            f"Not applied: {plan.summary()}.",
            field="confirm",
            hint="Read the plan, then call again with confirm=True.",
        )
    key = "add-unsubscribe" if plan.action == "add" else "remove-unsubscribe"
    done = "added" if plan.action == "add" else "removed"
    rows = []
    for item in plan.to_apply:
        try:
            result = await client.run(key, item)
            rows.append((item["email"], done, "", str(result.get("actionRunId") or "")))
        except MixmaxNbError as exc:
            rows.append(
                (item["email"], "error", str(exc), str(getattr(exc, "action_run_id", "") or ""))
            )
    return pd.DataFrame(rows, columns=["email", "outcome", "detail", "action_run_id"]).astype(
        "string"
    )


__all__ = ["EMAIL", "UnsubscribeAction", "UnsubscribePlan", "apply", "parse_emails", "plan"]
