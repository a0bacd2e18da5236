"""The login and connection protocol's one long-poll, and finding the Mixmax connection.

Both :func:`mixmax_nb.connect` (through ``client.open_membrane``) and the ConnectWizard
wait for a BUILDING connection here, so there is one rule for how often Membrane is
asked and when to give up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .base import BUILDING, READY, Connection, Transport

POLL_GAP = 1.0
"""The least time between two ``connection get --wait`` calls: a CLI that ignores
``--wait`` (or answers at once) is not re-run back to back."""


async def wait_until_settled(
    transport: Transport,
    connection: Connection,
    *,
    deadline: float = 300.0,
    poll: int = 30,
    min_gap: float | None = None,
    on_poll: Callable[[Connection, float], None] | None = None,
) -> Connection:
    """Long-poll ``connection get --wait`` until the state leaves BUILDING or
    ``deadline`` seconds have passed; return the connection as last described (still
    BUILDING when time ran out). ``on_poll(connection, seconds_left)`` is called before
    each poll (the wizard shows its status there)."""
    gap_floor = POLL_GAP if min_gap is None else min_gap
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while connection.get("state") == BUILDING:
        left = end - loop.time()
        if left <= 0:
            break
        if on_poll is not None:
            on_poll(connection, left)
        asked = loop.time()
        connection = await transport.get_connection(
            connection["id"], wait=True, timeout=max(1, min(poll, int(left)))
        )
        gap = gap_floor - (loop.time() - asked)
        if connection.get("state") == BUILDING and gap > 0:
            await asyncio.sleep(gap)
    return connection


async def find_mixmax_connection(transport: Transport) -> Connection | None:
    """The user's Mixmax connection (a READY one first), or None."""
    connections = await transport.list_connections()

    def is_mixmax(c: Connection) -> bool:
        text = " ".join(str(c.get(k, "")) for k in ("key", "name", "integrationId")).lower()
        return "mixmax" in text

    mixmax = [c for c in connections if is_mixmax(c)]
    mixmax.sort(key=lambda c: c.get("state") != READY)
    return mixmax[0] if mixmax else None


__all__ = ["POLL_GAP", "find_mixmax_connection", "wait_until_settled"]
