"""Rate limiter and retries, on a fake clock: nothing here really sleeps."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from mixmax_nb.errors import (
    ActionFailedError,
    CliTimeoutError,
    NotLoggedInError,
    RateLimitedError,
    ServerError,
)
from mixmax_nb.transport.limits import (
    MIXMAX_REQUESTS_PER_MINUTE,
    NoLimit,
    RateLimiter,
    RetryPolicy,
    call_with_retry,
)


class FakeClock:
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def limiter(clock: FakeClock, **kw: Any) -> RateLimiter:
    return RateLimiter(clock=clock, sleep=clock.sleep, **kw)


# -- the limiter --------------------------------------------------------------------


def test_slots_are_evenly_spaced_without_a_burst() -> None:
    clock = FakeClock()
    lim = limiter(clock, rate=120, per=60)

    async def go() -> list[float]:
        starts = []
        for _ in range(6):
            await lim.acquire()
            starts.append(clock.now - 1000.0)
        return starts

    assert run(go()) == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    assert lim.calls == 6
    assert lim.waited == pytest.approx(2.5)


def test_concurrent_callers_get_distinct_slots() -> None:
    clock = FakeClock()
    frozen: list[float] = []

    async def record(seconds: float) -> None:  # time stands still: all five ask at once
        frozen.append(seconds)

    lim = RateLimiter(rate=60, per=60, clock=clock, sleep=record)

    async def go() -> None:
        await asyncio.gather(*(lim.acquire() for _ in range(5)))

    run(go())
    assert sorted(frozen) == pytest.approx([1.0, 2.0, 3.0, 4.0])  # the first starts at once
    assert lim.calls == 5


def test_idle_time_is_not_saved_up_for_a_burst() -> None:
    clock = FakeClock()
    lim = limiter(clock, rate=120, per=60)
    assert lim.reserve() == 0.0
    clock.now += 600  # ten idle minutes
    assert lim.reserve() == 0.0
    assert lim.reserve() == pytest.approx(0.5)
    assert lim.reserve() == pytest.approx(1.0)


@pytest.mark.parametrize("calls", [500, 1000])
def test_default_limiter_stays_under_120_per_minute_but_near_it(calls: int) -> None:
    clock = FakeClock()
    lim = limiter(clock)  # the default: Mixmax's ceiling with a little headroom

    async def go() -> list[float]:
        starts = []
        for _ in range(calls):
            await lim.acquire()
            starts.append(clock.now)
        return starts

    starts = run(go())
    # In every 60-second window (sliding, from any start), at most 120 calls start.
    j = 0
    for i, t in enumerate(starts):
        while j < len(starts) and starts[j] < t + 60.0:
            j += 1
        assert j - i <= MIXMAX_REQUESTS_PER_MINUTE, f"{j - i} calls in the minute from {t}"
    # ...and throughput stays above 95% of the ceiling.
    minutes = (starts[-1] - starts[0]) / 60.0
    assert (calls - 1) / minutes >= 0.95 * MIXMAX_REQUESTS_PER_MINUTE


def test_thread_safe_reservations() -> None:
    clock = FakeClock()
    lim = limiter(clock, rate=120, per=60)
    delays: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(200):
            d = lim.reserve()
            with lock:
                delays.append(d)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(delays) == pytest.approx([i * 0.5 for i in range(800)])


def test_penalize_pushes_every_later_slot_back() -> None:
    clock = FakeClock()
    lim = limiter(clock, rate=120, per=60)
    assert lim.reserve() == 0.0
    lim.penalize(30.0)
    assert lim.reserve() == pytest.approx(30.0)
    assert lim.reserve() == pytest.approx(30.5)
    lim.penalize(1.0)  # a shorter penalty never pulls slots forward
    assert lim.reserve() == pytest.approx(31.0)


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(rate=0)


def test_no_limit_does_not_pace_but_honours_a_penalty() -> None:
    clock = FakeClock()
    lim = NoLimit(clock=clock, sleep=clock.sleep)

    async def go() -> None:
        for _ in range(100):
            await lim.acquire()
        assert clock.sleeps == []
        lim.penalize(5.0)
        await lim.acquire()

    run(go())
    assert clock.sleeps == [5.0]
    assert lim.calls == 101


# -- retry policy ---------------------------------------------------------------------


def test_backoff_is_exponential_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(base=1.0, cap=10.0, jitter=0.0)
    rng = random.Random(1)
    assert [policy.backoff(n, None, rng) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert policy.backoff(1, 7.0, rng) == 7.0
    assert policy.backoff(1, 600.0, rng) == 10.0
    jittery = RetryPolicy(base=1.0, jitter=0.25)
    for _ in range(100):
        assert 0.75 <= jittery.backoff(1, None, rng) <= 1.25
        assert 7.0 <= jittery.backoff(1, 7.0, rng) <= 7.25


class Flaky:
    """``fn`` for call_with_retry: raises the scripted errors, then returns "ok"."""

    def __init__(self, clock: FakeClock, *errors: BaseException) -> None:
        self.clock = clock
        self.errors = list(errors)
        self.attempt_times: list[float] = []

    async def __call__(self) -> str:
        self.attempt_times.append(self.clock.now - 1000.0)
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def retry(
    fn: Callable[[], Awaitable[str]],
    clock: FakeClock,
    *,
    is_write: bool = False,
    lim: RateLimiter | None = None,
    **policy: Any,
) -> str:
    return run(
        call_with_retry(
            fn,
            limiter=lim or limiter(clock, rate=1e9),
            policy=RetryPolicy(**{"jitter": 0.0, **policy}),
            is_write=is_write,
            sleep=clock.sleep,
            clock=clock,
            rng=random.Random(0),
        )
    )


def rate_limited(after: float | None = None) -> RateLimitedError:
    return RateLimitedError("429", retry_after=after)


@pytest.mark.parametrize("is_write", [False, True])
def test_429_is_retried_after_retry_after_for_reads_and_writes(is_write: bool) -> None:
    clock = FakeClock()
    fn = Flaky(clock, rate_limited(7.0), rate_limited(3.0))
    assert retry(fn, clock, is_write=is_write) == "ok"
    assert fn.attempt_times == pytest.approx([0.0, 7.0, 10.0], abs=1e-6)


def test_429_without_retry_after_backs_off_exponentially() -> None:
    clock = FakeClock()
    fn = Flaky(clock, rate_limited(), rate_limited(), rate_limited())
    assert retry(fn, clock, base=2.0) == "ok"
    assert fn.attempt_times == pytest.approx([0.0, 2.0, 6.0, 14.0], abs=1e-6)


def test_a_429_holds_back_other_callers_sharing_the_limiter() -> None:
    clock = FakeClock()
    lim = limiter(clock, rate=1e9)

    async def go() -> tuple[list[float], float]:
        fn = Flaky(clock, rate_limited(20.0))
        await call_with_retry(fn, limiter=lim, policy=RetryPolicy(jitter=0.0), sleep=clock.sleep)
        await lim.acquire()  # another caller, after the penalty was set
        return fn.attempt_times, clock.now - 1000.0

    times, other = run(go())
    assert times == pytest.approx([0.0, 20.0], abs=1e-6)
    assert other >= 20.0


def test_a_timed_out_read_is_tried_twice_at_most() -> None:
    # A CLI that hung once usually hangs again: 2 x timeout, not 5 x timeout + backoff.
    clock = FakeClock()
    slow = CliTimeoutError("slow", timeout=90)
    assert run_ok(Flaky(clock, slow), clock) == [0.0, 1.0]
    fn = Flaky(clock, slow, slow)
    with pytest.raises(CliTimeoutError):
        retry(fn, clock)
    assert len(fn.attempt_times) == 2


def test_retries_stop_at_the_time_budget() -> None:
    clock = FakeClock()
    fn = Flaky(clock, *([ServerError("503")] * 10))
    with pytest.raises(ServerError):
        run(
            call_with_retry(
                fn,
                limiter=limiter(clock, rate=1e9),
                policy=RetryPolicy(base=50.0, jitter=0.0, budget=300.0, attempts=10),
                sleep=clock.sleep,
                clock=clock,
            )
        )
    # The first retry at once (the next slot), then waits of 50 s and 60 s (the cap); a
    # sixth wait would end past the 300 s budget.
    assert fn.attempt_times == pytest.approx([0.0, 0.0, 50.0, 110.0, 170.0, 230.0, 290.0], abs=1e-6)


def run_ok(fn: Any, clock: FakeClock) -> list[float]:
    assert retry(fn, clock) == "ok"
    return [t - fn.attempt_times[0] for t in fn.attempt_times]


@pytest.mark.parametrize("error", [ServerError("502")])
def test_reads_are_retried_on_5xx(error: Exception) -> None:
    clock = FakeClock()
    fn = Flaky(clock, error, error)
    seen: list[tuple[int, str, float]] = []
    result = run(
        call_with_retry(
            fn,
            limiter=limiter(clock, rate=1e9),
            policy=RetryPolicy(base=1.0, jitter=0.0),
            sleep=clock.sleep,
            on_retry=lambda n, exc, delay: seen.append((n, type(exc).__name__, delay)),
        )
    )
    assert result == "ok"
    # The first retry takes the next slot; a second failure in a row backs off.
    assert fn.attempt_times == pytest.approx([0.0, 0.0, 1.0], abs=1e-6)
    assert seen == [(1, type(error).__name__, 0.0), (2, type(error).__name__, 1.0)]


def test_a_read_that_failed_once_is_retried_in_the_next_slot_under_pacing() -> None:
    # At 120/min a slot is 0.5 s: the retry takes the slot after the one it lost, so a
    # paced pull with a stray 5xx loses one slot, not a backoff's worth of them.
    clock = FakeClock()
    lim = limiter(clock, rate=120, per=60.0)
    fn = Flaky(clock, ServerError("503"))

    async def pull() -> list[float]:
        await call_with_retry(fn, limiter=lim, policy=RetryPolicy(jitter=0.0), sleep=clock.sleep)
        await lim.acquire()  # the pull's next page
        return [*fn.attempt_times, clock.now - 1000.0]

    assert run(pull()) == pytest.approx([0.0, 0.5, 1.0], abs=1e-6)


@pytest.mark.parametrize("error", [ServerError("502"), CliTimeoutError("slow", timeout=1)])
def test_writes_are_not_retried_on_5xx_or_timeouts(error: Exception) -> None:
    clock = FakeClock()
    fn = Flaky(clock, error)
    with pytest.raises(type(error)):
        retry(fn, clock, is_write=True)
    assert len(fn.attempt_times) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "error", [ActionFailedError("bad input"), NotLoggedInError("logged out"), ValueError("x")]
)
def test_other_errors_are_never_retried(error: Exception) -> None:
    clock = FakeClock()
    fn = Flaky(clock, error)
    with pytest.raises(type(error)):
        retry(fn, clock)
    assert len(fn.attempt_times) == 1


@pytest.mark.parametrize(
    ("error", "is_write"),
    [
        (RateLimitedError("429", retry_after=1), False),
        (RateLimitedError("429", retry_after=1), True),
        (ServerError("500"), False),
    ],
)
def test_attempts_are_bounded(error: Exception, is_write: bool) -> None:
    clock = FakeClock()
    fn = Flaky(clock, *([error] * 50))
    with pytest.raises(type(error)):
        retry(fn, clock, is_write=is_write, attempts=4)
    assert len(fn.attempt_times) == 4


def test_retries_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mixmax_nb")
    clock = FakeClock()
    retry(Flaky(clock, ServerError("502")), clock)
    assert "retrying after ServerError (attempt 1" in caplog.text
