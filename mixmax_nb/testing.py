"""Test and benchmark helpers shipped with the package (no I/O, no state).

:func:`synthetic_engagement` builds an :class:`~mixmax_nb.data.engagement.EngagementData`
of any size with numpy, in the documented shapes: recipients' stages with Mixmax's
counters, the messages they sent, and per-message events that agree with the
counters (a stage's ``opens`` is the number of its message's ``opened`` events). It
is not a sandbox (no API, no state): it exists so analytics can be timed at 100k, 1M
and 5M events in seconds of generation. Frames carry ``attrs["source"] = "sandbox"``
(it is made-up data) and follow :data:`mixmax_nb.frames.SCHEMAS` exactly.
"""

from __future__ import annotations

from typing import Any

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


def _where(mask: np.ndarray[Any, Any], value: str) -> np.ndarray[Any, Any]:
    out = np.full(len(mask), None, dtype=object)
    out[mask] = value
    return out


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

    message_ids = np.char.add("m", np.arange(n_deliveries).astype(str)).astype(object)
    emails = np.char.add(np.char.add("person", np.arange(n_people).astype(str)), "@example.com")
    emails = emails.astype(object)
    seq_ids = np.asarray([f"seq{i:04d}" for i in range(sequences)], dtype=object)
    user_ids = np.asarray([f"user{i:03d}" for i in range(senders)], dtype=object)
    recipient_ids = np.char.add("r", np.arange(n_people).astype(str)).astype(object)
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
    stage_rows = _typed(
        "recipient_stages",
        {
            "recipient_id": recipient_ids[person],
            "sequence_id": seq_ids[seq],
            "email": emails[person],
            "user_id": sender,
            "recipient_state": np.where(exited_reply[person], "completed", "active"),
            "completed_reason": _where(exited_reply[person], "replied"),
            "stage_id": stage_ids,
            "ordinal": ordinal,
            "type": "email",
            "state": "sent",
            "scheduled_at": sent_ms,
            "sent_at": sent_ms,
            "message_id": message_ids,
            "opens": opens,
            "clicks": clicks,
            "downloads": downloads,
            "replied": replied,
            "bounced": bounced,
        },
        n_deliveries,
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
            "state": np.where(exited_reply, "completed", "active"),
            "completed_reason": _where(exited_reply, "replied"),
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
