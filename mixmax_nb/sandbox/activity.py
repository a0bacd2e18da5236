"""New live-feed activity "now": what a demo or a benchmark refreshes against.

The seeded account ends at the reference date and nothing moves by itself
(README, "The account does not move by itself"). :func:`add_activity` appends
``n`` events whose timestamps are all after every stored event and end about
now, as a live feed would show them: new sends of active recipients' next email
stage, then opens, clicks, downloads and replies on the most recently sent
messages. The rows it
touches stay consistent with the emulated API: a send is a message plus a
``sent`` event and moves the recipient on; engagement updates the counters of
the message's stage and the recipient's totals alike (so the stage counters keep
equal to the message's events); a reply exits the recipient (``completed`` /
``replied``). Bounced messages get no engagement.

Deterministic given ``seed``: the same seed, database content and clock give
the same events. Plain ``random`` (no numpy), so the command stays light.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from itertools import accumulate
from typing import Any

from . import names as N
from .ids import METEOR_ALPHABET, object_id
from .mixmax import stage_counters
from .store import Store
from .templating import render

# Share of each event type among new activity: a live feed during working hours
# is mostly opens, then sends; clicks, replies and downloads are rarer (assumed).
MIX = (("opened", 50), ("sent", 30), ("clicked", 9), ("replied", 8), ("downloaded", 3))
RECENT = 300  # engagement lands on the most recently sent messages
STEP_MS = (2_000, 45_000)  # gap between two consecutive new events
_CITY = {zone: city for zone, city in N.ZONES}
_DEVICE_WEIGHTS = [d[3] for d in N.DEVICES]


def add_activity(store: Store, n: int, *, now_ms: int, seed: int | None = None) -> dict[str, Any]:
    """Append ``n`` events ending about ``now_ms``; return what was added."""
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = random.Random(seed) if seed is not None else random.Random()
    with store.tx() as conn:
        last = conn.execute("SELECT MAX(ts) FROM events").fetchone()[0] or 0
        steps = [rng.randint(*STEP_MS) for _ in range(n)]
        # End at now when there is room; never at or before the newest stored event.
        start = max(int(last), now_ms - sum(steps))
        times = [start + t for t in accumulate(steps)]
        kinds = rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX], k=n)
        feed = _Feed(conn, rng)
        added: Counter[str] = Counter()
        for t, kind in zip(times, kinds, strict=True):
            added[feed.add(kind, t)] += 1
    return {
        "added": n,
        "types": dict(sorted(added.items())),
        "first": times[0] if times else None,
        "last": times[-1] if times else None,
    }


class _Feed:
    """One batch of new activity inside one transaction."""

    def __init__(self, conn: Any, rng: random.Random) -> None:
        self.conn = conn
        self.rng = rng
        self.me = json.loads(
            conn.execute("SELECT value FROM meta WHERE key = 'current_user_id'").fetchone()[0]
        )
        self.recent: list[dict[str, Any]] = [
            dict(r)
            for r in conn.execute(
                "SELECT _id, user_id, sequence_id, recipient_id, to_json FROM messages m "
                "WHERE sent IS NOT NULL AND NOT EXISTS (SELECT 1 FROM events e WHERE "
                "e.message_id = m._id AND e.type = 'bounced') ORDER BY sent DESC, _id LIMIT ?",
                (RECENT,),
            )
        ]
        self.opened: set[str] = set()
        self.replied: set[str] = set()
        self.sequences = {
            r[0]: json.loads(r[1])
            for r in conn.execute("SELECT _id, doc FROM docs WHERE kind = 'sequences'")
        }

    def add(self, kind: str, t: int) -> str:
        if kind == "sent" or not self.recent:
            self._send(t)
            return "sent"
        message = self.rng.choice(self.recent[:RECENT])
        if kind in ("clicked", "downloaded", "replied") and message["_id"] not in self.opened:
            kind = "opened"  # engagement starts with an open (the tracking pixel)
        if kind == "replied" and not self._reply(message, t):
            kind = "opened"
        self._event(kind, t, message)
        if kind == "opened":
            self.opened.add(message["_id"])
        column = {"opened": "opens", "clicked": "clicks", "downloaded": "downloads"}.get(kind)
        if column and message["recipient_id"]:
            self._count_on_stage(message, column)
        return kind

    def _count_on_stage(self, message: dict[str, Any], column: str) -> None:
        """One more open, click or download: on the message's stage and on the
        recipient's totals, in one write."""
        row = self.conn.execute(
            "SELECT stages FROM recipients WHERE _id = ?", (message["recipient_id"],)
        ).fetchone()
        if row is None:
            return
        stages = json.loads(row["stages"])
        for stage in stages:
            if stage.get("messageId") == message["_id"]:
                _complete(stage)
                stage[column] = int(stage[column] or 0) + 1
        self.conn.execute(
            f"UPDATE recipients SET {column} = {column} + 1, stages = ? WHERE _id = ?",  # noqa: S608 - fixed names
            (json.dumps(stages), message["recipient_id"]),
        )

    # -- sends ---------------------------------------------------------------------------

    def _send(self, t: int) -> None:
        """The next email stage of an active recipient, else a one-off note."""
        mid = "".join(self.rng.choice(METEOR_ALPHABET) for _ in range(17))
        row = self._next_recipient()
        if row is None:
            contact = self.conn.execute(
                "SELECT email, first_name, last_name, company FROM contacts "
                "ORDER BY email LIMIT 1 OFFSET ?",
                (self.rng.randrange(max(1, self._count("contacts"))),),
            ).fetchone()
            to = [{"email": contact[0], "name": f"{contact[1]} {contact[2]}"}]
            subject = f"Quick follow-up for {contact[3]}"
            values: tuple[Any, ...] = (self.me, None, None, None, None, subject)
        else:
            stages = json.loads(row["stages"])
            k = next(i for i, s in enumerate(stages) if s["state"] == "scheduled")
            stage = stages[k]
            seq = self.sequences.get(row["sequence_id"], {"stages": []})
            template = next(
                (s for s in seq["stages"] if s["_id"] == stage["stageId"]), {"subject": ""}
            )
            subject = render(template["subject"], json.loads(row["variables"]))
            to = [{"email": row["email"], "name": row["name"]}]
            values = (
                row["user_id"],
                row["sequence_id"],
                stage["stageId"],
                stage["ordinal"],
                row["_id"],
                subject,
            )
            _complete(stage)
            stage.update(state="sent", sentAt=t, processedAt=t, messageId=mid)
            later = [s for s in stages[k + 1 :] if s["state"] == "scheduled"]
            self.conn.execute(
                "UPDATE recipients SET last_ordinal = ?, last_message_created = ?, updated = ?, "
                "next_scheduled = ?, state = ?, completed_reason = ?, stages = ? WHERE _id = ?",
                (
                    stage["ordinal"],
                    t,
                    t,
                    later[0]["scheduledAt"] if later else None,
                    "active" if later else "completed",
                    None if later else "finished",
                    json.dumps(stages),
                    row["_id"],
                ),
            )
        user, seq_id, stage_id, ordinal, recipient, subject = values
        to_json = json.dumps(to)
        self.conn.execute(
            f"INSERT INTO messages VALUES ({','.join('?' * 17)})",  # noqa: S608 - placeholders only
            (
                mid,
                t - 60_000,
                t,
                user,
                t,
                None,
                to_json,
                None,
                None,
                subject,
                None,
                seq_id,
                stage_id,
                ordinal,
                recipient,
                1,
                1,
            ),
        )
        message = {
            "_id": mid,
            "user_id": user,
            "sequence_id": seq_id,
            "recipient_id": recipient,
            "to_json": to_json,
        }
        self._event("sent", t, message)
        self.recent.insert(0, message)  # the newest send is the likeliest to be opened next

    def _next_recipient(self) -> Any:
        """An active recipient whose next stage is an email, soonest due first."""
        rows = self.conn.execute(
            "SELECT * FROM recipients WHERE state = 'active' AND draft = 0 "
            "AND next_scheduled IS NOT NULL ORDER BY next_scheduled, _id LIMIT 50"
        ).fetchall()
        for row in rows:
            stages = json.loads(row["stages"])
            pending = [s for s in stages if s["state"] == "scheduled"]
            if pending and pending[0]["type"] in ("email", "manual_email"):
                return row
        return None

    def _count(self, table: str) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608 - fixed names

    # -- engagement ----------------------------------------------------------------------

    def _reply(self, message: dict[str, Any], t: int) -> bool:
        """A reply exits an active recipient (as Mixmax does); one reply per message."""
        if (
            message["_id"] in self.replied
            or self.conn.execute(
                "SELECT 1 FROM events WHERE message_id = ? AND type = 'replied'", (message["_id"],)
            ).fetchone()
        ):
            return False
        self.replied.add(message["_id"])
        rid = message["recipient_id"]
        if not rid:
            return True
        row = self.conn.execute(
            "SELECT state, stages FROM recipients WHERE _id = ?", (rid,)
        ).fetchone()
        if row is None:
            return True
        stages = json.loads(row["stages"])
        if row["state"] == "active":
            for stage in stages:
                if stage["state"] == "scheduled":
                    stage.update(state="cancelled", processedAt=t)
        for stage in stages:
            if stage.get("messageId") == message["_id"]:
                _complete(stage)
                stage["replied"] = 1  # a 0/1 flag, as the seed writes it
        exit_sql = (
            ", state = 'completed', completed_reason = 'replied', next_scheduled = NULL"
            if row["state"] == "active"
            else ""
        )
        self.conn.execute(
            f"UPDATE recipients SET replied = 1, updated = ?, stages = ?{exit_sql} WHERE _id = ?",  # noqa: S608 - fixed text
            (t, json.dumps(stages), rid),
        )
        return True

    def _event(self, kind: str, t: int, message: dict[str, Any]) -> None:
        engaged = kind != "sent"
        city = os_name = program = mobile = None
        if engaged:
            email = json.loads(message["to_json"] or "[{}]")[0].get("email")
            zone = self.conn.execute(
                "SELECT timezone FROM contacts WHERE email = ?", (email,)
            ).fetchone()
            city = _CITY.get(zone[0]) if zone else self.rng.choice(N.ZONES)[1]
            os_name, program, mobile, _ = self.rng.choices(N.DEVICES, weights=_DEVICE_WEIGHTS)[0]
        link = self.rng.choice(N.LINKS) if kind == "clicked" else (None, None)
        self.conn.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                object_id(t, self.rng),
                kind,
                t,
                message["_id"],
                message["user_id"],
                message["sequence_id"],
                city,
                os_name,
                program,
                mobile,
                link[0],
                link[1],
                self.rng.choice(N.FILES) if kind == "downloaded" else None,
            ),
        )


def _complete(stage: dict[str, Any]) -> None:
    """Give a stored stage every counter, as numbers: stages planned by earlier
    sandbox versions lack some and hold booleans."""
    for key, default in stage_counters(str(stage.get("type"))).items():
        value = stage.get(key, default)
        stage[key] = int(value) if isinstance(value, bool) else value
