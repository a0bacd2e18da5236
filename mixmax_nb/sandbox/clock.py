"""The sandbox account's clock: real time, or a pinned instant that runs on from there.

Mixmax stamps what it does (a recipient added, a message sent) with its own "now".
The sandbox does the same with :func:`account_clock`. By default that is the real
clock. With ``Settings.sandbox_now`` (``MIXMAX_NB_SANDBOX_NOW``) the account reads
that instant when its database is first opened and runs on in real time from there,
so tests and demos do not depend on the day they run.

The anchor (the pinned instant and the real time it was taken at) is kept in the
database, so every process on one account (the in-process transport and each
`mixmax-nb-sandbox` command) reads one timeline. Rate windows do not use this
clock: they count real seconds (see ``faults.Conditions``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

from .store import Store

_ANCHOR = "clock_anchor"


def parse_instant(value: str) -> float:
    """An ISO instant as epoch seconds; naive means UTC."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"MIXMAX_NB_SANDBOX_NOW must be an ISO instant such as 2025-06-02T10:00:00Z, "
            f"not {value!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def account_clock(
    store: Store, pinned: str | None, *, wall: Callable[[], float] = time.time
) -> Callable[[], float]:
    """Epoch seconds as this account sees them (see the module docstring)."""
    if not pinned:
        return wall
    start = parse_instant(pinned)
    with store.tx() as conn:  # one anchor per database, even with two openers at once
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (_ANCHOR,)).fetchone()
        anchor = json.loads(row["value"]) if row is not None else None
        if not isinstance(anchor, dict) or anchor.get("pinned") != start:
            anchor = {"pinned": start, "wall": wall()}
            store.set_meta(_ANCHOR, anchor, conn)
    offset = float(anchor["pinned"]) - float(anchor["wall"])
    return lambda: wall() + offset


__all__ = ["account_clock", "parse_instant"]
