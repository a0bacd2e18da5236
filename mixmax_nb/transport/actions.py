"""The connection's own action list: key -> id, with the schemas the connection reports.

Membrane runs an action by the id that ``action list`` returned for the connection
(``membrane action run <actionId> --connectionId=...``, as the Mixmax skill does);
running by key is documented only as ``act --key``. An :class:`ActionDirectory`
reads the list once (every page), keeps each action's ``id``, ``inputSchema`` and
``outputSchema``, and answers ``resolve(key)``. When a run by id comes back "not
found" (the connection was rebuilt, the action re-published) :meth:`ActionDirectory.run`
reads the list again, once, and runs the new id; an unchanged id is not retried.

The connection's schemas win over the built-in catalog (``catalog.py``), which is only
the offline default for an action whose record carries no ``inputSchema``.
Transports own a directory each; the client reads it for validation, the explorer
for its forms, ``doctor`` to say where each schema came from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, TypeVar

from ..errors import NotFoundError

T = TypeVar("T")
Schema = dict[str, Any]
SchemaSource = Literal["connection", "built-in"]

LIST_PAGE_SIZE = 1000  # Membrane's list maximum: one page holds Mixmax's 20 actions
MAX_PAGES = 50  # a cursor that never ends (a misbehaving CLI) must not loop forever


class ActionPage(TypedDict):
    """One page of ``action list``: Membrane's ``{items, cursor}``; no cursor = last."""

    items: list[dict[str, Any]]
    cursor: str | None


ListPage = Callable[[str | None], Awaitable[ActionPage]]


@dataclass(frozen=True)
class ActionInfo:
    """One action as the connection lists it."""

    key: str
    id: str
    name: str
    input_schema: Schema | None
    output_schema: Schema | None
    record: Mapping[str, Any]

    @property
    def schema_source(self) -> SchemaSource:
        return "connection" if self.input_schema is not None else "built-in"


def _schema(value: Any) -> Schema | None:
    return dict(value) if isinstance(value, Mapping) else None


def info_from_record(record: Mapping[str, Any]) -> ActionInfo | None:
    """An action record (SDK ``ActionApiResponse``) as ActionInfo; None without a key or id."""
    key, ident = record.get("key"), record.get("id")
    if not isinstance(key, str) or not key or not isinstance(ident, str) or not ident:
        return None  # catalog actions with an empty key run by id only: not ours to name
    return ActionInfo(
        key=key,
        id=ident,
        name=str(record.get("name") or key),
        input_schema=_schema(record.get("inputSchema")),
        output_schema=_schema(record.get("outputSchema")),
        record=dict(record),
    )


def is_stale_action(exc: BaseException) -> bool:
    """Membrane's own "no such action" (``bad_request``/``not_found``), as opposed to a
    Mixmax 404 through an action (``action_run``): only the first means a stale id."""
    return isinstance(exc, NotFoundError) and exc.type == "bad_request"


class ActionDirectory:
    """The actions of one connection, read once and re-read on a stale id."""

    def __init__(self, list_page: ListPage) -> None:
        self._list_page = list_page
        self._by_key: dict[str, ActionInfo] | None = None
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def fixed(cls, keys: Iterable[str]) -> ActionDirectory:
        """A directory of ``keys``, each its own id, with no schemas (so the built-in
        catalog's apply): for transports that have no action list, such as test fakes."""
        records = [{"id": key, "key": key, "name": key} for key in keys]

        async def one_page(cursor: str | None) -> ActionPage:
            return {"items": records, "cursor": None}

        return cls(one_page)

    def forget(self) -> None:
        """Drop what was read (another connection was chosen)."""
        self._by_key = None

    @property
    def loaded(self) -> bool:
        return self._by_key is not None

    def cached(self) -> dict[str, ActionInfo]:
        """What was read so far, without a request (empty before the first read)."""
        return dict(self._by_key or {})

    async def _read(self) -> dict[str, ActionInfo]:
        found: dict[str, ActionInfo] = {}
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = await self._list_page(cursor)
            for record in page["items"]:
                info = info_from_record(record)
                if info is not None:
                    found.setdefault(info.key, info)
            cursor = page.get("cursor") or None
            if not cursor or not page["items"]:
                break
        return found

    def _guard(self) -> asyncio.Lock:
        # A sync client runs each call on a fresh loop: a lock belongs to one loop.
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._lock = loop, asyncio.Lock()
        return self._lock

    async def all(self, *, refresh: bool = False) -> dict[str, ActionInfo]:
        """Every keyed action of the connection (read on first use or when ``refresh``)."""
        async with self._guard():
            if self._by_key is None or refresh:
                self._by_key = await self._read()
            return dict(self._by_key)

    async def get(self, key: str) -> ActionInfo | None:
        """The connection's record of ``key``, or None when it lists no such action."""
        return (await self.all()).get(key)

    async def resolve(self, key: str) -> ActionInfo:
        info = await self.get(key)
        if info is None:
            raise _not_offered(key)
        return info

    async def run(self, key: str, by_id: Callable[[ActionInfo], Awaitable[T]]) -> T:
        """``by_id(info)`` for the action ``key``; on a stale id, read the list again once
        and run the new id. Nothing ran on a stale id, so this is no retry of a write."""
        info = await self.resolve(key)
        try:
            return await by_id(info)
        except NotFoundError as exc:
            if not is_stale_action(exc):
                raise
            fresh = (await self.all(refresh=True)).get(key)
            if fresh is None:
                raise _not_offered(key) from exc
            if fresh.id == info.id:
                raise
            return await by_id(fresh)


def _not_offered(key: str) -> NotFoundError:
    return NotFoundError(
        f"The Mixmax connection offers no action {key!r} "
        "(`membrane action list` does not list it).",
        hint="client.actions() shows what it offers; mx.doctor() compares it with the catalog.",
        key="not_found",
        action_key=key,
    )


__all__ = [
    "LIST_PAGE_SIZE",
    "ActionDirectory",
    "ActionInfo",
    "ActionPage",
    "SchemaSource",
    "info_from_record",
    "is_stale_action",
]
