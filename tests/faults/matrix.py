"""The fault matrix: every fault x workflow x way in, run and checked the same way.

A *row* is (fault, workflow, path). ``path`` is how the toolkit reaches the sandbox:

* ``sandbox`` -- the in-process :class:`SandboxTransport`; faults go in through
  ``faults.inject`` (Python);
* ``cli`` -- the real :class:`CliTransport`, which starts a `membrane` process for
  every call (``membrane_wrapper.py``: the sandbox command, killable on demand);
  faults go in through the command line, ``mixmax-nb-sandbox sandbox fault ...``,
  against the same database file.

Each row copies a seeded ``small`` account, arms the fault, runs the workflow the way
a person would, then (when it stopped) clears the fault, fixes what a person would
fix (reconnect after a defunct connection) and runs it again. It then checks:

* **message**: whatever stopped the run said what to do (the exception's ``str``
  carries a hint; a widget shows it);
* **cache**: the event store holds no duplicate id and exactly the ids a fresh, full,
  fault-free pull into an empty home gets (no gap, nothing extra);
* **enrolled**: every one of the 2,000 intended recipients is in the sequence exactly
  once, counted in the sandbox's own database (the server side).

Used by ``tests/faults/test_matrix.py`` (assertions) and ``benchmarks/fault_matrix.py``
(the printed table of ``make faults``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from conftest import REFERENCE_DATE

from mixmax_nb.client import AsyncClient
from mixmax_nb.config import Settings
from mixmax_nb.enrollment.apply import load_sequence
from mixmax_nb.errors import InputError, MixmaxNbError
from mixmax_nb.sandbox import seed
from mixmax_nb.sandbox.faults import MembraneFault
from mixmax_nb.sandbox.membrane import Emulator, SandboxTransport
from mixmax_nb.sandbox.store import Store
from mixmax_nb.transport.cli import CliTransport
from mixmax_nb.transport.limits import RetryPolicy

REFERENCE = REFERENCE_DATE
# The pulls read the last three days: Mixmax serves events one message at a time, and
# through the CLI each message is a process under the 120/min pacer, so the whole small
# account (661 event requests) would take minutes a row. Three days are 35 messages with
# engagement, enough for every fault to land mid-pull and for the re-run to be checked.
PULL_SINCE = pd.Timestamp(REFERENCE, tz="UTC") - pd.Timedelta(days=3)
SEED = 11
N_ENROLL = 2000
WRAPPER = Path(__file__).with_name("membrane_wrapper.py")
CHILD = Path(__file__).with_name("enroll_child.py")

FAULTS = (
    "rate_limit",
    "server_error",
    "timeout",
    "non_json",
    "killed",
    "defunct",
    "truncated_page",
    "next_echoed",
    "interrupt",
    "overlap",
    "kill_random",
    "oversized",
    "hostile",
    "torn_store",
)
WORKFLOWS = ("pull", "enroll", "dashboard", "wizard")
PATHS = ("sandbox", "cli")

FAULT_LABELS = {
    "rate_limit": "429 burst (x3, Retry-After)",
    "server_error": "5xx (503 x2)",
    "timeout": "timeout (call hangs)",
    "non_json": "non-JSON output",
    "killed": "CLI killed mid-call (-9)",
    "defunct": "connection defunct mid-run",
    "truncated_page": "truncated pages (x2)",
    "next_echoed": "`next` echoed on last page",
    "interrupt": "interrupt, then re-run",
    "overlap": "2 processes, overlapping plans at once",
    "kill_random": "kill -9 at a random point, then re-run",
    "oversized": "1.5 KB variables, one 200 KB row",
    "hostile": "credential-looking subjects and variables",
    "torn_store": "cache without coverage, then truncated",
}
# Rows that only make sense for some workflows.
ONLY = {
    "overlap": {"enroll"},
    "kill_random": {"enroll"},
    "oversized": {"enroll"},
    "hostile": {"pull", "enroll", "dashboard"},
    "torn_store": {"pull"},
}

# What "says what to do" looks like: an instruction, not only a diagnosis.
_ACTIONABLE = re.compile(
    r"(?i)\b(try again|run (it |this )?again|wait\b|reconnect|open |check |inspect|"
    r"install|log in|click|update|paste)"
)

# Call timeouts short enough for the matrix, long enough for a cold subprocess.
TIMEOUTS = {"sandbox": 2.0, "cli": 6.0}
HANG_SECONDS = 30.0
# Fast retries: the same code path as the default policy, minus the waiting.
RETRY = RetryPolicy(attempts=5, base=0.2, cap=2.0, jitter=0.1)


def applicable(fault: str, workflow: str, path: str) -> bool:
    if fault in ONLY and workflow not in ONLY[fault]:
        return False
    if fault == "oversized" and path == "sandbox":
        return False  # in process there is no command line: Membrane's 10 MB applies
    if fault == "killed" and path == "sandbox":
        return False  # no process to kill in process
    # The wizard reads no list, so page faults cannot reach it.
    return not (fault in ("truncated_page", "next_echoed") and workflow == "wizard")


# -- one row's world ---------------------------------------------------------------------


# Rows whose account has other names than the default (``names`` of the sandbox).
NAMES = {"hostile": "adversarial"}


def build_template(directory: Path, names: str = "default") -> Path:
    """A seeded small account, built once and copied by every row (of its ``names``)."""
    path = directory / ("template.sqlite" if names == "default" else f"template-{names}.sqlite")
    if path.exists():
        return path
    # Built under a temporary name: parallel rows may ask for it at the same moment.
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    store = Store.open(tmp)
    ref = date.fromisoformat(REFERENCE)
    seed.build(store, seed=SEED, size="small", reference_date=ref, names=names)
    with store.lock:
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    os.replace(tmp, path)
    return path


@contextlib.contextmanager
def environ(**values: str | None) -> Iterator[None]:
    """Set (or unset, with None) environment variables for the duration; restore them."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Tap:
    """Wraps a transport: counts action runs and calls ``hook(key, n)`` before each."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0
        self.hook: Callable[[str, int], None] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def connection_id(self) -> Any:
        return self.inner.connection_id

    @connection_id.setter
    def connection_id(self, value: Any) -> None:
        self.inner.connection_id = value

    async def _count(self, key: str) -> None:
        self.calls += 1
        if self.hook is not None:
            self.hook(key, self.calls)
            # The in-process sandbox answers without ever yielding to the loop; an
            # interrupt (a cancel) can only land where the loop runs, so give it a turn.
            await asyncio.sleep(0)

    async def run_action(self, key: str, input: Mapping[str, Any] | None) -> Any:
        await self._count(key)
        return await self.inner.run_action(key, input)

    async def run_action_json(self, key: str, input: Mapping[str, Any] | None) -> Any:
        await self._count(key)
        return await self.inner.run_action_json(key, input)


class World:
    """A private copy of the account, a home for cache and journal, and the controls."""

    def __init__(self, root: Path, template: Path, path: str, *, start: str = "ready") -> None:
        self.root = root
        self.path = path
        root.mkdir(parents=True, exist_ok=True)
        self.db = root / "account.sqlite"
        shutil.copyfile(template, self.db)
        self.home = root / "home"
        self.kill_file = root / "kill.json"
        self.wrapper = root / "membrane"
        self.wrapper.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" "{WRAPPER}" "$@"\n', encoding="utf-8"
        )
        self.wrapper.chmod(self.wrapper.stat().st_mode | stat.S_IXUSR)
        self._env = environ(
            MIXMAX_NB_SANDBOX_DB=str(self.db),
            MIXMAX_NB_HOME=str(self.home),
            FAULT_KILL_FILE=str(self.kill_file),
            MIXMAX_NB_BACKEND=None,
            MIXMAX_NB_MEMBRANE_BIN=None,
            MIXMAX_NB_CONNECTION_ID=None,
            TQDM_DISABLE="1",  # progress bars would only clutter the table
        )
        self._env.__enter__()
        self.settings = Settings.from_env().with_(timeout=TIMEOUTS[path])
        self.control = Emulator.open(self.settings, db=str(self.db), start=start)

    def close(self) -> None:
        self.control.store.close()
        self._env.__exit__(None, None, None)

    def ready_connection(self) -> str | None:
        try:
            connections = self.control.list_connections()
        except MembraneFault:  # logged out: the wizard finds (or makes) the connection
            return None
        ready = [c for c in connections if c["state"] == "READY"]
        return str(ready[0]["id"]) if ready else None

    def transport(self) -> Any:
        if self.path == "sandbox":
            return SandboxTransport.open(self.settings, db=str(self.db))
        return CliTransport(
            self.settings, binary=str(self.wrapper), connection_id=self.ready_connection()
        )

    def client(self, transport: Any) -> AsyncClient:
        return AsyncClient(transport, retry=RETRY)

    # -- faults, by the way in of this row --

    def inject(self, kind: str, *, count: int = 1, after: int = 0, **params: Any) -> None:
        if self.path == "sandbox":
            self.control.conditions.inject(kind, count=count, after=after, **params)
            return
        argv = [sys.executable, "-m", "mixmax_nb.sandbox.cli", "sandbox", "fault", kind]
        argv += ["--count", str(count), "--after", str(after)]
        for name, value in params.items():
            argv += ["--" + name.replace("_", "-"), str(value)]
        subprocess.run(argv, check=True, capture_output=True, timeout=30)

    def kill(self, match: str, *, after: int, when: str) -> None:
        self.kill_file.write_text(
            json.dumps({"match": match, "after": after, "count": 1, "when": when})
        )

    def disarm(self) -> None:
        self.control.conditions.clear()
        self.kill_file.unlink(missing_ok=True)

    def reconnect(self) -> None:
        """What a person does on the connect page after a defunct connection."""
        for conn in self.control.list_connections():
            if conn["state"] != "READY":
                self.control.complete_connect(conn["id"])

    def server_counts(self, sequence_id: str, emails: list[str]) -> dict[str, int]:
        rows = self.control.store.read(
            "SELECT email, COUNT(*) AS n FROM recipients WHERE sequence_id = ? GROUP BY email",
            (sequence_id,),
        )
        counts = {r["email"]: int(r["n"]) for r in rows}
        return {e: counts.get(e, 0) for e in emails}

    async def truth_ids(self) -> set[str]:
        """Event ids of a fresh, full, fault-free pull into an empty home."""
        with environ(MIXMAX_NB_HOME=str(self.root / "truth_home")):
            transport = SandboxTransport.open(self.settings, db=str(self.db))
            frame = await AsyncClient(transport).events(since=PULL_SINCE)
            await transport.aclose()
        return set(frame["id"].astype(str))


# -- outcome of a row --------------------------------------------------------------------


@dataclass
class Outcome:
    fault: str
    workflow: str
    path: str
    first: str = ""
    message: str = ""
    rerun: str = ""
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def cell(self) -> str:
        if not self.ok:
            return "FAIL: " + "; ".join(self.problems)
        parts = [self.first]
        if self.rerun:
            parts.append(self.rerun)
        parts += self.checks
        return ", ".join(p for p in parts if p)

    def note_error(self, exc: BaseException, *, shown: str | None = None) -> None:
        """Record what stopped the run and check that it says what to do next."""
        self.first = f"stopped: {type(exc).__name__}"
        text = shown if shown is not None else str(exc)
        self.message = text
        hint = getattr(exc, "hint", "")
        if not isinstance(exc, MixmaxNbError):
            self.problems.append(f"{type(exc).__name__} is outside the exception tree: {exc}")
        elif not hint or hint not in text:
            self.problems.append(f"no hint in the message: {text!r}")
        if not _ACTIONABLE.search(text):
            self.problems.append(f"the message does not say what to do: {text!r}")


def _widget_text(output: Any) -> str:
    return "".join(str(o.get("text", "")) for o in output.outputs)


# -- arming ------------------------------------------------------------------------------


def arm(world: World, fault: str, workflow: str, *, after: int) -> None:
    """Inject ``fault`` so that it hits the workflow ``after`` Mixmax calls from now."""
    if fault == "rate_limit":
        world.inject("rate_limit", count=3, after=after, retry_after=0.3)
    elif fault == "server_error":
        world.inject("server_error", count=2, after=after, status=503)
    elif fault == "timeout":
        world.inject("timeout", count=1, after=after, seconds=HANG_SECONDS)
    elif fault == "non_json":
        world.inject("non_json", count=1, after=after)
    elif fault == "defunct":
        world.inject("defunct", count=1, after=after)
    elif fault == "truncated_page":
        world.inject("truncated_page", count=2, after=after)
    elif fault == "killed":
        if workflow == "wizard":
            world.kill("get-current-user", after=0, when="before")
        elif workflow == "enroll":
            # The worst case for a write: it reached the server, its answer did not come back.
            world.kill("add-recipient-to-sequence", after=after, when="after")
        else:
            world.kill("list-livefeed-events", after=after, when="before")
    # next_echoed: the sandbox echoes `next` on every last page, as Mixmax does (no arming);
    # interrupt: the workflow cancels itself (see each workflow).


async def _run_or_interrupt(
    tap: Tap, coro: Awaitable[Any], *, fault: str, match: str, at: int
) -> tuple[Any, BaseException | None, bool]:
    """Run ``coro``; for ``interrupt`` cancel it just after call ``at`` matching ``match``
    started (the kernel interrupt / Cancel button). Returns (result, error, interrupted)."""
    task = asyncio.ensure_future(coro)
    seen = [0]
    delay = 0.05 if isinstance(tap.inner, CliTransport) else 0.0
    if fault == "interrupt":
        loop = asyncio.get_running_loop()

        def hook(key: str, _n: int) -> None:
            if match in key:
                seen[0] += 1
                if seen[0] == at:
                    # Through the CLI: slightly later, so a process is running when the
                    # interrupt lands. In process: at once, or the pull would be over.
                    if delay:
                        loop.call_later(delay, task.cancel)
                    else:
                        task.cancel()  # lands at the task's next await (see Tap)

        tap.hook = hook
    try:
        return await task, None, False
    except asyncio.CancelledError:
        if fault != "interrupt":
            raise
        return None, None, True
    except Exception as exc:
        return None, exc, False
    finally:
        tap.hook = None


async def _check_cache(world: World, client: AsyncClient, out: Outcome) -> None:
    # What the store holds now, without a request (the per-message store, or the
    # account-wide feed's, whichever this connection uses).
    frame = await client.events(since=PULL_SINCE, refresh=False)
    ids = frame["id"].astype(str)
    dups = int(ids.duplicated().sum())
    truth = await world.truth_ids()
    got = set(ids)
    if dups:
        out.problems.append(f"{dups} duplicate event(s) in the cache")
    if truth - got:
        out.problems.append(f"{len(truth - got)} event(s) missing from the cache (a gap)")
    if got - truth:
        out.problems.append(f"{len(got - truth)} event(s) in the cache that do not exist")
    if not (dups or truth ^ got):
        out.checks.append(f"cache = fresh pull ({len(got):,} ids, 0 dup)")


async def _check_dataset(world: World, dataset: Any, out: Outcome) -> None:
    """What the dashboard shows equals a fresh, fault-free pull (same KPI table)."""
    from mixmax_nb import analytics

    if dataset is None:
        out.problems.append("the dashboard has no data after the re-run")
        return
    with environ(MIXMAX_NB_HOME=str(world.root / "truth_home")):
        transport = SandboxTransport.open(world.settings, db=str(world.db))
        truth = await AsyncClient(transport).engagement(detail=dataset.detail)
        await transport.aclose()
    got = analytics.kpi_table(dataset, "sequence").drop(columns=["label"])
    want = analytics.kpi_table(truth, "sequence").drop(columns=["label"])
    if not got.reset_index(drop=True).equals(want.reset_index(drop=True)):
        out.problems.append("the dashboard's KPI table differs from a fresh pull")
    else:
        sent = int(got["sent"].sum())
        out.checks.append(f"KPI table = fresh pull ({sent:,} emails)")


# -- workflows ---------------------------------------------------------------------------


async def wf_pull(world: World, fault: str, out: Outcome) -> None:
    tap = Tap(world.transport())
    client = world.client(tap)
    await client.account_key()  # as a notebook would have done when it connected
    arm(world, fault, "pull", after=2)

    def pull() -> Awaitable[pd.DataFrame]:
        return client.events(since=PULL_SINCE)

    _, exc, interrupted = await _run_or_interrupt(tap, pull(), fault=fault, match="livefeed", at=3)
    await _finish(world, out, exc, interrupted, rerun=pull)
    await _check_cache(world, client, out)
    await tap.aclose()


async def _finish(
    world: World,
    out: Outcome,
    exc: BaseException | None,
    interrupted: bool,
    *,
    rerun: Callable[[], Awaitable[Any]],
    shown: str | None = None,
) -> Any:
    """Record the first run; clear the fault, fix what a person would, run it again."""
    if interrupted:
        out.first = "interrupted"
    elif exc is not None:
        out.note_error(exc, shown=shown)
    else:
        out.first = "ok (absorbed)" if out.fault not in ("next_echoed",) else "ok"
    world.disarm()
    if out.fault == "defunct":
        world.reconnect()
    try:
        result = await rerun()
    except Exception as again:
        out.problems.append(f"the re-run failed: {type(again).__name__}: {again}")
        return None
    out.rerun = "re-run ok" if (exc is not None or interrupted) else "re-run no-op ok"
    return result


def people(required: list[str], n: int) -> pd.DataFrame:
    data: dict[str, list[str]] = {
        "email": [f"fm.{i:05d}@prospect{i % 37}.example" for i in range(n)]
    }
    for name in required:
        data[name] = [f"{name}-{i}" for i in range(n)]
    return pd.DataFrame(data)


async def _own_sequence(client: AsyncClient) -> tuple[str, list[str]]:
    me = (await client.me())["_id"]
    sequences = await client.sequences()
    mine = sequences.loc[
        sequences["user_id"].eq(me) & ~sequences["archived"].fillna(False).astype(bool)
    ]
    sequence_id = str(mine["id"].iloc[0])
    return sequence_id, list((await load_sequence(client, sequence_id)).required)


def _check_once(world: World, out: Outcome, sequence_id: str, emails: list[str]) -> None:
    """Every intended address (compared case-folded) exactly once on the server side."""
    rows = world.control.store.read(
        "SELECT email FROM recipients WHERE sequence_id = ?", (sequence_id,)
    )
    counts = Counter(str(r["email"]).casefold() for r in rows)
    keys = {e.casefold() for e in emails}
    missing = sum(1 for k in keys if counts[k] == 0)
    twice = sum(1 for k in keys if counts[k] > 1)
    if missing:
        out.problems.append(f"{missing} intended recipient(s) not enrolled")
    if twice:
        out.problems.append(f"{twice} recipient(s) enrolled more than once")
    if not (missing or twice):
        out.checks.append(f"{len(keys):,} enrolled x1 (server count)")


def _child_env(world: World, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAULT_")}
    env.update(MIXMAX_NB_HOME=str(home), TQDM_DISABLE="1", MIXMAX_NB_SANDBOX_DB=str(world.db))
    if world.path == "cli":
        env["MIXMAX_NB_MEMBRANE_BIN"] = str(world.wrapper)
    return env


def _child(world: World, csv: Path, sequence_id: str, home: Path, *extra: str) -> Any:
    return subprocess.Popen(
        [sys.executable, str(CHILD), world.path, str(csv), sequence_id, *extra],
        env=_child_env(world, home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def wf_enroll_overlap(world: World, out: Outcome) -> None:
    """Two processes, two homes, one sequence: 1,000 shared addresses (the second list
    with other capitals, which Mixmax alone would take as new), planned before either
    applies, then applied at the same moment."""
    client = world.client(world.transport())
    sequence_id, required = await _own_sequence(client)
    shared = [f"ov.{i:05d}@prospect{i % 37}.example" for i in range(1000)]
    lists = {
        "a": shared + [f"a.{i:05d}@own.example" for i in range(500)],
        "b": [e.upper() for e in shared] + [f"b.{i:05d}@own.example" for i in range(500)],
    }
    go = world.root / "go"
    children = []
    for name, emails in lists.items():
        csv = world.root / f"{name}.csv"
        people(required, len(emails)).assign(email=emails).to_csv(csv, index=False)
        children.append(
            _child(world, csv, sequence_id, world.root / f"home_{name}", "--wait", str(go))
        )
    deadline = time.monotonic() + 120
    while len(list(world.root.glob("go.ready-*"))) < 2 and time.monotonic() < deadline:
        if any(c.poll() is not None for c in children):
            break
        await asyncio.sleep(0.05)
    go.write_text("go")
    answers = []
    for child in children:
        stdout, stderr = child.communicate(timeout=300)
        if child.returncode != 0:
            out.problems.append(f"a process failed: {stderr.strip()[-300:]}")
        else:
            answers.append(json.loads(stdout.strip().splitlines()[-1]))
    out.first = "ok: " + " + ".join(
        ", ".join(f"{k} {v}" for k, v in sorted(a.items())) for a in answers
    )
    _check_once(world, out, sequence_id, lists["a"] + lists["b"])
    await client.transport.aclose()


async def wf_enroll_kill(world: World, out: Outcome) -> None:
    """A notebook process killed (-9) after a random number of batches, then the same
    cell run again in another: everyone exactly once, nobody stranded."""
    client = world.client(world.transport())
    sequence_id, required = await _own_sequence(client)
    frame = people(required, N_ENROLL)
    csv = world.root / "people.csv"
    frame.to_csv(csv, index=False)
    rng = random.Random(f"{world.path}-kill")  # the same "random" point every run
    at = rng.randint(1, 12)
    child = _child(world, csv, sequence_id, world.home)
    journals = world.home / "journal"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        sent = sum(p.read_text().count('"t":"pending"') for p in journals.rglob("*.jsonl"))
        if sent >= at:
            break
        await asyncio.sleep(0.01)
    child.kill()
    child.wait(30)
    out.first = f"killed -9 after {at} batch(es) sent"
    plan = await client.plan_enrollment(sequence_id, frame)
    await client.enroll(plan, progress=False)
    out.rerun = f"same cell again: {plan.summary().to_add:,} left to add"
    pending = await client.pending_enrollments()
    if int(pending["unknown"].sum()):
        out.problems.append("a lost answer is still unsettled after the re-run")
    _check_once(world, out, sequence_id, list(frame["email"]))
    await client.transport.aclose()


async def wf_enroll_oversized(world: World, out: Outcome) -> None:
    """2,000 recipients with 1.5 KB of variables each (a batch of 100 would not fit one
    command-line argument), one of them with 200 KB: refused before anything is sent,
    naming the row; the person shortens it and runs again."""
    client = world.client(world.transport())
    sequence_id, required = await _own_sequence(client)
    frame = people(required, N_ENROLL)
    frame["Notes"] = "n" * 1500
    frame.loc[1499, "Notes"] = "N" * 200_000
    plan = await client.plan_enrollment(sequence_id, frame, variables={"Notes": "Notes"})
    try:
        await client.enroll(plan, progress=False)
        out.problems.append("a 200 KB row was not refused")
    except InputError as exc:
        out.note_error(exc)
        if "input row 1500" not in str(exc):
            out.problems.append(f"the message does not name the row: {exc}")
    _check_none(world, out, sequence_id, list(frame["email"]))
    frame.loc[1499, "Notes"] = "n" * 1500
    plan = await client.plan_enrollment(sequence_id, frame, variables={"Notes": "Notes"})
    await client.enroll(plan, progress=False)
    out.rerun = "row shortened, re-run ok"
    _check_once(world, out, sequence_id, list(frame["email"]))
    await client.transport.aclose()


def _check_none(world: World, out: Outcome, sequence_id: str, emails: list[str]) -> None:
    counts = world.server_counts(sequence_id, emails)
    if any(counts.values()):
        out.problems.append("recipients were sent although the input was refused")


HOSTILE = ('Reset token: abcd"ef', 'password: abcd"ef', "https://x.example/?token=abcd1234")


def plant_hostile(world: World) -> str:
    """Customer data that looks like credentials, written as Mixmax would hold it."""
    mixmax = world.control.mixmax
    draft = mixmax.handle(
        "POST", "messages", None, {"to": [{"email": "h@x.example"}], "subject": HOSTILE[0]}
    )
    sent = mixmax.handle(
        "POST",
        "messages",
        None,
        {"to": [{"email": "s@x.example"}], "subject": HOSTILE[1], "body": HOSTILE[2]},
    )
    mixmax.handle("POST", f"messages/{sent.body['_id']}/send", None, {})
    return str(draft.body["_id"])


async def wf_hostile(world: World, workflow: str, out: Outcome) -> None:
    draft_id = plant_hostile(world)
    client = world.client(world.transport())
    try:
        if workflow == "pull":
            # The sent email has no engagement, so no events: its subject comes back in
            # the pull's messages (and on the events of any email that has them).
            data = await client.engagement(since=PULL_SINCE, detail="events")
            if HOSTILE[1] not in set(data.messages["subject"].dropna()):
                out.problems.append("a sent subject came back rewritten or missing")
            await _check_cache(world, client, out)
        elif workflow == "enroll":
            sequence_id, required = await _own_sequence(client)
            frame = people(required, 200)
            frame["Notes"] = HOSTILE[1]
            plan = await client.plan_enrollment(sequence_id, frame, variables={"Notes": "Notes"})
            await client.enroll(plan, progress=False)
            listed = await client.recipients(sequence_id)
            notes = {v.get("Notes") for v in listed["variables"] if isinstance(v, dict)}
            if HOSTILE[1] not in notes:
                out.problems.append("a variable came back rewritten")
            _check_once(world, out, sequence_id, list(frame["email"]))
        else:
            from mixmax_nb.widgets.dashboard import EngagementDashboard

            board = EngagementDashboard(client, load=False)
            board.refresh()
            await board.runner.wait()
            if board.data is None:
                out.problems.append(f"the dashboard did not load: {_widget_text(board.output)}")
        message = await client.message(draft_id)
        if message.get("subject") != HOSTILE[0]:
            out.problems.append(f"a draft subject came back as {message.get('subject')!r}")
        messages = await client.messages()
        if HOSTILE[0] not in set(messages["subject"].dropna()):
            out.problems.append("messages() lost the draft")
        out.first = "ok: data verbatim"
    except Exception as exc:
        out.problems.append(f"{type(exc).__name__}: {exc}")
    await client.transport.aclose()


async def wf_torn_store(world: World, out: Outcome) -> None:
    """The per-message store's newest part loses its coverage footer (an older version's
    file, a hand edit), then is truncated: each time the part is set aside with a
    warning and the next pull fetches its messages again, complete."""
    import warnings

    import pyarrow.parquet as pq

    client = world.client(world.transport())
    truth = await world.truth_ids()
    await client.events(since=PULL_SINCE)
    store = await client.engagement_store()
    part = store.parts()[-1]
    pq.write_table(pq.read_table(part).replace_schema_metadata({}), part)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        first = await client.events(since=PULL_SINCE)
        part = store.parts()[-1]
        data = part.read_bytes()
        part.write_bytes(data[: len(data) // 3])
        second = await client.events(since=PULL_SINCE)
    said = [str(w.message) for w in seen if "could not be used" in str(w.message)]
    out.first = f"warned {len(said)}x, re-pulled"
    if len(said) != 2:
        out.problems.append(f"expected 2 warnings, got {len(said)}: {said}")
    for name, frame in (("after losing coverage", first), ("after truncation", second)):
        if set(frame["id"].astype(str)) != truth:
            out.problems.append(f"{name}: {len(truth - set(frame['id'].astype(str)))} missing")
    await _check_cache(world, client, out)
    await client.transport.aclose()


SPECIAL: dict[str, Callable[[World, str, Outcome], Awaitable[None]]] = {
    "overlap": lambda w, wf, o: wf_enroll_overlap(w, o),
    "kill_random": lambda w, wf, o: wf_enroll_kill(w, o),
    "oversized": lambda w, wf, o: wf_enroll_oversized(w, o),
    "hostile": wf_hostile,
    "torn_store": lambda w, wf, o: wf_torn_store(w, o),
}


async def wf_enroll(world: World, fault: str, out: Outcome) -> None:
    tap = Tap(world.transport())
    client = world.client(tap)
    me = (await client.me())["_id"]
    sequences = await client.sequences()
    mine = sequences.loc[
        sequences["user_id"].eq(me) & ~sequences["archived"].fillna(False).astype(bool)
    ]
    sequence_id = str(mine["id"].iloc[0])
    info = await load_sequence(client, sequence_id)
    frame = people(info.required, N_ENROLL)
    emails = list(frame["email"])
    reads = fault in ("truncated_page", "next_echoed")
    if reads:
        arm(world, fault, "enroll", after=1)  # list faults hit the plan's reads
    plan_exc: BaseException | None = None
    try:
        plan = await client.plan_enrollment(sequence_id, frame)
    except Exception as exc:  # a read fault that stopped the plan: plan again
        plan_exc = exc
        world.disarm()
        plan = await client.plan_enrollment(sequence_id, frame)
    if plan.summary().to_add != N_ENROLL:
        out.problems.append(f"plan adds {plan.summary().to_add}, not {N_ENROLL}")
        return
    if not reads:
        arm(world, fault, "enroll", after=3)  # the 4th write (of 20) meets the fault

    async def go() -> Any:
        return await client.enroll(plan, progress=False)

    _, exc, interrupted = await _run_or_interrupt(
        tap, go(), fault=fault, match="add-recipient", at=6
    )
    await _finish(world, out, exc or plan_exc, interrupted, rerun=go)
    counts = world.server_counts(sequence_id, emails)
    missing = sum(1 for v in counts.values() if v == 0)
    twice = sum(1 for v in counts.values() if v > 1)
    if missing:
        out.problems.append(f"{missing} intended recipient(s) not enrolled")
    if twice:
        out.problems.append(f"{twice} recipient(s) enrolled more than once")
    if not (missing or twice):
        out.checks.append(f"{N_ENROLL:,} enrolled x1 (server count)")
    await tap.aclose()


async def wf_dashboard(world: World, fault: str, out: Outcome) -> None:
    from mixmax_nb.widgets.dashboard import EngagementDashboard

    tap = Tap(world.transport())
    client = world.client(tap)
    await client.account_key()
    board = EngagementDashboard(client, load=False)
    arm(world, fault, "dashboard", after=2)
    if fault == "interrupt":
        loop = asyncio.get_running_loop()
        delay = 0.05 if world.path == "cli" else 0.0
        click = board.runner.cancel_button.click
        tap.hook = lambda key, n: (
            (loop.call_later(delay, click) if delay else click()) if n == 3 else None
        )
    board.refresh()
    await board.runner.wait()
    tap.hook = None
    shown = _widget_text(board.output)
    task = board.runner.task
    error = task.exception() if task is not None and not task.cancelled() else None
    interrupted = task is not None and task.cancelled()
    if error is None and not interrupted and board.data is None:
        # The runner reports an error in the Output and ends normally: rebuild it.
        error = MixmaxNbError(shown.strip() or "refresh failed silently")
        error.hint = ""

    async def again() -> Any:
        board.refresh()
        await board.runner.wait()
        if board.data is None:
            raise MixmaxNbError(f"refresh did not load: {_widget_text(board.output)!r}")
        return board.data

    if error is not None:
        out.first = "stopped (shown in the dashboard)"
        out.message = shown
        if not _ACTIONABLE.search(shown):
            out.problems.append(f"the dashboard does not say what to do: {shown!r}")
        world.disarm()
        if fault == "defunct":
            world.reconnect()
        try:
            await again()
            out.rerun = "Refresh ok"
        except Exception as exc:
            out.problems.append(f"the second Refresh failed: {exc}")
    else:
        await _finish(world, out, None, interrupted, rerun=again)
    await _check_dataset(world, board.dataset, out)
    await tap.aclose()


async def wf_wizard(world: World, fault: str, out: Outcome) -> None:
    from mixmax_nb.widgets.connect import ConnectWizard

    tap = Tap(world.transport())
    wizard = ConnectWizard(transport=tap)
    await wizard.wait()
    wizard.login_button.click()
    await wizard.wait()
    if wizard.phase != "awaiting-code":
        out.problems.append(f"the wizard is at {wizard.phase!r}, not awaiting the code")
        return
    wizard.code.value = world.control.login_code()
    wizard.complete_button.click()
    await wizard.wait()
    if wizard.phase != "client-action":
        out.problems.append(f"the wizard is at {wizard.phase!r}, not at the connect step")
        return
    world.control.complete_connect(wizard.connection["id"])  # type: ignore[index]
    # The fault meets the wizard's first Mixmax call: get-current-user once READY.
    if fault == "interrupt":
        world.inject("timeout", count=1, after=0, seconds=HANG_SECONDS)
    else:
        arm(world, fault, "wizard", after=0)
    wizard.done_button.click()
    if fault == "interrupt":
        await asyncio.sleep(0.5)  # it hangs on get-current-user; the person clicks Cancel
        wizard.runner.cancel_button.click()
    await wizard.wait()
    first_phase = wizard.phase
    shown = _widget_text(wizard.output) + " " + wizard.connection_status.value
    if first_phase in ("ready", "connected"):
        out.first = "ok (absorbed)"
    else:
        out.first = f"stopped at {first_phase!r}"
        out.message = shown
        if fault != "interrupt" and not _ACTIONABLE.search(shown):
            out.problems.append(f"the wizard does not say what to do: {shown!r}")
        world.disarm()
        for _ in range(3):
            if wizard.phase == "client-action":
                world.control.complete_connect(wizard.connection["id"])  # type: ignore[index]
                wizard.done_button.click()
            elif wizard.phase in ("failed", "cancelled"):
                (wizard.retry_button if wizard._step >= 3 else wizard.login_button).click()
            elif wizard.phase == "logged-out":
                out.problems.append("the wizard lost the login after the fault")
                break
            elif wizard.phase in ("ready", "connected"):
                break
            elif wizard.phase == "awaiting-code":
                wizard.code.value = world.control.login_code()
                wizard.complete_button.click()
            await wizard.wait()
            if fault == "defunct":
                world.reconnect()
        out.rerun = "retry ok" if wizard.phase == "ready" else ""
    if wizard.phase != "ready":
        out.problems.append(f"the wizard ended at {wizard.phase!r}, not ready")
    else:
        out.checks.append("READY")
    wizard.close()
    await tap.aclose()


WORKFLOW_FNS: dict[str, Callable[[World, str, Outcome], Awaitable[None]]] = {
    "pull": wf_pull,
    "enroll": wf_enroll,
    "dashboard": wf_dashboard,
    "wizard": wf_wizard,
}


def run_row(fault: str, workflow: str, path: str, root: Path, template: Path) -> Outcome:
    """Run one row in a fresh world under ``root``; never raises for a failed check."""
    out = Outcome(fault, workflow, path)
    started = time.perf_counter()
    if fault in NAMES:  # the hostile row: the account's own names are hostile too
        template = build_template(template.parent, names=NAMES[fault])
    world = World(root, template, path, start="logged-out" if workflow == "wizard" else "ready")
    try:
        if fault in SPECIAL:
            asyncio.run(SPECIAL[fault](world, workflow, out))
        else:
            asyncio.run(WORKFLOW_FNS[workflow](world, fault, out))
    except Exception as exc:  # the matrix reports it as a failed row
        out.problems.append(f"crashed: {type(exc).__name__}: {exc}")
    finally:
        world.close()
        out.seconds = time.perf_counter() - started
    return out


def table(outcomes: list[Outcome]) -> str:
    """fault x workflow -> outcome, one line per way in."""
    by = {(o.fault, o.workflow, o.path): o for o in outcomes}
    head = ["fault", "path", *WORKFLOWS]
    rows: list[list[str]] = []
    for fault in FAULTS:
        for path in PATHS:
            cells = []
            for wf in WORKFLOWS:
                o = by.get((fault, wf, path))
                if o is None:
                    cells.append("n/a" if not applicable(fault, wf, path) else "(not run)")
                else:
                    cells.append(o.cell())
            if any(c not in ("n/a", "(not run)") for c in cells):
                rows.append([FAULT_LABELS[fault], path, *cells])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
