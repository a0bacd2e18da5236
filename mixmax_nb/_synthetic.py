"""A synthetic events frame with the real schema, built with numpy (for benchmarks).

Not a sandbox: no state, no API, just plausible engagement rows at scale, so
analytics can be timed on a million events in about a second of generation. The
frame follows ``frames.SCHEMAS["events"]`` exactly and carries
``attrs["source"] = "sandbox"`` (it is demo data).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from . import frames

__all__ = ["synthetic_frames"]

_ZONES = ("America/New_York", "America/Los_Angeles", "Europe/London", "Europe/Berlin")


def synthetic_frames(
    n_events: int = 1_000_000, *, seed: int = 7, sequences: int = 40, senders: int = 25
) -> dict[str, pd.DataFrame]:
    """``{"events", "recipients", "sequences"}`` frames with about ``n_events`` events."""
    rng = np.random.default_rng(seed)
    # About 2 events per delivery at the rates below: size deliveries to match.
    n_deliveries = max(1, int(n_events / 2.0))
    n_people = max(1, n_deliveries // 3)
    stages = 4
    seq_of_person = rng.integers(0, sequences, n_people)
    sender_of_seq = rng.integers(0, senders, sequences)
    enrolled_ms = 1_735_689_600_000 + rng.integers(0, 120 * 86_400_000, n_people)
    person = rng.integers(0, n_people, n_deliveries)
    stage = rng.integers(0, stages, n_deliveries)
    sent_ms = (
        enrolled_ms[person] + stage * 3 * 86_400_000 + rng.integers(0, 36_000_000, n_deliveries)
    )
    seq = seq_of_person[person]
    quality = 0.5 + (seq % 7) / 14  # some sequences do better than others
    bounced = rng.random(n_deliveries) < 0.03
    opens = np.where(bounced, 0, rng.poisson(1.2 * quality, n_deliveries))
    clicked = (~bounced) & (rng.random(n_deliveries) < 0.12 * quality)
    downloaded = (~bounced) & (rng.random(n_deliveries) < 0.03)
    replied = (~bounced) & (rng.random(n_deliveries) < 0.08 * quality)
    unsub = (~bounced) & (rng.random(n_deliveries) < 0.01)

    parts_d: list[np.ndarray[Any, Any]] = []
    parts_t: list[np.ndarray[Any, Any]] = []
    parts_ts: list[np.ndarray[Any, Any]] = []
    idx = np.arange(n_deliveries)

    def add(rows: np.ndarray[Any, Any], kind: str, delay_h: float) -> None:
        parts_d.append(rows)
        parts_t.append(np.full(len(rows), kind, dtype=object))
        lag = (rng.exponential(delay_h, len(rows)) * 3_600_000).astype(np.int64)
        parts_ts.append(sent_ms[rows] + lag)

    add(idx, "sent", 0.0)
    add(idx[bounced], "bounced", 0.05)
    add(np.repeat(idx, opens), "opened", 10.0)
    add(idx[clicked], "clicked", 12.0)
    add(idx[downloaded], "downloaded", 14.0)
    add(idx[replied], "replied", 20.0)
    add(idx[unsub], "unsubscribed", 30.0)
    d = np.concatenate(parts_d)
    types = np.concatenate(parts_t)
    ts = np.concatenate(parts_ts)
    n = len(d)

    emails = np.asarray([f"person{i}@example.com" for i in range(n_people)], dtype=object)
    seq_ids = np.asarray([f"seq{i:04d}" for i in range(sequences)], dtype=object)
    seq_names = np.asarray([f"Outbound play {i}" for i in range(sequences)], dtype=object)
    user_ids = np.asarray([f"user{i:03d}" for i in range(senders)], dtype=object)
    clicked_rows = types == "clicked"
    link = np.where(clicked_rows, rng.integers(0, 12, n), -1)
    file_rows = types == "downloaded"
    file = np.where(file_rows, rng.integers(0, 5, n), -1)
    links = np.asarray([None] + [f"https://example.com/page{i}" for i in range(12)], dtype=object)
    files = np.asarray([None] + [f"deck-{i}.pdf" for i in range(5)], dtype=object)
    columns: dict[str, Any] = {
        "id": np.char.add("ev", np.arange(n).astype(str)).astype(object),
        "type": pd.Categorical(types, categories=list(frames.EVENT_TYPES)),
        "timestamp": pd.to_datetime(ts, unit="ms", utc=True).as_unit("ms"),
        "message_id": np.char.add("m", d.astype(str)).astype(object),
        "user_id": user_ids[sender_of_seq[seq[d]]],
        "recipient_email": emails[person[d]],
        "recipient_name": emails[person[d]],
        "subject": np.asarray([f"Subject {i}" for i in range(sequences * stages)], dtype=object)[
            seq[d] * stages + stage[d]
        ],
        "sequence_id": seq_ids[seq[d]],
        "sequence_name": seq_names[seq[d]],
        "stage_id": np.char.add("st", (seq[d] * stages + stage[d]).astype(str)).astype(object),
        "stage_index": stage[d],
        "city": None,
        "os": None,
        "program": None,
        "is_mobile": None,
        "link_url": links[link + 1],
        "link_text": links[link + 1],
        "file_name": files[file + 1],
    }
    events = pd.DataFrame(columns)
    events = events.astype(dict(frames.SCHEMAS["events"]))
    events = events.sort_values("timestamp", ascending=False, kind="stable").reset_index(drop=True)
    recipients = pd.DataFrame(
        {
            "id": np.char.add("r", np.arange(n_people).astype(str)).astype(object),
            "sequence_id": seq_ids[seq_of_person],
            "email": emails,
            "user_id": user_ids[sender_of_seq[seq_of_person]],
            "created_at": pd.to_datetime(enrolled_ms, unit="ms", utc=True).as_unit("ms"),
        }
    )
    seqs = pd.DataFrame(
        {
            "id": seq_ids,
            "name": seq_names,
            "timezone": np.asarray(_ZONES, dtype=object)[np.arange(sequences) % len(_ZONES)],
            "team_ids": None,
        }
    )
    for frame in (events, recipients, seqs):
        frame.attrs["source"] = "sandbox"
    return {"events": events, "recipients": recipients, "sequences": seqs}
