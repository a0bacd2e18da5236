"""Join keys over Arrow strings (mixmax_nb._keys): exact whatever the hash does."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixmax_nb import _keys as K

# Short ids, emails, the empty string, NUL bytes (which zero padding could mimic),
# non-ASCII, and values past 64 bytes (the exact string sort).
VALUES = st.one_of(
    st.none(),
    st.sampled_from(["", "a", "a\x00", "\x00", "kZYPwDDiGPTfQDj5n", "kZYPwDDiGPTfQDj5N"]),
    st.text(alphabet="ab\x00é", max_size=10),
    st.text(min_size=60, max_size=70, alphabet="xy"),
)
COLUMNS = st.lists(st.lists(VALUES, max_size=30), min_size=1, max_size=3)


def arrow(values: Sequence[str | None]) -> Any:
    return pa.array(values, type=pa.string())


def same_partition(
    codes: list[np.ndarray[Any, Any]], columns: Sequence[Sequence[str | None]]
) -> None:
    """Equal codes exactly where the values are equal; -1 exactly for nulls."""
    flat_codes = np.concatenate(codes) if codes else np.empty(0)
    flat = [v for column in columns for v in column]
    seen: dict[str, int] = {}
    for code, value in zip(flat_codes.tolist(), flat, strict=True):
        if value is None:
            assert code == -1
            continue
        assert code >= 0
        assert seen.setdefault(value, code) == code
    assert len(set(seen.values())) == len(seen)  # distinct values, distinct codes


@settings(max_examples=300, deadline=None)
@given(COLUMNS)
def test_match_codes_say_which_values_are_equal(columns: list[list[str | None]]) -> None:
    for block in (K.BLOCK, 3):  # whole columns; blocks of 3 rows (pairs across blocks)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(K, "BLOCK", block)
            codes, n = K.match(*(arrow(c) for c in columns))
        same_partition(codes, columns)
        assert n == len({v for c in columns for v in c if v is not None})
        assert all(c.max(initial=-1) < n for c in codes)


def test_runs_of_repeated_values_get_one_code_each() -> None:
    column = ["x", "x", "x", "y", "y", "x", None, None, "z"] * 3
    (codes,), n = K.match(arrow(column))
    same_partition([codes], [column])
    assert n == 3


@settings(max_examples=200, deadline=None)
@given(COLUMNS)
def test_codes_are_the_same_when_samples_skip_the_runs(columns: list[list[str | None]]) -> None:
    # Samples of 2 rows: most columns here are long enough for the sampled decision.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(K, "RUN_SAMPLE", 2)
        codes, n = K.match(*(arrow(c) for c in columns))
        for column in columns:
            starts = K.runs(arrow(column))
            if starts is not None:  # when taken, runs are still the runs
                assert starts.tolist() == [  # a null never continues a run
                    i
                    for i, (value, before) in enumerate(zip(column, [None, *column], strict=False))
                    if i == 0 or value is None or value != before
                ]
    same_partition(codes, columns)
    assert n == len({v for c in columns for v in c if v is not None})


def test_runs_are_skipped_only_when_every_sample_is_distinct() -> None:
    distinct = [f"id{i:05d}" for i in range(5 * K.RUN_SAMPLE)]
    assert K.runs(arrow(distinct)) is None
    grouped = [v for v in distinct[: 2 * K.RUN_SAMPLE] for _ in range(3)]  # runs of 3
    starts = K.runs(arrow(grouped))
    assert starts is not None and starts.tolist() == list(range(0, len(grouped), 3))
    # Distinct where sampled (start, middle, end) but grouped in between: still exact.
    mixed = distinct[:3000] + grouped[3000:9000] + distinct[-3000:]
    (codes,), n = K.match(arrow(mixed))
    same_partition([codes], [mixed])
    assert n == len(set(mixed))


def brute_rows(keys: Sequence[str | None], probes: Sequence[str | None]) -> list[int]:
    last = {v: i for i, v in enumerate(keys) if v is not None}
    return [last.get(v, -1) if v is not None else -1 for v in probes]


@settings(max_examples=300, deadline=None)
@given(COLUMNS)
def test_join_rows_are_the_last_row_holding_each_value(columns: list[list[str | None]]) -> None:
    for block in (K.BLOCK, 3):  # whole columns; blocks of 3 probes
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(K, "BLOCK", block)
            join = K.Join(*(arrow(c) for c in columns))
            for key in range(len(columns)):
                for probe in range(len(columns)):
                    got = join.rows(key, probe).tolist()
                    assert got == brute_rows(columns[key], columns[probe]), (key, probe)


@settings(max_examples=300, deadline=None)
@given(COLUMNS, st.randoms(use_true_random=False))
def test_a_masked_join_is_the_join_of_the_rows_kept(
    columns: list[list[str | None]], rnd: Any
) -> None:
    """A mask (a column's rows to use) gives what a copy of those rows would, rows
    numbered as in the whole column: the unsent stages, left out without a copy."""
    masks = [np.asarray([rnd.random() < 0.6 for _ in c], dtype=bool) for c in columns]
    kept = [
        [v if m else None for v, m in zip(c, mask, strict=True)]
        for c, mask in zip(columns, masks, strict=True)
    ]
    for block in (K.BLOCK, 3):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(K, "BLOCK", block)
            join = K.Join(*(arrow(c) for c in columns), masks=masks)
            for key in range(len(columns)):
                for probe in range(len(columns)):
                    got = join.rows(key, probe).tolist()
                    assert got == brute_rows(kept[key], kept[probe]), (key, probe)


@pytest.fixture
def every_hash_collides(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hash that is 0 for every value: only the word-by-word checks keep answers right."""
    monkeypatch.setattr(K, "_MIX", (np.uint64(0), np.uint64(0), np.uint64(1)))
    monkeypatch.setattr(K, "BLOCK", 2)  # and the checks run in blocks, pairs across them


@pytest.mark.usefixtures("every_hash_collides")
def test_colliding_hashes_never_merge_different_values() -> None:
    columns: list[list[str | None]] = [["ab", "ba", "ab", None, "", "a\x00"], ["ba", "zz", "", "a"]]
    codes, n = K.match(*(arrow(c) for c in columns))
    same_partition(codes, columns)
    assert n == 6


@pytest.mark.usefixtures("every_hash_collides")
def test_the_only_different_neighbours_straddle_a_block() -> None:
    """Sorted by row (all hashes equal), "x" "x" | "y" in blocks of 2: the one pair
    that differs is the one across the blocks' boundary (three arrays: no runs)."""
    (a,), (b,), (c,) = K.match(arrow(["x"]), arrow(["x"]), arrow(["y"]))[0]
    assert a == b != c


@pytest.mark.usefixtures("every_hash_collides")
def test_a_probe_sharing_the_only_keys_hash_but_not_its_value_finds_nothing() -> None:
    join = K.Join(arrow(["kZYPwDDiGPTfQDj5n"]), arrow(["kZYPwDDiGPTfQDj5N", "kZYPwDDiGPTfQDj5n"]))
    assert join.rows(0, 1).tolist() == [-1, 0]
    join = K.Join(arrow(["a", "b", "a"]), arrow(["b", "a", "c"]))  # hashes repeat: match
    assert join.rows(0, 1).tolist() == [1, 2, -1]


def test_group_splits_every_group_whose_hash_bits_clash() -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 40, (2_000, 2)).astype(np.uint64)
    hashes = (np.zeros(len(values), np.uint64), (values[:, 0] % 3) << np.uint64(61))
    for h, block in itertools.product(hashes, (K.BLOCK, 7)):  # whole; blocks of 7 rows
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(K, "BLOCK", block)
            codes, n = K._group(h.copy(), [values[:, 0].copy(), values[:, 1].copy()])
        distinct, inverse = np.unique(values, axis=0, return_inverse=True)
        assert n == len(distinct)
        assert sorted(set(codes.tolist())) == list(range(n))  # 0..n-1, none skipped
        assert len(np.unique(np.c_[codes, inverse.ravel()], axis=0)) == n


def test_sliced_arrays_and_large_strings_give_the_same_codes() -> None:
    base = arrow(["q", "kZYPwDDiGPTfQDj5n", "q", None, "r", "kZYPwDDiGPTfQDj5n"])
    sliced = base.slice(1, 4)
    (codes,), n = K.match(sliced)
    same_partition([codes], [sliced.to_pylist()])
    (codes,), n = K.match(base.cast(pa.large_string()))  # not `string`: the sort path
    same_partition([codes], [base.to_pylist()])
    assert n == 3


def test_words_of_same_length_values_equal_the_per_value_loads() -> None:
    ids = ["kZYPwDDiGPTfQDj5n", "BGb7nYTSKfPtnPsgj", "kZYPwDDiGPTfQDj5n", "u6nw5I9kk4FHEFQ3L"]
    fixed = arrow(ids)  # one length: the byte-matrix copy
    mixed = arrow([*ids, "x"])  # two lengths: one unaligned load per word
    rows = np.asarray([0, 2, 3])
    a = K._words(fixed, K._offsets(fixed), 3, rows)
    b = K._words(mixed, K._offsets(mixed), 3, rows)
    for wa, wb in zip(a.words, b.words, strict=True):
        assert wa.tolist() == wb.tolist()
    assert a.lengths.tolist() == b.lengths.tolist() == [17, 17, 17]
    assert a.words[0][0] == int.from_bytes(b"kZYPwDDi", "little")


def expected_words(values: Sequence[str | None], width: int) -> list[list[int]]:
    """Word k of each value: its bytes k*8 .. k*8+7, zero past its end (nulls: none)."""
    data = [(v or "").encode() + bytes(8 * width) for v in values]
    return [[int.from_bytes(b[8 * k : 8 * k + 8], "little") for b in data] for k in range(width)]


ASCII = st.text(alphabet="abcXYZ019", min_size=1, max_size=20)
SAME_LENGTH = st.integers(1, 20).flatmap(
    lambda n: st.lists(st.text(alphabet="abcXYZ019", min_size=n, max_size=n), max_size=12)
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(SAME_LENGTH, st.lists(st.one_of(st.none(), ASCII, st.just("")), max_size=12)),
    st.integers(0, 3),
    st.data(),
)
def test_words_read_every_value_without_running_past_the_buffer(
    values: list[str | None], extra: int, data: st.DataObject
) -> None:
    """Strided views, unaligned loads and the padded tail give each value's bytes,
    short buffers and last values included, for all rows or a subset; sliced too."""
    width = max(1, -(-max((len(v or "") for v in values), default=0) // 8)) + extra
    array = arrow(["padding", *values]).slice(1)  # a sliced array: offsets don't start at 0
    rows = None
    if data.draw(st.booleans()):
        rows = np.asarray(sorted(data.draw(st.sets(st.integers(0, max(len(values) - 1, 0))))))
        rows = rows[rows < len(values)].astype(np.int64)
    want = expected_words(values, width)
    pick = list(range(len(values))) if rows is None else rows.tolist()
    for block in (K.BLOCK, 2):  # one block; blocks of 2 rows
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(K, "BLOCK", block)
            got = K._words(array, K._offsets(array), width, rows)
        assert [w.tolist() for w in got.words] == [[col[i] for i in pick] for col in want]
        assert got.lengths.tolist() == [len(values[i] or "") for i in pick]
        assert got.valid.tolist() == [values[i] is not None for i in pick]


@pytest.mark.parametrize("bits", [5, 9])
def test_rows_by_bucket_are_a_stable_sort_of_the_top_bits(bits: int) -> None:
    """Bucket numbers in 8 bits, and in 16 (more than 256 buckets)."""
    hashes = np.random.default_rng(7).integers(0, 2**64, 5_000, dtype=np.uint64)
    hashes[100:110] = hashes[5]  # equal buckets keep their rows' order
    order, bounds = K._by_bucket(hashes, np.uint64(64 - bits), 1 << bits)
    top = (hashes >> np.uint64(64 - bits)).astype(np.int64)
    assert order.tolist() == np.argsort(top, kind="stable").tolist()
    assert bounds.tolist() == [0, *np.cumsum(np.bincount(top, minlength=1 << bits)).tolist()]


@pytest.mark.parametrize(("partition", "block"), [(K.PARTITION, K.BLOCK), (8, 64)])
def test_partitioned_hash_index_finds_what_one_index_finds(
    partition: int, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(K, "PARTITION", partition)
    monkeypatch.setattr(K, "BLOCK", block)  # blocks of probes: several, one partial
    rng = np.random.default_rng(5)
    ids = [f"id{v:05d}" for v in rng.permutation(3_000)]
    probes: list[str | None] = [*rng.choice(ids, 2_000).tolist(), "nope", None, "id"]
    join = K.Join(arrow(ids), arrow(probes))
    assert join.rows(0, 1).tolist() == brute_rows(ids, probes)
    twice = K.Join(arrow([*ids, ids[0]]), arrow(probes))  # a repeated key: through match
    assert twice.rows(0, 1).tolist() == brute_rows([*ids, ids[0]], probes)
