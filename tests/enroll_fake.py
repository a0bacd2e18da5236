"""An in-process Transport with Mixmax's enrollment semantics, and faults on demand.

Enough of Mixmax for the enrollment tests (reference/mixmax-api.md §8, §9):
duplicates and unsubscribes matched case-sensitively, drafts (``scheduledAt:
false``) kept but hidden from the recipients list, missing template variables
reported per recipient, cancel exits active recipients only.

Faults: ``faults[n]`` (1-based count of write calls) is ``("before", exc)`` --
raise without applying -- or ``("after", exc)`` -- apply, then raise (the answer
is lost). ``write_delay`` makes each write wait, so a test can cancel mid-run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from mixmax_nb import catalog
from mixmax_nb.errors import RateLimitedError, ServerError
from mixmax_nb.transport.actions import ActionDirectory

SEQ = "5815495f8447b9058a310430"


def sequence(
    seq_id: str = SEQ,
    name: str = "Q3 outreach",
    variables: tuple[str, ...] = ("First name",),
    subject: str = "Hi {{First name}}",
    body: str = "<p>Hello {{First name}}, {{Company|your team}}</p>",
) -> dict[str, Any]:
    return {
        "_id": seq_id,
        "name": name,
        "variables": list(variables),
        "stages": [{"_id": seq_id[:-1] + "f", "subject": subject, "body": body}],
    }


class FakeMixmax:
    backend = "sandbox"
    rate_limited = False
    account_key = "acct-test"
    max_input_bytes = 10_000_000
    time_scale = 1.0
    ephemeral = False
    sandbox = None

    def __init__(self, sequences: list[dict[str, Any]] | None = None) -> None:
        self.connection_id: str | None = "conn"
        self.actions = ActionDirectory.fixed(catalog.BY_KEY)
        self.sequences = {s["_id"]: s for s in (sequences or [sequence()])}
        self.rows: dict[str, list[dict[str, Any]]] = {k: [] for k in self.sequences}
        self.unsubscribed: list[str] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.writes = 0
        self.faults: dict[int, tuple[str, BaseException]] = {}
        self.write_delay = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.on_write: Any = None
        """Called with the write's number as it starts (tests set an asyncio.Event there)."""

    # -- test helpers ---------------------------------------------------------------

    def seed(self, email: str, *, state: str = "active", seq_id: str = SEQ) -> None:
        self.rows[seq_id].append({"email": email, "state": state, "draft": False})

    def count(self, email: str, seq_id: str = SEQ) -> int:
        """How many times this exact address is in the sequence (drafts included)."""
        return sum(1 for r in self.rows[seq_id] if r["email"] == email)

    def emails(self, seq_id: str = SEQ) -> list[str]:
        return [r["email"] for r in self.rows[seq_id]]

    def action_calls(self, key: str) -> int:
        return sum(1 for k, _ in self.calls if k == key)

    # -- Transport ------------------------------------------------------------------

    async def run_action(self, key: str, input: Mapping[str, Any] | None) -> dict[str, Any]:
        data = dict(input or {})
        self.calls.append((key, data))
        if key in ("add-recipient-to-sequence", "cancel-sequence-recipient"):
            return await self._write(key, data)
        return {"output": self._read(key, data), "actionRunId": f"run{len(self.calls)}"}

    def _read(self, key: str, data: dict[str, Any]) -> Any:
        if key == "list-sequences":
            return {"results": list(self.sequences.values()), "hasNext": False}
        if key == "get-sequence-recipients":
            listed = [
                {"_id": f"r{i}", "email": r["email"], "state": r["state"], "sequenceId": SEQ}
                for i, r in enumerate(self.rows[data["sequenceId"]])
                if not r["draft"]
            ]
            offset, limit = int(data.get("offset", 0)), int(data.get("limit", 50))
            return listed[offset : offset + limit]
        if key == "list-unsubscribes":
            return {
                "results": [{"_id": f"u{i}", "email": e} for i, e in enumerate(self.unsubscribed)],
                "hasNext": False,
            }
        if key == "get-current-user":
            return {"_id": "user1"}
        raise AssertionError(f"unexpected action {key}")

    async def _write(self, key: str, data: dict[str, Any]) -> dict[str, Any]:
        self.writes += 1
        number = self.writes
        if self.on_write is not None:
            self.on_write(number)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.write_delay:
                await asyncio.sleep(self.write_delay)
            fault = self.faults.get(number)
            if fault and fault[0] == "before":
                raise fault[1]
            output = self._add(data) if key.startswith("add") else self._cancel(data)
            if fault and fault[0] == "after":
                raise fault[1]
            return {"output": output, "actionRunId": f"run{len(self.calls)}"}
        finally:
            self.in_flight -= 1

    def _add(self, data: dict[str, Any]) -> dict[str, Any]:
        seq = self.sequences[data["sequenceId"]]
        required = [v for v in seq.get("variables", []) if v.lower() != "email"]
        draft = data.get("scheduledAt") is False
        out = []
        for item in data["recipients"]:
            email = item["email"]
            values = item.get("variables") or {}
            if email in self.unsubscribed:
                out.append({"email": email, "status": "unsubscribed"})
            elif self.count(email, seq["_id"]):
                out.append({"email": email, "status": "duplicated"})
            elif missing := [v for v in required if not values.get(v)]:
                out.append(
                    {
                        "email": email,
                        "status": "error",
                        "errors": [f"Missing variable: {missing[0]}"],
                    }
                )
            else:
                self.rows[seq["_id"]].append({"email": email, "state": "active", "draft": draft})
                out.append({"email": email, "status": "success"})
        return {"recipients": out}

    def _cancel(self, data: dict[str, Any]) -> dict[str, Any]:
        exited = []
        for row in self.rows[data["sequenceId"]]:
            if row["email"] in data["emails"] and row["state"] == "active" and not row["draft"]:
                row["state"] = "completed"
                exited.append(row["email"])
        return {"recipients": exited}

    # -- the rest of the protocol, unused -------------------------------------------

    async def aclose(self) -> None:
        return None

    async def list_actions(self, *, intent: str | None = None, limit: int = 50) -> list[Any]:
        return []


def lost_answer() -> ServerError:
    return ServerError("server error: gateway timeout after the write")


def refused() -> RateLimitedError:
    return RateLimitedError("rate limited", retry_after=0.0)


class LoseAnswers:
    """Wraps any transport: each add call waits ``delay`` first; the write calls
    numbered in ``lose`` (1-based) reach the server, then their answer is lost."""

    def __init__(
        self, inner: Any, lose: set[int] | frozenset[int] = frozenset(), delay: float = 0.0
    ):
        self.inner = inner
        self.lose = lose
        self.delay = delay
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def run_action(self, key: str, input: Mapping[str, Any] | None) -> Any:
        if key != "add-recipient-to-sequence":
            return await self.inner.run_action(key, input)
        self.writes += 1
        number = self.writes
        if self.delay:
            await asyncio.sleep(self.delay)
        result = await self.inner.run_action(key, input)
        if number in self.lose:
            raise ServerError("server error: the connection dropped after the write")
        return result
