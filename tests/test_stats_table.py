"""analytics.stats_table: Mixmax's own totals per sequence, charted before any pull."""

from __future__ import annotations

import numpy as np
import pandas as pd

import mixmax_nb as mx
from mixmax_nb import analytics, charts
from mixmax_nb.data.engagement import ACCOUNT


def test_stats_table_is_mixmax_totals_with_mixmax_rates_and_charts_them() -> None:
    client = mx.connect("sandbox", size="small", db=":memory:")
    plan = client.plan_engagement()
    stats = plan.stats
    assert stats is not None and stats.attrs["source"] == "sandbox"
    table = analytics.stats_table(stats)
    per_sequence = stats.loc[stats["key"] != ACCOUNT].set_index("key")
    assert set(table["key"]) == set(per_sequence.index) and ACCOUNT not in set(table["key"])
    for row in table.itertuples():
        mixmax = per_sequence.loc[row.key]
        assert (row.sent, row.delivered, row.replied) == (
            mixmax["sent"],
            mixmax["delivered"],
            mixmax["replied"],
        )
        assert row.reply_rate == row.replied / row.delivered
        assert row.bounce_rate == row.bounced / row.sent
        assert row.reply_rate_lo <= row.reply_rate <= row.reply_rate_hi
    assert list(table["sent"]) == sorted(table["sent"], reverse=True)
    figure = charts.kpi_chart(table, "reply_rate")
    shown = dict(zip(figure.data[0].y, np.asarray(figure.data[0].x), strict=True))
    assert len(shown) == len(table)
    assert "SANDBOX DATA" in figure.layout.title.text
    client.close()


def test_stats_table_of_no_sequence_is_empty_and_charts_empty() -> None:
    stats = pd.DataFrame(
        {"key": pd.array([ACCOUNT], dtype="string"), "label": pd.array(["All"], dtype="string")}
        | {c: pd.array([5], dtype="Int64") for c in ("sent", "delivered", "bounced", "opened",
                                                    "clicked", "downloaded", "replied")}
    )  # fmt: skip
    table = analytics.stats_table(stats)
    assert len(table) == 0
    assert len(charts.kpi_chart(table, "reply_rate").data) == 0
