"""Walk every page of a list action, whatever shape its output takes.

Three shapes occur (see the references): Membrane's ``{records|items, cursor}``
(no cursor = last page), Mixmax's ``{results, next, hasNext}`` (``next`` is echoed
on the last page too, so only ``hasNext`` may stop the walk) and a bare array
paged by ``offset`` (sequence recipients: at most 50 a page, never past 10,000).
Every walk asks for the largest page the action allows.

:func:`iter_pages` yields one list of records per page; callers stop early when
they have what they need (the event cache stops at the first known event).
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from . import catalog
from .errors import BadOutputError

RunFn = Callable[[str, Mapping[str, Any]], Awaitable[Any]]
"""Runs an action and returns its raw output (``AsyncClient.run_action``)."""


class RecipientsCapWarning(UserWarning):
    """Mixmax lists at most 10,000 recipients of a sequence; the rest cannot be read."""


def split_page(output: Any) -> tuple[list[dict[str, Any]], dict[str, Any] | None, str]:
    """Return (records, params for the next page or None, shape) for one page of output."""
    if isinstance(output, list):
        return output, {}, "array"  # caller decides from the page length and offset
    if not isinstance(output, Mapping):
        raise BadOutputError(
            "A list action returned neither a list nor an object.", raw=repr(output)[:500]
        )
    if isinstance(output.get("results"), list):
        records = output["results"]
        if output.get("hasNext") is True:
            token = output.get("next")
            if not token:
                raise BadOutputError(
                    "A page says hasNext but carries no `next` cursor.",
                    raw=repr({k: v for k, v in output.items() if k != "results"})[:500],
                )
            return records, {"next": str(token)}, "results"
        return records, None, "results"
    for name in catalog.PAGE_CONTAINERS[1:]:  # Membrane's own lists
        if isinstance(output.get(name), list):
            cursor = output.get("cursor")
            return output[name], ({"cursor": str(cursor)} if cursor else None), name
    raise BadOutputError(
        "A list action returned an object without results, records or items.",
        raw=repr(sorted(output))[:500],
    )


async def iter_pages(
    run: RunFn,
    key: str,
    input: Mapping[str, Any] | None = None,
    *,
    progress: Any = None,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Yield the records of every page of action ``key``, first page first.

    ``progress`` (a tqdm bar, optional) is advanced by the number of records.
    """
    spec = catalog.get(key)
    params: dict[str, Any] = dict(input or {})
    page_max = spec.page_max
    params["limit"] = page_max
    offset = int(params.get("offset", 0))
    seen_tokens: set[str] = set()
    while True:
        if spec.page == "array":
            if offset >= catalog.RECIPIENTS_CAP:
                warnings.warn(
                    f"{key}: Mixmax lists at most {catalog.RECIPIENTS_CAP:,} recipients of a "
                    "sequence; the rest cannot be read through this API.",
                    RecipientsCapWarning,
                    stacklevel=2,
                )
                return
            params["offset"] = offset
            params["limit"] = min(page_max, catalog.RECIPIENTS_CAP - offset)
        output = await run(key, params)
        records, follow, shape = split_page(output)
        if progress is not None:
            progress.update(len(records))
        yield records
        if shape == "array":
            if len(records) < params["limit"] or not records:
                return
            offset += len(records)
            continue
        if follow is None:
            return
        token = next(iter(follow.values()))
        if token in seen_tokens:
            # A server that keeps answering hasNext with the same cursor would loop forever.
            raise BadOutputError(f"{key}: the same page cursor came back twice; stopping.")
        seen_tokens.add(token)
        params.pop("next", None)
        params.pop("cursor", None)
        params.update(follow)


async def collect(
    run: RunFn, key: str, input: Mapping[str, Any] | None = None, *, progress: Any = None
) -> list[dict[str, Any]]:
    """Every record of every page."""
    out: list[dict[str, Any]] = []
    async for page in iter_pages(run, key, input, progress=progress):
        out.extend(page)
    return out
