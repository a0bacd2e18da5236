"""Engagement analytics over 1,000,000 events: from scratch, and one filter change.

Data: a synthetic engagement dataset in the documented shapes
(``mixmax_nb.testing.synthetic_engagement``: recipients' stages with Mixmax's
counters, their messages, and per-message events that agree with the counters),
built with numpy. The ``large`` sandbox would also do, but pulling it through the
emulated API takes minutes, which says nothing about analytics.

Prints, each with PASS/FAIL against its target (a 2-core machine):
* all dashboard metrics from scratch (prepare + every aggregate + every figure): < 2 s
* one filter change (filter + every aggregate + every figure): < 1 s
* one filter change as the dashboard does it (cards, table, visible tab): < 1 s
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from mixmax_nb import analytics as A
from mixmax_nb import charts as C
from mixmax_nb.testing import synthetic_engagement

N_EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
REPEAT = 3


def all_metrics(e: A.Engagement) -> dict[str, Any]:
    m = {
        "summary": A.kpi_summary(e),
        "table": A.kpi_table(e, "sequence"),
        "funnel": A.funnel(e),
        "heatmap": A.heatmap(e),
        "send_time": A.heatmap(e, "replied", when="sent"),
        "timing": A.time_to_first(e),
        "timing_summary": A.time_to_summary(e),
        "trends": A.weekly_trends(e),
        "stages": A.stage_dropoff(e),
        "cohorts": A.cohorts(e),
        "links": A.top_links(e),
        "files": A.top_files(e),
        "compare": A.compare(e, "seq0001", "seq0002"),
    }
    C.kpi_chart(m["table"])
    C.funnel_chart(m["funnel"])
    C.heatmap_chart(m["heatmap"])
    C.heatmap_chart(m["send_time"])
    C.time_to_chart(m["timing"], m["timing_summary"])
    C.trends_chart(m["trends"])
    C.stage_chart(m["stages"])
    C.cohort_chart(m["cohorts"])
    C.top_items_chart(m["links"])
    C.top_items_chart(m["files"], "files")
    C.comparison_chart(m["compare"])
    return m


def timed(fn: Callable[[], Any]) -> float:
    runs = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


FAILED: list[str] = []


def report(name: str, seconds: float, target: float) -> None:
    verdict = "PASS" if seconds < target else "FAIL"
    if verdict == "FAIL":
        FAILED.append(name)
    print(f"{name:<58} {seconds:7.3f} s  (target < {target:g} s)  {verdict}")


def main() -> int:
    start = time.perf_counter()
    data = synthetic_engagement(N_EVENTS)
    assert data.events is not None
    print(
        f"{len(data.events):,} events, {len(data.stages):,} sent emails, "
        f"{len(data.recipients):,} recipients (built in {time.perf_counter() - start:.1f} s); "
        f"cores: {os.cpu_count()}"
    )

    def from_scratch() -> None:
        all_metrics(A.prepare(data))

    report("all dashboard metrics from scratch (prepare+aggregates+figs)", timed(from_scratch), 2.0)

    e = A.prepare(data)
    all_metrics(e)  # warm the per-data caches (local times), as a loaded dashboard has
    chosen = [f"seq{i:04d}" for i in range(0, 40, 3)]

    def filter_change() -> None:
        all_metrics(e.filter(since="2025-02-01", sequences=chosen, types=["opened", "replied"]))

    report("one filter change (every aggregate and figure)", timed(filter_change), 1.0)

    from mixmax_nb.widgets.dashboard import EngagementDashboard

    board = EngagementDashboard.from_data(data)
    options = [opt[1] for opt in board.sequences.options]
    picks = iter([tuple(options[i : i + 5]) for i in range(0, 5 * REPEAT * 2, 5)])
    report(
        "one filter change in EngagementDashboard (cards+table+tab)",
        timed(lambda: setattr(board.sequences, "value", next(picks))),
        1.0,
    )
    return 1 if FAILED else 0


if __name__ == "__main__":
    raise SystemExit(main())
