"""The synthetic engagement dataset the benchmarks time: in Mixmax's shapes, and no
friendlier than a real account (stages not sent yet are listed too)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from mixmax_nb import analytics as A
from mixmax_nb import frames
from mixmax_nb.testing import synthetic_engagement


def test_active_recipients_list_their_stages_not_sent_yet() -> None:
    data = synthetic_engagement(3_000, seed=5, stages=4)
    st = data.stages
    assert list(st.columns) == list(frames.SCHEMAS["recipient_stages"])
    sent = st["state"] == "sent"
    scheduled = st["state"] == "scheduled"
    assert bool((sent | scheduled).all()) and int(scheduled.sum()) > 0
    # Sent: a sentAt and a messageId, one message each; scheduled: neither, counters 0.
    assert int(sent.sum()) == len(data.messages)
    assert st.loc[sent, ["sent_at", "message_id"]].notna().all().all()
    assert st.loc[scheduled, ["sent_at", "message_id"]].isna().all().all()
    assert st.loc[scheduled, "scheduled_at"].notna().all()
    assert (st.loc[scheduled, ["opens", "clicks", "downloads"]] == 0).all().all()
    # Each recipient's rows together, in stage order, the unsent after the sent ones;
    # an active recipient lists every stage, an exited one only what was sent.
    ids = st["recipient_id"].astype(object).to_numpy()
    starts = np.r_[True, ids[1:] != ids[:-1]]
    assert int(starts.sum()) == st["recipient_id"].nunique() == len(data.recipients)
    for _rid, rows in st.groupby("recipient_id", sort=False):
        assert rows["ordinal"].tolist() == list(range(len(rows)))
        assert rows["state"].tolist() == sorted(rows["state"], key=lambda s: s != "sent")
        active = rows["recipient_state"].iloc[0] == "active"
        assert len(rows) == 4 if active else not (rows["state"] == "scheduled").any()


def test_unsent_stages_change_no_metric() -> None:
    data = synthetic_engagement(3_000, seed=5)
    sent_only = pd.DataFrame(data.stages[data.stages["state"] == "sent"]).reset_index(drop=True)
    trimmed = dataclasses.replace(data, stages=sent_only)
    whole, sent = A.prepare(data), A.prepare(trimmed)
    # Every frame the metrics read, row for row: the sent emails picked out of every
    # stage equal the sent stages alone (events joined to the same deliveries).
    for name in ("deliveries", "events", "assets", "enrollments"):
        pd.testing.assert_frame_equal(getattr(whole, name), getattr(sent, name), obj=name)
    assert int(whole.deliveries["first_open"].ge(0).sum()) > 0  # events did join
    full, less = A.kpi_table(whole), A.kpi_table(sent)
    pd.testing.assert_frame_equal(full, less)
    assert int(full["sent"].sum()) == len(data.messages)
