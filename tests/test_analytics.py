"""analytics over the documented engagement model: hand-computed cases from wire-shaped
records, and the KPI table against an independent count of the raw outputs of
get-sequence-recipients and list-messages on the sandbox."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mixmax_nb as mx
from mixmax_nb import analytics as A
from mixmax_nb import frames
from mixmax_nb.data.engagement import EngagementData, empty_stats, tag_events

T0 = pd.Timestamp("2025-03-03 09:00", tz="UTC")  # a Monday, 09:00 UTC
MS = int(T0.value // 1_000_000)
HOUR = 3_600_000


def stage(
    ordinal: int,
    msg: str | None,
    *,
    hours: float = 0.0,
    opens: int = 0,
    clicks: int = 0,
    downloads: int = 0,
    replied: Any = 0,
    bounced: Any = 0,
    kind: str = "email",
) -> dict[str, Any]:
    """One recipient stage as the live schema sends it: numbers, never booleans."""
    sent = MS + int(hours * HOUR) if msg else None
    return {
        "stageId": f"st{ordinal}",
        "ordinal": ordinal,
        "type": kind,
        "state": "sent" if msg else "scheduled",
        "scheduledAt": sent,
        "sentAt": sent,
        "messageId": msg,
        "opens": opens,
        "clicks": clicks,
        "downloads": downloads,
        "replied": replied,
        "bounced": bounced,
    }


def recipient(
    rid: str, seq: str, email: str, stages: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    return {
        "_id": rid,
        "sequenceId": seq,
        "to": {"email": email},
        "userId": extra.pop("user", "u1"),
        "state": extra.pop("state", "active"),
        "completedReason": extra.pop("reason", None),
        "createdAt": MS - 24 * HOUR,
        "stages": stages,
        **extra,
    }


def event(kind: str, hours: float, **extra: Any) -> dict[str, Any]:
    return {"_id": f"{kind}-{hours}-{extra}", "type": kind, "timestamp": MS + int(hours * HOUR)}


def dataset(
    recipients: list[dict[str, Any]],
    events: dict[str, list[dict[str, Any]]] | None = None,
    sequences: list[dict[str, Any]] | None = None,
) -> EngagementData:
    seqs = sequences or [{"_id": "s1", "name": "Seq one"}, {"_id": "s2", "name": "Seq two"}]
    tagged = None
    if events is not None:
        tagged = frames.shape(
            "events", [e for mid, evs in events.items() for e in tag_events(mid, evs)]
        )
    return EngagementData(
        sequences=frames.shape("sequences", seqs),
        recipients=frames.shape("recipients", recipients),
        stages=frames.shape("recipient_stages", recipients),
        messages=frames.empty("messages"),
        stats=empty_stats(),
        events=tagged,
        detail="events" if events is not None else "summary",
        source="sandbox",
    )


@pytest.fixture
def hand() -> EngagementData:
    """s1: a (opened twice, clicked, replied), b (bounced), c (opened).
    s2: d (two stages sent: opened stage 0, replied stage 1 with no tracked open),
    e (sent, nothing), f (scheduled, not sent yet)."""
    people = [
        recipient(
            "ra", "s1", "a@x.com", [stage(0, "m1", opens=2, clicks=1, replied=1)], state="completed"
        ),
        recipient("rb", "s1", "b@x.com", [stage(0, "m2", bounced=1)]),
        recipient("rc", "s1", "c@x.com", [stage(0, "m3", hours=24, opens=1)]),
        recipient(
            "rd",
            "s2",
            "d@x.com",
            [stage(0, "m4", opens=1), stage(1, "m5", hours=72, replied=1)],
            state="completed",
            reason="replied",
        ),
        recipient("re", "s2", "e@x.com", [stage(0, "m6")]),
        recipient("rf", "s2", "f@x.com", [stage(0, None)]),
    ]
    events = {
        "m1": [
            event("replied", 5),
            event("clicked", 3, linkUrl="https://x.example/p"),
            event("opened", 3),
            event("opened", 1),
        ],
        "m3": [event("opened", 30)],
        "m4": [event("opened", 2)],
        "m5": [event("replied", 80)],
    }
    events["m1"][1].update(linkUrl="https://x.example/p", linkText="P")
    return dataset(people, events)


def test_kpi_table_as_mixmax_counts_it(hand: EngagementData) -> None:
    table = A.kpi_table(hand, "sequence").set_index("key")
    s1, s2 = table.loc["s1"], table.loc["s2"]
    assert [int(s1[c]) for c in ("sent", "delivered", "bounced", "opened", "clicked")] == [
        3,
        2,
        1,
        2,
        1,
    ]
    assert int(s1["replied"]) == 1 and int(s2["replied"]) == 1  # emails replied
    assert int(s2["sent"]) == 3 and int(s2["opened"]) == 1
    # Mixmax's rates: % of delivered emails; bounces % of sent.
    assert s1["open_rate"] == pytest.approx(2 / 2) and s1["reply_rate"] == pytest.approx(1 / 2)
    assert s1["bounce_rate"] == pytest.approx(1 / 3)
    assert s2["reply_rate"] == pytest.approx(1 / 3)
    # Ours, per person: d replied of d and e reached.
    assert int(s2["reached"]) == 2 and s2["people_reply_rate"] == pytest.approx(1 / 2)
    assert int(s2["enrolled"]) == 3  # f is enrolled, not yet sent
    all_ = A.kpi_summary(hand)
    assert int(all_["sent"]) == 6 and int(all_["replied"]) == 2


def test_counters_in_every_documented_form_count_the_same() -> None:
    # replied/bounced as a count, a 0/1 flag or a timestamp; counters null when none.
    forms = [1, 2, MS + HOUR, True]
    for value in forms:
        data = dataset([recipient("r", "s1", "a@x.com", [stage(0, "m1", replied=value)])])
        assert int(A.kpi_summary(data)["replied"]) == 1, value
    nulls = stage(0, "m1")
    nulls.update(opens=None, clicks=None, downloads=None, replied=None, bounced=None)
    data = dataset([recipient("r", "s1", "a@x.com", [nulls])])
    row = A.kpi_summary(data)
    assert int(row["sent"]) == 1 and int(row["opened"]) == 0 and int(row["delivered"]) == 1


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


def test_the_funnel_never_widens(hand: EngagementData) -> None:
    f = A.funnel(hand)
    assert f["emails"].tolist() == [6, 5, 3, 1]  # sent, delivered, opened, replied+opened
    assert all(a >= b for a, b in zip(f["emails"], f["emails"].iloc[1:], strict=False))
    assert f.attrs["replied_unopened"] == 1  # m5: a reply with images blocked
    assert f.set_index("step").loc["opened", "emails"] == A.kpi_summary(hand)["opened"]


def test_stage_dropoff_and_timings(hand: EngagementData) -> None:
    drop = A.stage_dropoff(hand, "s2")
    assert drop["sent"].tolist() == [2, 1]
    assert drop["continued"].tolist() == [1, 0]
    assert drop["dropoff_rate"].iloc[0] == pytest.approx(0.5)
    assert math.isnan(drop["dropoff_rate"].iloc[1])
    summary = A.time_to_summary(hand).set_index("kind")
    # first opens: m1 1h, m3 6h (sent at 24h, opened at 30h), m4 2h -> median 2h
    assert summary.loc["open", "median_h"] == pytest.approx(2.0)
    # replies: m1 5h, m5 8h (sent at 72h, replied at 80h) -> median 6.5h
    assert summary.loc["reply", "median_h"] == pytest.approx(6.5)
    assert A.time_to_first(hand).attrs["needs_events"] is False


def test_a_summary_has_no_timings_and_says_so(hand: EngagementData) -> None:
    summary = EngagementData(
        sequences=hand.sequences,
        recipients=hand.recipients,
        stages=hand.stages,
        messages=hand.messages,
        stats=hand.stats,
        source="sandbox",
    )
    assert A.time_to_summary(summary)["n"].tolist() == [0, 0]
    assert A.time_to_first(summary).attrs["needs_events"] is True
    assert A.heatmap(summary).attrs["needs_events"] is True
    # Counts never depend on events.
    pd.testing.assert_frame_equal(A.kpi_table(summary), A.kpi_table(hand))


def test_heatmaps_by_event_and_by_send_time(hand: EngagementData) -> None:
    utc = A.heatmap(hand, tz="UTC")
    assert utc.to_numpy().sum() == 4  # every opened event of a sequence email
    assert utc.loc["Mon", 10] == 1  # m1's first open, 10:00 UTC Monday
    ny = A.heatmap(hand, tz="America/New_York")
    assert ny.loc["Mon", 5] == 1  # the same open at 05:00 in New York (EST)
    send = A.heatmap(hand, "replied", tz="UTC", when="sent")
    # Sent Monday 09:00 UTC and delivered: m1, m4, m6 (m2 bounced); m1 replied.
    assert send.loc["Mon", 9] == pytest.approx(1 / 3)


def test_filter_by_time_counts_later_engagement(hand: EngagementData) -> None:
    eng = A.prepare(hand)
    later = eng.filter(since=T0 + pd.Timedelta(hours=48))
    table = A.kpi_table(later, None)
    assert int(table.sent.iloc[0]) == 1  # only m5 was sent after 48 h
    assert int(table.replied.iloc[0]) == 1
    assert int(A.kpi_table(eng.filter(sequences=["s2"], senders=["u1"]), None).sent.iloc[0]) == 3
    no_replies = eng.filter(types=["opened", "clicked", "bounced"])
    assert int(A.kpi_table(no_replies, None).replied.iloc[0]) == 0
    assert int(A.kpi_table(eng.filter(sequences=[]), None).sent.sum()) == 0


def test_compare_verdicts() -> None:
    people = []
    for i in range(400):
        seq, win = ("A", i < 120) if i % 2 == 0 else ("B", i < 40)
        people.append(recipient(f"r{i}", seq, f"p{i}@x.com", [stage(0, f"m{i}", replied=win)]))
    data = dataset(people, sequences=[{"_id": "A", "name": "Seq A"}, {"_id": "B", "name": "Seq B"}])
    c = A.compare(data, "A", "B")
    assert (c.replied_a, c.reached_a, c.replied_b, c.reached_b) == (60, 200, 20, 200)
    assert c.lower > 0 and "Seq A gets more replies" in c.verdict
    flipped = A.compare(data, "Seq B", "Seq A")
    assert flipped.upper < 0 and "Seq A gets more replies" in flipped.verdict
    assert "Cannot compare" in A.compare(data, "A", "nope").verdict


def test_cohorts_and_top_links(hand: EngagementData) -> None:
    coh = A.cohorts(hand)
    first = coh.loc[coh.weeks_since == 0]
    # Enrolled the Sunday before T0: week of 2025-02-24. Reached a, c, d, e; replied a, d.
    assert first["cohort"].iloc[0] == pd.Timestamp("2025-02-24", tz="UTC")
    assert int(first["recipients"].iloc[0]) == 4
    assert int(first["replied"].iloc[0]) == 2
    links = A.top_links(hand)
    assert links["link_url"].tolist() == ["https://x.example/p"]
    assert int(links["recipients"].iloc[0]) == 1


def test_empty_data_is_safe() -> None:
    eng = A.prepare(dataset([]))
    assert len(A.kpi_table(eng)) == 0
    assert A.funnel(eng)["emails"].tolist() == [0, 0, 0, 0]
    assert A.heatmap(eng).to_numpy().sum() == 0
    assert len(A.cohorts(eng)) == 0
    assert A.time_to_summary(eng)["n"].tolist() == [0, 0]
    assert "Cannot compare" in A.compare(eng, "a", "b").verdict


# -- the KPI table against the raw outputs, on the sandbox ------------------------------------


def test_kpi_table_equals_an_independent_count_of_the_raw_outputs() -> None:
    """Read get-sequence-recipients and list-messages page by page as plain JSON and
    count what Sequence Insights counts, with loops; the analytics must agree."""
    client = mx.connect("sandbox", size="small", db=":memory:")
    data = client.engagement()
    table = A.kpi_table(data, "sequence").set_index("key")
    messages: dict[str, dict[str, Any]] = {}
    cursor: dict[str, Any] = {}
    while True:
        page = client.run_action("list-messages", {"limit": 300, **cursor})
        messages.update({m["_id"]: m for m in page["results"]})
        if not page["hasNext"]:
            break
        cursor = {"next": page["next"]}
    expected: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for sid in data.sequences["id"]:
        offset = 0
        while True:
            page = client.run_action(
                "get-sequence-recipients", {"sequenceId": sid, "offset": offset, "limit": 50}
            )
            for person in page:
                for st in person.get("stages") or []:
                    if st.get("type") not in ("email", "manual_email") or not st.get("sentAt"):
                        continue
                    if not st.get("messageId"):
                        continue
                    message = messages.get(st["messageId"])
                    assert message is not None, "a stage's messageId is a real message"
                    assert (message.get("sequence") or {}).get("id") == sid
                    counts = expected[sid]
                    bounced = bool(st.get("bounced"))
                    counts["sent"] += 1
                    counts["bounced"] += bounced
                    counts["delivered"] += not bounced
                    counts["opened"] += (not bounced) and (st.get("opens") or 0) > 0
                    counts["clicked"] += (not bounced) and (st.get("clicks") or 0) > 0
                    counts["replied"] += (not bounced) and bool(st.get("replied"))
            if len(page) < 50:
                break
            offset += 50
    got = {
        sid: {k: int(table.loc[sid, k]) for k in expected[sid]}
        for sid in expected
        if sid in table.index
    }
    assert got == {sid: dict(c) for sid, c in expected.items()}
    assert sum(c["sent"] for c in expected.values()) > 500


@pytest.mark.parametrize(
    ("n", "k", "n_rec", "uniform"),
    [
        (500, 7, 120, True),  # each recipient in one group (by sequence)
        (500, 7, 120, False),  # few (group, person) cells: the flag per cell
        (2_000, 100, 20_000, False),  # too many cells: distinct pairs hashed
    ],
)
def test_people_per_group_counts_each_person_once_per_group(
    n: int, k: int, n_rec: int, uniform: bool
) -> None:
    rng = np.random.default_rng(n + k)
    r = rng.integers(0, n_rec, n)
    codes = (r % k) if uniform else rng.integers(0, k, n)
    masks = [("a", rng.random(n) < 0.5), ("b", rng.random(n) < 0.1)]
    got = A._people_per_group(codes, r, k, masks, n)
    for name, mask in masks:
        expected = [len(set(r[mask & (codes == g)])) for g in range(k)]
        assert got[name].tolist() == expected


def _same_engagement(a: A.Engagement, b: A.Engagement) -> None:
    for name in ("deliveries", "events", "assets", "enrollments"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    for name in A._Labels.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(a.labels, name), getattr(b.labels, name))
    assert (a.orphan_events, a.capped, a.has_events) == (b.orphan_events, b.capped, b.has_events)


@pytest.mark.parametrize("made", ["synthetic", "hand", "no messages"])
def test_prepare_on_two_cores_equals_prepare_on_one(
    monkeypatch: pytest.MonkeyPatch, hand: EngagementData, made: str
) -> None:
    """The people and names chain runs on a second core at scale (mixmax_nb._parallel):
    forced here at any size, it must give exactly the frames of one thread."""
    from dataclasses import replace

    from mixmax_nb import _parallel
    from mixmax_nb.testing import synthetic_engagement

    data = synthetic_engagement(20_000, seed=11) if made == "synthetic" else hand
    if made == "no messages":
        data = replace(hand, messages=hand.messages.iloc[:0])
    monkeypatch.setattr(_parallel, "cores", lambda: 1)
    inline = A.prepare(data)
    monkeypatch.setattr(_parallel, "cores", lambda: 2)
    monkeypatch.setattr(_parallel, "WORTH_ROWS", 0)
    where: list[str] = []
    real = _parallel.beside

    def spy(rows: int, fn: Any, *args: Any) -> Any:
        def tagged() -> Any:
            import threading

            where.append(threading.current_thread().name)
            return fn(*args)

        return real(rows, tagged)

    monkeypatch.setattr(A, "beside", spy)
    beside_result = A.prepare(data)
    assert where and where[0].startswith("mixmax-nb")  # it did run on the worker
    _same_engagement(inline, beside_result)
    assert A.kpi_table(inline).equals(A.kpi_table(beside_result))
