"""Service conditions of the sandbox: profiles (latency, rate limit, rare 5xx) and faults.

Every call that reaches the emulated Mixmax first passes :meth:`Conditions.admit`,
which returns a :class:`Gate` (how long to wait, whether to hang, to print
non-JSON, to truncate the page) or raises :class:`MembraneFault` carrying the
error payload Membrane would send.

Profiles:

* ``instant`` (default): no latency, no limit, no random failures.
* ``realistic``: log-normal latency (median 250 ms), Mixmax's 120 requests per
  minute as a sliding window answered with 429 + Retry-After, and rare 5xx.

``scale`` compresses time for benchmarks: with ``scale=60`` a minute lasts one
second (latency, window and Retry-After all shrink by 60; ratios stay the same).

Faults are injected on demand (``inject("rate_limit", count=3)``) and stored in the
database, so a test can set them and then run `mixmax-nb-sandbox` subprocesses.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .store import Store

FAULT_KINDS = ("rate_limit", "server_error", "timeout", "non_json", "defunct", "truncated_page")
PROFILES = ("instant", "realistic")
REQUESTS_PER_MINUTE = 120
LATENCY_MEDIAN_S = 0.25
LATENCY_SIGMA = 0.5
SERVER_ERROR_RATE = 0.002


class MembraneFault(Exception):
    """An error as Membrane reports it: ``{type, key, message, data}``."""

    def __init__(self, payload: Mapping[str, Any]) -> None:
        super().__init__(str(payload.get("message")))
        self.payload = dict(payload)


@dataclass
class Gate:
    delay: float = 0.0
    hang: float | None = None
    non_json: bool = False
    truncate: bool = False


def vendor_error(
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    connection_id: str | None = None,
    action_run_id: str | None = None,
) -> dict[str, Any]:
    """Membrane's payload for a failed Mixmax call (shape assumed; see README)."""
    hdrs = dict(headers or {})
    data: dict[str, Any] = {
        "status": status,
        "response": {"status": status, "headers": hdrs, "data": {"message": message}},
        "connectionId": connection_id,
        "sandbox": True,
    }
    if action_run_id:
        data["actionRunId"] = action_run_id
    text = f"Mixmax API responded with {status}: {message}"
    if status == 429:
        data["retryAfter"] = float(hdrs.get("retry-after", "60"))
        data["headers"] = hdrs
        return {"type": "connection", "key": "rate_limit_exceeded", "message": text, "data": data}
    if status == 401:
        data["state"] = "CLIENT_ACTION_REQUIRED"
        return {"type": "connection", "key": "access_token_expired", "message": text, "data": data}
    if status >= 500:
        return {"type": "internal", "key": "internal", "message": text, "data": data}
    key = {404: "not_found", 403: "access_denied"}.get(status)
    payload: dict[str, Any] = {"type": "action_run", "message": text, "data": data}
    if key:
        payload["key"] = key
    return payload


class Conditions:
    """Profile, time scale and injected faults, persisted in the store's tables."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        rand: random.Random | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.rand = rand or random.Random()

    # -- settings -----------------------------------------------------------------------

    @property
    def profile(self) -> str:
        return str(self.store.get_meta("profile", "instant"))

    @property
    def scale(self) -> float:
        return float(self.store.get_meta("scale", 1.0))

    def configure(self, profile: str | None = None, scale: float | None = None) -> None:
        if profile is not None:
            if profile not in PROFILES:
                raise ValueError(f"profile must be one of {PROFILES}, not {profile!r}")
            self.store.set_meta("profile", profile)
        if scale is not None:
            if scale <= 0:
                raise ValueError("scale must be positive")
            self.store.set_meta("scale", float(scale))

    # -- faults -------------------------------------------------------------------------

    def inject(self, kind: str, *, count: int = 1, after: int = 0, **params: Any) -> int:
        """Make the next ``count`` calls (after skipping ``after``) fail with ``kind``.

        Params: ``retry_after`` (rate_limit, seconds), ``status`` (server_error),
        ``seconds`` (timeout: how long the call hangs).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault must be one of {FAULT_KINDS}, not {kind!r}")
        if count < 1 or after < 0:
            raise ValueError("count must be >= 1 and after >= 0")
        with self.store.tx() as conn:
            cur = conn.execute(
                "INSERT INTO faults (kind, skip, remaining, params) VALUES (?, ?, ?, ?)",
                (kind, after, count, json.dumps(params)),
            )
            return int(cur.lastrowid or 0)

    def clear(self) -> None:
        with self.store.tx() as conn:
            conn.execute("DELETE FROM faults")
            conn.execute("DELETE FROM request_log")

    def pending(self) -> list[dict[str, Any]]:
        rows = self.store.read("SELECT * FROM faults ORDER BY id")
        return [
            {
                "id": r["id"],
                "kind": r["kind"],
                "after": r["skip"],
                "count": r["remaining"],
                **json.loads(r["params"]),
            }
            for r in rows
        ]

    # -- the gate -------------------------------------------------------------------------

    def admit(self, *, connection_id: str | None, on_defunct: Callable[[], None]) -> Gate:
        """Account for one Mixmax-bound call; return how to answer it, or raise."""
        gate = Gate()
        fired = self._take_faults()
        scale = self.scale
        for kind, params in fired:
            if kind == "rate_limit":
                wait = float(params.get("retry_after", 60.0 / scale))
                raise MembraneFault(
                    vendor_error(
                        429,
                        "Too many requests.",
                        headers={"retry-after": _fmt(wait)},
                        connection_id=connection_id,
                    )
                )
            if kind == "server_error":
                status = int(params.get("status", 503))
                raise MembraneFault(
                    vendor_error(status, "Service unavailable.", connection_id=connection_id)
                )
            if kind == "defunct":
                on_defunct()
            if kind == "timeout":
                gate.hang = float(params.get("seconds", 3600.0))
            if kind == "non_json":
                gate.non_json = True
            if kind == "truncated_page":
                gate.truncate = True
        if self.profile == "realistic":
            self._rate_limit(scale, connection_id)
            if self.rand.random() < SERVER_ERROR_RATE:
                raise MembraneFault(
                    vendor_error(503, "Service unavailable.", connection_id=connection_id)
                )
            gate.delay = self.rand.lognormvariate(math.log(LATENCY_MEDIAN_S), LATENCY_SIGMA)
            gate.delay /= scale
        return gate

    def _take_faults(self) -> list[tuple[str, dict[str, Any]]]:
        fired: list[tuple[str, dict[str, Any]]] = []
        if self.store.one("SELECT 1 FROM faults LIMIT 1") is None:
            return fired  # the common case costs one read, no write
        with self.store.tx() as conn:
            for row in conn.execute("SELECT * FROM faults ORDER BY id").fetchall():
                if row["skip"] > 0:
                    conn.execute("UPDATE faults SET skip = skip - 1 WHERE id = ?", (row["id"],))
                    continue
                fired.append((row["kind"], json.loads(row["params"])))
                if row["remaining"] <= 1:
                    conn.execute("DELETE FROM faults WHERE id = ?", (row["id"],))
                else:
                    conn.execute(
                        "UPDATE faults SET remaining = remaining - 1 WHERE id = ?", (row["id"],)
                    )
        return fired

    def _rate_limit(self, scale: float, connection_id: str | None) -> None:
        """A sliding one-minute window shared by every process using the database."""
        window = 60.0 / scale
        now = self.clock()
        with self.store.tx() as conn:
            conn.execute("DELETE FROM request_log WHERE t <= ?", (now - window,))
            count, oldest = conn.execute("SELECT COUNT(*), MIN(t) FROM request_log").fetchone()
            if count >= REQUESTS_PER_MINUTE:
                wait = max(0.001, oldest + window - now)
                over = True
            else:
                conn.execute("INSERT INTO request_log (t) VALUES (?)", (now,))
                over = False
        if over:
            raise MembraneFault(
                vendor_error(
                    429,
                    "Rate limit exceeded: 120 requests per minute.",
                    headers={"retry-after": _fmt(wait, scale)},
                    connection_id=connection_id,
                )
            )


def _fmt(seconds: float, scale: float = 1.0) -> str:
    # Whole seconds as HTTP says; fractions only when time is compressed.
    return str(math.ceil(seconds)) if scale == 1.0 else f"{seconds:.3f}"
