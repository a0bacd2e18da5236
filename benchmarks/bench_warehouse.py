"""The warehouse hand-off at 1,000,000 events: loads, a refresh, DuckDB SQL vs pandas.

Data: ``mixmax_nb.testing.synthetic_engagement`` (recipients' stages with Mixmax's
counters, their messages, per-message events that agree with the counters), fed to
``warehouse.load(data=...)``: the same loading code a pull goes through. Pulling the
``large`` sandbox through the emulated API takes minutes and says nothing about loading.

Prints, each with PASS/FAIL (a 2-core machine):

* the first load into DuckDB (a file) and into a local PostgreSQL (Debian's server, a
  throwaway cluster, or ``MIXMAX_NB_TEST_PG``; skipped with a message if neither can
  start): rows per second and peak RSS;
* a refresh after K new events (opens, clicks, replies on existing emails): rows written
  must equal K plus the recipient stages and recipients those events changed, exactly;
* the KPI table per sequence and the send-time heatmap (reply rate by weekday and hour
  in each sequence's zone), in DuckDB SQL over the loaded tables and with
  ``mixmax_nb.analytics`` from the dataset: both times, and equal results (asserted).

    python benchmarks/bench_warehouse.py        # BENCH_EVENTS=100000 for a quick run
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import exit_code, measure, verdict

from mixmax_nb import analytics
from mixmax_nb.data import warehouse as wh
from mixmax_nb.data.engagement import EngagementData
from mixmax_nb.testing import synthetic_engagement

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import pg_cluster

N_EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
K_NEW = int(os.environ.get("BENCH_NEW_EVENTS", "5000"))
TARGETS = {"duckdb": 100_000, "postgres": 25_000}  # rows per second, first load
PEAK_MIB = 6_000


# -- K new events on the synthetic data ---------------------------------------------------


def with_new_events(data: EngagementData, k: int, seed: int = 11) -> tuple[EngagementData, int]:
    """``data`` plus ``k`` opens, clicks and replies on existing delivered emails, with
    the stage counters (and, for a reply, the recipient's state) moved as Mixmax would;
    returns the new data and the number of stage + recipient rows that changed."""
    assert data.events is not None
    rng = np.random.default_rng(seed)
    stages = data.stages.copy()
    recipients = data.recipients.copy()
    delivered = np.flatnonzero(~stages["bounced"].to_numpy(dtype=bool))
    picks = rng.choice(delivered, size=k)
    kinds = rng.choice(np.array(["opened", "clicked", "replied"]), size=k, p=[0.8, 0.1, 0.1])
    replied = stages["replied"].to_numpy(dtype=bool).copy()
    kinds[(kinds == "replied") & replied[picks]] = "opened"  # one reply per email
    # A second reply to the same email within this batch is an open too.
    seen: set[int] = set()
    for i in np.flatnonzero(kinds == "replied"):
        if picks[i] in seen:
            kinds[i] = "opened"
        seen.add(int(picks[i]))
    start = int(data.events["timestamp"].max().value // 1_000_000) + 1_000
    stamps = start + np.cumsum(rng.integers(1_000, 30_000, k))
    new = pd.DataFrame(
        {
            "id": pd.array([f"new{i}" for i in range(k)], dtype="string"),
            "type": pd.Categorical(kinds, dtype=data.events["type"].dtype),
            "timestamp": pd.to_datetime(stamps, unit="ms", utc=True).as_unit("ms"),
            "message_id": stages["message_id"].to_numpy()[picks],
            "recipient_email": stages["email"].to_numpy()[picks],
        }
    )
    events = pd.concat([data.events, new.reindex(columns=data.events.columns)], ignore_index=True)
    events = events.astype(data.events.dtypes.to_dict())
    for kind, column in (("opened", "opens"), ("clicked", "clicks")):
        hits = np.bincount(picks[kinds == kind], minlength=len(stages))
        stages[column] = (stages[column].fillna(0).to_numpy() + hits).astype("int64")
        stages[column] = stages[column].astype("Int64")
    reply_rows = picks[kinds == "replied"]
    flags = stages["replied"].to_numpy(dtype=bool).copy()
    flags[reply_rows] = True
    stages["replied"] = pd.array(flags, dtype="boolean")
    changed_stages = len(set(picks[np.isin(kinds, ["opened", "clicked", "replied"])].tolist()))
    # A reply ends the recipient's sequence (completed / replied), on the recipient row.
    people = set(stages["recipient_id"].to_numpy()[reply_rows].tolist())
    row = recipients["id"].isin(people).to_numpy()
    before = recipients.loc[row, ["state", "completed_reason"]].astype(object)
    recipients.loc[row, "state"] = "completed"
    recipients.loc[row, "completed_reason"] = "replied"
    after = recipients.loc[row, ["state", "completed_reason"]].astype(object)
    changed_people = int((before.fillna("") != after.fillna("")).any(axis=1).sum())
    grown = EngagementData(**{**data.__dict__, "events": events, "stages": stages,
                              "recipients": recipients})  # fmt: skip
    return grown, changed_stages + changed_people


# -- SQL vs analytics -----------------------------------------------------------------------

DELIVERIES = """
    FROM {schema}.recipient_stages AS st LEFT JOIN {schema}.sequences AS s ON s.id = st.sequence_id
    WHERE st.sent_at IS NOT NULL AND st.message_id IS NOT NULL
      AND st.type IN ('email', 'manual_email')
"""
KPI_SQL = (
    """
SELECT st.sequence_id AS key,
       COUNT(*) AS sent,
       COUNT(*) FILTER (WHERE NOT coalesce(st.bounced, false)) AS delivered,
       COUNT(*) FILTER (WHERE coalesce(st.bounced, false)) AS bounced,
       COUNT(*) FILTER (WHERE NOT coalesce(st.bounced, false) AND st.opens > 0) AS opened,
       COUNT(*) FILTER (WHERE NOT coalesce(st.bounced, false) AND st.clicks > 0) AS clicked,
       COUNT(*) FILTER (WHERE NOT coalesce(st.bounced, false) AND st.downloads > 0) AS downloaded,
       COUNT(*) FILTER (WHERE NOT coalesce(st.bounced, false) AND st.replied) AS replied,
       COUNT(DISTINCT lower(st.email)) FILTER (WHERE NOT coalesce(st.bounced, false)) AS reached,
       COUNT(DISTINCT lower(st.email))
           FILTER (WHERE NOT coalesce(st.bounced, false) AND st.replied) AS people_replied
"""
    + DELIVERIES
    + " GROUP BY st.sequence_id"
)
HEATMAP_SQL = (
    """
SELECT isodow(st.sent_at AT TIME ZONE coalesce(nullif(s.timezone, ''), 'UTC')) - 1 AS day,
       hour(st.sent_at AT TIME ZONE coalesce(nullif(s.timezone, ''), 'UTC')) AS hour,
       avg(CASE WHEN st.replied THEN 1.0 ELSE 0.0 END) AS reply_rate
"""
    + DELIVERIES
    + " AND NOT coalesce(st.bounced, false) GROUP BY 1, 2"
)
COUNTS = ("sent", "delivered", "bounced", "opened", "clicked", "downloaded", "replied",
          "reached", "people_replied")  # fmt: skip


def compare_sql(path: Path, data: EngagementData) -> None:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    schema = "bench"
    t0 = time.perf_counter()
    kpi_sql = con.sql(KPI_SQL.format(schema=schema)).df()
    sql_kpi_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    heat_sql = con.sql(HEATMAP_SQL.format(schema=schema)).df()
    sql_heat_s = time.perf_counter() - t0
    con.close()

    t0 = time.perf_counter()
    eng = analytics.prepare(data)
    prepare_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    kpi_pd = analytics.kpi_table(eng, "sequence")
    pd_kpi_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    heat_pd = analytics.heatmap(eng, "replied", when="sent")
    pd_heat_s = time.perf_counter() - t0

    left = kpi_sql.set_index("key").sort_index()[list(COUNTS)].astype("int64")
    right = kpi_pd.set_index("key").sort_index()[list(COUNTS)].astype("int64")
    grid = np.full((7, 24), np.nan)
    grid[heat_sql["day"].to_numpy(int), heat_sql["hour"].to_numpy(int)] = heat_sql["reply_rate"]
    problems = []
    if not (left.index.equals(right.index) and left.equals(right)):
        problems.append("KPI counts differ")
    elif not np.allclose(
        left["replied"] / left["delivered"], kpi_pd.set_index("key").sort_index()["reply_rate"]
    ):
        problems.append("reply rates differ")
    if not np.allclose(grid, heat_pd.to_numpy(dtype=float), equal_nan=True):
        problems.append("heatmaps differ")
    print(
        f"KPI table per sequence ({len(left)} rows): DuckDB SQL {sql_kpi_s:.3f} s; analytics "
        f"{pd_kpi_s:.3f} s + prepare {prepare_s:.3f} s"
    )
    print(
        f"send-time heatmap (7x24): DuckDB SQL {sql_heat_s:.3f} s; analytics {pd_heat_s:.3f} s "
        "(on the prepared data)"
    )
    verdict(
        "DuckDB SQL == analytics (KPI table, heatmap)",
        not problems,
        "; ".join(problems)
        or (
            f"equal: every count, rate and cell (KPI table: SQL {sql_kpi_s:.3f} s, analytics "
            f"{pd_kpi_s:.3f} s + prepare {prepare_s:.3f} s; heatmap: SQL {sql_heat_s:.3f} s, "
            f"analytics {pd_heat_s:.3f} s)"
        ),
        "equal",
    )


# -- loads ----------------------------------------------------------------------------------


def run(kind: str, destination: Any, data: EngagementData, grown: EngagementData,
        expected: int, pipelines: Path) -> None:  # fmt: skip
    options = {"dataset_name": "bench", "pipeline_name": f"bench_{kind}",
               "pipelines_dir": str(pipelines)}  # fmt: skip
    info, seconds, peak = measure(lambda: wh.load(data=data, destination=destination, **options))
    rows = sum(wh.rows_written(info).values())
    rate = rows / seconds
    verdict(
        f"{kind}: first load",
        rate >= TARGETS[kind] and peak < PEAK_MIB * 2**20,
        f"{rows:,} rows in {seconds:.1f} s = {rate:,.0f} rows/s, peak +{peak / 2**20:,.0f} MiB",
        f">= {TARGETS[kind]:,} rows/s, < {PEAK_MIB:,} MiB",
    )
    info, seconds, _ = measure(lambda: wh.load(data=grown, destination=destination, **options))
    written = wh.rows_written(info)
    total = sum(written.values())
    detail = ", ".join(f"{t} {n:,}" for t, n in sorted(written.items()) if n)
    verdict(
        f"{kind}: refresh after K={K_NEW:,} new events",
        total == K_NEW + expected,
        f"{total:,} rows in {seconds:.1f} s ({detail})",
        f"= K + {expected:,} changed stages/recipients",
    )
    dup_check = " UNION ALL ".join(
        f"SELECT '{t.name}' FROM (SELECT 1 FROM {{{t.name}}} GROUP BY {', '.join(t.keys)} "
        "HAVING COUNT(*) > 1) AS d"
        for t in wh.TABLES
        if t.name in wh.dataset_frames(grown)
    )
    with info.pipeline.sql_client() as client:
        names = {t.name: client.make_qualified_table_name(t.name) for t in wh.TABLES}
        dups = client.execute_sql(dup_check.format(**names)) or []
    verdict(f"{kind}: no duplicate primary key", not dups, f"{len(dups)} table(s) with one", "0")


def main() -> int:
    import dlt

    t0 = time.perf_counter()
    data = synthetic_engagement(N_EVENTS)
    assert data.events is not None
    grown, changed = with_new_events(data, K_NEW)
    print(
        f"{len(data.events):,} events, {len(data.messages):,} sent emails "
        f"({len(data.stages):,} stage rows), {len(data.recipients):,} recipients "
        f"(built in {time.perf_counter() - t0:.1f} s)"
        f"; cores: {os.cpu_count()}"
    )
    with tempfile.TemporaryDirectory(prefix="bench_warehouse-") as tmp:
        root = Path(tmp)
        path = root / "bench_warehouse.duckdb"  # not bench.duckdb: the dataset is "bench"
        run("duckdb", dlt.destinations.duckdb(str(path)), data, grown, changed, root / "p")
        compare_sql(path, grown)
        dsn = os.environ.get(pg_cluster.ENV)
        cluster = None
        if not dsn:
            try:
                cluster = pg_cluster.Cluster.start()
                dsn = cluster.dsn
            except (RuntimeError, OSError) as exc:
                print(f"postgres: SKIPPED, no server could start ({exc})")
        if dsn:
            try:
                print(f"postgres: {pg_cluster.safe(dsn)}")
                run("postgres", dlt.destinations.postgres(dsn), data, grown, changed, root / "p")
            finally:
                if cluster is not None:
                    cluster.stop()
    return exit_code()


if __name__ == "__main__":
    raise SystemExit(main())
