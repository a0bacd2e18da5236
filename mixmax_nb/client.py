"""Client and connect(): validate input, call the transport under the rate limit, shape results.

:class:`AsyncClient` is the core (coroutines). :class:`Client` is the same surface
as plain calls that work in a script, a thread or a notebook cell (see ``_sync``);
``client.aio`` is its AsyncClient for ``await`` and for widgets that run work as
tasks on the kernel loop.

:func:`connect` is the one place that chooses a backend: the explicit argument,
then ``MIXMAX_NB_BACKEND``, then detection (a logged-in `membrane` with a READY
Mixmax connection, else the sandbox, said once and visibly).
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from . import catalog
from ._sync import run_sync
from .config import MIXMAX_APP_URL, Settings
from .errors import CliNotFoundError, InputError, MixmaxNbError, NotFoundError, SetupError
from .transport.actions import ActionInfo, SchemaSource
from .transport.base import (
    BUILDING,
    READY,
    ActionRunResult,
    ProxyResponse,
    Transport,
    connection_error,
)
from .transport.limits import NoLimit, RateLimiter, RetryPolicy, call_with_retry
from .transport.setup import find_mixmax_connection, wait_until_settled

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from ._time import DateLike
    from .cache import EventStore
    from .data.engagement import Detail, EngagementData, Shape
    from .data.planner import EngagementPlan
    from .data.store import MessageEventStore
    from .enrollment import CancelPlan, CancelResult, EnrollmentPlan, EnrollmentResult
    from .enrollment.apply import ProgressFn as EnrollProgress
    from .enrollment.apply import Unresolved
    from .feed import RefreshStats
    from .housekeeping import Draft, UnsubscribePlan

_HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class StopFlag(Protocol):
    """A stop button: a ``threading.Event``, an ``asyncio.Event``, or anything like them."""

    def is_set(self) -> bool: ...


class _LazyProgress:
    """A tqdm.auto bar created only once work has lasted ``delay`` seconds.

    tqdm's own ``delay`` still builds the notebook widget up front, which then sits
    in a saved notebook's widget state as "0/?" noise; quick pulls show nothing.
    """

    def __init__(self, desc: str, delay: float = 2.0) -> None:
        self.desc = desc
        self.delay = delay
        self.count = 0
        self._start = time.monotonic()
        self._bar: Any = None

    def update(self, n: int) -> None:
        self.count += n
        if self._bar is None and time.monotonic() - self._start >= self.delay:
            from tqdm.auto import tqdm

            self._bar = tqdm(desc=self.desc, unit=" rows", initial=self.count, leave=False)
        elif self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _progress(desc: str) -> _LazyProgress:
    return _LazyProgress(desc)


_ephemeral_dir: tempfile.TemporaryDirectory[str] | None = None


def _ephemeral_home() -> Path:
    """A per-process temporary home, removed at exit (for in-memory sandboxes)."""
    global _ephemeral_dir
    if _ephemeral_dir is None:
        _ephemeral_dir = tempfile.TemporaryDirectory(prefix="mixmax_nb-")
    return Path(_ephemeral_dir.name)


_limiters: dict[tuple[str, float], RateLimiter] = {}
_limiters_lock = threading.Lock()


def shared_limiter(account: str, scale: float = 1.0) -> RateLimiter:
    """One limiter per account in this process: two clients on one account share 120/min."""
    with _limiters_lock:
        key = (account, scale)
        if key not in _limiters:
            # burst=1: a page that came back late does not cost a slot (see RateLimiter).
            _limiters[key] = RateLimiter(per=60.0 / scale, burst=1)
        return _limiters[key]


class AsyncClient:
    """Mixmax through one transport. Every method is a coroutine."""

    def __init__(
        self,
        transport: Transport,
        *,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.transport = transport
        if limiter is None:
            # A sandbox running faster than real time (time_scale > 1) shrinks the
            # minute; the ceiling per (scaled) minute stays Mixmax's.
            scale = float(transport.time_scale or 1.0)
            paced = transport.rate_limited
            account = transport.account_key or (
                # The real service limits per user: share by connection. A sandbox
                # keeps its own window per database, so each transport gets its own.
                f"membrane:{transport.connection_id}"
                if transport.backend == "membrane"
                else f"{transport.backend}:{id(transport)}"
            )
            limiter = shared_limiter(account, scale) if paced else NoLimit()
        self.limiter = limiter
        # Calls to Membrane itself (its action list) do not count against Mixmax's 120/min.
        self._unpaced = NoLimit()
        self.retry = retry or RetryPolicy()
        self._user_id: str | None = None
        self._planned: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        """What the last plan_engagement fetched, reused by the same engagement call."""
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise SetupError(
                "This client is closed.", hint="Open a new one with mx.connect() and run it again."
            )

    @property
    def backend(self) -> str:
        return self.transport.backend

    @property
    def is_sandbox(self) -> bool:
        return self.backend == "sandbox"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} backend={self.backend!r}>"

    # -- generic ----------------------------------------------------------------

    async def action_info(self, key: str) -> ActionInfo | None:
        """The connection's record of action ``key`` (id, schemas), or None if not listed.

        The first call reads `action list` (every page) once for the connection."""
        return (await self.action_directory()).get(key)

    async def action_directory(self) -> dict[str, ActionInfo]:
        """Every action the connection lists, by key (read once, then kept)."""
        self._check_open()
        return await call_with_retry(
            self.transport.actions.all, limiter=self._unpaced, policy=self.retry
        )

    async def input_schema(self, key: str) -> tuple[catalog.Schema | None, SchemaSource]:
        """The schema input is checked against: the connection's, else the built-in one."""
        info = await self.action_info(key)
        if info is not None and info.input_schema is not None:
            return info.input_schema, "connection"
        spec = catalog.BY_KEY.get(key)
        return (spec.input_schema if spec else None), "built-in"

    async def run(
        self,
        key: str,
        input: Mapping[str, Any] | None = None,
        *,
        before_send: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Run an action; return ``{"output", "actionRunId"}``.

        Input is checked first against the schema the connection lists for the action
        (the built-in catalog's when it lists none); properties a schema does not name
        pass through unchanged, as Membrane passes them. Reads are retried; a write
        only after a 429 (Mixmax refused it before doing anything). ``before_send`` is
        called each time the rate limiter grants the slot, right before the call goes
        out: the enrollment journal marks a write pending there."""
        data, writes = await self._checked(key, input)

        async def attempt() -> ActionRunResult:
            if before_send is not None:
                before_send()
            return await self.transport.run_action(key, data)

        result = await call_with_retry(
            attempt,
            limiter=self.limiter,
            policy=self.retry,
            is_write=writes,
        )
        return dict(result)

    async def _checked(
        self, key: str, input: Mapping[str, Any] | None
    ) -> tuple[dict[str, Any], bool]:
        """The input to send once it passed the action's schema, and whether the action
        writes (an unknown one is assumed to)."""
        self._check_open()
        if not key or not isinstance(key, str):
            raise InputError("An action key is required.", field="key")
        catalog.check_encodable(key, input)
        schema, _source = await self.input_schema(key)
        catalog.validate_input(key, input, schema)
        spec = catalog.BY_KEY.get(key)
        return dict(input or {}), spec.writes if spec is not None else True

    async def run_action_json(self, key: str, input: Mapping[str, Any] | None = None) -> bytes:
        """Run a read action; return its answer as the CLI printed it, ``{"output": ...,
        "actionRunId": ...}`` JSON (what ``frames.shape_runs`` reads without a Python
        object per value). Checked, paced and retried as :meth:`run` is; writes are
        refused here (they go through :meth:`run`, which the journal watches)."""
        data, writes = await self._checked(key, input)
        if writes:
            raise InputError(
                f"{key} writes to Mixmax; run it with run() or run_action().", field="key"
            )
        return await call_with_retry(
            lambda: self.transport.run_action_json(key, data),
            limiter=self.limiter,
            policy=self.retry,
        )

    async def run_action(self, key: str, input: Mapping[str, Any] | None = None) -> Any:
        """Run an action; return its raw ``output``."""
        return (await self.run(key, input))["output"]

    async def action_run_log(self, run_id: str, *, details: bool = False) -> dict[str, Any]:
        """The log record of one action run: ``{id, name, status, input, output | error,
        createdAt, completedAt, duration, ...}`` (`membrane action-run-log get`).

        ``run_id`` is the ``actionRunId`` of a result or of an error
        (``ActionFailedError.action_run_id``); ``details=True`` asks for the details
        variant, which adds what Membrane kept of the request and the response. Works
        on every backend. Raises NotFoundError for an unknown id."""
        self._check_open()
        if not run_id or not isinstance(run_id, str):
            raise InputError("An action run id (actionRunId) is required.", field="run_id")
        # Membrane's own record, not a Mixmax call: outside the 120/min, safe to retry.
        return await call_with_retry(
            lambda: self.transport.action_run_log(run_id, details=details),
            limiter=self._unpaced,
            policy=self.retry,
        )

    async def action_records(
        self, intent: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """What the connection offers, ranked by ``intent`` when given (Membrane's records)."""
        page = await call_with_retry(
            lambda: self.transport.list_actions(intent=intent, limit=limit),
            limiter=self._unpaced,
            policy=self.retry,
        )
        return page["items"]

    async def request(
        self,
        path: str,
        method: str = "GET",
        query: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> ProxyResponse:
        """Send a request through Membrane's proxy to the Mixmax REST API."""
        self._check_open()
        verb = method.upper()
        if verb not in _HTTP_METHODS:
            raise InputError(
                f"Unsupported HTTP method {method!r}.",
                field="method",
                hint=f"Use one of {', '.join(_HTTP_METHODS)}.",
            )
        if not path or not isinstance(path, str):
            raise InputError("A path such as '/users/me' is required.", field="path")
        return await call_with_retry(
            lambda: self.transport.request(
                path,
                method=verb,  # type: ignore[arg-type]
                query=query,
                data=data,
                headers=headers,
            ),
            limiter=self.limiter,
            policy=self.retry,
            is_write=verb != "GET",
        )

    async def me(self) -> dict[str, Any]:
        """The logged-in Mixmax user (``get-current-user``)."""
        output = await self.run_action("get-current-user")
        if not isinstance(output, Mapping):
            raise MixmaxNbError("get-current-user returned no user object.")
        return dict(output)

    # -- frames -------------------------------------------------------------------

    def _tag(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame.attrs["source"] = self.backend
        return frame

    async def records(self, key: str, input: Mapping[str, Any] | None = None) -> list[Any]:
        """Every record of a list action, all pages walked at the largest page size."""
        from . import pages

        catalog.validate_input(key, input)
        bar = _progress(key)
        try:
            return await pages.collect(self.run_action, key, input, progress=bar)
        finally:
            bar.close()

    async def frame(self, key: str, input: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """A list action's records as its typed DataFrame."""
        from . import frames

        return self._tag(frames.shape(catalog.get(key).kind, await self.records(key, input)))

    async def sequences(self, search: str | None = None) -> pd.DataFrame:
        """Sequences (with their stages), or those whose name matches ``search``."""
        if search:
            return await self.frame("search-sequences", {"name": search})
        return await self.frame("list-sequences", {"expand": "stages"})

    async def stages(self) -> pd.DataFrame:
        """One row per stage of every sequence."""
        from . import frames

        records = await self.records("list-sequences", {"expand": "stages"})
        return self._tag(frames.shape("sequence_stages", records))

    async def recipients(self, sequence_id: str) -> pd.DataFrame:
        """Activated recipients of a sequence (Mixmax hides drafts and stops at 10,000)."""
        return await self.frame(
            "get-sequence-recipients", {"sequenceId": sequence_id, "includeVariables": True}
        )

    async def messages(self) -> pd.DataFrame:
        """Messages (drafts and sent emails), each with its ``sequence{}`` when it has one."""
        return await self.frame("list-messages")

    async def snippets(self) -> pd.DataFrame:
        """Snippets (reusable templates)."""
        return await self.frame("list-snippets")

    async def polls(self) -> pd.DataFrame:
        """Polls."""
        return await self.frame("list-polls")

    async def unsubscribes(self) -> pd.DataFrame:
        """Unsubscribed addresses."""
        return await self.frame("list-unsubscribes")

    async def rules(self) -> pd.DataFrame:
        """Rules, with their actions."""
        return await self.frame("list-rules", {"expand": "actions"})

    async def teams(self) -> pd.DataFrame:
        """Teams."""
        return await self.frame("list-teams")

    async def team_members(self) -> pd.DataFrame:
        """One row per member of every team: the user directory (ids -> names, teams)."""
        from . import frames

        records = await self.records("list-teams")
        return self._tag(frames.shape("team_members", records))

    async def _object(self, key: str, input: Mapping[str, Any]) -> dict[str, Any]:
        output = await self.run_action(key, input)
        if not isinstance(output, Mapping):
            raise MixmaxNbError(f"{key} returned no object.")
        return dict(output)

    async def message(self, message_id: str) -> dict[str, Any]:
        """One message by id (``get-message``); NotFoundError when there is none."""
        return await self._object("get-message", {"messageId": message_id})

    async def snippet(self, snippet_id: str) -> dict[str, Any]:
        """One snippet by id (``get-snippet``); NotFoundError when there is none."""
        return await self._object("get-snippet", {"snippetId": snippet_id})

    async def poll(self, poll_id: str) -> dict[str, Any]:
        """One poll by id (``get-poll``); NotFoundError when there is none."""
        return await self._object("get-poll", {"pollId": poll_id})

    async def actions(self, intent: str | None = None, limit: int = 50) -> pd.DataFrame:
        """What the connection offers (ranked by ``intent``), with input/output schemas."""
        from . import frames

        return self._tag(frames.shape("actions", await self.action_records(intent, limit)))

    # -- events and their cache ---------------------------------------------------

    async def account_key(self) -> str:
        """Who the data belongs to: keeps each account's cache apart."""
        key = self.transport.account_key
        if key:
            return key
        # Asked on every events() call: one get-current-user per client, not per call
        # (each is a rate-limited request on the real service).
        if self._user_id is None:
            self._user_id = str((await self.me()).get("_id") or "unknown")
        return self._user_id

    async def event_store(self, home: Path | str | None = None) -> EventStore:
        """The account-wide feed's private store (connections of the ``account`` shape)."""
        from .cache import EventStore
        from .config import Settings

        if home is not None:
            root = Path(home)
        elif self.transport.ephemeral:
            # An in-memory sandbox vanishes with the process; so does its cache.
            root = _ephemeral_home()
        else:
            root = Settings.from_env().home
        return EventStore(root, self.backend, await self.account_key())

    async def refresh_events(self, since: DateLike | None = None) -> RefreshStats:
        """Pull what is new in an account-wide live feed into the local store (only
        for connections whose ``list-livefeed-events`` lists every event)."""
        from . import feed

        store = await self.event_store()
        bar = _progress("live feed")
        try:
            return await feed.refresh(
                self.run_action, store, since=feed.to_utc(since), progress=bar
            )
        finally:
            bar.close()

    async def events(
        self,
        since: DateLike | None = None,
        until: DateLike | None = None,
        types: str | list[str] | None = None,
        sequence_id: str | None = None,
        *,
        refresh: bool = True,
    ) -> pd.DataFrame:
        """Engagement events (opens, clicks, downloads, replies) of emails sent in the
        window, each with its message, sequence, stage, sender and subject.

        Mixmax serves them one message at a time (at most 200 each), so this is the
        ``events`` of :meth:`engagement` (``detail="events"``: only emails whose
        counters show engagement, and on a refresh only those that changed). A
        connection that lists the whole account's events is read incrementally
        instead. ``until`` is inclusive; ``refresh=False`` reads the store only.
        """
        from . import frames
        from ._time import one_or_many, window
        from .data.engagement import ENGAGEMENT_TYPES, enrich_events

        start, end = window(since, until)
        wanted = one_or_many(types, field="types")
        shape = await self.livefeed_shape()
        allowed = catalog.EVENT_TYPES if shape == "account" else ENGAGEMENT_TYPES
        bad = sorted(set(wanted or ()) - set(allowed))
        if bad:
            raise InputError(
                f"Unknown event type(s): {', '.join(bad)}.",
                field="types",
                hint=f"Use any of {', '.join(allowed)}"
                + (
                    "; sends and bounces are in client.messages() and the recipients' stages."
                    if shape == "per-message"
                    else "."
                ),
            )
        if shape == "account":
            frame = await self._account_feed(start, refresh=refresh)
            if sequence_id is not None:
                await self._known_sequences([sequence_id])
        elif refresh:
            data = await self.engagement(
                since=start, until=end, sequences=sequence_id, detail="events"
            )
            frame = enrich_events(data)
        else:
            stored = (await self.engagement_store()).load()
            frame = stored if stored is not None else frames.empty("events")
        from . import feed

        return self._tag(
            feed.filter_events(frame, since=start, until=end, types=wanted, sequence_id=sequence_id)
        )

    async def livefeed_shape(self) -> Shape:
        """``per-message`` (Mixmax as documented) or ``account`` (a connection whose
        ``list-livefeed-events`` lists every event), from the connection's schema."""
        from .data.pull import livefeed_shape

        return await livefeed_shape(self)

    async def _account_feed(self, start: Any, *, refresh: bool = True) -> pd.DataFrame:
        """The whole account's feed, incrementally (only for the ``account`` shape)."""
        from . import frames

        if refresh:
            await self.refresh_events(since=start)
        stored = (await self.event_store()).load()
        return stored if stored is not None else frames.empty("events")

    async def _known_sequences(self, wanted: Sequence[str]) -> None:
        from .data.engagement import choose_sequences

        found = choose_sequences(await self.sequences(), wanted)
        missing = sorted(
            set(wanted) - set(found["id"].astype(str)) - set(found["name"].astype(str))
        )
        if missing:
            raise NotFoundError(
                f"No sequence {', '.join(map(repr, missing))} in this account.",
                hint="client.sequences() lists them; pass an id or an exact name.",
                key="not_found",
            )

    async def clear_event_cache(self) -> None:
        """Forget every stored event of this account (the next pull fetches them again)."""
        (await self.event_store()).clear()
        (await self.engagement_store()).clear()

    # -- the engagement dataset ------------------------------------------------------

    async def engagement_store(self) -> MessageEventStore:
        """The private store of per-message events (see ``data.store``)."""
        from .data.store import MessageEventStore

        root = _ephemeral_home() if self.transport.ephemeral else Settings.from_env().home
        return MessageEventStore(root, self.backend, await self.account_key())

    async def plan_engagement(
        self,
        *,
        since: DateLike | None = None,
        until: DateLike | None = None,
        sequences: Sequence[str] | str | None = None,
        detail: Detail = "summary",
    ) -> EngagementPlan:
        """How many requests :meth:`engagement` needs, how long they take at 120 per
        minute, and what is already stored. Costs the sequences page and one live-feed
        stats request per sequence, which the pull then reuses."""
        from ._time import window
        from .data.pull import plan_pull

        start, end = window(since, until)
        made, found = await plan_pull(
            self,
            await self.engagement_store(),
            since=start,
            until=end,
            sequences=sequences,
            detail=detail,
        )
        self._planned = (start, end, sequences, detail), found
        if made.stats is not None:
            self._tag(made.stats)  # charts of Mixmax's totals say where they came from
        return made

    async def engagement(
        self,
        *,
        since: DateLike | None = None,
        until: DateLike | None = None,
        sequences: Sequence[str] | str | None = None,
        detail: Detail = "summary",
        progress: Callable[[str, int, int], None] | None = None,
        stop: StopFlag | None = None,
    ) -> EngagementData:
        """The engagement dataset that analytics, charts and the dashboard read.
        ``until`` is inclusive (a date means through that day).

        ``detail="summary"`` makes no per-message call: the recipients' stage counters,
        the messages and Mixmax's live-feed stats. ``detail="events"`` adds each
        engaged message's events (times, devices, places, links), fetching only the
        messages whose counters changed since the store last saw them. ``sequences``:
        ids or names (None: all). ``since`` / ``until``: the sending window.
        ``progress``: ``(what, done, total)`` callback; ``stop``: an Event that ends
        the pull between batches, keeping what was fetched."""
        from ._time import window
        from .data.pull import pull

        start, end = window(since, until)
        key = (start, end, sequences, detail)
        planned = None
        if self._planned is not None and self._planned[0] == key:
            planned = self._planned[1]
        self._planned = None
        store = await self.engagement_store()
        data = await pull(
            self,
            store,
            since=start,
            until=end,
            sequences=sequences,
            detail=detail,
            progress=progress,
            stop=stop,
            planned=planned,
        )
        from .data.warehouse import persist_tables

        persist_tables(store, data)  # the latest pull's tables, for client.duckdb()
        return data

    async def duckdb(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with read-only views over the local store:
        ``events`` and the latest pull's ``sequences``, ``recipients``,
        ``recipient_stages``, ``messages``, ``stats``, ``team_members`` (see
        ``data.warehouse``). Nothing is copied; any number of readers at once."""
        from .data.warehouse import duckdb_connection

        return duckdb_connection(await self.engagement_store())

    # -- enrollment ---------------------------------------------------------------

    async def plan_enrollment(
        self,
        sequence_id: str,
        recipients: Any,
        *,
        email: str | None = None,
        variables: Mapping[str, str] | None = None,
        daily_limit: int = 500,
        home: Path | str | None = None,
    ) -> EnrollmentPlan:
        """Who would be added to the sequence, and why not; writes nothing.

        ``recipients``: a DataFrame, a CSV path or file-like, or a list of emails.
        ``email``: the column with the address (default: guessed, ``email`` first).
        ``variables``: Mixmax variable -> column, e.g. ``{"First name": "first_name"}``.
        ``daily_limit``: the sender's daily send limit (Mixmax's default is 500).
        ``home``: the toolkit home holding the journal (default ``MIXMAX_NB_HOME``)."""
        from .enrollment import plan_enrollment

        return await plan_enrollment(
            self,
            sequence_id,
            recipients,
            email=email,
            variables=variables,
            daily_limit=daily_limit,
            home=home,
        )

    async def enroll(
        self,
        plan: EnrollmentPlan,
        schedule: DateLike | Literal["now", "draft"] = "now",
        *,
        batch_size: int = catalog.ENROLL_BATCH_MAX,
        concurrency: int = 4,
        progress: bool = True,
        on_progress: EnrollProgress | None = None,
        stop: StopFlag | None = None,
        unresolved: Unresolved = "check",
        home: Path | str | None = None,
    ) -> EnrollmentResult:
        """Apply a plan's ``add`` rows; safe to run again (journaled, never twice).

        ``schedule``: ``"now"``, a datetime (naive = UTC), or ``"draft"``.
        ``batch_size``/``concurrency``: recipients per call and calls in flight (batches
        also shrink to fit the CLI's argument limit). ``progress``: a tqdm bar;
        ``on_progress``: called with the running counts. ``stop``: anything with
        ``is_set()``; when set, no new batch starts. ``unresolved``: what to do with a
        batch whose answer was lost (``check`` the sequence first, the default)."""
        from .enrollment import enroll

        return await enroll(
            self,
            plan,
            schedule,
            batch_size=batch_size,
            concurrency=concurrency,
            progress=progress,
            on_progress=on_progress,
            stop=stop,
            unresolved=unresolved,
            home=home,
        )

    async def pending_enrollments(
        self, sequence_id: str | None = None, *, settle: bool = False
    ) -> pd.DataFrame:
        """Enrollments and cancels with work left (running, an answer lost, or people
        not reached); ``settle=True`` first checks every lost answer against its sequence.

        Planning an enrollment settles its sequence's lost answers by itself; re-running
        the same enrollment finishes what was not sent."""
        from .enrollment import pending_enrollments

        return await pending_enrollments(self, sequence_id, settle=settle)

    async def plan_cancel(
        self, sequence_id: str, emails: Any, *, active_only: bool = True
    ) -> CancelPlan:
        """Which of ``emails`` (a list, a DataFrame or a CSV) are active in the sequence
        and would be cancelled; writes nothing."""
        from .enrollment import plan_cancel

        return await plan_cancel(self, sequence_id, emails, active_only=active_only)

    async def cancel_recipients(
        self,
        plan: CancelPlan | str,
        emails: Any = None,
        *,
        batch_size: int = catalog.CANCEL_BATCH_MAX,
        concurrency: int = 4,
        progress: bool = True,
        on_progress: EnrollProgress | None = None,
        stop: StopFlag | None = None,
        home: Path | str | None = None,
    ) -> CancelResult:
        """Apply a cancel plan (or plan and apply from a sequence id and ``emails``);
        journaled like :meth:`enroll`, so running it again cancels no one twice."""
        from .enrollment import cancel_recipients

        return await cancel_recipients(
            self,
            plan,
            emails,
            batch_size=batch_size,
            concurrency=concurrency,
            progress=progress,
            on_progress=on_progress,
            stop=stop,
            home=home,
        )

    # -- housekeeping: plan, then apply with confirm ------------------------------------

    async def plan_unsubscribe(self, emails: Any) -> UnsubscribePlan:
        """Who would be added to the unsubscribe list (never contacted again); writes
        nothing. ``emails``: a pasted string (commas, semicolons or lines), a list of
        addresses, or a list of ``{"email", "name"}`` dicts."""
        from .housekeeping import unsubscribes

        return await unsubscribes.plan(self, emails, "add")

    async def plan_resubscribe(self, emails: Any) -> UnsubscribePlan:
        """Who would be removed from the unsubscribe list; writes nothing."""
        from .housekeeping import unsubscribes

        return await unsubscribes.plan(self, emails, "remove")

    async def apply_unsubscribes(
        self, plan: UnsubscribePlan, *, confirm: bool = False
    ) -> pd.DataFrame:
        """Carry out a plan's ``will add`` / ``will remove`` rows, only with
        ``confirm=True``. One row per address written: ``email``, ``outcome``
        (``added``, ``removed`` or ``error``), ``detail``, ``action_run_id``; an error on
        one address does not stop the others, and is never retried (a write)."""
        from .housekeeping import unsubscribes

        return await unsubscribes.apply(self, plan, confirm=confirm)

    async def create_draft(
        self,
        to: Any,
        subject: str,
        body: str,
        *,
        cc: Any = None,
        bcc: Any = None,
        tracking: bool = True,
    ) -> Draft:
        """Create a Mixmax draft (nothing is sent); ``Draft.preview()`` shows it safely.
        ``to``/``cc``/``bcc`` as in :meth:`plan_unsubscribe`."""
        from .housekeeping import drafts

        return await drafts.create(self, to, subject, body, cc=cc, bcc=bcc, tracking=tracking)

    async def send_draft(self, message_id: str, *, confirm: bool = False) -> dict[str, Any]:
        """Send a draft by id, only with ``confirm=True``; a message already sent is
        refused (read first), so running the cell again never sends twice."""
        from .housekeeping import drafts

        return await drafts.send(self, message_id, confirm=confirm)

    async def aclose(self) -> None:
        """Close the transport (ends the sandbox's database or the CLI's session); later
        calls say the client is closed. Closing twice is harmless."""
        if not self._closed:
            self._closed = True
            await self.transport.aclose()


def as_async(client: Any) -> Any:
    """The AsyncClient behind a client of either face (``Client.aio``), or ``client``
    itself: widgets and helpers take either and run their work as coroutines."""
    aio = getattr(client, "aio", None)
    return client if aio is None else aio


# -- generated by scripts/generate_sync_client.py from AsyncClient; do not edit --


class Client:
    """The synchronous face of :class:`AsyncClient`: the same methods, arguments and
    docstrings, as plain calls that work in a script, a thread or a notebook cell
    (``client.aio`` is the AsyncClient, for ``await`` and for widgets). Use it as a
    context manager, or call :meth:`close`."""

    def __init__(
        self,
        transport: Transport,
        *,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.aio = AsyncClient(transport, limiter=limiter, retry=retry)

    @property
    def transport(self) -> Transport:
        """The I/O seam this client calls (see ``transport.base``)."""
        return self.aio.transport

    @property
    def backend(self) -> str:
        """``membrane`` or ``sandbox``."""
        return self.aio.backend

    @property
    def is_sandbox(self) -> bool:
        """True on the embedded sandbox."""
        return self.aio.is_sandbox

    def __repr__(self) -> str:
        return f"<Client backend={self.backend!r}>"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def action_info(self, key: str) -> ActionInfo | None:
        """The connection's record of action ``key`` (id, schemas), or None if not listed.

        The first call reads `action list` (every page) once for the connection."""
        return run_sync(self.aio.action_info(key))

    def action_directory(self) -> dict[str, ActionInfo]:
        """Every action the connection lists, by key (read once, then kept)."""
        return run_sync(self.aio.action_directory())

    def input_schema(self, key: str) -> tuple[catalog.Schema | None, SchemaSource]:
        """The schema input is checked against: the connection's, else the built-in one."""
        return run_sync(self.aio.input_schema(key))

    def run(
        self,
        key: str,
        input: Mapping[str, Any] | None = None,
        *,
        before_send: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Run an action; return ``{"output", "actionRunId"}``.

        Input is checked first against the schema the connection lists for the action
        (the built-in catalog's when it lists none); properties a schema does not name
        pass through unchanged, as Membrane passes them. Reads are retried; a write
        only after a 429 (Mixmax refused it before doing anything). ``before_send`` is
        called each time the rate limiter grants the slot, right before the call goes
        out: the enrollment journal marks a write pending there."""
        return run_sync(self.aio.run(key, input, before_send=before_send))

    def run_action_json(self, key: str, input: Mapping[str, Any] | None = None) -> bytes:
        """Run a read action; return its answer as the CLI printed it, ``{"output": ...,
        "actionRunId": ...}`` JSON (what ``frames.shape_runs`` reads without a Python
        object per value). Checked, paced and retried as :meth:`run` is; writes are
        refused here (they go through :meth:`run`, which the journal watches)."""
        return run_sync(self.aio.run_action_json(key, input))

    def run_action(self, key: str, input: Mapping[str, Any] | None = None) -> Any:
        """Run an action; return its raw ``output``."""
        return run_sync(self.aio.run_action(key, input))

    def action_run_log(self, run_id: str, *, details: bool = False) -> dict[str, Any]:
        """The log record of one action run: ``{id, name, status, input, output | error,
        createdAt, completedAt, duration, ...}`` (`membrane action-run-log get`).

        ``run_id`` is the ``actionRunId`` of a result or of an error
        (``ActionFailedError.action_run_id``); ``details=True`` asks for the details
        variant, which adds what Membrane kept of the request and the response. Works
        on every backend. Raises NotFoundError for an unknown id."""
        return run_sync(self.aio.action_run_log(run_id, details=details))

    def action_records(self, intent: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """What the connection offers, ranked by ``intent`` when given (Membrane's records)."""
        return run_sync(self.aio.action_records(intent, limit))

    def request(
        self,
        path: str,
        method: str = "GET",
        query: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> ProxyResponse:
        """Send a request through Membrane's proxy to the Mixmax REST API."""
        return run_sync(self.aio.request(path, method, query, data, headers))

    def me(self) -> dict[str, Any]:
        """The logged-in Mixmax user (``get-current-user``)."""
        return run_sync(self.aio.me())

    def records(self, key: str, input: Mapping[str, Any] | None = None) -> list[Any]:
        """Every record of a list action, all pages walked at the largest page size."""
        return run_sync(self.aio.records(key, input))

    def frame(self, key: str, input: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """A list action's records as its typed DataFrame."""
        return run_sync(self.aio.frame(key, input))

    def sequences(self, search: str | None = None) -> pd.DataFrame:
        """Sequences (with their stages), or those whose name matches ``search``."""
        return run_sync(self.aio.sequences(search))

    def stages(self) -> pd.DataFrame:
        """One row per stage of every sequence."""
        return run_sync(self.aio.stages())

    def recipients(self, sequence_id: str) -> pd.DataFrame:
        """Activated recipients of a sequence (Mixmax hides drafts and stops at 10,000)."""
        return run_sync(self.aio.recipients(sequence_id))

    def messages(self) -> pd.DataFrame:
        """Messages (drafts and sent emails), each with its ``sequence{}`` when it has one."""
        return run_sync(self.aio.messages())

    def snippets(self) -> pd.DataFrame:
        """Snippets (reusable templates)."""
        return run_sync(self.aio.snippets())

    def polls(self) -> pd.DataFrame:
        """Polls."""
        return run_sync(self.aio.polls())

    def unsubscribes(self) -> pd.DataFrame:
        """Unsubscribed addresses."""
        return run_sync(self.aio.unsubscribes())

    def rules(self) -> pd.DataFrame:
        """Rules, with their actions."""
        return run_sync(self.aio.rules())

    def teams(self) -> pd.DataFrame:
        """Teams."""
        return run_sync(self.aio.teams())

    def team_members(self) -> pd.DataFrame:
        """One row per member of every team: the user directory (ids -> names, teams)."""
        return run_sync(self.aio.team_members())

    def message(self, message_id: str) -> dict[str, Any]:
        """One message by id (``get-message``); NotFoundError when there is none."""
        return run_sync(self.aio.message(message_id))

    def snippet(self, snippet_id: str) -> dict[str, Any]:
        """One snippet by id (``get-snippet``); NotFoundError when there is none."""
        return run_sync(self.aio.snippet(snippet_id))

    def poll(self, poll_id: str) -> dict[str, Any]:
        """One poll by id (``get-poll``); NotFoundError when there is none."""
        return run_sync(self.aio.poll(poll_id))

    def actions(self, intent: str | None = None, limit: int = 50) -> pd.DataFrame:
        """What the connection offers (ranked by ``intent``), with input/output schemas."""
        return run_sync(self.aio.actions(intent, limit))

    def account_key(self) -> str:
        """Who the data belongs to: keeps each account's cache apart."""
        return run_sync(self.aio.account_key())

    def event_store(self, home: Path | str | None = None) -> EventStore:
        """The account-wide feed's private store (connections of the ``account`` shape)."""
        return run_sync(self.aio.event_store(home))

    def refresh_events(self, since: DateLike | None = None) -> RefreshStats:
        """Pull what is new in an account-wide live feed into the local store (only
        for connections whose ``list-livefeed-events`` lists every event)."""
        return run_sync(self.aio.refresh_events(since))

    def events(
        self,
        since: DateLike | None = None,
        until: DateLike | None = None,
        types: str | list[str] | None = None,
        sequence_id: str | None = None,
        *,
        refresh: bool = True,
    ) -> pd.DataFrame:
        """Engagement events (opens, clicks, downloads, replies) of emails sent in the
        window, each with its message, sequence, stage, sender and subject.

        Mixmax serves them one message at a time (at most 200 each), so this is the
        ``events`` of :meth:`engagement` (``detail="events"``: only emails whose
        counters show engagement, and on a refresh only those that changed). A
        connection that lists the whole account's events is read incrementally
        instead. ``until`` is inclusive; ``refresh=False`` reads the store only.
        """
        return run_sync(self.aio.events(since, until, types, sequence_id, refresh=refresh))

    def livefeed_shape(self) -> Shape:
        """``per-message`` (Mixmax as documented) or ``account`` (a connection whose
        ``list-livefeed-events`` lists every event), from the connection's schema."""
        return run_sync(self.aio.livefeed_shape())

    def clear_event_cache(self) -> None:
        """Forget every stored event of this account (the next pull fetches them again)."""
        run_sync(self.aio.clear_event_cache())

    def engagement_store(self) -> MessageEventStore:
        """The private store of per-message events (see ``data.store``)."""
        return run_sync(self.aio.engagement_store())

    def plan_engagement(
        self,
        *,
        since: DateLike | None = None,
        until: DateLike | None = None,
        sequences: Sequence[str] | str | None = None,
        detail: Detail = "summary",
    ) -> EngagementPlan:
        """How many requests :meth:`engagement` needs, how long they take at 120 per
        minute, and what is already stored. Costs the sequences page and one live-feed
        stats request per sequence, which the pull then reuses."""
        return run_sync(
            self.aio.plan_engagement(since=since, until=until, sequences=sequences, detail=detail)
        )

    def engagement(
        self,
        *,
        since: DateLike | None = None,
        until: DateLike | None = None,
        sequences: Sequence[str] | str | None = None,
        detail: Detail = "summary",
        progress: Callable[[str, int, int], None] | None = None,
        stop: StopFlag | None = None,
    ) -> EngagementData:
        """The engagement dataset that analytics, charts and the dashboard read.
        ``until`` is inclusive (a date means through that day).

        ``detail="summary"`` makes no per-message call: the recipients' stage counters,
        the messages and Mixmax's live-feed stats. ``detail="events"`` adds each
        engaged message's events (times, devices, places, links), fetching only the
        messages whose counters changed since the store last saw them. ``sequences``:
        ids or names (None: all). ``since`` / ``until``: the sending window.
        ``progress``: ``(what, done, total)`` callback; ``stop``: an Event that ends
        the pull between batches, keeping what was fetched."""
        return run_sync(
            self.aio.engagement(
                since=since,
                until=until,
                sequences=sequences,
                detail=detail,
                progress=progress,
                stop=stop,
            )
        )

    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with read-only views over the local store:
        ``events`` and the latest pull's ``sequences``, ``recipients``,
        ``recipient_stages``, ``messages``, ``stats``, ``team_members`` (see
        ``data.warehouse``). Nothing is copied; any number of readers at once."""
        return run_sync(self.aio.duckdb())

    def plan_enrollment(
        self,
        sequence_id: str,
        recipients: Any,
        *,
        email: str | None = None,
        variables: Mapping[str, str] | None = None,
        daily_limit: int = 500,
        home: Path | str | None = None,
    ) -> EnrollmentPlan:
        """Who would be added to the sequence, and why not; writes nothing.

        ``recipients``: a DataFrame, a CSV path or file-like, or a list of emails.
        ``email``: the column with the address (default: guessed, ``email`` first).
        ``variables``: Mixmax variable -> column, e.g. ``{"First name": "first_name"}``.
        ``daily_limit``: the sender's daily send limit (Mixmax's default is 500).
        ``home``: the toolkit home holding the journal (default ``MIXMAX_NB_HOME``)."""
        return run_sync(
            self.aio.plan_enrollment(
                sequence_id,
                recipients,
                email=email,
                variables=variables,
                daily_limit=daily_limit,
                home=home,
            )
        )

    def enroll(
        self,
        plan: EnrollmentPlan,
        schedule: DateLike | Literal["now", "draft"] = "now",
        *,
        batch_size: int = catalog.ENROLL_BATCH_MAX,
        concurrency: int = 4,
        progress: bool = True,
        on_progress: EnrollProgress | None = None,
        stop: StopFlag | None = None,
        unresolved: Unresolved = "check",
        home: Path | str | None = None,
    ) -> EnrollmentResult:
        """Apply a plan's ``add`` rows; safe to run again (journaled, never twice).

        ``schedule``: ``"now"``, a datetime (naive = UTC), or ``"draft"``.
        ``batch_size``/``concurrency``: recipients per call and calls in flight (batches
        also shrink to fit the CLI's argument limit). ``progress``: a tqdm bar;
        ``on_progress``: called with the running counts. ``stop``: anything with
        ``is_set()``; when set, no new batch starts. ``unresolved``: what to do with a
        batch whose answer was lost (``check`` the sequence first, the default)."""
        return run_sync(
            self.aio.enroll(
                plan,
                schedule,
                batch_size=batch_size,
                concurrency=concurrency,
                progress=progress,
                on_progress=on_progress,
                stop=stop,
                unresolved=unresolved,
                home=home,
            )
        )

    def pending_enrollments(
        self, sequence_id: str | None = None, *, settle: bool = False
    ) -> pd.DataFrame:
        """Enrollments and cancels with work left (running, an answer lost, or people
        not reached); ``settle=True`` first checks every lost answer against its sequence.

        Planning an enrollment settles its sequence's lost answers by itself; re-running
        the same enrollment finishes what was not sent."""
        return run_sync(self.aio.pending_enrollments(sequence_id, settle=settle))

    def plan_cancel(self, sequence_id: str, emails: Any, *, active_only: bool = True) -> CancelPlan:
        """Which of ``emails`` (a list, a DataFrame or a CSV) are active in the sequence
        and would be cancelled; writes nothing."""
        return run_sync(self.aio.plan_cancel(sequence_id, emails, active_only=active_only))

    def cancel_recipients(
        self,
        plan: CancelPlan | str,
        emails: Any = None,
        *,
        batch_size: int = catalog.CANCEL_BATCH_MAX,
        concurrency: int = 4,
        progress: bool = True,
        on_progress: EnrollProgress | None = None,
        stop: StopFlag | None = None,
        home: Path | str | None = None,
    ) -> CancelResult:
        """Apply a cancel plan (or plan and apply from a sequence id and ``emails``);
        journaled like :meth:`enroll`, so running it again cancels no one twice."""
        return run_sync(
            self.aio.cancel_recipients(
                plan,
                emails,
                batch_size=batch_size,
                concurrency=concurrency,
                progress=progress,
                on_progress=on_progress,
                stop=stop,
                home=home,
            )
        )

    def plan_unsubscribe(self, emails: Any) -> UnsubscribePlan:
        """Who would be added to the unsubscribe list (never contacted again); writes
        nothing. ``emails``: a pasted string (commas, semicolons or lines), a list of
        addresses, or a list of ``{"email", "name"}`` dicts."""
        return run_sync(self.aio.plan_unsubscribe(emails))

    def plan_resubscribe(self, emails: Any) -> UnsubscribePlan:
        """Who would be removed from the unsubscribe list; writes nothing."""
        return run_sync(self.aio.plan_resubscribe(emails))

    def apply_unsubscribes(self, plan: UnsubscribePlan, *, confirm: bool = False) -> pd.DataFrame:
        """Carry out a plan's ``will add`` / ``will remove`` rows, only with
        ``confirm=True``. One row per address written: ``email``, ``outcome``
        (``added``, ``removed`` or ``error``), ``detail``, ``action_run_id``; an error on
        one address does not stop the others, and is never retried (a write)."""
        return run_sync(self.aio.apply_unsubscribes(plan, confirm=confirm))

    def create_draft(
        self,
        to: Any,
        subject: str,
        body: str,
        *,
        cc: Any = None,
        bcc: Any = None,
        tracking: bool = True,
    ) -> Draft:
        """Create a Mixmax draft (nothing is sent); ``Draft.preview()`` shows it safely.
        ``to``/``cc``/``bcc`` as in :meth:`plan_unsubscribe`."""
        return run_sync(self.aio.create_draft(to, subject, body, cc=cc, bcc=bcc, tracking=tracking))

    def send_draft(self, message_id: str, *, confirm: bool = False) -> dict[str, Any]:
        """Send a draft by id, only with ``confirm=True``; a message already sent is
        refused (read first), so running the cell again never sends twice."""
        return run_sync(self.aio.send_draft(message_id, confirm=confirm))

    def close(self) -> None:
        """Close the transport (ends the sandbox's database or the CLI's session); later
        calls say the client is closed. Closing twice is harmless."""
        run_sync(self.aio.aclose())


# -- end of the generated Client --


# -- choosing a backend -------------------------------------------------------------

_announced = False


def _announce_sandbox(reason: str) -> None:
    global _announced
    if not _announced:
        _announced = True
        print(f"mixmax_nb: using the SANDBOX (emulated data): {reason}", file=sys.stderr)


async def open_membrane(settings: Settings, *, ensure: bool = True) -> Transport:
    """A CLI transport bound to a READY Mixmax connection, or a clear SetupError."""
    from .transport.cli import CliTransport

    transport = CliTransport(settings)
    await transport.whoami()
    if transport.connection_id:
        conn = await transport.get_connection(transport.connection_id)
    else:
        found = await find_mixmax_connection(transport)
        if found is None:
            if not ensure:
                raise SetupError(
                    "No Mixmax connection exists in Membrane yet.",
                    hint="Create one with the ConnectWizard.",
                )
            found = await transport.ensure_connection(MIXMAX_APP_URL)
        # List entries may be abridged (no clientAction): read the connection itself.
        conn = (
            found
            if found.get("state") in (READY, BUILDING)
            else (await transport.get_connection(found["id"]))
        )
    conn = await wait_until_settled(transport, conn)
    if conn.get("state") != READY:
        raise connection_error(conn)
    transport.connection_id = conn["id"]
    return transport


def open_sandbox(settings: Settings, **options: Any) -> Transport:
    """The sandbox transport (``SandboxTransport.open``'s options; None means unset)."""
    from .sandbox.membrane import SandboxTransport

    return SandboxTransport.open(settings, **{k: v for k, v in options.items() if v is not None})


async def _detect(settings: Settings) -> Transport | None:
    """The real backend if it is installed, logged in and READY; else None."""
    from .transport.cli import find_binary

    try:
        find_binary(settings)
        return await open_membrane(settings, ensure=False)
    except MixmaxNbError:
        return None


def connect(
    backend: Literal["membrane", "sandbox"] | None = None,
    *,
    seed: int | None = None,
    size: Literal["small", "default", "large"] | None = None,
    names: Literal["default", "adversarial"] | None = None,
    profile: Literal["instant", "realistic"] | None = None,
    db: str | None = None,
    scale: float | None = None,
    livefeed: Literal["per-message", "account"] | None = None,
    start: Literal["ready", "needs-connect", "logged-out"] | None = None,
    reference_date: str | None = None,
    connection_id: str | None = None,
    call_style: Literal["action-run", "act"] | None = None,
    timeout: float | None = None,
    membrane_bin: str | None = None,
) -> Client:
    """A ready :class:`Client`.

    ``backend``: ``"membrane"`` (the `membrane` CLI), ``"sandbox"`` (the embedded
    emulated account), or None to use ``MIXMAX_NB_BACKEND`` or detect.

    Sandbox options (a new database, or one given explicitly): ``seed``, ``size``,
    ``names`` (the account's words: ``"default"``, a real company's, or
    ``"adversarial"``, the same account with hostile text on purpose, for testing
    that views escape it), ``profile`` (service conditions: ``"instant"`` or
    ``"realistic"``), ``db`` (a SQLite path or ":memory:"), ``scale`` (sandbox time runs
    this many times faster), ``livefeed`` (the live feed's shape, see the sandbox
    README), ``start`` (a new account's login state), ``reference_date`` (the
    ISO day the seeded history ends on; default today). Membrane options:
    ``connection_id``, ``call_style``, ``timeout`` (seconds per CLI call),
    ``membrane_bin``. None means the setting from the environment.
    """
    settings = Settings.from_env()
    overrides = {
        "connection_id": connection_id,
        "call_style": call_style,
        "timeout": timeout,
        "membrane_bin": membrane_bin,
    }
    given = {k: v for k, v in overrides.items() if v is not None}
    if given:
        settings = settings.with_(**given)
    options: dict[str, Any] = {
        "seed": seed,
        "size": size,
        "names": names,
        "profile": profile,
        "db": db,
        "scale": scale,
        "livefeed": livefeed,
        "start": start,
        "reference_date": reference_date,
    }
    chosen = _chosen_backend(backend, settings)
    if chosen == "sandbox":
        return _ready(open_sandbox(settings, **options))
    if chosen == "membrane":
        return _ready(run_sync(open_membrane(settings)))
    found = run_sync(_detect(settings))
    if found is not None:
        return _ready(found)
    _announce_sandbox(
        "no logged-in `membrane` CLI with a READY Mixmax connection was found. "
        'Use mx.connect("membrane") or the ConnectWizard for your real account.'
    )
    return _ready(open_sandbox(settings, **options))


def _chosen_backend(backend: str | None, settings: Settings) -> str | None:
    """The backend asked for (the argument, then ``MIXMAX_NB_BACKEND``); None: detect."""
    chosen = backend or settings.backend
    if chosen not in (None, "membrane", "sandbox"):
        raise InputError(
            f"Unknown backend {chosen!r}.",
            field="backend",
            hint='Use "membrane", "sandbox" or None (detect).',
        )
    return chosen


def setup_transport(backend: str | None = None) -> Transport:
    """The transport :func:`connect` would choose, before any login: the `membrane` CLI
    when it is installed (logged in or not), else a logged-out sandbox, so the
    ConnectWizard walks the same steps as with a real account."""
    from .transport.cli import CliTransport, find_binary

    settings = Settings.from_env()
    chosen = _chosen_backend(backend, settings)
    if chosen is None:
        try:
            find_binary(settings)
            chosen = "membrane"
        except CliNotFoundError:
            chosen = "sandbox"
    if chosen == "membrane":
        return CliTransport(settings)
    return open_sandbox(settings.with_(sandbox_start="logged-out"))


def _ready(transport: Transport) -> Client:
    # Started once the backend is open, so the import does not compete with it.
    catalog.prewarm()
    return Client(transport)
