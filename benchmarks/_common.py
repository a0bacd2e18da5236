"""Shared benchmark helpers: a deterministic live-feed payload and peak-RSS probes.

Peak memory is measured as resident set size (RSS), not with tracemalloc: pyarrow
allocates through its own memory pool, which tracemalloc does not see (it would
flatter the fast path), and tracing every Python allocation slows the
allocation-heavy naive path far more than the fast one. On Linux the kernel's
high-water mark (``VmHWM``) is reset right before the measured call by writing
``5`` to ``/proc/self/clear_refs``, so the figure is the true peak of that call
above the RSS it started from. Elsewhere a sampling thread polls RSS every
millisecond (coarser; it may miss short spikes).
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

EVENT_TYPES = ("sent", "opened", "clicked", "downloaded", "replied", "bounced", "unsubscribed")
# Roughly what a live feed looks like: opens dominate, downloads and unsubscribes are rare.
TYPE_WEIGHTS = (0.22, 0.45, 0.12, 0.02, 0.14, 0.03, 0.02)
FIRST_NAMES = ("Ana", "Bo", "Chloé", "Dmitri", "Eşref", "Fatima", "Grace", "Hiro", "Ines", "Jun")
LAST_NAMES = ("Alvarez", "Baker", "Chen", "Dubois", "Eriksen", "Fernández", "Gupta", "Ito")
DOMAINS = ("acme.com", "globex.io", "initech.net", "umbrella.co", "wayne-ent.com", "müller.de")
CITIES = ("San Francisco", "New York", "London", "Berlin", "São Paulo", "Tokyo", None)
OSES = ("Mac OS X", "Windows 10", "iOS", "Android", "Linux")
PROGRAMS = ("Gmail", "Outlook", "Apple Mail", "Chrome", "Safari")
SUBJECTS = (
    "Quick question",
    "Following up on {co}",
    "Idea for {co}'s Q3 pipeline",
    "Re: intro",
    "Worth a 15-minute chat?",
    "{co} x Mixmax",
)
ALPHANUM = np.array(list("23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"))


def _meteor_ids(rng: np.random.Generator, n: int) -> list[str]:
    """17-character Meteor ids (users, messages)."""
    chars = rng.integers(0, len(ALPHANUM), size=(n, 17))
    return ["".join(row) for row in ALPHANUM[chars]]


def make_events(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` live-feed events in the wire format, newest first; same seed, same payload.

    About five events per message, 30% of messages outside any sequence
    (``sequence: null``); click/download fields only on those event types, device
    fields only on opens and clicks, as the live feed sends them.
    """
    rng = np.random.default_rng(seed)
    n_messages = max(1, n // 5)
    n_contacts = max(1, n // 25)
    users = _meteor_ids(rng, 12)
    message_ids = _meteor_ids(rng, n_messages)
    first = rng.integers(0, len(FIRST_NAMES), n_contacts)
    last = rng.integers(0, len(LAST_NAMES), n_contacts)
    dom = rng.integers(0, len(DOMAINS), n_contacts)
    contacts = [
        (
            f"{FIRST_NAMES[f].lower()}.{LAST_NAMES[la].lower()}{i}@{DOMAINS[d]}",
            f"{FIRST_NAMES[f]} {LAST_NAMES[la]}",
            DOMAINS[d].split(".")[0].title(),
        )
        for i, (f, la, d) in enumerate(zip(first, last, dom, strict=True))
    ]
    sequences = [
        {"_id": f"{0x5CA6452D00000000 + s:016x}{s:08x}", "name": f"Outbound wave {s + 1}"}
        for s in range(40)
    ]
    stage_ids = [[f"{0x5CA6452E00000000 + s:016x}{k:08x}" for k in range(5)] for s in range(40)]

    msg_user = rng.integers(0, len(users), n_messages)
    msg_contact = rng.integers(0, n_contacts, n_messages)
    msg_seq = np.where(rng.random(n_messages) < 0.7, rng.integers(0, 40, n_messages), -1)
    msg_stage = rng.integers(0, 5, n_messages)
    msg_subject = rng.integers(0, len(SUBJECTS), n_messages)

    event_msg = np.sort(rng.integers(0, n_messages, n))[::-1]
    types = rng.choice(len(EVENT_TYPES), size=n, p=TYPE_WEIGHTS)
    start = 1_735_689_600_000  # 2025-01-01
    stamps = np.sort(start + rng.integers(0, 90 * 86_400_000, n))[::-1]
    city = rng.integers(0, len(CITIES), n)
    os_ = rng.integers(0, len(OSES), n)
    program = rng.integers(0, len(PROGRAMS), n)
    mobile = (rng.random(n) < 0.35).astype(int)
    link = rng.integers(0, 20, n)
    ids = rng.integers(0, 2**63, n, dtype=np.int64)

    events: list[dict[str, Any]] = []
    for i in range(n):
        m = int(event_msg[i])
        email, name, company = contacts[msg_contact[m]]
        kind = EVENT_TYPES[types[i]]
        s = int(msg_seq[m])
        device = kind in ("opened", "clicked")
        events.append(
            {
                "_id": f"{int(stamps[i]) // 1000:08x}{int(ids[i]):016x}",
                "type": kind,
                "timestamp": int(stamps[i]),
                "messageId": message_ids[m],
                "userId": users[msg_user[m]],
                "recipientEmail": email,
                "recipientName": name,
                "subject": SUBJECTS[msg_subject[m]].format(co=company),
                "sequence": None
                if s < 0
                else {
                    "_id": sequences[s]["_id"],
                    "name": sequences[s]["name"],
                    "stageId": stage_ids[s][msg_stage[m]],
                    "stageIndex": int(msg_stage[m]),
                },
                "city": CITIES[city[i]] if device else None,
                "os": OSES[os_[i]] if device else None,
                "program": PROGRAMS[program[i]] if device else None,
                "isMobile": int(mobile[i]) if device else 0,
                "linkUrl": f"https://example.com/p/{link[i]}" if kind == "clicked" else None,
                "linkText": f"Read more {link[i]}" if kind == "clicked" else None,
                "fileName": f"deck-{link[i]}.pdf" if kind == "downloaded" else None,
            }
        )
    return events


# -- peak memory -------------------------------------------------------------------------

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def _status_kb(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def can_reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        _status_kb("VmHWM")
    except OSError:
        return False
    return True


def current_rss() -> int:
    """Resident set size now, in bytes."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def measure(fn: Callable[[], T]) -> tuple[T, float, int]:
    """Run ``fn`` once; return (result, seconds, peak RSS above the starting RSS in bytes).

    The result stays alive until the peak is read, so the output counts too.
    """
    if can_reset_peak():
        _CLEAR_REFS.write_text("5")  # VmHWM := current RSS
        base = _status_kb("VmRSS") * 1024
        t0 = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t0
        peak = _status_kb("VmHWM") * 1024
        return result, seconds, peak - base

    base = current_rss()
    high = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            high[0] = max(high[0], current_rss())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    high[0] = max(high[0], current_rss())
    return result, seconds, high[0] - base


class Counting:
    """Wraps a transport: counts requests per action, their start times, 429s and
    how many are in flight at once. Every request counts against Mixmax's 120/min."""

    def __init__(self, inner: Any) -> None:
        from collections import Counter

        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.starts: list[float] = []
        self.rate_limited = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def run_action(self, key: str, input: Any) -> Any:
        return await self._counted(key, self.inner.run_action(key, input))

    async def run_action_json(self, key: str, input: Any) -> Any:
        # A pull reads events as printed: those requests count alike.
        return await self._counted(key, self.inner.run_action_json(key, input))

    async def _counted(self, key: str, call: Any) -> Any:
        from mixmax_nb.errors import RateLimitedError

        self.calls[key] += 1
        self.starts.append(time.perf_counter())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await call
        except RateLimitedError:
            self.rate_limited += 1
            raise
        finally:
            self.in_flight -= 1


# -- PASS/FAIL ----------------------------------------------------------------------------

_FAILED: list[str] = []


def verdict(name: str, ok: bool, figure: str, target: str, *, record: bool = True) -> bool:
    """Print one figure with its target and PASS/FAIL; remember a FAIL for exit_code().

    Also one ``BENCH`` line (``kind: verdict``, under the running script's name), from
    which readme_table.py writes the README's rows for benchmarks without a peer;
    ``record=False`` where the caller emits a richer line itself (:func:`versus`).
    """
    if not ok:
        _FAILED.append(name)
    print(f"{name:<44} {figure:<52} ({target})  {'PASS' if ok else 'FAIL'}", flush=True)
    if record:
        bench = Path(sys.argv[0]).stem
        emit(bench=bench, kind="verdict", name=name, figure=figure, target=target, ok=ok)
    return ok


def exit_code() -> int:
    """1 when any verdict failed (``make bench`` stops on it), else 0; says which."""
    print("FAIL: " + ", ".join(_FAILED) if _FAILED else "all PASS")
    return 1 if _FAILED else 0


# -- side by side with the best peer ------------------------------------------------------

SIZES = (100_000, 1_000_000, 5_000_000)
"""Event counts every size-dependent benchmark runs at (``--sizes`` narrows them)."""


def parse_sizes(text: str) -> list[int]:
    """``"100k,1M,5M"`` -> ``[100000, 1000000, 5000000]``."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip().lower()
        scale = {"k": 1_000, "m": 1_000_000}.get(part[-1:], 1)
        out.append(int(float(part.rstrip("km")) * scale))
    return out


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 100_000 == 0:
        return f"{n / 1_000_000:g}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return f"{n:,}"


def emit(**fields: Any) -> None:
    """One machine-readable line (``BENCH {json}``): what readme_table.py reads."""
    import json

    print("BENCH " + json.dumps(fields, sort_keys=True), flush=True)


def versus(
    bench: str,
    figure: str,
    size: int,
    ours: float,
    peers: dict[str, float],
    goal: float,
    *,
    unit: str = "s",
    higher_is_better: bool = False,
) -> bool:
    """Our figure beside the best peer's on the same input, in the same run, as a ratio.

    ``ratio`` is how far ahead we are: peer / ours for times and bytes (lower is
    better), ours / peer otherwise; PASS when it is at least ``goal``.
    """
    best = (max if higher_is_better else min)(peers, key=lambda k: peers[k])
    peer = peers[best]
    if higher_is_better:
        ratio = ours / peer if peer else float("inf")
    else:
        ratio = peer / ours if ours else float("inf")
    ok = ratio >= goal
    fmt = _fmt(unit)
    others = ", ".join(f"{k} {fmt(v)}" for k, v in peers.items() if k != best)
    verdict(
        f"{bench} {figure} @{size_label(size)}",
        ok,
        f"ours {fmt(ours)} vs {best} {fmt(peer)}: {ratio:.2f}x",
        f">= {goal:g}x ahead" + (f"; also {others}" if others else ""),
        record=False,
    )
    emit(
        bench=bench,
        figure=figure,
        size=size,
        ours=ours,
        peer=best,
        peer_value=peer,
        peers=peers,
        ratio=ratio,
        goal=f">= {goal:g}x",
        unit=unit,
        ok=ok,
    )
    return ok


def _fmt(unit: str) -> Callable[[float], str]:
    if unit == "s":
        return lambda v: f"{v:.3f} s"
    if unit == "B":
        return lambda v: f"{v:,.0f} B"
    if unit == "MiB":
        return lambda v: f"{v:,.0f} MiB"
    return lambda v: f"{v:,.4g} {unit}"


def growth(bench: str, figure: str, by_size: dict[int, float], unit: str = "s") -> None:
    """How a figure grows between sizes, beside how the input grows (linear = equal)."""
    sizes = sorted(by_size)
    fmt = _fmt(unit)
    steps = []
    for a, b in itertools.pairwise(sizes):
        factor = by_size[b] / by_size[a] if by_size[a] else float("inf")
        steps.append(f"{size_label(a)}->{size_label(b)}: x{factor:.2f} for x{b / a:g} events")
        emit(bench=bench, figure=figure, kind="growth", size=b, base=a, factor=factor, rows=b / a)
    figures = ", ".join(f"{size_label(s)} {fmt(by_size[s])}" for s in sizes)
    print(f"  growth of {bench} {figure}: {figures}; " + "; ".join(steps), flush=True)
