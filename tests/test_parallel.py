"""The second core: work runs beside the caller only when it pays, and gives back
exactly what an inline call gives (values and exceptions)."""

from __future__ import annotations

import multiprocessing
import os
import threading

import pytest

from mixmax_nb import _parallel


def _where() -> str:
    return threading.current_thread().name


def _fails() -> None:
    raise ValueError("from the worker")


def test_small_work_runs_inline_in_the_callers_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_parallel, "cores", lambda: 2)
    assert _parallel.beside(_parallel.WORTH_ROWS - 1, _where).result() == _where()


def test_large_work_runs_on_the_worker_when_there_is_a_second_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_parallel, "cores", lambda: 2)
    first = _parallel.beside(_parallel.WORTH_ROWS, _where).result()
    assert first.startswith("mixmax-nb")
    # One long-lived worker: the same thread (and C-library arena) call after call.
    assert _parallel.beside(_parallel.WORTH_ROWS, _where).result() == first


def test_one_core_runs_inline_whatever_the_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_parallel, "cores", lambda: 1)
    assert _parallel.beside(10**9, _where).result() == _where()


@pytest.mark.parametrize("rows", [0, _parallel.WORTH_ROWS])
def test_an_exception_comes_back_from_result_either_way(
    monkeypatch: pytest.MonkeyPatch, rows: int
) -> None:
    monkeypatch.setattr(_parallel, "cores", lambda: 2)
    future = _parallel.beside(rows, _fails)  # raising is deferred to .result()
    with pytest.raises(ValueError, match="from the worker"):
        future.result()


def test_cores_counts_at_least_one() -> None:
    assert _parallel.cores() >= 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_gets_a_worker_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """multiprocessing's fork (or joblib's) after a prepare: the parent's worker thread
    does not exist in the child; work given there must still run, not hang."""
    monkeypatch.setattr(_parallel, "cores", lambda: 2)
    assert _parallel.beside(_parallel.WORTH_ROWS, _where).result().startswith("mixmax-nb")
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        name = pool.apply_async(_child_runs_beside).get(timeout=30)
    assert name.startswith("mixmax-nb")


def _child_runs_beside() -> str:
    _parallel.cores = lambda: 2  # type: ignore[assignment]  # the child's own module
    return _parallel.beside(_parallel.WORTH_ROWS, _where).result(timeout=10)
