"""analytics: hand-computed cases, and an independent plain-loop recomputation on the sandbox."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mixmax_nb import analytics as A
from mixmax_nb import frames

T0 = pd.Timestamp("2025-03-03 09:00", tz="UTC")  # a Monday


def ev(kind: str, msg: str, email: str, hours: float = 0.0, **extra: Any) -> dict[str, Any]:
    row = {
        "id": f"{kind}-{msg}-{email}-{hours}",
        "type": kind,
        "timestamp": T0 + pd.Timedelta(hours=hours),
        "message_id": msg,
        "user_id": extra.pop("user", "u1"),
        "recipient_email": email,
        "sequence_id": extra.pop("seq", "s1"),
        "sequence_name": extra.pop("seq_name", "Seq one"),
        "stage_index": extra.pop("stage", 0),
        "subject": extra.pop("subject", "Hello"),
    }
    row.update(extra)
    return row


def frame(rows: list[dict[str, Any]], source: str | None = "sandbox") -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for column in frames.SCHEMAS["events"]:
        if column not in df:
            df[column] = None
    df = df[list(frames.SCHEMAS["events"])].astype(dict(frames.SCHEMAS["events"]))
    if source:
        df.attrs["source"] = source
    return df


@pytest.fixture
def hand() -> pd.DataFrame:
    """Two sequences. s1: a (opened twice, clicked, replied), b (bounced), c (opened).
    s2: d (sent two stages, opened stage 0, replied stage 1), e (sent, nothing)."""
    return frame(
        [
            ev("sent", "m1", "a"),
            ev("opened", "m1", "a", 1),
            ev("opened", "m1", "a", 3),
            ev("clicked", "m1", "a", 3, link_url="https://x.example/p", link_text="P"),
            ev("replied", "m1", "a", 5),
            ev("sent", "m2", "b"),
            ev("bounced", "m2", "b", 0.1),
            ev("opened", "m2", "b", 2),  # an open on a bounced message does not count
            ev("sent", "m3", "c"),
            ev("opened", "m3", "c", 30),
            ev("sent", "m4", "d", seq="s2", seq_name="Seq two"),
            ev("opened", "m4", "d", 2, seq="s2", seq_name="Seq two"),
            ev("sent", "m5", "d", 72, seq="s2", seq_name="Seq two", stage=1),
            ev("replied", "m5", "d", 80, seq="s2", seq_name="Seq two", stage=1),
            ev("sent", "m6", "e", seq="s2", seq_name="Seq two", user="u2"),
            ev("opened", "m9", "z", 1),  # orphan: its message was never seen sent
        ]
    )


def test_kpi_table_hand_computed(hand: pd.DataFrame) -> None:
    table = A.kpi_table(hand, "sequence").set_index("key")
    s1, s2 = table.loc["s1"], table.loc["s2"]
    assert (s1.sent, s1.delivered, s1.bounced, s1.opened, s1.clicked) == (3, 2, 1, 2, 1)
    assert (s1.reached, s1.replied) == (2, 1)
    assert s1.open_rate == pytest.approx(1.0)
    assert s1.reply_rate == pytest.approx(0.5)
    assert s1.bounce_rate == pytest.approx(1 / 3)
    assert s1.click_to_open_rate == pytest.approx(0.5)
    assert (s2.sent, s2.delivered, s2.opened, s2.reached, s2.replied) == (3, 3, 1, 2, 1)
    assert s2.label == "Seq two"
    assert pd.isna(s1.enrolled)  # no recipients frame given
    assert table.attrs["source"] == "sandbox"
    assert A.prepare(hand).orphan_events == 1


def test_wilson_matches_known_values() -> None:
    # 1 of 2: the Wilson interval is (0.0945, 0.9055) (Newcombe 1998, table I style check).
    lo, hi = A.wilson_interval([1, 0, 10], [2, 10, 10])
    assert lo[0] == pytest.approx(0.0945, abs=1e-4)
    assert hi[0] == pytest.approx(0.9055, abs=1e-4)
    assert lo[1] == 0.0 and hi[1] == pytest.approx(0.2775, abs=1e-4)
    assert hi[2] == pytest.approx(1.0) and lo[2] == pytest.approx(0.7225, abs=1e-4)
    lo0, hi0 = A.wilson_interval([0], [0])
    assert math.isnan(lo0[0]) and math.isnan(hi0[0])


def test_newcombe_matches_published_example() -> None:
    # Newcombe (1998) example: 56/70 vs 48/80 -> difference 0.2, interval 0.0524 to 0.3339.
    d, lo, hi = A.newcombe_interval(56, 70, 48, 80)
    assert d == pytest.approx(0.2)
    assert lo == pytest.approx(0.0524, abs=1e-4)
    assert hi == pytest.approx(0.3339, abs=1e-4)


def test_funnel_dropoff_timing(hand: pd.DataFrame) -> None:
    f = A.funnel(hand).set_index("step")
    assert f["recipients"].tolist() == [5, 3, 1, 2]  # sent a,b,c,d,e; opened a,c,d; ...
    assert f.loc["replied", "of_sent"] == pytest.approx(0.4)
    drop = A.stage_dropoff(hand, "s2")
    assert drop["sent"].tolist() == [2, 1]
    assert drop["continued"].tolist() == [1, 0]
    assert drop["dropoff_rate"].iloc[0] == pytest.approx(0.5)
    assert math.isnan(drop["dropoff_rate"].iloc[1])
    summary = A.time_to_summary(hand).set_index("kind")
    # first opens: a 1h, c 30h, d 2h -> median 2h; replies: a 5h, d 8h -> median 6.5h
    assert summary.loc["open", "median_h"] == pytest.approx(2.0)
    assert summary.loc["reply", "median_h"] == pytest.approx(6.5)
    hist = A.time_to_first(hand)
    assert hist.loc[hist.kind == "open", "deliveries"].sum() == 3


def test_heatmap_zones(hand: pd.DataFrame) -> None:
    utc = A.heatmap(hand, tz="UTC")
    assert utc.to_numpy().sum() == 5  # every open event of a known send (repeats too)
    assert utc.loc["Mon", 10] == 1  # a's first open, 10:00 UTC Monday
    ny = A.heatmap(hand, tz="America/New_York")
    assert ny.loc["Mon", 5] == 1  # the same open at 05:00 in New York (EST)
    seqs = pd.DataFrame({"id": ["s1", "s2"], "name": ["Seq one", "Seq two"]})
    seqs["timezone"] = ["Asia/Tokyo", None]
    eng = A.prepare(hand, sequences=seqs, account_tz="Europe/Berlin")
    grid = A.heatmap(eng)
    assert "send-window" in grid.attrs["tz"]
    assert grid.loc["Mon", 19] == 1  # s1 opens in Tokyo: 10:00 UTC = 19:00 JST
    assert grid.loc["Mon", 12] == 1  # s2 (no zone) in Berlin: 11:00 UTC = 12:00 CET
    send = A.heatmap(hand, "replied", tz="UTC", when="sent")
    assert send.loc["Mon", 9] == pytest.approx(1 / 4)  # delivered m1, m3, m4, m6; m1 replied


def test_filter_by_time_counts_later_engagement(hand: pd.DataFrame) -> None:
    eng = A.prepare(hand)
    later = eng.filter(since=T0 + pd.Timedelta(hours=48))
    table = A.kpi_table(later, None)
    assert int(table.sent.iloc[0]) == 1  # only m5 was sent after 48 h
    assert int(table.replied.iloc[0]) == 1
    s2 = eng.filter(sequences=["s2"], senders=["u1"])
    assert int(A.kpi_table(s2, None).sent.iloc[0]) == 2
    no_replies = eng.filter(types=["opened", "clicked", "bounced"])
    assert int(A.kpi_table(no_replies, None).replied.iloc[0]) == 0
    no_bounce = eng.filter(types=["opened"])
    assert int(A.kpi_table(no_bounce, None).delivered.iloc[0]) == 6
    assert int(A.kpi_table(eng.filter(sequences=[]), None).sent.sum()) == 0


def test_compare_verdicts() -> None:
    rows = []
    for i in range(400):
        seq, win = ("A", i < 120) if i % 2 == 0 else ("B", i < 40)
        rows.append(ev("sent", f"m{i}", f"p{i}", seq=seq, seq_name=f"Seq {seq}"))
        if win:
            rows.append(ev("replied", f"m{i}", f"p{i}", 2, seq=seq, seq_name=f"Seq {seq}"))
    data = frame(rows)
    c = A.compare(data, "A", "B")
    assert (c.replied_a, c.reached_a, c.replied_b, c.reached_b) == (60, 200, 20, 200)
    assert c.lower > 0 and "Seq A gets more replies" in c.verdict
    flipped = A.compare(data, "Seq B", "Seq A")
    assert flipped.upper < 0 and "Seq A gets more replies" in flipped.verdict
    even = A.compare(frame(rows[:40]), "A", "B")
    assert even.lower < 0 < even.upper or even.reached_b == 0
    assert "Cannot compare" in A.compare(data, "A", "nope").verdict


def test_cohorts_top_links_and_recipients(hand: pd.DataFrame) -> None:
    rec = pd.DataFrame(
        {
            "sequence_id": ["s1", "s1", "s1", "s2", "s2", "s2"],
            "email": ["a", "b", "c", "d", "e", "f"],
            "user_id": ["u1"] * 6,
            "created_at": [T0 - pd.Timedelta(days=1)] * 6,
        }
    )
    eng = A.prepare(hand, rec)
    table = A.kpi_table(eng, "sequence").set_index("key")
    assert table.loc["s2", "enrolled"] == 3 and table.loc["s1", "enrolled"] == 3
    coh = A.cohorts(eng)
    first = coh.loc[coh.weeks_since == 0]
    # Enrolled the Sunday before T0: week of 2025-02-24. Reached a, c, d, e; replied a, d.
    assert first["cohort"].iloc[0] == pd.Timestamp("2025-02-24", tz="UTC")
    assert int(first["recipients"].iloc[0]) == 4
    assert int(first["replied"].iloc[0]) == 2
    links = A.top_links(hand)
    assert links["link_url"].tolist() == ["https://x.example/p"]
    assert int(links["recipients"].iloc[0]) == 1


def test_empty_frames_are_safe() -> None:
    empty = frames.empty("events")
    eng = A.prepare(empty)
    assert len(A.kpi_table(eng)) == 0
    assert A.funnel(eng)["recipients"].tolist() == [0, 0, 0, 0]
    assert A.heatmap(eng).to_numpy().sum() == 0
    assert len(A.cohorts(eng)) == 0
    assert A.time_to_summary(eng)["n"].tolist() == [0, 0]
    assert "Cannot compare" in A.compare(eng, "a", "b").verdict


# -- independent computation on the small sandbox ---------------------------------------


@pytest.fixture(scope="module")
def sandbox_frames() -> dict[str, pd.DataFrame]:
    import mixmax_nb as mx

    client = mx.connect("sandbox", size="small", db=":memory:")
    events = client.events()
    sequences = client.sequences()
    recipients = pd.concat([client.recipients(s) for s in sequences["id"]], ignore_index=True)
    return {"events": events, "sequences": sequences, "recipients": recipients}


def _loop_kpis(events: pd.DataFrame) -> dict[str, dict[str, int]]:
    """The obvious per-row computation, written without any of analytics' machinery."""
    sent: dict[tuple[str, str], str] = {}
    seq_of: dict[tuple[str, str], str] = {}
    types: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in events.itertuples(index=False):
        key = (str(row.message_id), str(row.recipient_email))
        types[key].add(str(row.type))
        if row.type == "sent":
            sent[key] = "x"
            seq_of[key] = "" if pd.isna(row.sequence_id) else str(row.sequence_id)
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "sent": 0,
            "delivered": 0,
            "opened": 0,
            "clicked": 0,
            "bounced": 0,
            "reached": set(),
            "replied": set(),
        }
    )
    for key in sent:
        seq = seq_of[key]
        g = out[seq]
        g["sent"] += 1
        person = (seq, key[1])
        if "bounced" in types[key]:
            g["bounced"] += 1
            continue
        g["delivered"] += 1
        g["reached"].add(person)
        g["opened"] += "opened" in types[key]
        g["clicked"] += "clicked" in types[key]
        if "replied" in types[key]:
            g["replied"].add(person)
    return {
        seq: {k: (len(v) if isinstance(v, set) else v) for k, v in g.items()}
        for seq, g in out.items()
    }


def test_matches_plain_loops_on_small_sandbox(sandbox_frames: dict[str, pd.DataFrame]) -> None:
    events = sandbox_frames["events"]
    assert len(events) > 500
    expected = _loop_kpis(events)
    eng = A.prepare(events, sandbox_frames["recipients"], sandbox_frames["sequences"])
    table = A.kpi_table(eng, "sequence")
    assert table.attrs["source"] == "sandbox"
    got = {
        str(r["key"]): {k: int(r[k]) for k in expected[next(iter(expected))]}
        for r in table.to_dict("records")
    }
    assert got == expected
    # Enrolled = recipients rows per sequence.
    enrolled = sandbox_frames["recipients"].groupby("sequence_id").size()
    for r in table.to_dict("records"):
        if r["key"] in enrolled.index:
            assert r["enrolled"] == enrolled[r["key"]]
    # Funnel: unique (sequence, email) with each event type on delivered messages.
    people: dict[str, set[tuple[str, str]]] = defaultdict(set)
    msg_types: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in events.itertuples(index=False):
        msg_types[(str(row.message_id), str(row.recipient_email))].add(str(row.type))
    for row in events.itertuples(index=False):
        t = msg_types[(str(row.message_id), str(row.recipient_email))]
        if "sent" not in t:
            continue
        person = (
            "" if pd.isna(row.sequence_id) else str(row.sequence_id),
            str(row.recipient_email),
        )
        if row.type == "sent":
            people["sent"].add(person)
        elif "bounced" not in t and row.type in ("opened", "clicked", "replied"):
            people[str(row.type)].add(person)
    f = A.funnel(eng).set_index("step")["recipients"].to_dict()
    assert f == {k: len(people[k]) for k in ("sent", "opened", "clicked", "replied")}
    # Heatmap in UTC: opened events of delivered, known-sent messages by weekday/hour.
    grid = np.zeros((7, 24), dtype=int)
    for row in events.itertuples(index=False):
        t = msg_types[(str(row.message_id), str(row.recipient_email))]
        if row.type == "opened" and "sent" in t:
            grid[row.timestamp.weekday(), row.timestamp.hour] += 1
    assert (A.heatmap(eng, tz="UTC").to_numpy() == grid).all()
