"""Mixmax JSON records -> typed pandas DataFrames, one explicit schema per result kind.

No I/O but reading a file :func:`shape_json` is given; no widgets. :func:`shape`
takes the records of one result kind (the ``kind`` of a catalog action, plus
``actions``, ``sequence_stages`` and ``poll_results``) and returns a frame whose
columns, order and dtypes are fixed by :data:`SCHEMAS`, even when there are no records.

Rules every frame follows:

- snake_case column names, the record's own ``_id`` as ``id``;
- pandas nullable dtypes: ``string`` (ids too), ``Int64``, ``Float64``, ``boolean``;
- every timestamp is ``datetime64[ms, UTC]`` whatever its wire format: Mixmax sends
  ISO 8601 strings for some resources and epoch milliseconds for others (reference
  ``mixmax-api.md`` section 6), and either is accepted anywhere. Numbers are epoch
  *milliseconds* (never guessed as seconds); digit-only strings too. Unparseable
  values become ``NaT`` rather than failing the whole frame; sub-millisecond digits
  are truncated, from a string or a number alike;
- a non-integral number in an integer column is truncated toward zero, as ``int()``
  does (and as Arrow's one-pass read does, see below);
- enums are categoricals whose categories start with the fixed, documented values.
  A value Mixmax has not documented is *kept*: it is appended as an extra category
  (sorted) instead of being turned into a missing value;
- nested objects are flattened on purpose (``sequence._id`` -> ``sequence_id``,
  ``analytics.events.opens`` -> ``opens``), lists become counts or joined strings;
- fields the schema does not know are kept: appended after the fixed columns, sorted
  by name, snake_cased (``sequence.fooBar`` -> ``sequence_foo_bar``), as ``string``
  when every value is text and as ``object`` (raw values) otherwise. Unknown keys of
  list items (stages, members, ...) are summarised, not kept;
- ``df.attrs["kind"]`` names the kind; callers may set ``df.attrs["source"]``
  (``"sandbox"`` or ``"membrane"``).

Speed: every field whose wire type is plain (text, integer, float, boolean) is read
for all records in one C++ pass (``_columnar.read_leaves``, one ``pa.array`` over a
struct type) and converted column by column with Arrow compute. What that pass
cannot take exactly -- derived columns, raw objects, fields whose values are of
mixed types -- is read one field at a time with list comprehensions and converted
value by value (the *per-field* path); both give the same frame (tested). The
cyclic garbage collector is paused while a frame is built: shaping allocates
millions of objects, none of them cyclic, and each collection would walk them all.
:func:`naive_events` is the obvious ``pd.json_normalize`` version, kept as the
reference the tests compare against and the baseline ``benchmarks/bench_shaping.py``
measures.
"""

from __future__ import annotations

import gc
import json
import math
import mmap
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from types import MappingProxyType
from typing import IO, Any, Final, Literal, TypeAlias, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.extensions import ExtensionArray, ExtensionDtype

from . import _columnar, catalog
from .errors import InputError

__all__ = [
    "COMPLETED_REASONS",
    "ENROLL_STATUSES",
    "EVENT_TYPES",
    "KINDS",
    "MESSAGE_STATES",
    "RECIPIENT_STATES",
    "SCHEMAS",
    "STAGE_KINDS",
    "Column",
    "describe",
    "empty",
    "naive_events",
    "shape",
    "shape_json",
    "shape_per_field",
]

Record: TypeAlias = Mapping[str, Any]
Dtype: TypeAlias = str | pd.CategoricalDtype
ColumnKind = Literal["string", "Int64", "Float64", "boolean", "datetime", "category", "object"]

TIMESTAMP: Final = "datetime64[ms, UTC]"

EVENT_TYPES: Final = catalog.EVENT_TYPES
RECIPIENT_STATES: Final = ("active", "failed", "completed")
COMPLETED_REASONS: Final = ("finished", "replied", "bounced", "rule", "cancelled", "unsubscribed")
STAGE_KINDS: Final = ("email", "manual_email", "call", "linkedin")
ENROLL_STATUSES: Final = ("success", "duplicated", "unsubscribed", "error")
MESSAGE_STATES: Final = ("draft", "scheduled", "sent", "error")
ROLES: Final = ("admin", "member")

_NAT: Final = np.iinfo(np.int64).min  # NaT's int64 representation
_STRING = pd.StringDtype()  # "string": pyarrow-backed when pyarrow is installed
_INT = pd.Int64Dtype()
_FLOAT = pd.Float64Dtype()
_BOOL = pd.BooleanDtype()
_ARROW_ERRORS = (
    pa.ArrowInvalid,
    pa.ArrowTypeError,
    pa.ArrowNotImplementedError,
    OverflowError,
    UnicodeEncodeError,  # lone surrogates
)


# -- column specs --------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One output column: its name, dtype, where it comes from, and what it means.

    ``path`` is the wire path (``("sequence", "_id")``); ``derive`` computes the value
    from the whole record instead (counts, joins, aggregates).
    """

    name: str
    kind: ColumnKind
    path: tuple[str, ...] = ()
    derive: Callable[[Record], Any] | None = None
    categories: tuple[str, ...] = ()
    doc: str = ""

    @property
    def dtype(self) -> Dtype:
        if self.kind == "category":
            return pd.CategoricalDtype(list(self.categories))
        if self.kind == "datetime":
            return TIMESTAMP
        return self.kind


def _c(
    name: str,
    kind: ColumnKind,
    *path: str,
    doc: str = "",
    cats: tuple[str, ...] = (),
) -> Column:
    return Column(name, kind, tuple(path), None, cats, doc)


def _d(name: str, kind: ColumnKind, derive: Callable[[Record], Any], doc: str) -> Column:
    return Column(name, kind, (), derive, (), doc)


@dataclass(frozen=True)
class _Spec:
    columns: tuple[Column, ...]
    known: frozenset[str]
    """Top-level wire keys the fixed columns account for (the rest are extras)."""
    nested: Mapping[tuple[str, ...], frozenset[str]]
    """Flattened objects and the sub-keys they account for (others are extras)."""
    explode: Callable[[list[Record]], list[Record]] | None = None


def _spec(
    columns: Sequence[Column],
    known: Iterable[str] = (),
    nested: Mapping[tuple[str, ...], Iterable[str]] | None = None,
    explode: Callable[[list[Record]], list[Record]] | None = None,
) -> _Spec:
    keys = {c.path[0] for c in columns if c.path} | set(known)
    keys.update(parent[0] for parent in nested or {})
    flat: dict[tuple[str, ...], set[str]] = {}
    for c in columns:
        if len(c.path) > 1:
            flat.setdefault(c.path[:-1], set()).add(c.path[-1])
    for parent, subkeys in (nested or {}).items():
        flat.setdefault(parent, set()).update(subkeys)
    # A nested parent's own parents are known too (analytics -> events -> opens).
    for parent in list(flat):
        for i in range(1, len(parent)):
            flat.setdefault(parent[:i], set()).add(parent[i])
    return _Spec(
        tuple(columns),
        frozenset(keys),
        MappingProxyType({k: frozenset(v) for k, v in sorted(flat.items())}),
        explode,
    )


# -- small pure helpers used by derived columns -------------------------------------------


def _dig(record: Record, *path: str) -> Any:
    value: Any = record
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _items(record: Record, *path: str) -> list[Any]:
    value = _dig(record, *path)
    return value if isinstance(value, list) else []


def _count(*path: str) -> Callable[[Record], int | None]:
    def count(record: Record) -> int | None:
        value = _dig(record, *path)
        return len(value) if isinstance(value, list | dict) else None

    return count


def _text(value: Any) -> str | None:
    """Any JSON value as text: None stays None, containers become compact JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None  # pandas' missing markers (records from a frame's to_dict())
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return str(value)


def _join(*path: str, key: str | None = None, sep: str = ", ") -> Callable[[Record], str | None]:
    """Join a list (of strings, or of objects' ``key``) into one string; text stays text."""

    def join(record: Record) -> str | None:
        value = _dig(record, *path)
        if value is None:
            return None
        if not isinstance(value, list):
            return _text(value)
        parts = [_text(v.get(key) if key and isinstance(v, Mapping) else v) for v in value]
        return sep.join(p for p in parts if p)

    return join


def _first(*paths: tuple[str, ...]) -> Callable[[Record], Any]:
    def first(record: Record) -> Any:
        for path in paths:
            value = _dig(record, *path)
            if value is not None:
                return value
        return None

    return first


def _from_arrow(dtype: ExtensionDtype, arr: Any) -> ExtensionArray:
    # What ``to_pandas(types_mapper=...)`` calls; pandas-stubs does not declare it.
    result: ExtensionArray = cast(Any, dtype).__from_arrow__(arr)
    return result


# -- column builders (the fast path) --------------------------------------------------


def _values(
    records: list[Record],
    column: Column,
    parents: dict[tuple[str, ...], list[Any]],
    present: set[tuple[str, ...]],
) -> list[Any]:
    """The column's raw values; adds ``column.path`` to ``present`` when no record lacks it.

    Indexing (``r[key]``) is tried first: it is the fastest way to read a million
    dicts and, when it succeeds, proves the key is in every record, which lets
    :func:`_extra_keys` skip its per-record scan.
    """
    if column.derive is not None:
        derive = column.derive
        return [derive(r) for r in records]
    path = column.path
    key = path[-1]
    if len(path) == 1:
        try:
            values = list(map(itemgetter(key), records))
        except (KeyError, TypeError):
            return [r.get(key) for r in records]
        present.add(path)
        return values
    objs = _parents(records, path[:-1], parents, present)
    try:
        values = [None if o is None else o[key] for o in objs]
    except (KeyError, TypeError, IndexError):
        return [o.get(key) if isinstance(o, dict) else None for o in objs]
    present.add(path)
    return values


def _parents(
    records: list[Record],
    path: tuple[str, ...],
    cache: dict[tuple[str, ...], list[Any]],
    present: set[tuple[str, ...]] | None = None,
) -> list[Any]:
    """The list of (possibly missing) nested objects at ``path``, computed once per frame."""
    if path in cache:
        return cache[path]
    key = path[-1]
    if len(path) == 1:
        try:
            objs: list[Any] = list(map(itemgetter(key), records))  # a C loop: ~1.4x a listcomp
            if present is not None:
                present.add(path)
        except (KeyError, TypeError):
            objs = [r.get(key) for r in records]
    else:
        above = _parents(records, path[:-1], cache)
        objs = [o.get(key) if isinstance(o, dict) else None for o in above]
    cache[path] = objs
    return objs


def _arrow_text(values: list[Any]) -> Any:
    try:
        return pa.array(values, type=pa.large_string())
    except (*_ARROW_ERRORS, UnicodeEncodeError):
        # Numbers in an id field, NaN, nested objects, lone surrogates: coerce each value.
        return pa.array([_safe_text(v) for v in values], type=pa.large_string())


_SURROGATE = re.compile("[\ud800-\udfff]")


def _safe_text(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates cannot be stored as UTF-8; replace them, keep the rest.
        text = _SURROGATE.sub("\ufffd", text)
    return text


def _to_string(values: list[Any]) -> ExtensionArray:
    return _from_arrow(_STRING, _arrow_text(values))


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _truncate(number: float | None) -> int | None:
    """Toward zero, like ``int()`` and Arrow; None when it does not fit an int64."""
    if number is None or not -(2.0**63) < number < 2.0**63:
        return None
    return int(number)


def _to_int(values: list[Any]) -> ExtensionArray:
    try:
        arr = pa.array(values, from_pandas=True)
    except _ARROW_ERRORS:
        arr = None
    if arr is None or not (pa.types.is_integer(arr.type) or pa.types.is_null(arr.type)):
        numbers = (_number(v) for v in values)
        arr = pa.array([_truncate(n) for n in numbers], type=pa.int64())
    return _from_arrow(_INT, arr.cast(pa.int64()))


def _to_float(values: list[Any]) -> ExtensionArray:
    try:
        arr = pa.array(values, type=pa.float64(), from_pandas=True)
    except _ARROW_ERRORS:
        arr = pa.array([_number(v) for v in values], type=pa.float64(), from_pandas=True)
    return _from_arrow(_FLOAT, arr)


# 1 == True and 0 == False hash alike, so this also maps ints and floats 0/1.
_TRUTH: Final[Mapping[Any, bool]] = MappingProxyType(
    {True: True, False: False, "true": True, "false": False, "True": True, "False": False}
)


def _truth(value: Any) -> bool | None:
    try:
        return _TRUTH.get(value)
    except TypeError:  # unhashable (a list or an object): not a boolean
        return None


def _to_bool(values: list[Any]) -> ExtensionArray:
    truth = _TRUTH
    try:
        flags = [truth.get(v) for v in values]
    except TypeError:
        flags = [_truth(v) for v in values]
    return _from_arrow(_BOOL, pa.array(flags, type=pa.bool_()))


def _epoch_ms(values: list[Any]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Epoch ms as int64 (NaT's value where missing) from ms numbers and/or ISO strings."""
    n = len(values)
    try:
        arr = pa.array(values, from_pandas=True)
    except _ARROW_ERRORS:
        arr = None
    if arr is not None:
        kind = arr.type
        if pa.types.is_null(kind) or pa.types.is_integer(kind):
            return _ms_from_arrow(arr)
        if pa.types.is_floating(kind):
            floats = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
            ok = np.isfinite(floats) & (np.abs(floats) < 2.0**63)
            out = np.full(n, _NAT, dtype=np.int64)
            out[ok] = np.trunc(floats[ok]).astype(np.int64)  # sub-ms digits dropped
            return out
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return _parse_iso(values, np.arange(n), np.full(n, _NAT, dtype=np.int64))
    # Mixed (numbers and strings) or odd values: classify each one.
    out = np.full(n, _NAT, dtype=np.int64)
    text_at: list[int] = []
    for i, value in enumerate(values):
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int):
            if -(2**63) < value < 2**63:
                out[i] = value
        elif isinstance(value, float):
            if math.isfinite(value) and abs(value) < 2.0**63:
                out[i] = int(value)
        elif isinstance(value, str):
            text_at.append(i)
    if text_at:
        _parse_iso(values, np.asarray(text_at, dtype=np.intp), out)
    return out


_DIGITS = re.compile(r"-?\d+")


def _parse_iso(
    values: list[Any], where: np.ndarray[Any, Any], out: np.ndarray[Any, np.dtype[np.int64]]
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Fill ``out[where]`` from the strings ``values[where]`` (ISO 8601, or digits = ms)."""
    texts = [v.strip() if isinstance(v := values[i], str) else None for i in where]
    digits = [t is not None and _DIGITS.fullmatch(t) is not None for t in texts]
    iso = [None if d else t for t, d in zip(texts, digits, strict=True)]
    parsed = pd.to_datetime(
        pd.Series(iso, dtype=object), utc=True, format="ISO8601", errors="coerce"
    )
    ms = parsed.dt.as_unit("ms").to_numpy(dtype="datetime64[ms]").view(np.int64)
    for j, (text, digit) in enumerate(zip(texts, digits, strict=True)):
        if digit and text is not None:
            number = int(text)
            ms[j] = number if -(2**63) < number < 2**63 else _NAT
    out[where] = ms
    return out


def _to_time(values: list[Any]) -> ExtensionArray:
    ms = _epoch_ms(values).view("datetime64[ms]")
    # Localising naive UTC values to UTC relabels them; nothing is recomputed.
    result: ExtensionArray = pd.array(ms).tz_localize("UTC")
    return result


def _categories(fixed: Sequence[str], seen: Iterable[str]) -> list[str]:
    known = set(fixed)
    return [*fixed, *sorted({s for s in seen if s not in known})]


def _to_category(values: list[Any], fixed: tuple[str, ...]) -> Any:
    return _category_from_arrow(_arrow_text(values), fixed)


def _category_from_arrow(text: Any, fixed: tuple[str, ...]) -> Any:
    """Text (an Arrow array, chunked or not) -> a Categorical with ``fixed`` first."""
    if pa.types.is_dictionary(text.type):
        return _category_from_dictionary(text, fixed)
    seen: list[str] = pc.unique(text).drop_null().to_pylist()
    categories = _categories(fixed, seen)
    # Each value's position among the categories; a missing value stays missing (-1).
    codes = pc.index_in(text, value_set=pa.array(categories, type=text.type)).fill_null(-1)
    return pd.Categorical.from_codes(
        np.asarray(codes.to_numpy(), dtype=np.int32), dtype=pd.CategoricalDtype(categories)
    )


def _category_from_dictionary(encoded: Any, fixed: tuple[str, ...]) -> Any:
    """Dictionary-encoded text (chunked or not, one dictionary per chunk) -> a
    Categorical with ``fixed`` first: each chunk's few dictionary values are placed
    among the categories and its codes remapped, no string looked at per row."""
    chunks = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
    seen: set[str] = set()
    for chunk in chunks:  # only the values some row refers to
        seen.update(chunk.dictionary.take(pc.unique(chunk.indices).drop_null()).to_pylist())
    categories = _categories(fixed, seen)
    value_set = pa.array(categories, type=encoded.type.value_type)
    codes = pa.chunked_array(
        [pc.take(pc.index_in(c.dictionary, value_set=value_set), c.indices) for c in chunks],
        type=pa.int32(),
    ).fill_null(-1)
    return pd.Categorical.from_codes(
        np.asarray(codes.to_numpy(), dtype=np.int32), dtype=pd.CategoricalDtype(categories)
    )


def _ms_from_arrow(arr: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
    if pa.types.is_integer(arr.type) or pa.types.is_null(arr.type):
        ints = arr.cast(pa.int64()).fill_null(_NAT)
        return np.asarray(ints.to_numpy(zero_copy_only=False), dtype=np.int64)
    return _epoch_ms(arr.to_pylist())  # ISO strings: the per-field parser


def _convert_arrow(column: Column, arr: Any) -> Any:
    """Like :func:`_convert`, from an array ``_columnar.read_leaves`` typed for ``column``."""
    kind = column.kind
    if kind == "string":
        return _from_arrow(_STRING, arr.cast(pa.large_string()))
    if kind == "category":
        return _category_from_arrow(arr, column.categories)
    if kind == "datetime":
        ms = _ms_from_arrow(arr).view("datetime64[ms]")
        return pd.array(ms).tz_localize("UTC")
    if kind == "Int64":
        return _from_arrow(_INT, arr.cast(pa.int64()))
    if kind == "Float64":
        return _from_arrow(_FLOAT, arr.cast(pa.float64()))
    if kind == "boolean":
        if pa.types.is_floating(arr.type):  # 0/1 on the wire; anything else is unknown
            ones, zeros = pc.equal(arr, 1.0), pc.equal(arr, 0.0)
            arr = pc.if_else(ones, True, pc.if_else(zeros, False, pa.scalar(None, pa.bool_())))
        return _from_arrow(_BOOL, arr.cast(pa.bool_()))
    raise ValueError(f"{column.name}: {kind} columns are never read in one pass")


def _to_object(values: list[Any]) -> np.ndarray[Any, np.dtype[np.object_]]:
    return np.fromiter(values, dtype=object, count=len(values))


def _convert(column: Column, values: list[Any]) -> Any:
    kind = column.kind
    if kind == "string":
        return _to_string(values)
    if kind == "datetime":
        return _to_time(values)
    if kind == "category":
        return _to_category(values, column.categories)
    if kind == "Int64":
        return _to_int(values)
    if kind == "Float64":
        return _to_float(values)
    if kind == "boolean":
        return _to_bool(values)
    return _to_object(values)


# -- extras (unknown fields, kept) -------------------------------------------------------

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_WORD = re.compile(r"\W+")


def snake(key: str) -> str:
    """``camelCase``/``_id``/``odd key!`` -> ``camel_case``/``id``/``odd_key``."""
    name = _NOT_WORD.sub("_", _CAMEL.sub("_", key)).strip("_").lower()
    return name or "field"


def _extra_keys(
    records: list[Record],
    spec: _Spec,
    parents: dict[tuple[str, ...], list[Any]],
    present: set[tuple[str, ...]],
    keys: Mapping[tuple[str, ...], set[str]] | None = None,
) -> list[tuple[str, ...]]:
    """Wire paths of fields the schema does not know, found in any record.

    ``keys`` holds the key unions the one-pass read already gathered (``()`` for the
    records, a path for its objects); the rest are gathered here."""
    keys = keys or {}
    top = {(k,) for k in spec.known} <= present
    found: set[tuple[str, ...]] = {
        (k,)
        for k in (
            keys[()] - spec.known
            if () in keys
            else _unknown_keys(records, spec.known, all_present=top)
        )
    }
    for path, subkeys in spec.nested.items():
        if path in keys:
            found.update((*path, k) for k in keys[path] - subkeys)
            continue
        objs: list[Any] = _parents(records, path, parents)
        if not set(map(type, objs)) <= {dict, type(None)}:
            objs = [o for o in objs if isinstance(o, dict)]
        nested = {(*path, k) for k in subkeys} <= present
        found.update((*path, k) for k in _unknown_keys(objs, subkeys, all_present=nested))
    return sorted(found)


def _unknown_keys(objs: list[Any], known: frozenset[str], *, all_present: bool) -> set[str]:
    """Keys of the (mapping or None) ``objs`` that are not in ``known``.

    When every known key is in every object (``all_present``, proven by the
    per-field read), an object has an unknown key exactly when it has more keys than
    ``known``: a length check in C. Otherwise all keys are gathered in one C-level
    set union; neither walks the objects in Python.
    """
    if all_present:
        if max(map(len, filter(None, objs)), default=0) <= len(known):
            return set()
        objs = [o for o in objs if o and len(o) > len(known)]
    return _columnar.key_union(objs) - known


def _extra_names(
    paths: list[tuple[str, ...]], taken: Iterable[str]
) -> list[tuple[str, tuple[str, ...]]]:
    """Stable, unique snake_case names for extra fields, sorted by name."""
    used = set(taken)
    named: list[tuple[str, tuple[str, ...]]] = []
    for path in sorted(paths, key=lambda p: ("_".join(snake(k) for k in p), p)):
        base = "_".join(snake(k) for k in path)
        name = base if base not in used else f"{base}_extra"
        suffix = 2
        while name in used:
            name = f"{base}_extra{suffix}"
            suffix += 1
        used.add(name)
        named.append((name, path))
    return named


def _extra_column(values: list[Any]) -> Any:
    if all(v is None or isinstance(v, str) for v in values) and any(v is not None for v in values):
        return _to_string(values)
    return _to_object(values)


# -- shaping ---------------------------------------------------------------------------


@contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _one_pass(
    records: list[Record],
    spec: _Spec,
    parents: dict[tuple[str, ...], list[Any]],
    keys: dict[tuple[str, ...], set[str]] | None = None,
) -> dict[tuple[str, ...], Any] | None:
    leaves = [
        (c.path, c.kind) for c in spec.columns if c.derive is None and c.path and c.kind != "object"
    ]
    above = sorted({path[:i] for path, _ in leaves for i in range(1, len(path))})
    return _columnar.read_leaves(
        cast(list[Any], records), leaves, {p: _parents(records, p, parents) for p in above}, keys
    )


def _frame(kind: str, records: list[Record], spec: _Spec, *, one_pass: bool = True) -> pd.DataFrame:
    with _gc_paused():
        return _build(kind, records, spec, one_pass=one_pass)


def _build(kind: str, records: list[Record], spec: _Spec, *, one_pass: bool) -> pd.DataFrame:
    # The fast path reads the plain fields in one Arrow pass; the general path (each
    # column on its own) reads what it leaves, and everything when it gives up.
    parents: dict[tuple[str, ...], list[Any]] = {}
    present: set[tuple[str, ...]] = set()
    keys: dict[tuple[str, ...], set[str]] = {}
    arrays = _one_pass(records, spec, parents, keys) if one_pass else None
    if arrays is None:
        keys = {}  # an abandoned read leaves them partial
    data: dict[str, Any] = {}
    for column in spec.columns:
        arr = arrays.get(column.path) if arrays and column.derive is None else None
        if arr is not None:
            data[column.name] = _convert_arrow(column, arr)
        else:
            data[column.name] = _convert(column, _values(records, column, parents, present))
    extras = _extra_keys(records, spec, parents, present, keys)
    for name, path in _extra_names(extras, data):
        if len(path) == 1:
            key = path[0]
            values = [r.get(key) for r in records]
        else:
            key = path[-1]
            values = [
                o.get(key) if isinstance(o, dict) else None
                for o in _parents(records, path[:-1], parents)
            ]
        data[name] = _extra_column(values)
    df = pd.DataFrame(data, index=pd.RangeIndex(len(records)), copy=False)
    df.attrs["kind"] = kind
    return df


def shape(kind: str, records: Iterable[Record]) -> pd.DataFrame:
    """Shape the records of one result kind into its typed frame (see :data:`SCHEMAS`).

    ``records`` are the JSON objects of the result (page items, or the single object
    of a ``get-*`` action). Raises ``KeyError`` for an unknown kind.
    """
    return _shape(kind, records, one_pass=True)


def shape_per_field(kind: str, records: Iterable[Record]) -> pd.DataFrame:
    """:func:`shape` without the one-pass fast path: every column read on its own. The
    reference the fast paths are tested against; the same frame, only slower."""
    return _shape(kind, records, one_pass=False)


def _shape(kind: str, records: Iterable[Record], *, one_pass: bool) -> pd.DataFrame:
    spec = _spec_for(kind)
    rows = records if isinstance(records, list) else list(records)
    if spec.explode is not None:
        rows = spec.explode(rows)
    return _frame(kind, rows, spec, one_pass=one_pass)


JsonSource: TypeAlias = "bytes | bytearray | memoryview | str | os.PathLike[str] | IO[bytes]"
"""What :func:`shape_json` reads: JSON text (bytes or str), a file path, or a binary file."""


def shape_json(kind: str, data: JsonSource) -> pd.DataFrame:
    """Shape raw JSON into the kind's typed frame: what Membrane printed, unparsed.

    ``data`` is the JSON itself (``bytes``, any buffer, or ``str``), a path to a file
    holding it (``pathlib.Path``, or a ``str`` that is not JSON text and names an
    existing file), or a binary file object (read from its current position to the
    end). A path is streamed by Arrow's reader a block at a time; a file object is
    memory-mapped and parsed in place. Either way the bytes are never copied into a
    Python object on the fast path.

    The JSON is a page object (records under ``results``, ``records`` or ``items``),
    JSON Lines of page objects (one ``membrane action run`` output per line, as a
    loop over pages saves them) or of records, or a JSON array of records. The frame
    is the one :func:`shape` gives for the same records.

    Plain kinds (every column a field of the record; ``events`` and ``unsubscribes``
    among them) are parsed by Arrow's C++ JSON reader straight into columns, with
    no Python object per value; anything Arrow would read differently from
    ``json.loads``, and the other kinds, go through ``json.loads`` + :func:`shape`.
    Raises :class:`~mixmax_nb.errors.InputError` when ``data`` is not such JSON.
    """
    spec = _spec_for(kind)
    with _gc_paused():
        raw: Any = None
        path: str | None = None
        text: str | None = None
        try:
            raw, path = _json_buffer(data)
        except UnicodeEncodeError:  # lone surrogates in a str: json.loads decides
            text = cast(str, data)
        if raw is not None and _is_plain(spec):
            frame = _frame_from_json(kind, raw, spec, file=path)
            if frame is not None:
                return frame
        rows = _json_records(text if text is not None else _as_bytes(raw))
        if spec.explode is not None:
            rows = spec.explode(rows)
        return _build(kind, rows, spec, one_pass=True)


def _json_buffer(data: JsonSource) -> tuple[Any, str | None]:
    """``data``'s JSON bytes as a buffer (as given, encoded, or a file mapped in memory),
    and the file's path when Arrow can stream the file itself."""
    if isinstance(data, bytes | bytearray | memoryview):
        return data, None
    if isinstance(data, str):
        if data.lstrip()[:1] not in ("{", "[") and "\n" not in data and os.path.isfile(data):
            return _map_path(data), data
        return data.encode("utf-8"), None
    if isinstance(data, os.PathLike):
        path = os.fspath(data)
        return _map_path(path), path
    return _read_stream(data), None


def _map_path(path: str) -> Any:
    with open(path, "rb") as fh:
        return _map_file(fh)


def _map_file(fh: Any) -> Any:
    """The rest of an open regular file (from its position), memory-mapped read-only.

    The map stays valid after the file is closed and is freed with the last view of it.
    """
    start = fh.tell()
    size = os.fstat(fh.fileno()).st_size
    fh.seek(0, os.SEEK_END)  # consumed, as read() would
    if size <= start:
        return b""
    mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    return memoryview(mapped)[start:]


def _read_stream(stream: IO[bytes]) -> Any:
    try:
        fileno = stream.fileno()
        regular = stat.S_ISREG(os.fstat(fileno).st_mode) and stream.seekable()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        regular = False
    if regular:
        return _map_file(stream)
    content: Any = stream.read()
    if isinstance(content, str):  # a text-mode file
        return content.encode("utf-8")
    return content


def _as_bytes(raw: Any) -> bytes:
    """A buffer as ``bytes`` for ``json.loads`` (a copy, on the fallback path only)."""
    return raw if isinstance(raw, bytes) else bytes(raw)


def _is_plain(spec: _Spec) -> bool:
    return spec.explode is None and all(
        c.derive is None and c.path and c.kind != "object" for c in spec.columns
    )


def _arrow_child(array: Any, path: tuple[str, ...]) -> Any:
    """The leaf at ``path`` of a struct array (a null parent gives null), or None."""
    for key in path:
        if not pa.types.is_struct(array.type) or array.type.get_field_index(key) < 0:
            return None
        # flatten() folds the parent's nulls into the child; .field() would not.
        array = array.flatten()[array.type.get_field_index(key)]
    return array


def _arrow_extras(records: Any, spec: _Spec) -> list[tuple[tuple[str, ...], Any]] | None:
    """Unknown fields Arrow found, as (path, array); None when one is not plain text.

    :func:`_extra_column` keeps a non-text extra as raw Python values; Arrow has
    already turned those into its own types, so the caller falls back instead.
    """
    found: list[tuple[tuple[str, ...], Any]] = []
    parents: dict[tuple[str, ...], frozenset[str]] = {(): spec.known, **spec.nested}
    for parent, known in parents.items():
        array = _arrow_child(records, parent) if parent else records
        if array is None or not pa.types.is_struct(array.type):
            continue
        for field in array.type:
            if field.name not in known:
                found.append(((*parent, field.name), _arrow_child(array, (field.name,))))
    for _, array in found:
        kind = array.type
        if not (pa.types.is_null(kind) or pa.types.is_string(kind)):
            return None
    return found


def _frame_from_json(
    kind: str, raw: Any, spec: _Spec, *, file: str | None = None
) -> pd.DataFrame | None:
    records = _columnar.parse_json(raw, _leaves(spec), path=file)
    if records is None:
        return None
    return _frame_from_arrow(kind, records, spec)


def _leaves(spec: _Spec) -> list[tuple[tuple[str, ...], ColumnKind]]:
    return [(c.path, c.kind) for c in spec.columns]


def _frame_from_arrow(
    kind: str,
    records: Any,
    spec: _Spec,
    given: Mapping[tuple[str, ...], Any] | None = None,
    extras: list[tuple[tuple[str, ...], Any]] | None = None,
) -> pd.DataFrame | None:
    """The frame of a struct array Arrow's reader gave; None to fall back. ``given``
    holds arrays that stand in for the records' own leaves at those paths; ``extras``
    the records' :func:`_arrow_extras` when the caller has them already."""
    if extras is None:
        extras = _arrow_extras(records, spec)
    if extras is None:
        return None
    n = len(records)
    data: dict[str, Any] = {}
    for column in spec.columns:
        arr = (given or {}).get(column.path)
        if arr is None:
            arr = _arrow_child(records, column.path)
        if arr is None:
            arr = pa.nulls(n)
        wanted = _columnar.leaf_type(column.kind, arr.type)
        if wanted is None:
            return None  # e.g. booleans sent as "true": the per-value path decides
        data[column.name] = _convert_arrow(column, arr.cast(wanted))
    by_path = dict(extras)
    for name, path in _extra_names(list(by_path), data):
        arr = by_path[path]
        if pa.types.is_null(arr.type) or arr.null_count == n:
            data[name] = np.full(n, None, dtype=object)
        else:
            data[name] = _from_arrow(_STRING, arr.cast(pa.large_string()))
    df = pd.DataFrame(data, index=pd.RangeIndex(n), copy=False)
    df.attrs["kind"] = kind
    return df


_JSON_HINT: Final = (
    'Pass what Membrane printed: one page object ({"results": [...]}), JSON Lines with '
    "one page or one record per line, or a JSON array of records."
)


def shape_runs(
    kind: str,
    runs: Sequence[bytes],
    keep: Callable[[Any], Any] | None = None,
    given: Callable[[Any], Mapping[str, Any]] | None = None,
) -> tuple[pd.DataFrame, Any] | None:
    """The frame of many ``membrane action run`` answers as printed (see
    :func:`_columnar.parse_runs`), read in one Arrow pass, and which run each row
    came from (an int64 array of positions in ``runs``); None when Arrow would read
    them differently from ``json.loads``, and then ``json.loads`` + :func:`shape`
    decide.

    ``keep(records)`` gives a boolean mask of the records to keep (all by default);
    ``given(owner)`` gives, for the kept rows' runs, arrays by wire name that replace
    those fields (a field the answers leave out, such as the message they are about).
    """
    spec = _spec_for(kind)
    if not _is_plain(spec):
        return None
    with _gc_paused():
        parsed = _columnar.parse_runs(runs, _leaves(spec))
        if parsed is None:
            return None
        records, counts = parsed
        owner = np.repeat(np.arange(len(runs), dtype=np.int64), counts)
        dropped = 0
        if keep is not None:
            mask = pc.fill_null(keep(records), False)
            dropped = len(records) - pc.sum(mask).as_py() if len(records) else 0
            records = records.filter(mask)
            owner = owner[np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)]
        extras = _arrow_extras(records, spec)
        if extras is None:
            return None
        if dropped and any(a.null_count == len(a) for _, a in extras):
            # An unknown field null in every record left: Arrow cannot say whether a
            # kept record had the key (``shape`` gives a column of None) or only dropped
            # ones did (no column). The parsed path decides.
            return None
        fields = given(owner) if given is not None else {}
        given_at: dict[tuple[str, ...], Any] = {(k,): v for k, v in fields.items()}
        frame = _frame_from_arrow(kind, records, spec, given_at, extras)
    return None if frame is None else (frame, owner)


def _json_records(data: bytes | str) -> list[Record]:
    """The records of raw JSON text, by ``json.loads`` (the reference reading)."""
    try:
        values: list[Any] = [json.loads(data)]
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            raise InputError(
                f"Not JSON: {exc.msg} at line {exc.lineno}.", hint=_JSON_HINT
            ) from None
        lines: list[Any] = list(data.splitlines())
        values = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                values.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise InputError(
                    f"Line {number} is not JSON: {err.msg}.", hint=_JSON_HINT
                ) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"Not UTF-8 text: {exc.reason}.", hint=_JSON_HINT) from None
    if len(values) == 1 and isinstance(values[0], list):
        values = [{"results": values[0]}]
    records: list[Record] = []
    for number, value in enumerate(values, start=1):
        if not isinstance(value, dict):
            raise InputError(
                f"Item {number} is a JSON {type(value).__name__}, not an object.", hint=_JSON_HINT
            )
        container = next((c for c in _columnar.CONTAINERS if isinstance(value.get(c), list)), None)
        items = value[container] if container else [value]
        for item in items:
            if not isinstance(item, dict):
                raise InputError(
                    f"Item {number} holds a JSON {type(item).__name__} where a record should be.",
                    hint=_JSON_HINT,
                )
        records.extend(items)
    return records


def _spec_for(kind: str) -> _Spec:
    try:
        return _SPECS[kind]
    except KeyError:
        raise KeyError(f"Unknown frame kind {kind!r}; known: {', '.join(KINDS)}") from None


def empty(kind: str) -> pd.DataFrame:
    """The kind's frame with no rows: every column, with its dtype."""
    return shape(kind, [])


def concat(kind: str, parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Stack frames of one kind, keeping the schema's dtypes.

    ``pd.concat`` turns a categorical into ``object`` when the parts saw different
    undocumented values (hence different categories). The parts' categories are
    unified first (the fixed ones, then the extras, as :func:`shape` orders them):
    each part is recoded through a lookup as long as its categories, so stacking a
    small new part onto a large frame does no per-row string work.
    """
    parts = [p for p in parts if len(p.columns)]
    if not parts:
        return empty(kind)
    if len(parts) > 1:
        parts = _unified_categories(kind, parts)
    out = parts[0].copy() if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    for column in _SPECS[kind].columns:
        if column.kind == "category" and not isinstance(
            out[column.name].dtype, pd.CategoricalDtype
        ):
            seen = out[column.name].dropna().astype(str).unique()
            dtype = pd.CategoricalDtype(_categories(column.categories, seen))
            out[column.name] = out[column.name].astype(dtype)
    out.attrs["kind"] = kind
    return out


def _unified_categories(kind: str, parts: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """``parts`` with each categorical column on one shared set of categories."""
    changes: list[dict[str, pd.CategoricalDtype]] = [{} for _ in parts]
    for column in _SPECS[kind].columns:
        if column.kind != "category":
            continue
        dtypes = [p[column.name].dtype if column.name in p else None for p in parts]
        if not all(isinstance(d, pd.CategoricalDtype) for d in dtypes):
            continue  # left to the re-encoding after the stack
        if all(d == dtypes[0] for d in dtypes):
            continue
        seen = {str(c) for d in dtypes for c in d.categories}  # type: ignore[union-attr]
        unified = pd.CategoricalDtype(_categories(column.categories, seen))
        for index, dtype in enumerate(dtypes):
            if dtype != unified:
                changes[index][column.name] = unified
    out = []
    for part, change in zip(parts, changes, strict=True):
        if change:
            # set_categories recodes through the categories (not the rows' strings).
            part = part.assign(
                **{name: part[name].cat.set_categories(d.categories) for name, d in change.items()}
            )
        out.append(part)
    return out


def describe(kind: str) -> pd.DataFrame:
    """The kind's schema as a small frame: column, dtype, meaning (for docs)."""
    spec = _SPECS[kind]
    return pd.DataFrame(
        {
            "column": [c.name for c in spec.columns],
            "dtype": [str(c.dtype) for c in spec.columns],
            "source": [".".join(c.path) if c.path else "(derived)" for c in spec.columns],
            "meaning": [c.doc for c in spec.columns],
        }
    )


# -- the naive reference (tests and the benchmark baseline) ----------------------------


def naive_events(records: Iterable[Record]) -> pd.DataFrame:
    """The ``events`` frame the obvious way: ``pd.json_normalize`` + renames + astype.

    Slow and memory-hungry on purpose; it exists so tests can check that
    :func:`shape` gives an equal frame, and as the benchmark's baseline. It follows
    the same rules (categories, extras) written independently.
    """
    recs = list(records)
    n = len(recs)
    flat = pd.json_normalize([dict(r) for r in recs], max_level=1) if n else pd.DataFrame()
    out = pd.DataFrame(index=pd.RangeIndex(n))
    for column in _SPECS["events"].columns:
        source = ".".join(column.path)
        series = flat[source] if source in flat else pd.Series([None] * n, dtype=object)
        series = series.reset_index(drop=True)
        if column.kind == "datetime":
            out[column.name] = _naive_time(series)
        elif column.kind == "category":
            seen = [v for v in series if isinstance(v, str)]
            cats = _categories(column.categories, seen)
            out[column.name] = pd.Categorical(series.astype(object), categories=cats)
        elif column.kind == "boolean":
            out[column.name] = series.map(_naive_bool).astype("boolean")
        elif column.kind == "Int64":
            numbers = pd.to_numeric(series, errors="coerce")
            out[column.name] = np.trunc(numbers).astype("Int64")
        else:
            out[column.name] = series.astype(object).where(series.notna(), None).astype("string")
    # Extras: unknown top-level keys raw (json_normalize would split objects apart),
    # unknown sequence keys from the flattened frame.
    known = _SPECS["events"].known
    top_extra = sorted(set().union(*(r.keys() for r in recs)) - known) if n else []
    seq_known = {f"sequence.{k}" for k in _SPECS["events"].nested[("sequence",)]}
    seq_extra = [c for c in flat.columns if c.startswith("sequence.") and c not in seq_known]
    extras: dict[str, pd.Series] = {}
    for key in top_extra:
        extras[snake(key)] = pd.Series([r.get(key) for r in recs], dtype=object)
    for col in seq_extra:
        extras["sequence_" + snake(col.split(".", 1)[1])] = (
            flat[col].astype(object).where(flat[col].notna(), None)
        )
    for name in sorted(extras):
        series = extras[name]
        texts = series.dropna()
        if len(texts) and all(isinstance(v, str) for v in texts):
            out[name if name not in out else name + "_extra"] = series.astype("string")
        else:
            out[name if name not in out else name + "_extra"] = series
    out.attrs["kind"] = "events"
    return out


def _naive_bool(value: Any) -> bool | None:
    if value is True or value is False:
        return bool(value)
    if isinstance(value, int | float) and value in (0, 1):
        return value == 1
    return None


def _naive_time(series: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        ms = np.trunc(series.to_numpy(dtype="float64", na_value=np.nan))
        stamps = pd.to_datetime(ms, unit="ms", utc=True)
        return pd.Series(stamps, index=series.index).astype(TIMESTAMP)

    def one(value: Any) -> pd.Timestamp | None:
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, int | float):
            return None if value != value else pd.Timestamp(int(value), unit="ms", tz="UTC")
        if isinstance(value, str):
            text = value.strip()
            if _DIGITS.fullmatch(text):
                return pd.Timestamp(int(text), unit="ms", tz="UTC")
            stamp = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
            return stamp if isinstance(stamp, pd.Timestamp) else None
        return None

    return pd.Series([one(v) for v in series], dtype=TIMESTAMP)


# -- explode helpers (kinds whose rows are items inside the records) ---------------------

_SEQ_ID: Final = "\x00sequence_id"
_SEQ_NAME: Final = "\x00sequence_name"
_POSITION: Final = "\x00position"
_POLL_ID: Final = "\x00poll_id"
_OPTION_INDEX: Final = "\x00option_index"
_OPTION_TEXT: Final = "\x00option_text"


def _outcome_rows(records: list[Record]) -> list[Record]:
    """``{"recipients": [...]}`` outputs -> one row per recipient (bare strings are emails)."""
    rows: list[Record] = []
    for record in records:
        items = record.get("recipients")
        if "email" not in record and isinstance(items, list):
            rows.extend(i if isinstance(i, Mapping) else {"email": i} for i in items)
        else:
            rows.append(record)
    return rows


def _stage_rows(records: list[Record]) -> list[Record]:
    rows: list[Record] = []
    for seq in records:
        for position, stage in enumerate(_items(seq, "stages")):
            row = dict(stage) if isinstance(stage, Mapping) else {"_id": stage}
            row.update({_SEQ_ID: seq.get("_id"), _SEQ_NAME: seq.get("name"), _POSITION: position})
            rows.append(row)
    return rows


_REC_ID: Final = "\x00recipient_id"
_REC_SEQ: Final = "\x00recipient_sequence_id"
_REC_EMAIL: Final = "\x00recipient_email"
_REC_USER: Final = "\x00recipient_user_id"
_REC_STATE: Final = "\x00recipient_state"
_REC_REASON: Final = "\x00recipient_completed_reason"


def _recipient_stage_rows(records: list[Record]) -> list[Record]:
    """One row per stage on a sequence recipient's schedule (its per-stage engagement)."""
    rows: list[Record] = []
    for recipient in records:
        to = recipient.get("to")
        email = (to.get("email") if isinstance(to, Mapping) else None) or recipient.get("email")
        where = {
            _REC_ID: recipient.get("_id"),
            _REC_SEQ: recipient.get("sequenceId"),
            _REC_EMAIL: email,
            _REC_USER: recipient.get("userId"),
            _REC_STATE: recipient.get("state"),
            _REC_REASON: recipient.get("completedReason"),
        }
        for stage in _items(recipient, "stages"):
            if isinstance(stage, Mapping):
                rows.append({**stage, **where})
    return rows


def _flag(key: str) -> Callable[[Record], bool | None]:
    """A stage flag the live schema sends as a number (count, 0/1 or a timestamp) or
    null, and older data as a boolean: true when it is set and not zero."""

    def flag(record: Record) -> bool | None:
        value = record.get(key)
        if value is None:
            return None
        truth = _truth(value)
        if truth is not None:
            return truth
        number = _number(value)
        return None if number is None else number > 0

    return flag


_TEAM_ID: Final = "\x00team_id"
_TEAM_NAME: Final = "\x00team_name"


def _member_rows(records: list[Record]) -> list[Record]:
    """One row per team member (pending invites too): the user directory Mixmax offers."""
    rows: list[Record] = []
    for team in records:
        for member in _items(team, "members"):
            if not isinstance(member, Mapping):
                continue
            row = dict(member)
            user = member.get("userId")
            # Mixmax embeds the user as an object; a bare id string occurs in older data.
            row["userId"] = user if isinstance(user, Mapping) else {"_id": user}
            row.update({_TEAM_ID: team.get("_id"), _TEAM_NAME: team.get("name")})
            rows.append(row)
    return rows


def _poll_rows(records: list[Record]) -> list[Record]:
    rows: list[Record] = []
    for poll in records:
        for index, option in enumerate(_items(poll, "options")):
            text = option.get("text") if isinstance(option, Mapping) else option
            where = {_POLL_ID: poll.get("_id"), _OPTION_INDEX: index, _OPTION_TEXT: text}
            people = _items(option, "respondents") if isinstance(option, Mapping) else []
            if not people:
                rows.append(where)  # an option nobody chose still gets its row
            rows.extend({**p, **where} for p in people if isinstance(p, Mapping))
    return rows


# -- derived values --------------------------------------------------------------------


def _message_state(record: Record) -> str:
    """sent > error > scheduled > draft (mixmax-api.md section 8, Messages)."""
    if record.get("sent") is not None:
        return "sent"
    if record.get("sendingError"):
        return "error"
    if record.get("scheduled") not in (None, False):
        return "scheduled"
    return "draft"


def _stage_sum(key: str) -> Callable[[Record], int | None]:
    def total(record: Record) -> int | None:
        stages = [s for s in _items(record, "stages") if isinstance(s, Mapping)]
        if not stages:
            return None
        return sum(int(_number(s.get(key)) or 0) for s in stages)

    return total


def _stage_any(key: str) -> Callable[[Record], bool | None]:
    def any_(record: Record) -> bool | None:
        stages = [s for s in _items(record, "stages") if isinstance(s, Mapping)]
        if not stages:
            return None
        return any(bool(_truth(s.get(key)) or (_number(s.get(key)) or 0) > 0) for s in stages)

    return any_


def _stages_sent(record: Record) -> int | None:
    stages = [s for s in _items(record, "stages") if isinstance(s, Mapping)]
    return sum(s.get("sentAt") is not None for s in stages) if stages else None


def _stage_time(pick: Literal["last_sent", "next_scheduled"]) -> Callable[[Record], Any]:
    def when(record: Record) -> Any:
        stages = [s for s in _items(record, "stages") if isinstance(s, Mapping)]
        if pick == "last_sent":
            sent = [s.get("sentAt") for s in stages if s.get("sentAt") is not None]
            times = _epoch_ms(sent)
            return int(times.max()) if len(times) and (times != _NAT).any() else None
        pending = [
            s.get("scheduledAt")
            for s in stages
            if s.get("sentAt") is None and s.get("scheduledAt") is not None
        ]
        times = _epoch_ms(pending)
        times = times[times != _NAT]
        return int(times.min()) if len(times) else None

    return when


def _shared_count(record: Record) -> int | None:
    shared = record.get("shared")
    if isinstance(shared, list):
        return len(shared)
    if isinstance(shared, Mapping):
        return len(_items(shared, "users")) + len(_items(shared, "teams"))
    return None


def _pending_count(record: Record) -> int | None:
    members = record.get("members")
    if not isinstance(members, list):
        return None
    return sum(1 for m in members if not (isinstance(m, Mapping) and m.get("accepted") is True))


def _respondent_count(record: Record) -> int | None:
    options = record.get("options")
    if not isinstance(options, list):
        return None
    return sum(len(_items(o, "respondents")) for o in options if isinstance(o, Mapping))


def _errors(record: Record) -> str | None:
    errors = record.get("errors")
    if errors is None:
        return _text(record.get("error"))
    if isinstance(errors, list):
        parts = [
            _text(e.get("message") if isinstance(e, Mapping) and "message" in e else e)
            for e in errors
        ]
        return "; ".join(p for p in parts if p) or None
    return _text(errors)


def _schema_keys(which: str, required: bool) -> Callable[[Record], str | None]:
    def keys(record: Record) -> str | None:
        schema = record.get(which)
        if not isinstance(schema, Mapping):
            return None
        if required:
            names = schema.get("required")
            return ", ".join(str(n) for n in names) if isinstance(names, list) else ""
        props = schema.get("properties")
        return ", ".join(str(k) for k in props) if isinstance(props, Mapping) else ""

    return keys


# -- the schemas -----------------------------------------------------------------------

_ID = "The record's own id (`_id`)."

_EVENTS = _spec(
    [
        _c("id", "string", "_id", doc="Event id (24-hex ObjectId)."),
        _c("type", "category", "type", cats=EVENT_TYPES, doc="What happened."),
        _c("timestamp", "datetime", "timestamp", doc="When it happened (UTC)."),
        _c("message_id", "string", "messageId", doc="The message the event is about."),
        _c("user_id", "string", "userId", doc="The sender (Mixmax user id)."),
        _c("recipient_email", "string", "recipientEmail"),
        _c("recipient_name", "string", "recipientName"),
        _c("subject", "string", "subject", doc="Subject of the message."),
        _c(
            "sequence_id",
            "string",
            "sequence",
            "_id",
            doc="Sequence that sent the message, if any.",
        ),
        _c("sequence_name", "string", "sequence", "name"),
        _c(
            "stage_id", "string", "sequence", "stageId", doc="Sequence stage that sent the message."
        ),
        _c("stage_index", "Int64", "sequence", "stageIndex", doc="0-based position of that stage."),
        _c(
            "country", "category", "country", doc="Where the open/click came from (Mixmax's guess)."
        ),
        _c("region", "category", "region"),
        _c("city", "category", "city"),
        _c("os", "category", "os"),
        _c("program", "category", "program", doc="Mail client or browser."),
        _c("is_mobile", "boolean", "isMobile", doc="Opened/clicked on a mobile device (wire 0/1)."),
        _c("link_url", "string", "linkUrl", doc="Clicked link (clicked events)."),
        _c("link_text", "string", "linkText"),
        _c("file_name", "string", "fileName", doc="Downloaded file (downloaded events)."),
    ]
)

_SEQUENCES = _spec(
    [
        _c("id", "string", "_id", doc=_ID),
        _c("name", "string", "name"),
        _c("user_id", "string", "userId", doc="Owner."),
        _c("created_at", "datetime", "createdAt"),
        _c("updated_at", "datetime", "updatedAt", doc="When a recipient was last added."),
        _c("paused", "boolean", "paused"),
        _c("archived", "boolean", "archived"),
        _d("stage_count", "Int64", _count("stages"), "Number of stages."),
        _d("stage_ids", "string", _join("stages", key="_id"), "Stage ids in order, comma-joined."),
        _d(
            "variables",
            "string",
            _join("variables"),
            "Variable names the sequence uses, comma-joined.",
        ),
        _c("timezone", "string", "timezone", doc="IANA time zone of the send window."),
        _c("send_stages_as_replies", "boolean", "sendStagesAsReplies"),
        _c("link_tracking_enabled", "boolean", "linkTrackingEnabled"),
        _c("file_tracking_enabled", "boolean", "fileTrackingEnabled"),
        _c("notifications_enabled", "boolean", "notificationsEnabled"),
        _d("cc", "string", _join("cc", key="email"), "Cc addresses, comma-joined."),
        _d("bcc", "string", _join("bcc", key="email"), "Bcc addresses, comma-joined."),
        _d("team_ids", "string", _join("teamIds"), "Teams it is shared with, comma-joined."),
        _d("shared_count", "Int64", _shared_count, "Users and teams it is shared with."),
    ],
    known=("stages", "variables", "cc", "bcc", "teamIds", "shared"),
)

_STAGES = _spec(
    [
        _c("sequence_id", "string", _SEQ_ID),
        _c("sequence_name", "string", _SEQ_NAME),
        _c("position", "Int64", _POSITION, doc="0-based position in the sequence's stage list."),
        _c("stage_id", "string", "_id"),
        _c("ordinal", "Int64", "ordinal", doc="Stage ordinal as Mixmax reports it."),
        _c("type", "category", "type", cats=STAGE_KINDS, doc="Automated email or a manual task."),
        _c("subject", "string", "subject"),
        _c("body", "string", "body", doc="HTML body."),
        _c("delay_days", "Float64", "delayDays", doc="Days after the previous stage."),
        _c("condition", "string", "condition", doc="Send condition (JSON if structured)."),
        _c(
            "schedule_timezone",
            "string",
            "scheduleBetween",
            "timezone",
            doc="Send window time zone.",
        ),
        _c(
            "schedule_start",
            "string",
            "scheduleBetween",
            "start",
            doc="Send window start, as sent.",
        ),
        _c("schedule_end", "string", "scheduleBetween", "end", doc="Send window end, as sent."),
    ],
    known=("condition",),
    nested={("scheduleBetween",): ("timezone", "start", "end")},
    explode=_stage_rows,
)

_RECIPIENTS = _spec(
    [
        _c("id", "string", "_id", doc=_ID),
        _c("sequence_id", "string", "sequenceId"),
        _d(
            "email",
            "string",
            _first(("to", "email"), ("email",)),
            "Recipient address (`to.email`, else `email`).",
        ),
        _c("user_id", "string", "userId", doc="Sender who added the recipient."),
        _c("state", "category", "state", cats=RECIPIENT_STATES),
        _c(
            "completed_reason",
            "category",
            "completedReason",
            cats=COMPLETED_REASONS,
            doc="Why a completed recipient exited.",
        ),
        _c("created_at", "datetime", "createdAt", doc="When the recipient was added."),
        _c("updated_at", "datetime", "updatedAt"),
        _c("last_stage_sent_ordinal", "Int64", "lastStageSentOrdinal"),
        _c(
            "opens",
            "Int64",
            "analytics",
            "events",
            "opens",
            doc="Opens across the sequence's messages.",
        ),
        _c("clicks", "Int64", "analytics", "events", "clicks"),
        _c("downloads", "Int64", "analytics", "events", "downloads"),
        _d("stage_count", "Int64", _count("stages"), "Stages on this recipient's schedule."),
        _d("stages_sent", "Int64", _stages_sent, "Stages already sent (have `sentAt`)."),
        _d("stage_opens", "Int64", _stage_sum("opens"), "Sum of the stages' `opens`."),
        _d("stage_clicks", "Int64", _stage_sum("clicks"), "Sum of the stages' `clicks`."),
        _d("replied", "boolean", _stage_any("replied"), "Any stage got a reply."),
        _d("bounced", "boolean", _stage_any("bounced"), "Any stage bounced."),
        _d("last_sent_at", "datetime", _stage_time("last_sent"), "Latest stage `sentAt`."),
        _d(
            "next_scheduled_at",
            "datetime",
            _stage_time("next_scheduled"),
            "Earliest unsent stage `scheduledAt`.",
        ),
        _c("variables", "object", "variables", doc="Variable values (dict), as sent."),
    ],
    known=("email", "to", "stages", "analytics"),
    nested={("to",): ("email",)},
)

_MESSAGES = _spec(
    [
        _c("id", "string", "_id", doc=_ID),
        _c("user_id", "string", "userId"),
        _d(
            "state",
            "category",
            _message_state,
            "sent, error, scheduled or draft, from which fields are set.",
        ),
        _c("created_at", "datetime", "created"),
        _c("updated_at", "datetime", "updatedAt"),
        _c("scheduled_at", "datetime", "scheduled"),
        _c("sent_at", "datetime", "sent"),
        _c("from_email", "string", "from", "email"),
        _c("from_name", "string", "from", "name"),
        _d("to", "string", _join("to", key="email"), "Recipient addresses, comma-joined."),
        _d("to_count", "Int64", _count("to"), "Number of `to` recipients."),
        _d("cc", "string", _join("cc", key="email"), "Cc addresses, comma-joined."),
        _d("bcc", "string", _join("bcc", key="email"), "Bcc addresses, comma-joined."),
        _c("subject", "string", "subject"),
        _c("body", "string", "body", doc="HTML body."),
        _c("sequence_id", "string", "sequence", "id", doc="Sequence that sent it, if any."),
        _c("stage_id", "string", "sequence", "stageId"),
        _c(
            "recipient_id",
            "string",
            "sequence",
            "recipientId",
            doc="Sequence recipient it was sent to.",
        ),
        _c("tracking_enabled", "boolean", "trackingEnabled"),
        _c("link_tracking_enabled", "boolean", "linkTrackingEnabled"),
        _c("file_tracking_enabled", "boolean", "fileTrackingEnabled"),
        _c("notifications_enabled", "boolean", "notificationsEnabled"),
        _c("sending_error", "string", "sendingError", doc="Why sending failed."),
        _d("team_ids", "string", _join("teamIds"), "Comma-joined."),
        _d("snippet_ids", "string", _join("snippetIds"), "Templates used, comma-joined."),
        _d("attachment_count", "Int64", _count("attachments"), "Number of attachments."),
    ],
    known=(
        "to",
        "cc",
        "bcc",
        "sendingError",
        "teamIds",
        "snippetIds",
        "attachments",
        "sent",
        "scheduled",
    ),
)
# The state categories are fixed like the others.
_MESSAGES = _Spec(
    tuple(
        Column(c.name, "category", c.path, c.derive, MESSAGE_STATES, c.doc)
        if c.name == "state"
        else c
        for c in _MESSAGES.columns
    ),
    _MESSAGES.known,
    _MESSAGES.nested,
)

_SNIPPETS = _spec(
    [
        _c("id", "string", "_id", doc=_ID),
        _c("name", "string", "name"),
        _c("title", "string", "title", doc="The email subject the template fills."),
        _c("source", "string", "source", doc="HTML body."),
        _c("user_id", "string", "userId", doc="Owner."),
        _c("created_at", "datetime", "createdAt"),
        _c("saved_at", "datetime", "savedAt"),
        _c("saved_by", "string", "savedBy", doc="Who saved it last."),
        _c("archived_at", "datetime", "archivedAt"),
        _d("shared_count", "Int64", _shared_count, "Users/teams it is shared with."),
    ],
    known=("savedBy", "shared"),
)

_POLLS = _spec(
    [
        _c("id", "string", "_id", doc=_ID),
        _c("user_id", "string", "userId"),
        _c("created_at", "datetime", "created"),
        _c("live_poll", "boolean", "livePoll"),
        _d("option_count", "Int64", _count("options"), "Number of options."),
        _d("respondent_count", "Int64", _respondent_count, "Answers across all options."),
    ],
    known=("options",),
)

_POLL_RESULTS = _spec(
    [
        _c("poll_id", "string", _POLL_ID),
        _c("option_index", "Int64", _OPTION_INDEX, doc="0-based option position."),
        _c("option_text", "string", _OPTION_TEXT, doc="The option's text."),
        _c("respondent_email", "string", "email", doc="Missing when nobody chose the option."),
        _c("respondent_name", "string", "name"),
        _c("responded_at", "datetime", "respondedAt"),
    ],
    known=(_OPTION_TEXT,),
    explode=_poll_rows,
)

_UNSUBSCRIBES = _spec(
    [
        _c("id", "string", "_id", doc=_ID),
        _c("email", "string", "email"),
        _c("name", "string", "name"),
        _c("user_id", "string", "userId"),
        _c("team_id", "string", "teamId", doc="Set when a team admin unsubscribed the address."),
        _c("message_id", "string", "messageId", doc="Message whose link was used, if any."),
        _c("created_at", "datetime", "createdAt"),
    ]
)

_TEAMS = _spec(
    [
        _c("id", "string", "_id", doc=_ID),
        _c("name", "string", "name"),
        _c("created_at", "datetime", "createdAt"),
        _c("modified_at", "datetime", "modifiedAt"),
        _d("member_count", "Int64", _count("members"), "Members listed, pending invites included."),
        _d("pending_count", "Int64", _pending_count, "Members who have not accepted yet."),
    ],
    known=("members",),
)

_RULES = _spec(
    [
        _c("id", "string", "_id", doc=_ID),
        _c("name", "string", "name"),
        _c("user_id", "string", "userId"),
        _c("created_at", "datetime", "createdAt"),
        _c("modified_at", "datetime", "modifiedAt"),
        _c("is_paused", "boolean", "isPaused"),
        _c("trigger_type", "string", "trigger", "type"),
        _c("trigger_event", "string", "trigger", "eventName", doc="e.g. message:sent, opened."),
        _c("filter", "string", "filter", doc="Sift query (JSON text)."),
        _d("action_count", "Int64", _count("actions"), "Actions (only with expand=actions)."),
    ],
    known=("filter", "actions"),
)

_USER = _spec(
    [
        _c("id", "string", "_id", doc=_ID),
        _c("email", "string", "email"),
        _c("name", "string", "name"),
    ]
)

_ENROLL = _spec(
    [
        _c("email", "string", "email"),
        _c("status", "category", "status", cats=ENROLL_STATUSES),
        _d("reason", "string", _errors, "The errors of an `error` outcome, joined with '; '."),
    ],
    known=("errors", "error"),
    explode=_outcome_rows,
)

_CANCEL = _spec(
    [_c("email", "string", "email", doc="A recipient who exited.")], explode=_outcome_rows
)

_ACTIONS = _spec(
    [
        _c("key", "string", "key", doc="What `run_action` takes."),
        _c("name", "string", "name"),
        _c("description", "string", "description"),
        _c("type", "string", "type"),
        _c("id", "string", "id", doc="Membrane's id of the action."),
        _d(
            "parameters",
            "string",
            _schema_keys("inputSchema", False),
            "Input properties, comma-joined.",
        ),
        _d(
            "required",
            "string",
            _schema_keys("inputSchema", True),
            "Required inputs, comma-joined.",
        ),
        _c("input_schema", "object", "inputSchema", doc="JSON Schema (dict)."),
        _c("output_schema", "object", "outputSchema", doc="JSON Schema (dict)."),
    ]
)

_TEAM_MEMBERS = _spec(
    [
        _c("team_id", "string", _TEAM_ID),
        _c("team_name", "string", _TEAM_NAME),
        _c("user_id", "string", "userId", "_id", doc="The member's user id (senders' user_id)."),
        _d(
            "email",
            "string",
            _first(("userId", "email"), ("email",)),
            "Member email (a pending invite carries only `email`).",
        ),
        _c("name", "string", "userId", "name"),
        _c("role", "category", "role", cats=ROLES),
        _c("accepted", "boolean", "accepted", doc="False or missing for a pending invite."),
        _c("accepted_at", "datetime", "acceptedAt"),
        _c("invited_at", "datetime", "invitedAt"),
        _c("member_id", "string", "memberId"),
    ],
    known=("email",),
    nested={("userId",): ("_id", "email", "name")},
    explode=_member_rows,
)

_RECIPIENT_STAGES = _spec(
    [
        _c("recipient_id", "string", _REC_ID, doc="The sequence recipient (`_id`)."),
        _c("sequence_id", "string", _REC_SEQ),
        _c("email", "string", _REC_EMAIL, doc="Recipient address (`to.email`, else `email`)."),
        _c("user_id", "string", _REC_USER, doc="Sender who added the recipient."),
        _c("recipient_state", "category", _REC_STATE, cats=RECIPIENT_STATES),
        _c("completed_reason", "category", _REC_REASON, cats=COMPLETED_REASONS),
        _c("stage_id", "string", "stageId"),
        _c("ordinal", "Int64", "ordinal", doc="0-based position of the stage."),
        _c("type", "category", "type", cats=STAGE_KINDS),
        _c("state", "string", "state", doc="Stage state as Mixmax reports it (values open)."),
        _c("scheduled_at", "datetime", "scheduledAt"),
        _c("sent_at", "datetime", "sentAt"),
        _c("processed_at", "datetime", "processedAt"),
        _c("message_id", "string", "messageId", doc="The message this stage sent."),
        _c("opens", "Int64", "opens", doc="Opens of that message (Mixmax's counter)."),
        _c("clicks", "Int64", "clicks"),
        _c("downloads", "Int64", "downloads"),
        _d("replied", "boolean", _flag("replied"), "Got a reply (count, flag or time > 0)."),
        _d("bounced", "boolean", _flag("bounced"), "Bounced (count, flag or time > 0)."),
        _d("sender_replied", "boolean", _flag("senderReplied"), "The sender followed up."),
        _c("failed_error", "string", "failedError", doc="Why the stage failed, if it did."),
        _c("from_email", "string", "from", "email", doc="Who the stage is sent as."),
    ],
    known=(
        "replied",
        "bounced",
        "senderReplied",
        "accepted",
        "declined",
        "tentative",
        "hasOpens",
        "hasLinks",
        "hasFiles",
        "scheduleBetween",
        _REC_ID,
        _REC_SEQ,
        _REC_EMAIL,
        _REC_USER,
        _REC_STATE,
        _REC_REASON,
    ),
    nested={("from",): ("email", "name"), ("scheduleBetween",): ("start", "end", "timezone")},
    explode=_recipient_stage_rows,
)

_LIVEFEED_MESSAGES = _spec(
    [
        _c("id", "string", "_id", doc="The message id (17-character Meteor id)."),
        _c("user_id", "string", "userId"),
        _c("sent_at", "datetime", "sent"),
        _c("from_email", "string", "fromEmail"),
        _c("from_name", "string", "fromName"),
        _d("to", "string", _join("recipients", key="email"), "Recipient addresses, joined."),
        _d("to_count", "Int64", _count("recipients"), "Number of recipients."),
        _c("subject", "string", "subject"),
        _c("service", "string", "service"),
        _c("service_message_id", "string", "serviceMessageId"),
        _c("service_thread_id", "string", "serviceThreadId"),
        _c("in_team_live_feed", "boolean", "includeInTeamLiveFeed"),
    ],
    known=("recipients",),
)

_SPECS: Final[Mapping[str, _Spec]] = MappingProxyType(
    {
        "events": _EVENTS,
        "sequences": _SEQUENCES,
        "sequence_stages": _STAGES,
        "recipients": _RECIPIENTS,
        "recipient_stages": _RECIPIENT_STAGES,
        "livefeed_messages": _LIVEFEED_MESSAGES,
        "messages": _MESSAGES,
        "message": _MESSAGES,
        "snippets": _SNIPPETS,
        "snippet": _SNIPPETS,
        "polls": _POLLS,
        "poll": _POLLS,
        "poll_results": _POLL_RESULTS,
        "unsubscribes": _UNSUBSCRIBES,
        "unsubscribe_change": _UNSUBSCRIBES,
        "teams": _TEAMS,
        "team_members": _TEAM_MEMBERS,
        "rules": _RULES,
        "user": _USER,
        "enroll_outcomes": _ENROLL,
        "cancel_outcomes": _CANCEL,
        "actions": _ACTIONS,
    }
)

KINDS: Final = tuple(_SPECS)

SCHEMAS: Final[Mapping[str, Mapping[str, Dtype]]] = MappingProxyType(
    {
        kind: MappingProxyType({c.name: c.dtype for c in spec.columns})
        for kind, spec in _SPECS.items()
    }
)
"""kind -> ordered {column: dtype}; extras, when present, come after these."""
