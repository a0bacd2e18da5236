"""Client-side pacing under Mixmax's rate limit, and retries for reads only.

Mixmax allows 120 requests per minute per user (fixed). Rather than bursting and
collecting 429s, :class:`RateLimiter` hands out evenly spaced start times, so a
sliding or a fixed one-minute window on the server never sees more than the
ceiling. Its state is guarded by a thread lock and it never holds an asyncio
primitive, so one limiter can serve several event loops and threads (a notebook's
kernel loop and the worker loops of sync calls).

:func:`call_with_retry` retries a *read* on 429 (honouring Retry-After), on 5xx and
on timeouts, with capped exponential backoff and jitter. The first retry after a 5xx
takes the limiter's next slot at once: under pacing that slot is already half a
second away, so waiting a backoff on top would leave slots unused that the pull then
never gets back (bench_load's pacing under the realistic profile's random 5xx); a
second failure in a row backs off as usual. A *write* is retried only
after a 429, which Mixmax refuses before doing anything; any other failure of a
write is raised at once, because repeating it could enroll someone twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import CliTimeoutError, RateLimitedError, ServerError

log = logging.getLogger(__name__)
T = TypeVar("T")

MIXMAX_REQUESTS_PER_MINUTE = 120
# 2% below the ceiling: absorbs clock and latency jitter between us and the server
# while keeping throughput above the 95% budget.
DEFAULT_HEADROOM = 0.98


class RateLimiter:
    """Evenly spaced slots, at most ``rate`` calls per ``per`` seconds (GCRA).

    With ``burst=1`` a call may start one slot early when earlier calls started
    late (a slow page delays the next cursor): that time is made up instead of
    lost, while any window of ``per`` seconds still holds at most
    ``floor(rate + burst) + 1`` calls -- 119 at the default rate, under Mixmax's
    120 even for a sliding window. ``burst=0`` gives strictly even spacing.

    ``clock`` and ``sleep`` are injectable so tests run on a fake clock.
    """

    def __init__(
        self,
        rate: float = MIXMAX_REQUESTS_PER_MINUTE * DEFAULT_HEADROOM,
        per: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        burst: int = 0,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if burst < 0:
            raise ValueError("burst must be >= 0")
        self.interval = per / rate
        self.tolerance = burst * self.interval
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._lock = threading.Lock()
        self.calls = 0
        self.waited = 0.0

    def reserve(self) -> float:
        """Claim the next slot; return how long the caller must wait before starting."""
        with self._lock:
            now = self._clock()
            # _next is the theoretical arrival time: a call may start `tolerance` early.
            start = max(now, self._next - self.tolerance)
            self._next = max(self._next, start) + self.interval
            self.calls += 1
            delay = start - now
            self.waited += delay
            return delay

    def penalize(self, seconds: float) -> None:
        """The server said 429: push every later slot back by Retry-After."""
        with self._lock:
            # Even the early start the tolerance allows must wait out Retry-After.
            self._next = max(self._next, self._clock() + seconds + self.tolerance)

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await self._sleep(delay)


class NoLimit(RateLimiter):
    """For the sandbox's instant profile: nothing to pace, but a 429 is still honoured."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(rate=1e12, clock=clock, sleep=sleep)

    async def acquire(self) -> None:
        # No spacing; but call_with_retry waits out Retry-After through penalize(),
        # so a penalty must still hold the next call back.
        with self._lock:
            self.calls += 1
            delay = self._next - self._clock()
        if delay > 0:
            self.waited += delay
            await self._sleep(delay)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base: float = 1.0
    cap: float = 60.0
    jitter: float = 0.25
    timeout_attempts: int = 2
    """A call that hung once usually hangs again: a timed-out read is tried this often."""
    budget: float = 300.0
    """Seconds a read may take, every attempt and wait included: no new attempt starts
    after that (a 429 wait, which the server asked for, is the one exception)."""

    def backoff(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (attempt counts from 1)."""
        if retry_after is not None:
            return min(self.cap, retry_after) + rng.uniform(0, self.jitter)
        delay = min(self.cap, self.base * 2.0 ** (attempt - 1))
        return delay * (1 + rng.uniform(-self.jitter, self.jitter))


async def call_with_retry(
    fn: Callable[[], Awaitable[T]],
    *,
    limiter: RateLimiter,
    policy: RetryPolicy = RetryPolicy(),
    is_write: bool = False,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run ``fn`` under the limiter; retry what is safe to retry (see module docstring)."""
    rng = rng or random.Random()
    attempt = timeouts = server_errors = 0
    started = clock()
    while True:
        attempt += 1
        await limiter.acquire()
        try:
            return await fn()
        except RateLimitedError as exc:
            # Refused before it ran: safe to repeat, even for a write.
            if attempt >= policy.attempts:
                raise
            delay = policy.backoff(attempt, exc.retry_after, rng)
            # Every caller sharing the limiter must hold back, not only this one;
            # the next acquire() does the waiting.
            limiter.penalize(delay)
            error: BaseException = exc
            pause = 0.0
        except (ServerError, CliTimeoutError) as exc:
            if is_write or attempt >= policy.attempts:
                raise
            timeouts += isinstance(exc, CliTimeoutError)
            if timeouts >= policy.timeout_attempts:
                raise
            if isinstance(exc, ServerError):
                server_errors += 1
                # The first: the next slot is the backoff (see the module docstring).
                delay = policy.backoff(server_errors - 1, None, rng) if server_errors > 1 else 0.0
            else:
                delay = policy.backoff(attempt, None, rng)
            if clock() - started + delay > policy.budget:
                raise
            error = exc
            pause = delay
        log.info("retrying after %s (attempt %d, %.1f s)", type(error).__name__, attempt, delay)
        if on_retry is not None:
            on_retry(attempt, error, delay)
        if pause > 0:
            await sleep(pause)
