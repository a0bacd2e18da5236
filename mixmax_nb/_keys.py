"""Which values of Arrow string columns are equal: join keys for millions of ids.

Analytics joins stages, events and messages on message ids, and counts people by
address: millions of distinct short strings. A hash table of strings (Arrow's
``dictionary_encode``) or a sort of them spends most of its time comparing bytes
and missing the cache: on Mixmax's random 17-character ids, the string sort took
2.7 s of a 3 s analytics run at 1M events. Ids are short, so each value's bytes are
read as a few 64-bit words straight from the Arrow buffer (strided views when the
values share one length, else one unaligned load per word; no copy per value) and
mixed into one 64-bit hash. Then:

- :func:`match` groups the rows by one SIMD sort of integers (the hash's high bits
  above the row number) and a comparison of neighbours;
- :class:`Join` looks one column's values up in another's with pandas' hash index of
  the integers, one index per partition of the hashes' top bits above a million keys
  (each index then fits in the cache).

Exact, never probabilistic: every match is confirmed word by word (and by length when
a value holds a NUL byte), groups whose values differ but share the hash bits are
split, and a lookup whose keys repeat goes through :func:`match`. Values longer than
64 bytes, or arrays that are not ``string``, take the exact string sort instead.

Pure: numpy, pandas and pyarrow over arrays the caller holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

IntArray = np.ndarray[Any, np.dtype[np.int64]]
Int32Array = np.ndarray[Any, np.dtype[np.int32]]  # Arrow's offsets, as stored

MAX_WORDS: Final = 8  # values up to 64 bytes take the integer path; longer ones sort
# Keep the low k bytes of a little-endian word (k = 0..8): bytes past a value's end.
_MASKS: Final = np.asarray([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1], dtype=np.uint64)
_MIX: Final = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(31))


def runs(array: Any) -> IntArray | None:
    """Start of each run of equal adjacent values, or None when runs would not pay.

    Stages come grouped by recipient and per-message events by message: hashing one
    value per run instead of per row gives the same codes (a value's first row always
    starts a run) for a fraction of the work.
    """
    n = len(array)
    if n < 2:
        return None
    if n > 4 * RUN_SAMPLE and not any(
        _worth_runs(array.slice(at, RUN_SAMPLE))
        for at in (0, (n - RUN_SAMPLE) // 2, n - RUN_SAMPLE)
    ):
        # Ids unique per row (message ids on stages and messages): a few samples say
        # so for a fraction of comparing every neighbour (only the speed depends on it:
        # the codes are the same with or without runs).
        return None
    same = pc.fill_null(pc.equal(array[1:], array[:-1]), False)
    starts = np.flatnonzero(~np.r_[False, np.asarray(same.to_numpy(zero_copy_only=False))])
    return starts if len(starts) < 0.8 * n else None


RUN_SAMPLE: Final = 2048  # rows per sample that decides whether runs may pay


def _worth_runs(sample: Any) -> bool:
    """Whether ``sample`` has runs enough to pay (fewer than 0.9 of its rows start one)."""
    same = pc.fill_null(pc.equal(sample[1:], sample[:-1]), False)
    return int(pc.sum(same).as_py() or 0) > 0.1 * len(sample)


def match(*arrays: Any) -> tuple[list[IntArray], int]:
    """Codes that say which values of several Arrow ``string`` arrays are equal (-1
    for null), and how many distinct values there are (codes 0..n-1): a join key,
    in no promised order."""
    keyed = _keyed(arrays)
    if keyed is not None:
        return keyed
    starts = [runs(a) for a in arrays]
    heads = [a if s is None else a.take(s) for a, s in zip(arrays, starts, strict=True)]
    codes, n_distinct = _sorted(pa.concat_arrays(heads))
    return _spread(codes, arrays, starts, [len(h) for h in heads]), n_distinct


def _spread(
    codes: IntArray, arrays: Sequence[Any], starts: Sequence[IntArray | None], sizes: list[int]
) -> list[IntArray]:
    """The codes of the run heads of every array, back on every row."""
    out = []
    pieces = np.split(codes, np.cumsum(sizes)[:-1])
    for array, run, part in zip(arrays, starts, pieces, strict=True):
        out.append(part if run is None else np.repeat(part, np.diff(np.r_[run, len(array)])))
    return out


class _Words(NamedTuple):
    """One array's values as integers: ``width`` words, the lengths, the valid rows."""

    words: list[np.ndarray[Any, Any]]
    lengths: Int32Array
    valid: np.ndarray[Any, np.dtype[np.bool_]]


class _Hashed(NamedTuple):
    """One array's run heads as words with their hash, and where the runs start."""

    heads: _Words
    hash: np.ndarray[Any, Any]
    starts: IntArray | None
    rows: int

    def exact(self, nul_free: bool) -> list[np.ndarray[Any, Any]]:
        """The columns two equal values agree on (the length too, if a NUL could hide
        in the zero padding)."""
        w = self.heads
        return w.words if nul_free else [*w.words, w.lengths.astype(np.uint64)]


Masks = Sequence["np.ndarray[Any, np.dtype[np.bool_]] | None"]


def _hash_all(
    arrays: Sequence[Any], masks: Masks | None = None
) -> tuple[list[_Hashed], bool] | None:
    """Every array's run heads hashed at one common width, and whether no value holds
    a NUL byte; None when an array is not ``string`` or a value is too long. A row a
    mask leaves out counts as null (its array is then hashed row by row, no runs)."""
    if any(a.type != pa.string() for a in arrays):
        return None
    if masks is None:
        masks = [None] * len(arrays)
    offsets = [_offsets(a) for a in arrays]
    longest = max((_longest(o) for o in offsets), default=0)
    width = max(1, -(-longest // 8))
    if width > MAX_WORDS:
        return None
    out = []
    mult, mult2, shift = _MIX
    for array, offs, mask in zip(arrays, offsets, masks, strict=True):
        starts = runs(array) if mask is None else None
        heads = _words(array, offs, width, starts)
        if mask is not None:
            heads = heads._replace(valid=heads.valid & mask)
        # In place, in blocks with one small scratch array: every temporary of
        # millions of rows is fresh memory, which costs more than the arithmetic.
        h = heads.lengths.astype(np.uint64)
        scratch = np.empty(min(len(h), BLOCK), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for lo in range(0, len(h), BLOCK):
                part = h[lo : lo + BLOCK]
                tmp = scratch[: len(part)]
                part *= mult
                for word in heads.words:
                    part ^= word[lo : lo + BLOCK]
                    part *= mult2
                    np.right_shift(part, shift, out=tmp)
                    part ^= tmp
        out.append(_Hashed(heads, h, starts, len(array)))
    # Without a NUL byte in any value, zero padding cannot mimic content: the words
    # alone say whether two values are equal, and the lengths need no comparing.
    nul_free = all(_nul_free(a, o) for a, o in zip(arrays, offsets, strict=True))
    return out, nul_free


def _keyed(arrays: Sequence[Any]) -> tuple[list[IntArray], int] | None:
    """:func:`match` on each value's words, or None when a value is too long for them
    or an array is not ``string`` (the caller then sorts the strings)."""
    hashed = _hash_all(arrays)
    if hashed is None:
        return None
    parts, nul_free = hashed
    valid = np.concatenate([p.heads.valid for p in parts])
    every = bool(valid.all())
    h = np.concatenate([p.hash for p in parts])
    stacked = _Stacked([p.exact(nul_free) for p in parts], None if every else np.flatnonzero(valid))
    if not every:
        h = h[valid]
    codes, n_distinct = _group(h, stacked)
    if not every:
        full = np.full(len(valid), -1, dtype=np.int64)
        full[valid] = codes
        codes = full
    starts = [p.starts for p in parts]
    return _spread(codes, arrays, starts, [len(p.hash) for p in parts]), n_distinct


class Join:
    """Several Arrow ``string`` columns hashed once, to look rows up between them.

    :meth:`rows` is a hash join on 64-bit integers (pandas' hash index of one
    column's hashes, probed by another's), then every hit is checked word by word:
    when a column's hashes are all distinct, a probe that differs from the one key
    with its hash has no match at all, so the lookup is exact. A column with
    repeated values (or two values sharing a hash) is looked up through
    :func:`match` instead, which gives the same answer.
    """

    def __init__(self, *arrays: Any, masks: Masks | None = None) -> None:
        """``masks``: per array, None or the rows to use (the others count as null):
        a subset of a column is looked up without copying its text."""
        self._arrays = arrays
        self._masks = list(masks) if masks is not None else [None] * len(arrays)
        self._hashed = _hash_all(arrays, self._masks)
        self._codes: tuple[list[IntArray], int] | None = None

    def rows(self, key: int, probe: int) -> IntArray:
        """For each row of column ``probe``, the row of column ``key`` holding the same
        value (the last such row), or -1 (no such row, or a null)."""
        if self._hashed is not None:
            found = self._hashed_rows(*self._hashed, key, probe)
            if found is not None:
                return found
        if self._codes is None:
            codes, n = match(*self._arrays)
            for column, mask in zip(codes, self._masks, strict=True):
                if mask is not None:
                    column[~mask] = -1
            self._codes = codes, n
        codes, n = self._codes
        holder = np.full(n, -1, dtype=np.int64)
        ok = codes[key] >= 0
        holder[codes[key][ok]] = np.flatnonzero(ok)
        return np.where(codes[probe] >= 0, holder[np.maximum(codes[probe], 0)], -1)

    def _hashed_rows(
        self, parts: list[_Hashed], nul_free: bool, key: int, probe: int
    ) -> IntArray | None:
        keys, probes = parts[key], parts[probe]
        # Every row valid (the usual case): no positions to translate, no copies.
        at = None if keys.heads.valid.all() else np.flatnonzero(keys.heads.valid)
        # Only the valid probes are looked up (a masked column's left-out rows, such
        # as the stages not sent yet, can be a third of it): each lookup is a cache
        # miss, and gathering the valid ones is one pass in order.
        looked = None if probes.heads.valid.all() else np.flatnonzero(probes.heads.valid)
        found = _index_of(
            keys.hash if at is None else keys.hash[at],
            probes.hash if looked is None else probes.hash[looked],
        )
        if found is None:
            return None
        # A key's last row: the end of its run (its only run: the hashes are distinct).
        ends = None if keys.starts is None else np.r_[keys.starts[1:], keys.rows] - 1
        pairs = list(zip(keys.exact(nul_free), probes.exact(nul_free), strict=True))
        if len(keys.hash) == 0 or (at is not None and len(at) == 0):
            rows = np.full(len(found), -1, dtype=np.int64)  # no key: nothing to find
        else:
            rows = _confirmed(found, at, ends, pairs, looked)
        if looked is not None:
            every_probe = np.full(len(probes.hash), -1, dtype=np.int64)
            every_probe[looked] = rows
            rows = every_probe
        if probes.starts is None:
            return rows
        return np.repeat(rows, np.diff(np.r_[probes.starts, probes.rows]))


def _confirmed(
    found: IntArray,
    at: IntArray | None,
    ends: IntArray | None,
    pairs: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]],
    looked: IntArray | None,
) -> IntArray:
    """The key row of each probe whose hash was found (``found``: a position among
    the valid key heads ``at``, all heads when None), or -1 where a word differs.
    ``looked``: the probe rows that ``found`` is for (ascending), every row when None.

    In blocks: each temporary stays small enough for the allocator to reuse, where
    whole-column ones would each be fresh memory.
    """
    rows = np.empty(len(found), dtype=np.int64)
    for lo in range(0, len(found), BLOCK):
        hi = lo + BLOCK
        f = found[lo:hi]
        ok = f >= 0
        head = np.where(ok, f, 0)  # the key's run head (0: a placeholder)
        if at is not None:
            head = at[head]
        probe_rows = slice(lo, hi) if looked is None else looked[lo:hi]
        for k_col, p_col in pairs:  # confirm every hit word by word
            ok &= k_col[head] == p_col[probe_rows]
        rows[lo:hi] = np.where(ok, head if ends is None else ends[head], -1)
    return rows


PARTITION: Final = 1 << 20  # above this many keys, one hash index per partition
BLOCK: Final = 1 << 20  # rows per block where whole-column temporaries are avoided


def _index_of(keys: np.ndarray[Any, Any], probes: np.ndarray[Any, Any]) -> IntArray | None:
    """Position of each probe in ``keys`` (-1: absent), or None when keys repeat.

    One pandas hash index of millions of keys misses the cache on every insert and
    probe; split by the hashes' top bits into partitions of about 64k keys (one sort
    of bucket numbers), each index fits in the cache: about 2x faster at 5M keys.
    """
    if len(keys) <= PARTITION:
        index = pd.Index(keys)
        return np.asarray(index.get_indexer(probes), dtype=np.int64) if index.is_unique else None
    bits = (len(keys) >> 16).bit_length()
    shift = np.uint64(64 - bits)
    buckets = 1 << bits
    key_order, key_bounds = _by_bucket(keys, shift, buckets)
    probe_order, probe_bounds = _by_bucket(probes, shift, buckets)
    sorted_keys, sorted_probes = keys[key_order], probes[probe_order]
    found = np.empty(len(probes), dtype=np.int64)
    for b in range(buckets):
        k0, k1, p0, p1 = key_bounds[b], key_bounds[b + 1], probe_bounds[b], probe_bounds[b + 1]
        index = pd.Index(sorted_keys[k0:k1])
        if not index.is_unique:
            return None
        at = np.asarray(index.get_indexer(sorted_probes[p0:p1]), dtype=np.int64)
        found[probe_order[p0:p1]] = np.where(at >= 0, key_order[k0 + np.maximum(at, 0)], -1)
    return found


def _by_bucket(hashes: np.ndarray[Any, Any], shift: Any, buckets: int) -> tuple[Any, Any]:
    """Rows in order of their hash's top bits (rows ascending within a bucket), and
    where each bucket starts and ends in that order.

    The bucket numbers fit in 8 or 16 bits, where numpy's stable argsort is a radix
    sort: one counting pass, 2.5-4x faster at 2-5M rows than a comparison sort of
    (bucket, row) packed into integers (measured: 0.06-0.09 s vs 0.21 s at 5M).
    """
    small = np.uint8 if buckets <= 1 << 8 else np.uint16 if buckets <= 1 << 16 else np.uint32
    bucket = (hashes >> shift).astype(small)
    counts = np.bincount(bucket, minlength=buckets)
    return np.argsort(bucket, kind="stable"), np.r_[0, np.cumsum(counts)]


def _offsets(array: Any) -> Int32Array:
    """The value offsets, a view of the Arrow buffer (no copy: 32-bit, as stored)."""
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)
    return offsets[array.offset : array.offset + len(array) + 1]


def _data(array: Any, offsets: Int32Array) -> np.ndarray[Any, np.dtype[np.uint8]]:
    data = array.buffers()[2]
    if data is None or len(offsets) < 2:
        return np.empty(0, dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8)[int(offsets[0]) : int(offsets[-1])]


def _nul_free(array: Any, offsets: Int32Array) -> bool:
    return int(_data(array, offsets).min(initial=1)) > 0  # a SIMD reduction, no mask


def _words(array: Any, offsets: Int32Array, width: int, rows: IntArray | None) -> _Words:
    """The bytes of each value (of ``rows`` only, when given) as ``width``
    little-endian 64-bit words, zero past its end, without copying the text per value.

    Ids usually share one length (17 or 24 characters): word k of every value is then
    one strided view of the buffer, copied in one pass. Otherwise each word is one
    unaligned 8-byte load per value; either way masked to the value's length. The
    buffer itself is never copied (at 5M ids that copy alone was 94 MB): only the
    last few values, whose 8-byte loads would run past its end, read from a small
    zero-padded copy of the buffer's tail.
    """
    lengths = np.diff(offsets)
    raw = _data(array, offsets)
    valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    n = len(lengths)
    if n and int(lengths.min()) == int(lengths.max()) > 0:
        size = int(lengths[0])
        if rows is not None:
            lengths, valid = lengths[rows], valid[rows]
        words = []
        for k in range(width):
            word = _strided(raw, n, size, 8 * k, rows)
            if 8 * k + 8 > size:  # past the value's end (other columns may be longer)
                word &= _MASKS[min(max(size - 8 * k, 0), 8)]
            words.append(word)
        return _Words(words, lengths, valid)
    start = offsets[:-1] - offsets[0] if len(offsets) else offsets
    if rows is not None:
        start, lengths, valid = start[rows], lengths[rows], valid[rows]
    return _Words([_loads(raw, start, lengths, 8 * k) for k in range(width)], lengths, valid)


def _longest(offsets: Int32Array) -> int:
    """The longest value's length in bytes (block by block: no whole-column diff)."""
    return max(
        (
            int(np.diff(offsets[lo : lo + BLOCK + 1]).max())
            for lo in range(0, len(offsets) - 1, BLOCK)
        ),
        default=0,
    )


def _fits(raw_size: int, skip: int, size: int, n: int) -> int:
    """How many of ``n`` values of ``size`` bytes can load 8 bytes at ``skip`` bytes
    into the value without reading past a buffer of ``raw_size`` bytes."""
    if size == 0:
        return n if raw_size >= skip + 8 else 0
    return 0 if raw_size < skip + 8 else min(n, (raw_size - skip - 8) // size + 1)


def _strided(
    raw: np.ndarray[Any, Any], n: int, size: int, skip: int, rows: IntArray | None
) -> np.ndarray[Any, Any]:
    """The 8 bytes at ``skip`` in each of ``n`` values of ``size`` bytes (of ``rows``
    only, ascending, when given): one strided view of the buffer, the tail from a
    padded copy; written straight into the result (block by block for ``rows``)."""
    fit = _fits(len(raw), skip, size, n)
    head = (
        np.ndarray((fit,), dtype=np.uint64, buffer=raw, offset=skip, strides=(size,))
        if fit
        else np.empty(0, dtype=np.uint64)
    )
    padded = np.zeros((n - fit) * size + skip + 8, dtype=np.uint8)
    padded[: len(raw) - fit * size] = raw[fit * size :]
    tail = np.ndarray((n - fit,), dtype=np.uint64, buffer=padded, offset=skip, strides=(size,))
    if rows is None:
        out = np.empty(n, dtype=np.uint64)
        out[:fit] = head
        out[fit:] = tail
        return out
    out = np.empty(len(rows), dtype=np.uint64)
    cut = int(np.searchsorted(rows, fit))
    for lo in range(0, cut, BLOCK):
        hi = min(lo + BLOCK, cut)
        out[lo:hi] = head[rows[lo:hi]]  # not np.take(out=): it copies unaligned views whole
    out[cut:] = tail[rows[cut:] - fit]
    return out


def _loads(
    raw: np.ndarray[Any, Any], start: Int32Array, lengths: Int32Array, skip: int
) -> np.ndarray[Any, Any]:
    """The 8 bytes at ``start + skip`` of the buffer per value (``start`` ascending),
    zero past the value's ``lengths``: unaligned loads block by block into the result,
    the last few from a padded copy of the tail."""
    limit = len(raw) - 8  # the last position an 8-byte load may start at
    cut = int(np.searchsorted(start, limit - skip, side="right")) if limit >= 0 else 0
    unaligned = (
        np.ndarray((limit + 1,), dtype=np.uint64, buffer=raw, strides=(1,))
        if limit >= 0
        else np.empty(0, dtype=np.uint64)
    )
    out = np.empty(len(start), dtype=np.uint64)
    for lo in range(0, cut, BLOCK):
        hi = min(lo + BLOCK, cut)
        out[lo:hi] = unaligned[start[lo:hi] + skip]
    if cut < len(start):
        base = int(start[cut])
        padded = np.zeros(len(raw) - base + skip + 16, dtype=np.uint8)
        padded[: len(raw) - base] = raw[base:]
        spare = np.ndarray((len(padded) - 7,), dtype=np.uint64, buffer=padded, strides=(1,))
        out[cut:] = spare[start[cut:] - base + skip]
    for lo in range(0, len(out), BLOCK):
        out[lo : lo + BLOCK] &= _MASKS[np.clip(lengths[lo : lo + BLOCK] - skip, 0, 8)]
    return out


class _Stacked:
    """Several arrays' word columns read as one (of the ``select``-ed rows only, when
    given), without concatenating them: rows are gathered block by block."""

    def __init__(
        self, parts: list[list[np.ndarray[Any, Any]]], select: IntArray | None = None
    ) -> None:
        self._parts = parts
        self._bounds = np.cumsum([0, *(len(p[0]) for p in parts)])
        self._select = select

    def take(self, rows: IntArray) -> list[np.ndarray[Any, Any]]:
        """Every word column at ``rows``."""
        if self._select is not None:
            rows = self._select[rows]
        if len(self._parts) == 1:
            return [column[rows] for column in self._parts[0]]
        part = np.searchsorted(self._bounds, rows, side="right") - 1
        out = [np.empty(len(rows), dtype=c.dtype) for c in self._parts[0]]
        for i, columns in enumerate(self._parts):
            here = np.flatnonzero(part == i)
            local = rows[here] - self._bounds[i]
            for o, column in zip(out, columns, strict=True):
                o[here] = column[local]
        return out


def _group(h: np.ndarray[Any, Any], exact: _Stacked | list[Any]) -> tuple[IntArray, int]:
    """Codes 0..n-1 for rows whose ``exact`` words are all equal, grouping by the hash
    ``h`` first: one SIMD sort of 64-bit keys (the hash's high bits above the row
    number) instead of a hash table, whose probes miss the cache at a million ids.

    ``h`` is overwritten (it becomes the sort keys): each n-row temporary is fresh
    memory, which at millions of rows costs more than the sort.
    """
    if not isinstance(exact, _Stacked):
        exact = _Stacked([list(exact)])
    n = len(h)
    if n == 0:
        return np.empty(0, dtype=np.int64), 0
    bits = max(1, (n - 1).bit_length())
    low = np.uint64((1 << bits) - 1)
    keys = h
    keys &= ~low
    for lo in range(0, n, BLOCK):
        keys[lo : lo + BLOCK] |= np.arange(lo, min(lo + BLOCK, n), dtype=np.uint64)
    keys.sort()
    order = (keys & low).view(np.int64)  # row numbers: below 2**63
    keys >>= np.uint64(bits)
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(keys[1:], keys[:-1], out=new[1:])
    differs = np.zeros(n - 1, dtype=bool)
    # Neighbours in sorted order, compared block by block (each block starts one row
    # back, so the pair across a boundary is compared too).
    for lo in range(0, n, BLOCK):
        first = max(lo - 1, 0)
        for ordered in exact.take(order[first : lo + BLOCK]):
            differs[first : first + len(ordered) - 1] |= ordered[1:] != ordered[:-1]
    codes = np.empty(n, dtype=np.int64)
    n_groups = 0
    for lo in range(0, n, BLOCK):  # each row's group: the new groups up to it, minus 1
        group = np.cumsum(new[lo : lo + BLOCK], dtype=np.int64)
        group += n_groups - 1
        codes[order[lo : lo + BLOCK]] = group
        n_groups = int(group[-1]) + 1
    clash = differs & ~new[1:]  # equal hash bits, different values: split those groups
    if not clash.any():
        return codes, n_groups
    group = codes[order]  # the sorted rows' groups (rare: only when groups clash)
    # Split each such group by its values: the first value keeps the group's code,
    # the others get new codes after the last (codes stay 0..n-1, nothing renumbered).
    bad = np.zeros(n_groups, dtype=bool)
    bad[group[1:][clash]] = True
    rows = order[bad[group]]  # a group's rows are one stretch of the sorted order
    table = np.column_stack([codes[rows].astype(np.uint64), *exact.take(rows)])
    values, sub = np.unique(table, axis=0, return_inverse=True)
    owner = values[:, 0].astype(np.int64)
    keeps = np.r_[True, owner[1:] != owner[:-1]]
    fresh = n_groups + np.cumsum(~keeps, dtype=np.int64) - 1
    codes[rows] = np.where(keeps, owner, fresh)[np.asarray(sub, dtype=np.int64).ravel()]
    return codes, n_groups + int((~keeps).sum())


def first_rows(codes: IntArray) -> IntArray:
    """Row of each code's first appearance, for codes numbered by first appearance
    (a code is new exactly where it exceeds every code before it)."""
    if len(codes) == 0:
        return np.empty(0, dtype=np.int64)
    new = np.empty(len(codes), dtype=bool)
    new[0] = True
    new[1:] = codes[1:] > np.maximum.accumulate(codes)[:-1]
    return np.flatnonzero(new).astype(np.int64)


def _sorted(values: Any) -> tuple[IntArray, int]:
    """:func:`match`'s codes the exact way: one sort, then a comparison of neighbours."""
    total = len(values)
    order = np.asarray(pc.array_sort_indices(values, null_placement="at_end").to_numpy())
    ordered = values.take(order)
    valid = total - values.null_count
    new = np.ones(total, dtype=bool)
    if total > 1:
        same = pc.fill_null(pc.equal(ordered[1:], ordered[:-1]), False)
        new[1:] = ~np.asarray(same.to_numpy(zero_copy_only=False))
    group = np.cumsum(new, dtype=np.int64) - 1
    group[valid:] = -1
    n_distinct = int(group[valid - 1]) + 1 if valid else 0
    codes = np.empty(total, dtype=np.int64)
    codes[order] = group
    return codes, n_distinct
