"""Identifiers and timestamps in the formats Mixmax uses.

* 24-hex ObjectIds (sequences, stages, recipients, events, snippets, polls, rules,
  unsubscribes): the first 8 hex digits are the creation time in seconds, as in
  MongoDB, so ordering by ``_id`` is ordering by creation time.
* 17-character Meteor ids (users, messages, teams).
* ISO 8601 strings with milliseconds and epoch milliseconds, the two date formats
  Mixmax mixes per resource.

Pure functions; runtime ids come from ``os.urandom``, seeded ids from the seed's
random generator (see ``seed``).
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime

METEOR_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"


def object_id(ms: int, rand: random.Random | None = None) -> str:
    """A 24-hex ObjectId whose time prefix is ``ms`` (epoch milliseconds)."""
    tail = rand.getrandbits(64) if rand is not None else int.from_bytes(os.urandom(8), "big")
    return f"{(ms // 1000) & 0xFFFFFFFF:08x}{tail:016x}"


def meteor_id(rand: random.Random | None = None) -> str:
    """A 17-character Meteor id."""
    if rand is None:
        raw = os.urandom(17)
        return "".join(METEOR_ALPHABET[b % len(METEOR_ALPHABET)] for b in raw)
    return "".join(rand.choice(METEOR_ALPHABET) for _ in range(17))


def run_id() -> str:
    """An action run id (Membrane's are 24-hex ObjectIds too)."""
    return os.urandom(12).hex()


def iso(ms: int) -> str:
    """Epoch ms -> ``2016-10-30T01:14:07.790Z`` (the format of sequences, teams, rules)."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_time(value: object) -> int | None:
    """Epoch ms from an int, a numeric string, or an ISO 8601 string; None if unparseable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    if not text:
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)
