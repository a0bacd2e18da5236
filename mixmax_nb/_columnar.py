"""Read many JSON records' fields into Arrow columns in one pass (the shaping fast path).

Reading a field with a Python loop costs about 100 ns a record, so a million events
with 19 fields spend two seconds in the interpreter before any conversion starts.
``pa.array(records, type=struct)`` walks every record once in C++, looking up each
field and converting it straight into typed Arrow buffers; :func:`read_leaves` does
that for every field whose wire type it can name up front.

The one-pass read is only taken when it gives *exactly* what the per-field path in
``frames`` would give, so it is conservative:

- each field's Arrow type comes from a sample of the records; a field whose sample
  holds anything other than the natural wire type for its column (numbers in a text
  field, floats in a timestamp, ...) is left to the per-field path;
- a value later in the data that does not fit the sampled type makes Arrow raise,
  and the whole read is abandoned (``None``): the per-field path then decides, value
  by value, as before;
- records must all be ``dict`` and flattened parents ``dict`` or ``None``: Arrow would
  read a list as a positional struct, which JSON never means.

:func:`parse_json` is the same idea one step earlier: Arrow's C++ JSON reader turns
raw JSON text (Membrane's page objects, one per line, or one record per line) into
columns without a single Python object per value, and gives up (``None``) on
anything it would read differently from ``json.loads``.

Pure: no I/O (``parse_json`` takes a buffer; ``frames.shape_json`` maps files).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.json as pa_json

from . import catalog

SAMPLE: Final = 1_000
"""Records whose values decide each field's Arrow type."""

POOL: Final = pa.system_memory_pool()
"""Where the one-pass reads allocate the frame's Arrow buffers: the C library's malloc,
not pyarrow's default mimalloc. mimalloc serves them from its own arenas, madvised for
transparent huge pages, so a million events' columns land in memory the process has
never touched, faulted (and, where the kernel compacts for huge pages, stalled) 2 MB
at a time; malloc reuses what the process freed a moment before (the payload, the
parsed lines) instead. Measured on the benchmark machine at 1M events, fresh
processes: ``shape`` 3.3-4.0 s -> 2.2-2.8 s (system time 1.0-1.4 s -> 0.01 s),
``shape_json`` 3.0-4.5 s -> 2.3-3.2 s. At 100k ``shape`` is about the same either way
and ``shape_json`` slower on malloc, hence :data:`LARGE_JSON`."""

LARGE_JSON: Final = 128 << 20
"""Bytes of JSON from which :func:`parse_json` allocates from :data:`POOL`."""

READ_CHUNK: Final = 16_384
"""Records per ``pa.array`` call in :func:`read_leaves`. Arrow's builders grow by
doubling, so one call over a million records copies each column's buffers ~20 times
into memory the process has never touched (a fresh page costs far more than a reused
one); chunk by chunk, the builders' freed memory is reused."""

_ERRORS: Final = (
    pa.ArrowInvalid,
    pa.ArrowTypeError,
    pa.ArrowNotImplementedError,
    OverflowError,
    UnicodeEncodeError,  # lone surrogates: the per-field path replaces them
)

CONTAINERS: Final = catalog.PAGE_CONTAINERS

BLOCK: Final = 16 << 20
"""Most bytes per JSON block; blocks are parsed on all cores, and a line must fit in one."""

MIN_BLOCK: Final = 4 << 20
"""Fewest bytes per block: smaller blocks cost more than the cores they keep busy."""


def block_size(size: int) -> int:
    """Bytes per block for ``size`` bytes of JSON: about four blocks per core, so that
    no core idles on the last one, within ``MIN_BLOCK`` .. ``BLOCK``."""
    share = size // (4 * max(1, int(pa.cpu_count())))
    return min(BLOCK, max(MIN_BLOCK, share))


Path = tuple[str, ...]


def leaf_type(kind: str, sampled: pa.DataType) -> pa.DataType | None:
    """The Arrow type to read a ``kind`` column as, given its sample's type; None = don't.

    Integers are read as ``int64`` only where truncating a stray non-integral float
    is what the per-field path does too (Int64 and timestamps, see ``frames``);
    booleans that arrive as 0/1 are read as ``float64`` so that 0.5 or 2 stay
    distinguishable from 0 and 1.
    """
    is_null = pa.types.is_null(sampled)
    is_text = pa.types.is_string(sampled) or pa.types.is_large_string(sampled)
    is_int = pa.types.is_integer(sampled)
    if kind in ("string", "category"):
        return pa.large_string() if is_null or is_text else None
    if kind == "Int64":
        return pa.int64() if is_null or is_int else None
    if kind == "Float64":
        return pa.float64() if is_null or is_int or pa.types.is_floating(sampled) else None
    if kind == "datetime":
        if is_null or is_int:
            return pa.int64()
        return pa.large_string() if is_text else None
    if kind == "boolean":
        if is_null or pa.types.is_boolean(sampled):
            return pa.bool_()
        return pa.float64() if is_int or pa.types.is_floating(sampled) else None
    return None


def _dig(record: Mapping[str, Any], path: Path) -> Any:
    value: Any = record
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _sampled_type(values: list[Any]) -> pa.DataType | None:
    try:
        return pa.array(values, from_pandas=True).type
    except _ERRORS:
        return None


def _struct(typed: Iterable[tuple[Path, pa.DataType | None]]) -> pa.StructType | None:
    """The nested struct type holding each leaf path at its type; None on a clash.

    A leaf typed None claims its name but is left out (Arrow infers it). A path that
    is both a leaf and a parent, or a leaf given twice, is a clash.
    """
    tree: dict[str, Any] = {}
    for path, arrow_type in typed:
        node = tree
        for key in path[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                return None
            node = child
        if path[-1] in node:
            return None
        node[path[-1]] = arrow_type

    def build(node: Mapping[str, Any]) -> pa.StructType:
        return pa.struct(
            [
                pa.field(key, build(child) if isinstance(child, dict) else child)
                for key, child in node.items()
                if child is not None
            ]
        )

    return build(tree)


def _leaves(array: Any, prefix: Path, out: dict[Path, Any]) -> None:
    # flatten() folds a null parent into its children, which .field() would not.
    for field, child in zip(array.type, array.flatten(), strict=True):
        path = (*prefix, field.name)
        if pa.types.is_struct(field.type):
            _leaves(child, path, out)
        else:
            out[path] = child


def read_leaves(
    records: list[Any],
    leaves: Sequence[tuple[Path, str]],
    parents: Mapping[Path, list[Any]],
    keys: dict[Path, set[str]] | None = None,
) -> dict[Path, Any] | None:
    """Arrow arrays (chunked) for the ``(path, column kind)`` leaves it can read in one pass.

    ``parents`` holds, for every flattened parent path of the leaves, the list of that
    parent's values (one per record). Returns None when the one-pass read does not
    apply; leaves missing from the result are for the per-field path. Category leaves
    come back dictionary-encoded.

    Given ``keys``, it also gathers every key of the records (under ``()``) and of
    each parent's objects (under its path), chunk by chunk while that chunk's dicts
    are still in the CPU cache: done afterwards over a million cold dicts, the same
    union costs several times more. ``keys`` is only complete when the result is not
    None.
    """
    if not records or set(map(type, records)) != {dict}:
        return None
    for objs in parents.values():
        if not set(map(type, objs)) <= {dict, type(None)}:
            return None
    sample = records[:SAMPLE]
    typed = []
    for path, kind in leaves:
        sampled = _sampled_type([_dig(r, path) for r in sample])
        arrow_type = leaf_type(kind, sampled) if sampled is not None else None
        if kind == "category" and arrow_type == pa.large_string():
            # Encoded as it is read: a few distinct values, not a million strings to
            # store, hash and free again.
            arrow_type = pa.dictionary(pa.int32(), pa.large_string())
        if arrow_type is not None:
            typed.append((path, arrow_type))
    struct = _struct(typed)
    if struct is None:
        return None
    if not typed:
        return {}
    # Only a float leaf needs NaN read as missing (as the per-field path reads it); in
    # any other leaf a NaN, pd.NA or NaT makes Arrow raise and the per-field path
    # decides. Testing every value for pandas' null sentinels costs ~3% of the read.
    nan_is_null = any(pa.types.is_floating(t) for _p, t in typed)
    if keys is not None:
        keys.clear()
        keys[()] = set()
        keys.update((p, set()) for p in parents)
    chunks = []
    try:
        for start in range(0, len(records), READ_CHUNK):
            part = records[start : start + READ_CHUNK]
            chunks.append(pa.array(part, type=struct, from_pandas=nan_is_null, memory_pool=POOL))
            if keys is not None:
                keys[()].update(*part)
                for p, objs in parents.items():
                    keys[p].update(*filter(None, objs[start : start + READ_CHUNK]))
    except _ERRORS:
        return None
    out: dict[Path, Any] = {}
    _leaves(pa.chunked_array(chunks, type=struct), (), out)
    return out


def key_union(objects: Iterable[Any]) -> set[str]:
    """Every key of the (dict or None) objects, in one C-level pass."""
    return set().union(*filter(None, objects))


def _json_leaf_type(kind: str) -> pa.DataType | None:
    """The type a JSON leaf is read as; None lets Arrow infer it (checked afterwards).

    Timestamps are read as integers (epoch ms): an ISO string makes Arrow fail, and
    the caller falls back. Booleans arrive as true/false or as 0/1, so they are
    inferred and :func:`leaf_type` decides. Text is read as ``large_string``, the type
    the frame's text columns hold, so no column is cast (and its offsets copied into
    memory the process has not touched yet) afterwards: ~0.3 s of a fresh process's
    million events.
    """
    if kind in ("string", "category"):
        return pa.large_string()
    if kind in ("Int64", "datetime"):
        return pa.int64()
    if kind == "Float64":
        return pa.float64()
    return None


def is_utf8(data: Any) -> bool:
    """Whether a buffer is valid UTF-8, checked in place at SIMD speed (~0.06 s for a
    million events' 490 MB). Arrow's JSON reader does not check: it would put invalid
    bytes into string columns that fail later, when the frame is shown."""
    view = memoryview(data)
    if not view.nbytes:
        return True
    offsets = pa.array([0, view.nbytes], pa.int64()).buffers()[1]
    text = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(view)])
    try:
        text.cast(pa.large_string())  # validates; the bytes are shared, not copied
    except pa.ArrowInvalid:
        return False
    return True


def _read(data: Any, path: str | None, schema: pa.Schema, block: int) -> pa.Table:
    # A file is streamed block by block; a buffer is read in place. Neither is copied whole.
    # Small inputs stay on the default pool: there its huge pages cost less than the
    # system allocator's page-by-page faults (measured at 100k events: 0.20-0.22 s vs
    # 0.26-0.33 s); large ones go to POOL (at 1M: 3.0-4.5 s vs 2.3-3.2 s).
    pool = POOL if memoryview(data).nbytes >= LARGE_JSON else None
    source = (
        pa.OSFile(path, memory_pool=pool)
        if path is not None
        else pa.BufferReader(pa.py_buffer(data))
    )
    return pa_json.read_json(
        source,
        memory_pool=pool,
        read_options=pa_json.ReadOptions(block_size=block),
        parse_options=pa_json.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior="infer"
        ),
    )


_CONTAINER_KEY: Final = re.compile(b"|".join(b'"%s"' % c.encode() for c in CONTAINERS))


def parse_json(
    data: Any, leaves: Sequence[tuple[Path, str]], *, path: str | None = None
) -> pa.ChunkedArray | None:
    """The records in raw JSON ``data`` as a chunked struct array, or None to fall back.

    ``data`` is any buffer (``bytes``, ``memoryview``, a memory-mapped file), read in
    place; given ``path``, the file holding ``data`` is streamed instead (Arrow reads it
    a block at a time, so the whole file is never in memory). It is JSON Lines: page
    objects (records under ``results``, ``records`` or ``items``), or records. Known
    ``leaves`` are read with explicit types so Arrow neither guesses timestamps in text
    nor widens numbers; every other field is inferred and left for the caller to check
    (unknown fields are kept, so they cannot be skipped). Arrow refuses, and this
    returns None for, whatever ``json.loads`` would read differently: a bare array, mixed types,
    duplicate keys, lone surrogates, ``NaN``, numbers too big for 64 bits.

    The result keeps the reader's blocks as chunks: the records of each block are
    flattened in place, never combined into one copy.
    """
    view = memoryview(data)
    head = bytes(view[:64]).lstrip()
    if not head.startswith(b"{") or not is_utf8(view):
        return None
    record = _struct((path, _json_leaf_type(kind)) for path, kind in leaves)
    if record is None or any(name in CONTAINERS for name in record.names):
        return None
    schema = pa.schema([pa.field(c, pa.list_(record)) for c in CONTAINERS] + list(record))
    try:
        try:
            table = _read(data, path, schema, block_size(view.nbytes))
        except pa.ArrowInvalid as exc:
            if "straddl" not in str(exc):
                raise
            table = _read(data, path, schema, view.nbytes + 1)  # one line longer than a block
    except _ERRORS:
        return None
    filled = [c for c in CONTAINERS if table.column(c).null_count < table.num_rows]
    if filled:
        # Every line a page, all of one shape, and nothing of a record at page level.
        container = table.column(filled[0])
        if len(filled) > 1 or container.null_count:
            return None
        if any(table.column(name).null_count < table.num_rows for name in record.names):
            return None
        records = pa.chunked_array(
            [chunk.flatten() for chunk in container.chunks], type=container.type.value_type
        )
    else:
        if _CONTAINER_KEY.search(view):
            # A record with "results": null (say) would lose that key as an extra.
            return None
        records = table.drop_columns(list(CONTAINERS)).to_struct_array()
    if records.null_count or not pa.types.is_struct(records.type):
        return None  # a null where a record should be: the per-record path decides
    return records


RUN_BLOCK: Final = 1 << 20
"""Bytes per block for a batch of answers (a few MB): small enough that both cores
parse (measured on 30 batches of 100 answers: 1 MB 0.39 s, 4 MB 0.53-0.59 s)."""

RUN_CONTAINER: Final = "results"
"""Where a run's ``output`` holds its records (the list actions' page object)."""


def parse_runs(
    runs: Sequence[bytes], leaves: Sequence[tuple[Path, str]]
) -> tuple[pa.ChunkedArray, np.ndarray[Any, np.dtype[np.int64]]] | None:
    """The records of many ``membrane action run`` answers, read in one Arrow pass.

    Each of ``runs`` is one run's stdout as printed, ``{"output": {"results": [...],
    ...}, "actionRunId": ...}``, on one line or pretty-printed. Returns the records
    of every run back to back (a chunked struct array, ``leaves`` typed as in
    :func:`parse_json`) and how many each run gave; None when Arrow would read any
    of them differently from ``json.loads`` or one is not such an answer (no
    ``output``, no ``results`` list, a record that is not an object): the caller then
    reads them one by one and decides, with the errors ``json.loads`` gives.
    """
    if not runs:
        return None
    # One line per answer, joined: a batch is a few MB, and Arrow copies what a file
    # object gives it into blocks anyway; from a buffer it reads in place, and on all
    # cores (a Python file is read under the GIL: twice the time, measured).
    lines = b"\n".join(runs)
    if not is_utf8(lines):
        return None
    record = _struct((path, _json_leaf_type(kind)) for path, kind in leaves)
    if record is None:
        return None
    output = pa.struct([pa.field(RUN_CONTAINER, pa.list_(record))])
    longest = max(len(r) for r in runs)
    # A pretty-printed answer spans lines; the reader must then find objects' ends
    # itself (slower), so that is only asked for when some answer needs it.
    ends = sum(r.endswith(b"\n") for r in runs)  # the CLI ends what it prints with one
    multiline = lines.count(b"\n") > len(runs) - 1 + ends
    try:
        table = pa_json.read_json(
            pa.BufferReader(lines),
            read_options=pa_json.ReadOptions(block_size=max(RUN_BLOCK, 2 * longest + 2)),
            parse_options=pa_json.ParseOptions(
                explicit_schema=pa.schema([pa.field("output", output)]),
                unexpected_field_behavior="infer",
                newlines_in_values=multiline,
            ),
        )
    except _ERRORS:
        return None
    if table.num_rows != len(runs):
        return None
    answers = table.column("output")
    if answers.null_count:
        return None
    # The table's types: the known leaves as asked, every other field as inferred.
    page_type = answers.type.field(RUN_CONTAINER).type
    pages = pa.chunked_array(
        [chunk.field(RUN_CONTAINER) for chunk in answers.chunks], type=page_type
    )
    if pages.null_count or not pa.types.is_list(page_type):
        return None
    records = pa.chunked_array(
        [chunk.flatten() for chunk in pages.chunks], type=page_type.value_type
    )
    if records.null_count:
        return None
    counts = np.concatenate(
        [chunk.value_lengths().to_numpy(zero_copy_only=False) for chunk in pages.chunks]
    ).astype(np.int64)
    return records, counts
