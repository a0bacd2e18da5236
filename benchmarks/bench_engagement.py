"""What an engagement pull costs in requests, on the documented model (per-message events).

Mixmax allows 120 requests a minute, so requests are the cost that matters. On the
``default`` sandbox account (per-message live feed, instant profile, in process,
every request counted):

* requests to the first sequence KPI table (``plan_engagement``): the sequences page
  plus one live-feed ``stats`` request per sequence; goal: at most sequences + 1;
* ``detail="summary"``: the recipients' pages, the messages' pages and the stats,
  beside the naive route (one events request per message); goal: no per-message call;
* ``detail="events"``: only messages whose counters show engagement, beside naive N+1;
* a refresh after K new events on M messages (``sandbox_add_activity``): at most M
  changed messages plus the listing pages;
* ``plan_engagement``'s estimate against the requests actually made: within 5%;
* the ``large`` account (summary): dashboard metrics from scratch < 2 s, one filter
  change < 1 s.

Prints every figure with PASS/FAIL; exit status 1 on any FAIL.

    python benchmarks/bench_engagement.py [--skip-large]
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any

import _common

import mixmax_nb as mx
from mixmax_nb import analytics as A
from mixmax_nb.client import Client
from mixmax_nb.data.engagement import engaged_messages
from mixmax_nb.transport.limits import NoLimit

REFERENCE = "2025-06-02"


class Counted:
    """Wraps a transport; counts action runs by key and proxy requests by path."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def run_action(self, key: str, input: Any) -> Any:
        self.calls[key] += 1
        return await self.inner.run_action(key, input)

    async def run_action_json(self, key: str, input: Any) -> Any:
        self.calls[key] += 1  # a pull reads events as printed
        return await self.inner.run_action_json(key, input)

    async def request(self, path: str, **kw: Any) -> Any:
        self.calls[f"GET {path}"] += 1
        return await self.inner.request(path, **kw)

    def take(self) -> Counter[str]:
        out, self.calls = self.calls, Counter()
        return out


def verdict(
    name: str, value: float, goal: float, *, text: str, lower_is_better: bool = True
) -> None:
    ok = value <= goal if lower_is_better else value >= goal
    _common.verdict(name, ok, text, f"{'<=' if lower_is_better else '>='} {goal:g}")


def client_for(size: str) -> tuple[Client, Counted]:
    transport = mx.connect(
        "sandbox", size=size, db=":memory:", reference_date=REFERENCE, livefeed="per-message"
    ).transport
    counted = Counted(transport)
    return Client(counted, limiter=NoLimit()), counted  # type: ignore[arg-type]


def main() -> int:
    client, counted = client_for("default")
    sequences = len(client.sequences())
    counted.take()

    plan = client.plan_engagement(detail="summary")
    first = sum(counted.take().values())
    verdict(
        "requests to the first sequence KPI table",
        first,
        sequences + 1,
        text=f"{first} (goal <= {sequences} sequences + 1)",
    )

    summary = client.engagement(detail="summary")
    used = counted.take()
    per_message = used["list-livefeed-events"]
    messages = len(summary.messages)
    total_summary = sum(used.values()) + first
    verdict(
        "detail='summary': requests",
        per_message,
        0,
        text=f"{total_summary:,} (naive, one per message: {messages:,}); 0 per-message",
    )
    estimate = plan.total + first
    error = abs(estimate - total_summary) / total_summary
    verdict(
        "plan estimate vs requests made (summary, first)",
        error,
        0.05,
        text=f"{estimate:,} planned, {total_summary:,} made ({100 * error:.1f}%)",
    )

    again_plan = client.plan_engagement(detail="summary")
    spent_again = sum(counted.take().values())
    client.engagement(detail="summary")
    made_again = sum(counted.take().values()) + spent_again
    planned_again = again_plan.total + spent_again
    error = abs(planned_again - made_again) / made_again
    verdict(
        "plan estimate vs requests made (summary, repeat)",
        error,
        0.05,
        text=f"{planned_again:,} planned, {made_again:,} made ({100 * error:.1f}%)",
    )

    plan_events = client.plan_engagement(detail="events")
    spent = sum(counted.take().values())
    started = time.perf_counter()
    data = client.engagement(detail="events")
    seconds = time.perf_counter() - started
    used = counted.take()
    engaged = used["list-livefeed-events"]
    total_events = sum(used.values()) + spent
    error = abs(plan_events.total + spent - total_events) / total_events
    verdict(
        "detail='events': per-message requests",
        engaged,
        messages,
        text=f"{engaged:,} engaged of {messages:,} messages (naive N+1: {messages:,})",
    )
    verdict(
        "plan estimate vs requests made (events)",
        error,
        0.05,
        text=f"{plan_events.total + spent:,} planned, {total_events:,} made ({100 * error:.1f}%)",
    )
    print(f"    {data.describe()}; {seconds:.1f} s in process; capped: {len(data.capped)}")

    # A refresh after K new events: only messages whose counters moved are re-read.
    before = engaged_messages(data.stages).set_index("message_id")["signature"]
    added = client.transport.sandbox_add_activity(500, seed=1)
    counted.take()
    again = client.engagement(detail="events")
    used = counted.take()
    after = engaged_messages(again.stages).set_index("message_id")["signature"]
    touched = int(
        (
            after.reindex(before.index.union(after.index))
            != before.reindex(before.index.union(after.index))
        ).sum()
    )
    refetched = used["list-livefeed-events"]
    listing = sum(v for k, v in used.items() if k != "list-livefeed-events")
    verdict(
        f"refresh after K={added['added']} new events",
        refetched,
        touched,
        text=f"{refetched:,} messages re-read (M={touched:,} changed) + {listing:,} listing",
    )

    if "--skip-large" not in sys.argv:
        large, _ = client_for("large")
        started = time.perf_counter()
        big = large.engagement(detail="summary")
        pull_s = time.perf_counter() - started
        started = time.perf_counter()
        e = A.prepare(big)
        for by in ("sequence", "sender", "week", "stage"):
            A.kpi_table(e, by)
        A.funnel(e)
        A.heatmap(e, "replied", when="sent")
        A.cohorts(e)
        scratch = time.perf_counter() - started
        verdict(
            "large account: dashboard metrics from scratch",
            scratch,
            2.0,
            text=f"{scratch:.2f} s for {e.n_deliveries:,} emails (pull {pull_s:.0f} s)",
        )
        chosen = list(big.sequences["id"].iloc[::3])
        started = time.perf_counter()
        view = e.filter(sequences=chosen)
        A.kpi_table(view)
        A.funnel(view)
        A.heatmap(view, "replied", when="sent")
        change = time.perf_counter() - started
        verdict(
            "large account: one filter change",
            change,
            1.0,
            text=f"{change:.2f} s",
        )
    return _common.exit_code()


if __name__ == "__main__":
    raise SystemExit(main())
