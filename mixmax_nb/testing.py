"""Test and benchmark helpers shipped with the package (no I/O, no state).

:func:`synthetic_engagement` builds an :class:`~mixmax_nb.data.engagement.EngagementData`
of any size with numpy, in the documented shapes: recipients' stages with Mixmax's
counters (an active recipient's stages not sent yet included, ``scheduled``, as a
live pull lists them: analytics must pick the sent emails out), the messages they
sent, and per-message events that agree with the counters (a stage's ``opens`` is
the number of its message's ``opened`` events), with Mixmax's id shapes
(17-character Meteor ids for messages, 24-hex ObjectIds for recipients: joins on
them cost what they cost on a real account) and about 1.5% of recipients
unsubscribed. It is not a sandbox (no API, no state): it exists so analytics can be
timed at 100k, 1M and 5M events in seconds of generation. Frames carry
``attrs["source"] = "sandbox"`` (it is made-up data) and follow
:data:`mixmax_nb.frames.SCHEMAS` exactly.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from . import frames
from .data.engagement import EngagementData, empty_stats

__all__ = ["synthetic_engagement"]

_ZONES = ("America/New_York", "America/Los_Angeles", "Europe/London", "Europe/Berlin")
_T0 = 1_735_689_600_000  # 2025-01-01T00:00Z
_DAY = 86_400_000
_HOUR = 3_600_000


def _typed(kind: str, columns: dict[str, Any], n: int) -> pd.DataFrame:
    """A frame of ``kind`` with every schema column (absent ones missing), typed."""
    schema = frames.SCHEMAS[kind]
    data = {name: columns.get(name, pd.NA) if name in columns else [pd.NA] * n for name in schema}
    frame = pd.DataFrame(data)
    for name, dtype in schema.items():
        if str(dtype).startswith("datetime"):
            frame[name] = pd.to_datetime(frame[name], unit="ms", utc=True).dt.as_unit("ms")
        else:
            frame[name] = frame[name].astype(dtype)  # type: ignore[arg-type]
    frame.attrs["source"] = "sandbox"
    return frame


def _with_upcoming(
    sent: dict[str, Any],
    person: np.ndarray[Any, Any],
    active: np.ndarray[Any, Any],
    enrolled: np.ndarray[Any, Any],
    stages: int,
    per_person: dict[str, np.ndarray[Any, Any]],
    seq_of_person: np.ndarray[Any, Any],
) -> pd.DataFrame:
    """The stage rows of every recipient: the sent ones, then, for a recipient still
    active, the stages not sent yet (``scheduled``: a ``scheduledAt``, no ``sentAt``,
    no ``messageId``, counters at 0, as the sandbox and a real account list them),
    each recipient's rows together in stage order. Analytics must pick the sent
    emails out of them, as it does on a live pull; a dataset of sent stages only
    would time a friendlier account than Mixmax's."""
    n_people = len(active)
    sent_count = np.bincount(person, minlength=n_people)
    n_up = np.where(active, np.maximum(stages - sent_count, 0), 0)
    who = np.repeat(np.arange(n_people), n_up)
    within = np.arange(len(who)) - np.repeat(np.cumsum(n_up) - n_up, n_up)
    ordinal = sent_count[who] + within
    seq = seq_of_person[who]
    up: dict[str, Any] = {name: values[who] for name, values in per_person.items()}
    up.update(
        {
            "stage_id": np.char.add("st", (seq * stages + ordinal).astype(str)).astype(object),
            "ordinal": ordinal,
            "type": np.full(len(who), "email", dtype=object),
            "state": np.full(len(who), "scheduled", dtype=object),
            "scheduled_at": enrolled[who] + ordinal * 3 * _DAY + 9 * _HOUR,
            "sent_at": np.full(len(who), np.nan),
            "message_id": np.full(len(who), None, dtype=object),
            **{name: np.zeros(len(who), dtype=np.int64) for name in _COUNTERS},
            **{name: np.zeros(len(who), dtype=bool) for name in ("replied", "bounced")},
        }
    )
    # Stable: a recipient's sent rows keep their order, the upcoming ones follow.
    order = np.argsort(np.r_[person, who], kind="stable")
    rows = {
        name: np.concatenate([np.asarray(sent[name]), np.asarray(up[name])])[order] for name in sent
    }
    rows["sent_at"] = rows["sent_at"].astype(np.float64)  # NaN: not sent (NaT once typed)
    return _typed("recipient_stages", rows, len(order))


_COUNTERS: Final = ("opens", "clicks", "downloads")


_METEOR: Final = np.frombuffer(b"23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz", np.uint8)
_HEX: Final = np.frombuffer(b"0123456789abcdef", np.uint8)


def _text(chars: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Rows of ASCII codes as an object array of str."""
    return chars.astype(np.uint8).view(f"S{chars.shape[1]}").ravel().astype(str).astype(object)


def _meteor_ids(rng: np.random.Generator, n: int) -> np.ndarray[Any, Any]:
    """``n`` distinct 17-character Meteor ids (Mixmax's message and user ids): 12
    random characters, then the row number in base 55 (distinct, yet in no order)."""
    chars = _METEOR[rng.integers(0, len(_METEOR), (n, 17))]
    row = np.arange(n)
    for k in range(16, 11, -1):  # 55**5 > 500M rows: distinct, whatever the size
        chars[:, k] = _METEOR[row % len(_METEOR)]
        row //= len(_METEOR)
    return _text(chars)


def _object_ids(
    rng: np.random.Generator, n: int, seconds: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """``n`` 24-hex ObjectIds (Mixmax's recipient ids): creation second, a random
    process id, then a 24-bit counter (distinct up to 16M recipients)."""
    nibbles = np.empty((n, 24), dtype=np.int64)
    for k in range(8):
        nibbles[:, k] = (seconds >> (4 * (7 - k))) & 15
    nibbles[:, 8:18] = rng.integers(0, 16, 10)
    counter = np.arange(n) + int(rng.integers(0, 1 << 20))
    for k in range(6):
        nibbles[:, 23 - k] = (counter >> (4 * k)) & 15
    return _text(_HEX[nibbles])


def synthetic_engagement(
    n_events: int = 1_000_000,
    *,
    seed: int = 7,
    sequences: int = 40,
    senders: int = 25,
    stages: int = 4,
) -> EngagementData:
    """A ``detail="events"`` dataset with about ``n_events`` events (see the module doc)."""
    rng = np.random.default_rng(seed)
    n_deliveries = max(1, int(n_events / 0.9))  # about 0.9 events per sent email
    sent_per_person = rng.integers(1, stages + 1, max(1, n_deliveries // ((stages + 1) // 2)))
    person = np.repeat(np.arange(len(sent_per_person)), sent_per_person)[:n_deliveries]
    n_people = int(person.max()) + 1
    n_deliveries = len(person)
    first_of_person = np.r_[0, np.flatnonzero(np.diff(person)) + 1]
    ordinal = np.arange(n_deliveries) - np.repeat(first_of_person, np.bincount(person))
    seq_of_person = rng.integers(0, sequences, n_people)
    sender_of_seq = rng.integers(0, senders, sequences)
    enrolled = _T0 + rng.integers(0, 150 * _DAY, n_people)
    seq = seq_of_person[person]
    sent_ms = enrolled[person] + ordinal * 3 * _DAY + rng.integers(0, 10 * _HOUR, n_deliveries)
    quality = 0.5 + (seq % 7) / 14  # some sequences do better than others
    bounced = rng.random(n_deliveries) < 0.03
    opens = np.where(bounced, 0, rng.poisson(1.0 * quality, n_deliveries))
    clicks = np.where((~bounced) & (rng.random(n_deliveries) < 0.12 * quality), 1, 0)
    downloads = np.where((~bounced) & (rng.random(n_deliveries) < 0.03), 1, 0)
    replied = (~bounced) & (rng.random(n_deliveries) < 0.08 * quality)

    # Events that agree with the counters: one per open, click, download and reply.
    counts = {"opened": opens, "clicked": clicks, "downloaded": downloads,
              "replied": replied.astype(np.int64)}  # fmt: skip
    delays_h = {"opened": 8.0, "clicked": 10.0, "downloaded": 12.0, "replied": 20.0}
    parts_d, parts_t, parts_ts = [], [], []
    for kind, per in counts.items():
        rows = np.repeat(np.arange(n_deliveries), per)
        parts_d.append(rows)
        parts_t.append(np.full(len(rows), kind, dtype=object))
        lag = (rng.exponential(delays_h[kind], len(rows)) * _HOUR).astype(np.int64)
        parts_ts.append(sent_ms[rows] + lag)
    d = np.concatenate(parts_d)
    types = np.concatenate(parts_t)
    ts = np.concatenate(parts_ts)
    n = len(d)

    more = np.random.default_rng(seed + 1)  # its own stream: the numbers above stay put
    message_ids = _meteor_ids(more, n_deliveries)
    emails = np.char.add(np.char.add("person", np.arange(n_people).astype(str)), "@example.com")
    emails = emails.astype(object)
    seq_ids = np.asarray([f"seq{i:04d}" for i in range(sequences)], dtype=object)
    user_ids = np.asarray([f"user{i:03d}" for i in range(senders)], dtype=object)
    recipient_ids = _object_ids(more, n_people, enrolled // 1000)
    links = np.asarray([None] + [f"https://example.com/page{i}" for i in range(12)], dtype=object)
    files = np.asarray([None] + [f"deck-{i}.pdf" for i in range(5)], dtype=object)
    link = np.where(types == "clicked", rng.integers(1, 13, n), 0)
    file = np.where(types == "downloaded", rng.integers(1, 6, n), 0)
    events = _typed(
        "events",
        {
            "id": np.char.add("ev", np.arange(n).astype(str)).astype(object),
            "type": types,
            "timestamp": ts,
            "message_id": message_ids[d],
            "recipient_email": emails[person[d]],
            "recipient_name": emails[person[d]],
            "link_url": links[link],
            "link_text": links[link],
            "file_name": files[file],
        },
        n,
    )
    subjects = np.asarray([f"Subject {i}" for i in range(sequences * stages)], dtype=object)
    sender = user_ids[sender_of_seq[seq]]
    stage_ids = np.char.add("st", (seq * stages + ordinal).astype(str)).astype(object)
    last = np.zeros(n_people, dtype=np.int64)
    np.maximum.at(last, person, ordinal)
    exited_reply = np.zeros(n_people, dtype=bool)
    exited_reply[person[replied]] = True
    # About 1.5% unsubscribe (Mixmax then exits them); a reply exits first.
    exited_unsub = ~exited_reply & (more.random(n_people) < 0.015)
    state = np.where(exited_reply | exited_unsub, "completed", "active")
    reason = np.full(n_people, None, dtype=object)
    reason[exited_unsub] = "unsubscribed"
    reason[exited_reply] = "replied"
    stage_rows = _with_upcoming(
        {
            "recipient_id": recipient_ids[person],
            "sequence_id": seq_ids[seq],
            "email": emails[person],
            "user_id": sender,
            "recipient_state": state[person],
            "completed_reason": reason[person],
            "stage_id": stage_ids,
            "ordinal": ordinal,
            "type": np.full(n_deliveries, "email", dtype=object),
            "state": np.full(n_deliveries, "sent", dtype=object),
            "scheduled_at": sent_ms,
            "sent_at": sent_ms,
            "message_id": message_ids,
            "opens": opens,
            "clicks": clicks,
            "downloads": downloads,
            "replied": replied,
            "bounced": bounced,
        },
        person,
        state == "active",
        enrolled,
        stages,
        {
            "recipient_id": recipient_ids,
            "sequence_id": seq_ids[seq_of_person],
            "email": emails,
            "user_id": user_ids[sender_of_seq[seq_of_person]],
            "recipient_state": state,
            "completed_reason": reason,
        },
        seq_of_person,
    )
    messages = _typed(
        "messages",
        {
            "id": message_ids,
            "user_id": sender,
            "state": "sent",
            "created_at": sent_ms,
            "sent_at": sent_ms,
            "to": emails[person],
            "subject": subjects[seq * stages + ordinal],
            "sequence_id": seq_ids[seq],
            "stage_id": stage_ids,
            "recipient_id": recipient_ids[person],
        },
        n_deliveries,
    )
    recipients = _typed(
        "recipients",
        {
            "id": recipient_ids,
            "sequence_id": seq_ids[seq_of_person],
            "email": emails,
            "user_id": user_ids[sender_of_seq[seq_of_person]],
            "state": state,
            "completed_reason": reason,
            "created_at": enrolled,
            "last_stage_sent_ordinal": last,
        },
        n_people,
    )
    seqs = _typed(
        "sequences",
        {
            "id": seq_ids,
            "name": [f"Outbound play {i}" for i in range(sequences)],
            "timezone": np.asarray(_ZONES, dtype=object)[np.arange(sequences) % len(_ZONES)],
        },
        sequences,
    )
    return EngagementData(
        sequences=seqs,
        recipients=recipients,
        stages=stage_rows,
        messages=messages,
        stats=empty_stats(),
        events=events,
        detail="events",
        source="sandbox",
    )
