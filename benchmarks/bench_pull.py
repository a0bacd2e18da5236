"""Pulling the live feed: pace against Mixmax's ceiling, and the cost of a refresh.

1. **Pull.** The `default` sandbox account in its ``realistic`` profile (latency,
   a sliding 120-requests/minute window answered with 429 + Retry-After, rare 5xx),
   time compressed by ``--scale`` (a minute lasts 60/scale seconds) and the client's
   limiter scaled the same way. Every page of the feed is read through
   ``client.refresh_events()`` into an empty event store. Prints achieved
   requests/minute as a fraction of the 120/minute ceiling (target >= 0.95), the
   429s the toolkit caused (target 0), and rows/minute against 120 x 300.
2. **Incremental refresh.** Instant profile. After K new events (the sandbox's
   ``sandbox_add_activity``: new sends, opens, clicks, replies),
   ``refresh_events()`` must cost at most ceil(K/300) + 1 requests; prints both.

    python benchmarks/bench_pull.py [--scale 10] [--pages 120]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from _common import Counting, exit_code, verdict  # benchmarks/ is on sys.path as a script

import mixmax_nb as mx
from mixmax_nb.cache import EventStore
from mixmax_nb.client import AsyncClient
from mixmax_nb.feed import FEED_ACTION, refresh
from mixmax_nb.transport.limits import MIXMAX_REQUESTS_PER_MINUTE, RateLimiter

PAGE = 300


async def capped_run(client: AsyncClient, pages: int) -> Any:
    """A runner that reports the end of the feed after ``pages`` pages (bounds the run)."""
    seen = 0

    async def run(key: str, params: Mapping[str, Any]) -> Any:
        nonlocal seen
        seen += 1
        out = await client.run_action(key, params)
        if seen >= pages and isinstance(out, dict):
            out = {**out, "hasNext": False}
        return out

    return run


def pull(scale: float, pages: int, home: Path) -> None:
    db = home / "pull.sqlite"
    # The account-wide feed (a connection whose list-livefeed-events lists every event):
    # what feed.refresh pulls. The documented per-message model is bench_engagement's.
    transport = mx.connect(
        "sandbox",
        size="default",
        profile="realistic",
        scale=scale,
        db=str(db),
        livefeed="account",
    ).transport
    counting = Counting(transport)
    # The same limiter the client builds for itself against a scaled sandbox.
    client = AsyncClient(counting, limiter=RateLimiter(per=60.0 / scale, burst=1))  # type: ignore[arg-type]
    store = EventStore(home, "sandbox", "bench-pull")

    async def go() -> tuple[int, float]:
        run = await capped_run(client, pages)
        start = time.perf_counter()
        stats = await refresh(run, store)
        return stats.stored_events, time.perf_counter() - start

    rows, elapsed = asyncio.run(go())
    requests = counting.calls[FEED_ACTION]
    # Rate over the span the pacing governs: first request start to last request start,
    # measured in scaled minutes.
    span = (counting.starts[-1] - counting.starts[0]) * scale / 60.0 if requests > 1 else 0
    per_minute = (requests - 1) / span if span else float("nan")
    fraction = per_minute / MIXMAX_REQUESTS_PER_MINUTE
    rows_per_minute = rows / (elapsed * scale / 60.0)
    print(
        f"pull: {requests} requests, {rows:,} rows in {elapsed:.1f} s real "
        f"({elapsed * scale / 60:.2f} scaled minutes, scale {scale:g})"
    )
    verdict(
        "pull: requests per minute",
        fraction >= 0.95,
        f"{per_minute:.1f} = {fraction:.3f} of 120",
        ">= 0.95",
    )
    verdict(
        "pull: 429s caused by our pacing",
        counting.rate_limited == 0,
        str(counting.rate_limited),
        "0",
    )
    print(
        f"  rows/minute {rows_per_minute:,.0f} against 120 x 300 = "
        f"{MIXMAX_REQUESTS_PER_MINUTE * PAGE:,} ({rows_per_minute / 36000:.3f})"
    )


def incremental(home: Path) -> None:
    client = mx.connect("sandbox", size="small", db=":memory:", livefeed="account")
    store = EventStore(home, "sandbox", "bench-refresh")
    counting = Counting(client.transport)
    aio = AsyncClient(counting)  # type: ignore[arg-type]
    asyncio.run(refresh(aio.run_action, store))
    me = client.me()
    print("incremental refresh (instant profile):")
    for k in (0, 1, 299, 300, 301, 900):
        if k:
            client.transport.sandbox_add_activity(k, seed=k)  # type: ignore[attr-defined]
        counting.calls.clear()
        stats = asyncio.run(refresh(aio.run_action, store))
        used = counting.calls[FEED_ACTION]
        bound = math.ceil(k / PAGE) + 1
        verdict(
            f"refresh after K={k} new events",
            used <= bound and stats.new_events >= k,
            f"{used} requests, {stats.new_events} stored",
            f"<= ceil(K/300)+1 = {bound}",
        )
    print(f"  account {me.get('email')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=5.0)
    parser.add_argument("--pages", type=int, default=120)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pull(args.scale, args.pages, Path(tmp))
        incremental(Path(tmp))
    return exit_code()


if __name__ == "__main__":
    sys.exit(main())
