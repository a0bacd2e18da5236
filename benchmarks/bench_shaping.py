"""Shaping 1,000,000 live-feed events: ``frames.shape`` against ``pd.json_normalize``.

One deterministic payload (numpy RNG, seed fixed) is written once as JSON; each
contender then runs in its own fresh interpreter that parses that same file, so
neither inherits the other's heap, caches or fragmentation. Measured per contender:

- wall time of the shaping call alone (JSON parsing excluded: it is the same for all);
- peak RSS of that call above the RSS it started from (Linux: ``VmHWM`` reset through
  ``/proc/self/clear_refs``; see ``_common.py`` for why not tracemalloc).

Contenders:

- ``fast``: ``mixmax_nb.frames.shape("events", records)``, the typed frame;
- ``bare``: ``pd.json_normalize(records)`` + ``pd.to_datetime(timestamp, unit="ms",
  utc=True)``: the issue's baseline, less work than ours (no renames, no dtypes);
- ``naive``: ``frames.naive_events``: json_normalize + renames + to_datetime + astype,
  the reference that produces a frame *equal* to the fast one.

Targets (against ``bare``, the stricter baseline): at least 5x faster, and peak
memory no more than the baseline's. A 20,000-event slice is also shaped both ways in
the parent and compared with ``pd.testing.assert_frame_equal``.

    python benchmarks/bench_shaping.py            # 1,000,000 events
    python benchmarks/bench_shaping.py --n 200000 # quicker
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

SPEED_TARGET = 5.0


def _worker(which: str, payload: Path) -> None:
    import gc

    import pandas as pd
    from _common import measure

    from mixmax_nb import frames

    records: list[dict[str, Any]] = json.loads(payload.read_bytes())
    gc.collect()

    def bare() -> pd.DataFrame:
        df = pd.json_normalize(records)
        df["timestamp"] = pd.to_datetime(df["timestamp"], unit="ms", utc=True)
        return df

    fn = {
        "fast": lambda: frames.shape("events", records),
        "bare": bare,
        "naive": lambda: frames.naive_events(records),
    }[which]
    df, seconds, peak = measure(fn)
    print(json.dumps({"seconds": seconds, "peak": peak, "rows": len(df), "cols": df.shape[1]}))


def _run(which: str, payload: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", which, "--payload", str(payload)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _check_equal(records: list[dict[str, Any]]) -> str:
    import pandas as pd

    from mixmax_nb import frames

    sample = records[:20_000]
    try:
        pd.testing.assert_frame_equal(frames.shape("events", sample), frames.naive_events(sample))
    except AssertionError as exc:
        return f"DIFFERENT ({str(exc).splitlines()[0]})"
    return "equal"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--worker", choices=("fast", "bare", "naive"))
    parser.add_argument("--payload", type=Path)
    parser.add_argument("--skip-naive", action="store_true", help="skip the slow typed reference")
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.payload)
        return 0

    from _common import can_reset_peak, make_events

    started = time.perf_counter()
    records = make_events(args.n, args.seed)
    method = "VmHWM reset via /proc/self/clear_refs" if can_reset_peak() else "RSS sampled at 1 ms"
    print(f"payload: {len(records):,} live-feed events, seed {args.seed}; peak memory: {method}")
    print(f"fast vs naive typed frame on a 20,000-event slice: {_check_equal(records)}")
    with tempfile.TemporaryDirectory() as tmp:
        payload = Path(tmp) / "events.json"
        payload.write_text(json.dumps(records))
        del records
        print(f"JSON payload: {payload.stat().st_size / 1e6:,.0f} MB (each run parses it afresh)")
        results = {"fast": _run("fast", payload), "bare": _run("bare", payload)}
        if not args.skip_naive:
            results["naive"] = _run("naive", payload)

    labels = {
        "fast": "frames.shape (typed)",
        "bare": "json_normalize + to_datetime",
        "naive": "json_normalize + renames + astype (typed)",
    }
    for name, r in results.items():
        print(
            f"{labels[name]:<44} {r['seconds']:7.2f} s   peak +{r['peak'] / 2**20:7.0f} MiB"
            f"   {r['rows']:,} rows x {r['cols']} cols"
        )
    fast, bare = results["fast"], results["bare"]
    ratio = bare["seconds"] / fast["seconds"]
    print(f"speed-up vs bare baseline: {ratio:.1f}x", end="")
    if "naive" in results:
        print(
            f"   (vs typed naive reference: {results['naive']['seconds'] / fast['seconds']:.1f}x)"
        )
    else:
        print()
    speed_ok = ratio >= SPEED_TARGET
    memory_ok = fast["peak"] <= bare["peak"]
    print(f"{'PASS' if speed_ok else 'FAIL'}: speed {ratio:.1f}x (target >= {SPEED_TARGET:.0f}x)")
    print(
        f"{'PASS' if memory_ok else 'FAIL'}: peak {fast['peak'] / 2**20:.0f} MiB"
        f" vs baseline {bare['peak'] / 2**20:.0f} MiB (target: no more than the baseline)"
    )
    print(f"total benchmark time: {time.perf_counter() - started:.0f} s")
    return 0 if speed_ok and memory_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
