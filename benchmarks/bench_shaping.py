"""Shaping live-feed events into the typed frame, side by side with the best peer.

The payload is what Membrane prints: one ``{"results": [300 events], "next": ...,
"hasNext": ...}`` page object per line, from a deterministic event list (numpy RNG,
seed fixed; sizes above 1,000,000 are generated a million at a time with the next
seeds, so the generator never holds more than a million dicts). It is written once
per size; each contender then runs in its own fresh interpreter, so none inherits
another's heap, caches or fragmentation.

The output is the same for everyone: the ``events`` frame's 21 columns, named and
typed as :data:`mixmax_nb.frames.SCHEMAS` says (text, the event type as a category
with the documented categories first, UTC millisecond timestamps, nullable integers
and booleans). Ours is a pandas frame; each peer builds its own native frame with the
same columns and types (pyarrow: a Table with a dictionary ``type`` and
``timestamp[ms, UTC]``; polars: a DataFrame with ``Categorical`` and
``Datetime("ms", "UTC")``; DuckDB: the same as an Arrow table). Peers skip pandas
altogether, which makes them the stricter yardstick. A 20,000-event slice of every
contender's output is compared value by value with ours.

Two measures:

1. **From raw JSON.** The payload's bytes are read before the clock starts (DuckDB
   reads the same file by path, from the page cache). Ours: ``frames.shape_json``
   on the bytes; ``ours-path`` (printed, not a goal) gives it the path instead, which
   it memory-maps: no copy of the payload in Python, the page cache read in place.
   Peers: ``pyarrow.json.read_json`` + flatten; ``polars.read_ndjson`` + explode +
   unnest; DuckDB ``read_json`` + ``unnest``.
2. **From parsed records** (shaping alone, as ``client.frame`` and the account-wide
   feed do, where the transport parses each page): the payload is ``json.loads``-ed
   before the clock starts.
   Ours: ``frames.shape``. Peers: ``pa.Table.from_pylist`` + flatten;
   ``polars.from_dicts`` + unnest. ``pd.json_normalize`` is printed for reference
   (not a peer: it is far behind). Run up to ``--parsed-max`` events (default 1M):
   5,000,000 parsed dicts alone need about 8 GB.
3. **From printed answers** (what a live pull shapes now): the same events split
   into per-message ``list-livefeed-events`` answers (1 to 200 events each, no
   ``messageId``: the endpoint leaves it out), each as ``membrane action run``
   prints it, ``{"output": {"results": [...]}, "actionRunId": ...}``, shaped in
   batches of ``pull.EVENT_BATCH`` answers as a pull does (the frame of each batch
   goes to the store; none are combined). Ours: ``engagement.shape_event_runs``
   (one Arrow pass per batch). Peers, per batch: ``pyarrow.json.read_json`` and
   ``polars.read_ndjson`` on the batch's answers joined, then explode, stamp the
   message id, keep the documented types. ``json.loads`` + ``tag_events`` +
   ``frames.shape`` (the pull's path before) is printed for reference.

Per contender, best of ``--repeat`` fresh-process runs: wall time of the call alone,
and peak RSS above the starting RSS (Linux ``VmHWM``; see ``_common.py``). Bytes per
event in the finished frame, both counted as the bytes the frame holds: ours
``memory_usage(deep=True)`` (Arrow buffers of text and categories, numpy values and
masks of the rest) against polars' Arrow buffers (``to_arrow(compat_level=newest)``:
its string views and character buffers, no copy). Polars' own ``estimated_size()``
is printed too but is not the yardstick: it leaves out the 16-byte view of every
string value (measured: 100,000 two-letter strings report 200,000 B and hold
1,600,000 B of views), so on this frame (12 text columns) it reports about 190 B per
event less than polars holds (the issue's memory goal: at most polars').

Goals (issue #20): at least 1.5x ahead of the best peer on both measures; frame
bytes per event at most polars'. Every size prints the growth factor between sizes.
Exit status 1 on any FAIL.

    python benchmarks/bench_shaping.py                       # 100k, 1M, 5M
    python benchmarks/bench_shaping.py --sizes 100k,1M       # quicker
"""

from __future__ import annotations

import argparse
import io
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

SPEED_GOAL = 1.5
PAGE = 300  # events per list-livefeed-events page, the action's maximum
CHUNK = 1_000_000  # events generated at once


def page_lines(records: list[dict[str, Any]], first: int = 0) -> bytes:
    """The records as Membrane prints them, one page object per line."""
    pages = []
    for start in range(0, len(records), PAGE):
        more = start + PAGE < len(records)
        page = {"results": records[start : start + PAGE], "next": f"c{first + start + PAGE}"}
        page["hasNext"] = more
        pages.append(json.dumps(page))
    return "\n".join(pages).encode()


def answer_sizes(n: int) -> list[int]:
    """Events per message answer: 1 to 200 (Mixmax's cap), deterministic, summing to n."""
    sizes: list[int] = []
    left, i = n, 0
    while left > 0:
        size = min(left, 1 + (i * 37) % 200)
        sizes.append(size)
        left -= size
        i += 1
    return sizes


def write_answers(path: Path, n: int, seed: int) -> int:
    """The events as per-message answers, one printed ``action run`` answer per line
    (a million events generated at a time, each million split alike); returns how
    many answers."""
    from _common import make_events

    number = 0
    with path.open("wb") as fh:
        for k, start in enumerate(range(0, n, CHUNK)):
            number += _print_answers(fh, make_events(min(CHUNK, n - start), seed + k), number)
    return number


def _print_answers(fh: Any, records: list[dict[str, Any]], first: int) -> int:
    """``records`` split as :func:`answer_sizes` says, each answer as ``action run``
    prints it (without ``messageId``: the endpoint leaves it out); returns how many."""
    at = 0
    sizes = answer_sizes(len(records))
    for number, size in enumerate(sizes, start=first):
        page = [{k: v for k, v in r.items() if k != "messageId"} for r in records[at : at + size]]
        answer = {"output": {"results": page}, "actionRunId": f"run{number}"}
        fh.write(json.dumps(answer).encode() + b"\n")
        at += size
    return len(sizes)


def write_payload(path: Path, n: int, seed: int) -> None:
    from _common import make_events

    with path.open("wb") as fh:
        for k, start in enumerate(range(0, n, CHUNK)):
            records = make_events(min(CHUNK, n - start), seed + k)
            if start:
                fh.write(b"\n")
            fh.write(page_lines(records, start))
            del records


# -- the column map every contender builds (the events schema) -----------------------------


def _columns() -> list[tuple[str, tuple[str, ...], str, tuple[str, ...]]]:
    from mixmax_nb import frames

    return [(c.name, c.path, c.kind, c.categories) for c in frames._SPECS["events"].columns]


def _pa_type(kind: str) -> Any:
    import pyarrow as pa

    return {
        "string": pa.string(),
        "category": pa.string(),
        "datetime": pa.int64(),
        "Int64": pa.int64(),
        "boolean": pa.bool_(),
    }[kind]


def _pa_finish(records: Any) -> Any:
    """A struct array of events -> the typed pyarrow Table (peer output)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(records)
    arrays, names = [], []
    for name, path, kind, _cats in _columns():
        arr = records
        for key in path:
            if not pa.types.is_struct(arr.type) or arr.type.get_field_index(key) < 0:
                arr = pa.nulls(n)
                break
            arr = arr.flatten()[arr.type.get_field_index(key)]
        if kind == "boolean" and not pa.types.is_boolean(arr.type):
            arr = pc.not_equal(arr.cast(pa.int64()), 0)
        else:
            arr = arr.cast(_pa_type(kind))
        if kind == "datetime":
            arr = arr.cast(pa.timestamp("ms", tz="UTC"))
        elif kind == "category":
            arr = arr.dictionary_encode()
        arrays.append(arr)
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)


def peer_pyarrow_json(data: bytes) -> Any:
    import pyarrow as pa
    import pyarrow.json as pj

    table = pj.read_json(io.BytesIO(data), read_options=pj.ReadOptions(block_size=1 << 24))
    results = table.column("results").combine_chunks()
    return _pa_finish(pa.ListArray.flatten(results))


def peer_pyarrow_records(records: list[dict[str, Any]]) -> Any:
    import pyarrow as pa

    return _pa_finish(pa.Table.from_pylist(records).to_struct_array().combine_chunks())


def _pl_finish(df: Any) -> Any:
    import polars as pl

    exprs = []
    present = set(df.columns)
    for name, path, kind, _cats in _columns():
        if path[0] not in present:
            expr = pl.lit(None)
        else:
            expr = pl.col(path[0])
            for key in path[1:]:
                expr = expr.struct.field(key)
        if kind == "datetime":
            expr = expr.cast(pl.Int64).cast(pl.Datetime("ms", "UTC"))
        elif kind == "category":
            expr = expr.cast(pl.String).cast(pl.Categorical)
        elif kind == "boolean":
            expr = expr.cast(pl.Int64).cast(pl.Boolean)
        elif kind == "Int64":
            expr = expr.cast(pl.Int64)
        else:
            expr = expr.cast(pl.String)
        exprs.append(expr.alias(name))
    return df.select(exprs)


def peer_polars_json(data: bytes) -> Any:
    import polars as pl

    pages = pl.read_ndjson(io.BytesIO(data))
    return _pl_finish(pages.select(pl.col("results").explode()).unnest("results"))


def peer_polars_records(records: list[dict[str, Any]]) -> Any:
    import polars as pl

    return _pl_finish(pl.from_dicts(records, infer_schema_length=None))


def peer_duckdb_json(path: Path) -> Any:
    import duckdb

    selects = []
    for name, p, kind, _cats in _columns():
        col = "r." + ".".join(f'"{k}"' for k in p)
        if kind == "datetime":
            expr = f"make_timestamptz(CAST({col} AS BIGINT) * 1000)"
        elif kind == "boolean":
            expr = f"CAST({col} AS BOOLEAN)"
        elif kind == "Int64":
            expr = f"CAST({col} AS BIGINT)"
        else:
            expr = f"CAST({col} AS VARCHAR)"
        selects.append(f'{expr} AS "{name}"')
    # The schema given up front, as ours is: DuckDB drops keys it never saw otherwise.
    sql_type = {"string": "VARCHAR", "category": "VARCHAR", "datetime": "BIGINT"}
    sql_type |= {"Int64": "BIGINT", "boolean": "BIGINT"}
    top: dict[str, Any] = {}
    for _name, p, kind, _cats in _columns():
        if len(p) == 1:
            top[p[0]] = sql_type[kind]
        else:
            top.setdefault(p[0], {})[p[1]] = sql_type[kind]
    fields = ", ".join(
        f'"{k}" '
        + (
            v
            if isinstance(v, str)
            else "STRUCT(" + ", ".join(f'"{a}" {b}' for a, b in v.items()) + ")"
        )
        for k, v in top.items()
    )
    columns = "{'results': 'STRUCT(" + fields.replace("'", "''") + ")[]'}"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    sql = (
        f"SELECT {', '.join(selects)} FROM (SELECT unnest(results) AS r FROM "
        f"read_json('{path}', format='newline_delimited', columns={columns},"
        " maximum_object_size=1000000000))"
    )
    table = con.execute(sql).to_arrow_table()
    i = table.schema.get_field_index("type")
    return table.set_column(i, "type", table.column("type").combine_chunks().dictionary_encode())


def _batches(answers: list[bytes]) -> list[tuple[list[str], list[bytes]]]:
    from mixmax_nb.data.pull import EVENT_BATCH

    ids = [f"m{i:08d}" for i in range(len(answers))]
    return [
        (ids[i : i + EVENT_BATCH], answers[i : i + EVENT_BATCH])
        for i in range(0, len(answers), EVENT_BATCH)
    ]


def ours_printed(answers: list[bytes]) -> list[Any]:
    from mixmax_nb.data.engagement import shape_event_runs

    return [shape_event_runs(ids, runs)[0] for ids, runs in _batches(answers)]


def parsed_printed(answers: list[bytes]) -> list[Any]:
    """The pull's path before: each answer parsed, tagged, then the batch shaped."""
    from mixmax_nb import frames
    from mixmax_nb.data.engagement import tag_events

    parts = []
    for ids, runs in _batches(answers):
        tagged = [tag_events(m, json.loads(r)["output"]) for m, r in zip(ids, runs, strict=True)]
        parts.append(frames.shape("events", [e for t in tagged for e in t]))
    return parts


def peer_pyarrow_printed(answers: list[bytes]) -> list[Any]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj

    from mixmax_nb.catalog import ENGAGEMENT_TYPES

    types = pa.array(ENGAGEMENT_TYPES)
    parts = []
    for ids, runs in _batches(answers):
        table = pj.read_json(io.BytesIO(b"\n".join(runs)))
        pages = table.column("output").combine_chunks().field("results")
        records = pa.ListArray.flatten(pages)
        owner = np.repeat(np.arange(len(runs)), pages.value_lengths().to_numpy())
        keep = pc.is_in(records.field("type"), value_set=types)
        records = records.filter(keep)
        fields = [records.field(i) for i in range(records.type.num_fields)]
        names = [f.name for f in records.type]
        stamped = pa.array(ids).take(pa.array(owner).filter(keep))
        if "messageId" in names:
            fields[names.index("messageId")] = stamped
        else:
            fields.append(stamped)
            names.append("messageId")
        parts.append(_pa_finish(pa.StructArray.from_arrays(fields, names=names)))
    return parts


def peer_polars_printed(answers: list[bytes]) -> list[Any]:
    import polars as pl

    from mixmax_nb.catalog import ENGAGEMENT_TYPES

    parts = []
    for ids, runs in _batches(answers):
        pages = pl.read_ndjson(io.BytesIO(b"\n".join(runs)))
        records = (
            pages.select(pl.col("output").struct.field("results"))
            .with_columns(pl.Series("messageId", ids))
            .explode("results")
            .drop_nulls("results")
            .select(pl.col("results").struct.unnest(), pl.col("messageId").alias("_mid"))
            .filter(pl.col("type").is_in(ENGAGEMENT_TYPES))
        )
        records = records.drop("messageId", strict=False).rename({"_mid": "messageId"})
        parts.append(_pl_finish(records))
    return parts


def _json_normalize(records: list[dict[str, Any]]) -> Any:
    import pandas as pd

    df = pd.json_normalize(records)
    df["timestamp"] = pd.to_datetime(df["timestamp"], unit="ms", utc=True)
    return df


def _parse_pages(data: bytes) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for line in data.splitlines():
        records.extend(json.loads(line)["results"])
    return records


PRINTED = ("ours-printed", "pyarrow-printed", "polars-printed", "parsed-printed")
RAW = ("ours-raw", "pyarrow-raw", "polars-raw", "duckdb-raw")
PARSED = ("ours-parsed", "pyarrow-parsed", "polars-parsed", "json_normalize")
LABELS = {
    "ours-raw": "frames.shape_json",
    "ours-path": "frames.shape_json(path) (memory-mapped)",
    "pyarrow-raw": "pyarrow.json.read_json + flatten",
    "polars-raw": "polars.read_ndjson + explode/unnest",
    "duckdb-raw": "duckdb read_json + unnest",
    "ours-parsed": "frames.shape",
    "pyarrow-parsed": "pa.Table.from_pylist + flatten",
    "polars-parsed": "polars.from_dicts + unnest",
    "json_normalize": "pd.json_normalize + to_datetime (reference)",
    "ours-printed": "engagement.shape_event_runs per batch",
    "pyarrow-printed": "pyarrow.json.read_json per batch + explode",
    "polars-printed": "polars.read_ndjson per batch + explode",
    "parsed-printed": "json.loads + tag_events + shape (reference)",
}


def _buffer_bytes(table: Any) -> int:
    """Bytes of the Arrow buffers a table's columns hold (dictionaries included), each
    buffer counted once however many chunks or columns share it."""
    seen: dict[int, int] = {}

    def add(array: Any) -> None:
        for buf in array.buffers():
            if buf is not None:
                seen[buf.address] = max(seen.get(buf.address, 0), buf.size)
        if hasattr(array, "dictionary"):
            add(array.dictionary)

    for column in table.columns:
        for chunk in column.chunks:
            add(chunk)
    return sum(seen.values())


def _frame_bytes(which: str, out: Any) -> dict[str, int]:
    """The frame's size two ways, so both sides can be counted alike.

    ``held``: the bytes the frame holds. Ours: ``memory_usage(deep=True)`` (the Arrow
    buffers of the text columns and categories, the numpy values and masks of the
    rest). Polars: its Arrow buffers through ``to_arrow(compat_level=newest)``, which
    hands its string views over without a copy (views and character buffers).
    ``reported``: what each library reports by itself: ours ``memory_usage(deep=True)``
    again, polars ``estimated_size()``, which counts a string column's characters but
    not its 16-byte views (a column of 100,000 two-letter strings: 200,000 B reported,
    1,600,000 B of views held; an all-null one: 0 B). Arrow tables: their buffers.
    """
    if which.startswith("ours") or hasattr(out, "memory_usage"):
        held = int(out.memory_usage(deep=True, index=False).sum())
        return {"held": held, "reported": held}
    if which.startswith("polars"):
        import polars as pl

        arrow = out.to_arrow(compat_level=pl.CompatLevel.newest())
        return {"held": _buffer_bytes(arrow), "reported": int(out.estimated_size())}
    return {"held": _buffer_bytes(out), "reported": int(out.nbytes)}  # an Arrow table


def _worker(which: str, payload: Path) -> None:
    import gc

    from _common import measure

    from mixmax_nb import frames

    data = payload.read_bytes() if which not in ("duckdb-raw", "ours-path") else b""
    records: list[dict[str, Any]] = []
    answers: list[bytes] = []
    if which in PARSED:
        records = _parse_pages(data)
        data = b""
    if which in PRINTED:
        answers = data.splitlines()
        data = b""
    gc.collect()
    fn = {
        "ours-printed": lambda: ours_printed(answers),
        "pyarrow-printed": lambda: peer_pyarrow_printed(answers),
        "polars-printed": lambda: peer_polars_printed(answers),
        "parsed-printed": lambda: parsed_printed(answers),
        "ours-raw": lambda: frames.shape_json("events", data),
        "ours-path": lambda: frames.shape_json("events", payload),
        "pyarrow-raw": lambda: peer_pyarrow_json(data),
        "polars-raw": lambda: peer_polars_json(data),
        "duckdb-raw": lambda: peer_duckdb_json(payload),
        "ours-parsed": lambda: frames.shape("events", records),
        "pyarrow-parsed": lambda: peer_pyarrow_records(records),
        "polars-parsed": lambda: peer_polars_records(records),
        "json_normalize": lambda: _json_normalize(records),
    }[which]
    out, seconds, peak = measure(fn)
    parts = out if isinstance(out, list) else [out]  # a pull's batches stay apart
    sizes = [_frame_bytes(which, part) for part in parts]
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak": peak,
                "rows": sum(len(part) for part in parts),
                "cols": parts[0].shape[1],
                "frame_bytes": {k: sum(b[k] for b in sizes) for k in ("held", "reported")},
            }
        )
    )


def _run(which: str, payload: Path, repeat: int) -> dict[str, Any]:
    """Best of ``repeat`` fresh-process runs (the fastest time, and that run's peak)."""
    runs: list[dict[str, Any]] = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--worker", which, "--payload", str(payload)],
            capture_output=True,
            text=True,
        )
        if out.returncode:
            raise RuntimeError(f"{which} failed:\n{out.stderr[-3000:]}")
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return min(runs, key=lambda r: float(r["seconds"]))


def _to_pandas(which: str, out: Any) -> Any:
    """A contender's output as pandas objects, for a value-by-value comparison."""
    import pandas as pd

    if which.startswith("ours"):
        frame = out
    elif which.startswith("polars"):
        frame = out.to_arrow().to_pandas()
    else:
        frame = out.to_pandas()
    plain = pd.DataFrame({c: frame[c].astype(object) for c in frame.columns})
    return plain.where(plain.notna(), None)


def _same_printed(answers: list[bytes]) -> list[str]:
    """The printed-answers contenders against the pull's former path, batch by batch."""
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    reference = _to_pandas("ours", pd.concat(parsed_printed(answers), ignore_index=True))
    outputs = {
        "ours-printed": pd.concat(ours_printed(answers), ignore_index=True),
        "pyarrow-printed": pa.concat_tables(peer_pyarrow_printed(answers)),
        "polars-printed": pl.concat(peer_polars_printed(answers)),
    }
    different = []
    for which, out in outputs.items():
        got = _to_pandas(which, out)
        if list(got.columns) != list(reference.columns) or not got.equals(reference):
            bad = [c for c in reference.columns if c not in got or not got[c].equals(reference[c])]
            different.append(f"{which} differs in {bad[:4]}")
    return different


def check_same(records: list[dict[str, Any]]) -> str:
    """Every contender on a 20,000-event slice gives the same values as frames.shape."""
    from mixmax_nb import frames

    sample = records[:20_000]
    data = page_lines(sample)
    ours = frames.shape("events", sample)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "slice.jsonl"
        path.write_bytes(data)
        outputs = {
            "ours-raw": frames.shape_json("events", data),
            "ours-path": frames.shape_json("events", path),
            "pyarrow-raw": peer_pyarrow_json(data),
            "polars-raw": peer_polars_json(data),
            "duckdb-raw": peer_duckdb_json(path),
            "pyarrow-parsed": peer_pyarrow_records(sample),
            "polars-parsed": peer_polars_records(sample),
        }
        printed = io.BytesIO()
        _print_answers(printed, sample, 0)
        answers = printed.getvalue().splitlines()
    different = _same_printed(answers)
    reference = _to_pandas("ours", ours)
    for which, out in outputs.items():
        got = _to_pandas(which, out)
        if list(got.columns) != list(reference.columns) or not got.equals(reference):
            bad = [c for c in reference.columns if c not in got or not got[c].equals(reference[c])]
            different.append(f"{which} differs in {bad[:4]}")
    return "; ".join(different) if different else "equal"


def main() -> int:
    from _common import (
        SIZES,
        can_reset_peak,
        emit,
        exit_code,
        growth,
        make_events,
        parse_sizes,
        size_label,
        verdict,
        versus,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, default=list(SIZES))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--worker", choices=tuple(LABELS))
    parser.add_argument("--payload", type=Path)
    parser.add_argument("--parsed-max", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2, help="fresh-process runs; best counts")
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.payload)
        return 0

    started = time.perf_counter()
    method = "VmHWM reset via /proc/self/clear_refs" if can_reset_peak() else "RSS sampled at 1 ms"
    print(f"peak memory: {method}; best of {args.repeat} fresh processes per contender")
    same = check_same(make_events(20_000, args.seed))
    verdict("shaping: every contender, same values", same == "equal", same, "20,000 events")
    raw_s: dict[int, float] = {}
    parsed_s: dict[int, float] = {}
    printed_s: dict[int, float] = {}
    per_event: dict[int, float] = {}
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            payload = Path(tmp) / "pages.jsonl"
            write_payload(payload, n, args.seed)
            print(
                f"-- {n:,} events: {payload.stat().st_size / 1e6:,.0f} MB of JSON, "
                f"{-(-n // PAGE):,} page objects one per line"
            )
            names = [*RAW, "ours-path"]
            if n <= args.parsed_max:
                names += [p for p in PARSED if p != "json_normalize" or n <= 1_000_000]
            results = {name: _run(name, payload, args.repeat) for name in names}
            payload.unlink()
            answers = Path(tmp) / "answers.jsonl"
            messages = write_answers(answers, n, args.seed)
            print(
                f"   then {answers.stat().st_size / 1e6:,.0f} MB of printed answers,"
                f" {messages:,} messages (1 to 200 events each)"
            )
            results |= {name: _run(name, answers, args.repeat) for name in PRINTED}
        for name, r in results.items():
            print(
                f"   {name:<15} {LABELS[name]:<44} {r['seconds']:7.2f} s"
                f"   peak +{r['peak'] / 2**20:6.0f} MiB   {r['rows']:,} x {r['cols']}"
                f"   frame {r['frame_bytes']['held'] / r['rows']:5.0f} B/event held"
                f" ({r['frame_bytes']['reported'] / r['rows']:.0f} reported)"
            )
        ours = results["ours-raw"]
        raw_s[n] = ours["seconds"]
        versus(
            "bench_shaping",
            "raw JSON -> typed frame",
            n,
            ours["seconds"],
            {k.removesuffix("-raw"): results[k]["seconds"] for k in RAW[1:]},
            SPEED_GOAL,
        )
        if "ours-parsed" in results:
            parsed_s[n] = results["ours-parsed"]["seconds"]
            versus(
                "bench_shaping",
                "parsed records -> typed frame",
                n,
                results["ours-parsed"]["seconds"],
                {k.removesuffix("-parsed"): results[k]["seconds"] for k in PARSED[1:3]},
                SPEED_GOAL,
            )
            if "json_normalize" in results:
                ratio = results["json_normalize"]["seconds"] / results["ours-parsed"]["seconds"]
                print(f"   frames.shape vs pd.json_normalize (reference): {ratio:.1f}x")
        printed_s[n] = results["ours-printed"]["seconds"]
        versus(
            "bench_shaping",
            "printed answers -> typed frame (live pull)",
            n,
            printed_s[n],
            {k.removesuffix("-printed"): results[k]["seconds"] for k in PRINTED[1:3]},
            SPEED_GOAL,
        )
        before = results["parsed-printed"]["seconds"] / printed_s[n]
        print(
            "   shape_event_runs vs json.loads + tag_events + shape (the pull before):"
            f" {before:.2f}x"
        )
        pl_raw = results["polars-raw"]
        per_event[n] = ours["frame_bytes"]["held"] / ours["rows"]
        print(
            "   frame bytes per event, counted alike (bytes held): ours memory_usage(deep=True)"
            f" {per_event[n]:.0f} B; polars Arrow buffers (string views + characters)"
            f" {pl_raw['frame_bytes']['held'] / pl_raw['rows']:.0f} B; polars estimated_size()"
            f" {pl_raw['frame_bytes']['reported'] / pl_raw['rows']:.0f} B (no views; not the goal)"
        )
        versus(
            "bench_shaping",
            "frame bytes per event",
            n,
            per_event[n],
            {"polars": pl_raw["frame_bytes"]["held"] / pl_raw["rows"]},
            1.0,
            unit="B",
        )
        peaks = {k.removesuffix("-raw"): results[k]["peak"] / 2**20 for k in (*RAW, "ours-path")}
        print(
            "   peak memory (raw JSON; no goal): "
            + ", ".join(f"{k} +{v:,.0f} MiB" for k, v in peaks.items())
        )
        emit(bench="bench_shaping", figure="raw JSON peak MiB", size=n, values=peaks)
        emit(bench="bench_shaping", figure="payload", size=n, label=size_label(n))
    if len(raw_s) > 1:
        growth("bench_shaping", "raw JSON -> typed frame", raw_s)
    if len(parsed_s) > 1:
        growth("bench_shaping", "parsed records -> typed frame", parsed_s)
    if len(printed_s) > 1:
        growth("bench_shaping", "printed answers -> typed frame (live pull)", printed_s)
    print(f"total benchmark time: {time.perf_counter() - started:.0f} s")
    return exit_code()


if __name__ == "__main__":
    raise SystemExit(main())
