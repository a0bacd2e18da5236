"""Enroll 10,000 recipients into a sandbox sequence at Mixmax's rate limit.

The sandbox runs its ``realistic`` profile (log-normal latency, a sliding
120-requests/minute window answered with 429 + Retry-After, rare 5xx) with time
compressed by ``--scale`` (a minute lasts 60/scale seconds; see
``mixmax_nb/sandbox/faults.py``). The client's limiter is scaled the same way, so
every ratio is what it would be against the real service.

Prints: write requests used against the minimum ceil(N / batch size), achieved
requests/minute against the 120/minute ceiling (target >= 0.95), 429s (target 0),
and what an interruption cost if the sandbox's random 5xx hit a write (the run is
then resumed the way a person would: the same ``enroll(plan)`` again).

    python benchmarks/bench_enroll.py [--n 10000] [--scale 5] [--concurrency 4]

Why scale 5 and not more: the emulator does its work synchronously on the event
loop (its daily-send-limit planner costs about 35 ms per 100 recipients at 10,000
recipients; our journal's two fsyncs about 7 ms per batch). At scale 20 a slot
lasts 25 ms, less than that work, so the figure would measure the emulator's CPU,
not the client's pacing. At scale 5 (a slot of 100 ms) it measures the client.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import tempfile
import time

import pandas as pd
from _common import Counting, exit_code, verdict  # benchmarks/ is on sys.path as a script

import mixmax_nb as mx
from mixmax_nb.client import AsyncClient
from mixmax_nb.enrollment import enroll, plan_enrollment
from mixmax_nb.enrollment.apply import load_sequence
from mixmax_nb.errors import ServerError
from mixmax_nb.transport.limits import MIXMAX_REQUESTS_PER_MINUTE, RateLimiter

WRITE = "add-recipient-to-sequence"


def recipients_for(required: list[str], n: int) -> pd.DataFrame:
    data: dict[str, list[str]] = {
        "email": [f"bench.{i:05d}@prospect{i % 97}.example" for i in range(n)]
    }
    for name in required:
        data[name] = [f"{name}-{i}" for i in range(n)]
    return pd.DataFrame(data)


async def main(n: int, scale: float, concurrency: int, batch_size: int) -> int:
    sync = mx.connect("sandbox", size="small", db=":memory:", profile="realistic", scale=scale)
    transport = Counting(sync.transport)
    # The sandbox compresses a minute into 60/scale seconds; the limiter must too.
    limiter = RateLimiter(rate=MIXMAX_REQUESTS_PER_MINUTE * 0.98, per=60.0 / scale)
    client = AsyncClient(transport, limiter=limiter)  # type: ignore[arg-type]
    me = (await client.me())["_id"]
    sequences = await client.sequences()
    mine = sequences.loc[
        sequences["user_id"].eq(me) & ~sequences["archived"].fillna(False).astype(bool)
    ]
    sequence_id = str(mine["id"].iloc[0])

    plan_started = time.perf_counter()
    info = await load_sequence(client, sequence_id)
    frame = recipients_for(info.required, n)
    plan = await plan_enrollment(client, sequence_id, frame)
    plan_s = time.perf_counter() - plan_started
    reads_for_plan = sum(v for k, v in transport.calls.items() if k != WRITE)
    summary = plan.summary()

    started = time.perf_counter()
    transport.starts.clear()  # measure the enroll phase only
    interruptions = 0
    result = None
    while result is None:
        try:
            result = await enroll(
                client, plan, batch_size=batch_size, concurrency=concurrency, progress=False
            )
        except ServerError:
            interruptions += 1  # resumed like a person would: the same call again
            if interruptions > 5:
                raise
    elapsed = time.perf_counter() - started

    writes = transport.calls[WRITE]
    minimum = math.ceil(summary.to_add / batch_size)
    starts = transport.starts
    # Rate of all requests (writes and any reconciling reads) over the span they were
    # issued in, in sandbox minutes.
    span_s = (starts[-1] - starts[0]) if len(starts) > 1 else elapsed
    per_minute = (len(starts) - 1) / (span_s * scale / 60.0) if len(starts) > 1 else 0.0
    enrolled = int((result.frame["outcome"] == "success").sum())
    reconciled = int(result.frame["reconciled"].sum())
    reads_total = sum(v for k, v in transport.calls.items() if k != WRITE)

    print(f"recipients planned:        {n:,} ({summary.to_add:,} to add) in {plan_s:.2f} s")
    print(f"enrolled:                  {enrolled:,} (reconciled after a lost answer: {reconciled})")
    print(
        f"write requests:            {writes} used / {minimum} minimum "
        f"(ceil({summary.to_add:,} / {batch_size}))"
    )
    print(
        f"achieved rate:             {per_minute:.1f} requests/min of "
        f"{MIXMAX_REQUESTS_PER_MINUTE} = {per_minute / MIXMAX_REQUESTS_PER_MINUTE:.3f} "
        "(target >= 0.95)"
    )
    print(f"429 responses:             {transport.rate_limited} (target 0)")
    print(
        f"interruptions (random 5xx): {interruptions}; reads for planning {reads_for_plan}, "
        f"for reconciling {reads_total - reads_for_plan}"
    )
    print(
        f"wall time:                 {elapsed:.1f} s at scale {scale:g} "
        f"(= {elapsed * scale / 60:.1f} sandbox minutes)"
    )
    await client.aclose()
    share = per_minute / MIXMAX_REQUESTS_PER_MINUTE
    verdict(
        "enroll: every recipient enrolled",
        enrolled == summary.to_add,
        f"{enrolled:,} of {summary.to_add:,} (reconciled after a lost answer: {reconciled})",
        "all",
    )
    verdict(
        "enroll: write requests",
        writes <= minimum + interruptions,
        f"{writes} used, minimum {minimum} (ceil({summary.to_add:,} / {batch_size})), "
        f"{interruptions} interrupted",
        "minimum + one per interruption",
    )
    verdict(
        "enroll: rate",
        share >= 0.95,
        f"{per_minute:.1f}/min = {share:.3f} of the ceiling (scale {scale:g})",
        ">= 0.95",
    )
    limited = transport.rate_limited
    verdict("enroll: 429s from our pacing", limited == 0, str(limited), "0")
    return exit_code()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--scale", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    # Journals of a benchmark belong to no one: keep them out of the user's home.
    os.environ.setdefault("MIXMAX_NB_HOME", tempfile.mkdtemp(prefix="mixmax_nb_bench_"))
    sys.exit(asyncio.run(main(args.n, args.scale, args.concurrency, args.batch_size)))
