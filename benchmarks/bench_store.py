"""The per-message event store on refresh: what a no-op and a K-event refresh read.

A store of 100k, 1M and 5M events (synthetic, in the events schema; one large part
and ten small ones, as after a first pull and a few refreshes), then what
``pull._events_per_message`` asks of it after the listing requests:
``snapshot(the window's messages)`` (coverage and events from one listing).
Counted: the files opened (Parquet footers and data) and the directory listings;
timed: those calls.

Figures, each with PASS/FAIL (issue #20's goal: a no-op refresh costs at most one
metadata read plus the listing request, whatever the store's size; K new rows cost
O(K) plus one append):

* no-op refresh: 0 files opened and 1 directory listing at every size (the goal);
  what is left in memory is one comparison of the window the listing gave (a new
  set of M message ids each pull) with the one the held frame answers, O(M) like
  the listing itself (M/200-odd requests): its time may grow with the window, not
  faster (growth at most x1.5 the growth in events);
* after K = 1,000 new events (one append): only the new part is read, at every size;
* the refresh whose append passes MAX_PARTS (the small parts are merged): it reads the
  small parts once, never the largest part, and the store is not read again after the
  merge; its time, at every size, with its growth (O(K x parts), not O(store));
* beside the peer, one ``pyarrow.parquet.read_table(...).to_pandas()`` of the same
  events (what a tool without the store's memory would do), as a ratio;
* first load in a fresh process against the same Parquet read (no goal: both read
  every event once).

    python benchmarks/bench_store.py [--sizes 100k,1M]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SIZES, exit_code, growth, parse_sizes, size_label, verdict, versus

from mixmax_nb.data import store as store_mod
from mixmax_nb.data.store import MessageEventStore
from mixmax_nb.testing import _typed

K = 1_000
SMALL_PARTS = 10
TYPES = np.asarray(["opened", "clicked", "downloaded", "replied"], dtype=object)


def events(n: int, first_message: int, seed: int) -> pd.DataFrame:
    """``n`` events on ``n // 5`` messages numbered from ``first_message``."""
    rng = np.random.default_rng(seed)
    messages = max(1, n // 5)
    msg = first_message + rng.integers(0, messages, n)
    kind = TYPES[rng.choice(4, n, p=[0.7, 0.15, 0.05, 0.1])]
    links = np.asarray([None] + [f"https://example.com/p{i}" for i in range(12)], dtype=object)
    link = np.where(kind == "clicked", rng.integers(1, 13, n), 0)
    return _typed(
        "events",
        {
            "id": np.char.add(f"e{seed}-", np.arange(n).astype(str)).astype(object),
            "type": kind,
            "timestamp": 1_735_689_600_000 + rng.integers(0, 90 * 86_400_000, n),
            "message_id": np.char.add("m", msg.astype(str)).astype(object),
            "recipient_email": np.char.add("p", (msg // 3).astype(str)).astype(object),
            "link_url": links[link],
        },
        n,
    )


def signatures(frame: pd.DataFrame) -> dict[str, str]:
    return dict.fromkeys(frame["message_id"].astype(str).unique(), "1/0/0/0")


class Reads:
    """Counts the Parquet files opened and the directory listings while active."""

    def __init__(self) -> None:
        self.files = 0
        self.listings = 0
        self.names: list[str] = []  # the files opened, by name

    @contextmanager
    def counting(self) -> Iterator[Reads]:
        import pyarrow.parquet as pq

        originals = (pq.read_schema, pq.read_table, store_mod.os.scandir)

        def schema(*a: Any, **k: Any) -> Any:
            self.files += 1
            self.names.append(Path(a[0]).name)
            return originals[0](*a, **k)

        def table(*a: Any, **k: Any) -> Any:
            self.files += 1
            self.names.append(Path(a[0]).name)
            return originals[1](*a, **k)

        def scandir(*a: Any, **k: Any) -> Any:
            self.listings += 1
            return originals[2](*a, **k)

        pq.read_schema, pq.read_table = schema, table
        store_mod.os.scandir = scandir  # type: ignore[assignment]
        try:
            yield self
        finally:
            pq.read_schema, pq.read_table, store_mod.os.scandir = originals  # type: ignore[assignment]


@contextmanager
def no_gc_pause() -> Iterator[None]:
    """As ``timeit`` does: a collection in the timed call (its cost set by every
    container the process holds, the benchmark's own sets of 200k ids included) is
    not the call's cost; one runs, untimed, before."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def median(fn: Callable[[], Any], repeat: int = 5) -> float:
    runs = []
    for _ in range(repeat):
        with no_gc_pause():
            start = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def one_size(n: int, root: Path) -> dict[str, float]:
    store = MessageEventStore(root, "sandbox", f"bench-{n}")
    big = events(n - SMALL_PARTS * K, 0, seed=1)
    store.append(big, signatures(big))
    for i in range(SMALL_PARTS):
        small = events(K, 10_000_000 + i * K, seed=10 + i)
        store.append(small, signatures(small))
    window = frozenset(store.coverage().signatures)  # what the listing gave: every message
    single = root / f"all-{n}.parquet"
    import pyarrow.parquet as pq

    loaded = store.load(window)
    assert loaded is not None
    pq.write_table(__import__("pyarrow").Table.from_pandas(loaded, preserve_index=False), single)
    del loaded, big
    gc.collect()
    print(
        f"-- store of {n:,} events: {len(store.parts())} parts, "
        f"{sum(p.stat().st_size for p in store.parts()) / 1e6:,.0f} MB"
    )

    def refresh() -> pd.DataFrame | None:
        # What pull asks of the store: a window built afresh from each listing.
        return store.snapshot(frozenset(list(window)))[1]

    store_mod._SEEN.clear()  # a fresh process: nothing read yet
    first = median(lambda: (store_mod._SEEN.clear(), refresh()), 3)
    peer = median(lambda: pq.read_table(single).to_pandas(), 3)
    print(f"   first load (fresh process) {first:.3f} s; one Parquet read {peer:.3f} s (no goal)")

    held = refresh()  # what the last pull returned, alive in the notebook
    reads = Reads()
    with reads.counting():
        refresh()
    verdict(
        f"bench_store no-op refresh reads @{size_label(n)}",
        reads.files == 0 and reads.listings == 1,
        f"{reads.files} files opened, {reads.listings} directory listing(s)",
        "0 files, 1 listing",
    )
    listings = [frozenset(list(window)) for _ in range(7)]  # built by the pull
    noop = median(lambda: store.snapshot(listings.pop()), 7)  # (and gone after)
    versus("bench_store", "no-op refresh (store's part)", n, noop, {"parquet read": peer}, 1.5)

    # Five refreshes of K new events each (the median is the figure); the reads are
    # counted on the first. Each window is built before the clock starts (the pull
    # builds it from its listing).
    k_runs: list[float] = []
    files = -1
    total = n
    for round_ in range(5):
        new = events(K, 20_000_000 + round_ * K, seed=99 + round_)
        window = window | frozenset(signatures(new))
        listing = frozenset(list(window))
        reads = Reads()
        with reads.counting(), no_gc_pause():
            start = time.perf_counter()
            store.append(new, signatures(new))
            held = store.snapshot(listing)[1]
            k_runs.append(time.perf_counter() - start)
        total += K
        assert held is not None and len(held) == total
        files = reads.files if files < 0 else files
    k_time = statistics.median(k_runs)
    verdict(
        f"bench_store refresh after K={K:,} @{size_label(n)}",
        files <= 2,
        f"{files} files opened (the part it wrote is read from memory), {k_time:.3f} s",
        "only the new part",
    )
    versus("bench_store", f"refresh after K={K:,} events", n, k_time, {"parquet read": peer}, 1.5)

    # The next append passes MAX_PARTS: the small parts are merged (once every
    # MAX_PARTS appends). That refresh reads the small parts once, never the largest
    # (nor, after the merge, the whole store again): O(K x parts), whatever the size.
    assert len(store.parts()) == store_mod.MAX_PARTS
    largest = max(store.parts(), key=lambda path: path.stat().st_size).name
    new = events(K, 30_000_000, seed=7)
    listing = frozenset(list(window | frozenset(signatures(new))))
    reads = Reads()
    with reads.counting(), no_gc_pause():
        start = time.perf_counter()
        store.append(new, signatures(new))
        held = store.snapshot(listing)[1]
        merge_time = time.perf_counter() - start
    assert held is not None and len(held) == total + K
    small = store_mod.MAX_PARTS - 1
    which = "the largest among them" if largest in reads.names else "not the largest"
    verdict(
        f"bench_store refresh that merges @{size_label(n)}",
        largest not in reads.names and reads.files <= small and len(store.parts()) == 3,
        f"{reads.files} files opened ({which}), {merge_time:.3f} s",
        f"the {small} small parts at most",
    )
    del held
    store.clear()
    gc.collect()
    return {"noop": noop, "k": k_time, "merge": merge_time}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, default=list(SIZES))
    args = parser.parse_args()
    noop: dict[int, float] = {}
    k_new: dict[int, float] = {}
    merges: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            got = one_size(n, Path(tmp))
            noop[n], k_new[n], merges[n] = got["noop"], got["k"], got["merge"]
    if len(noop) > 1:
        growth("bench_store", "no-op refresh", noop)
        growth("bench_store", f"refresh after K={K:,}", k_new)
        growth("bench_store", "refresh that merges", merges)
        lo, hi = min(noop), max(noop)
        factor = noop[hi] / noop[lo]
        verdict(
            "bench_store no-op refresh: no faster than the window grows",
            factor <= 1.5 * hi / lo,
            f"x{factor:.2f} from {size_label(lo)} to {size_label(hi)} events (x{hi / lo:g})",
            f"<= x{1.5 * hi / lo:g}",
        )
    return exit_code()


if __name__ == "__main__":
    raise SystemExit(main())
