"""One date type and one coercion for every public ``since`` / ``until``.

The rule, everywhere: a date is a ``date``, a ``datetime``, a pandas ``Timestamp``
or an ISO 8601 string (``"2026-11-15"``, ``"2026-11-15T09:30"``, with or without a
zone); naive times are UTC. ``until`` is inclusive: a bare date (``"2026-11-15"``
or ``date(2026, 11, 15)``) means "through the end of that day". ``"11/01/2026"`` is
refused (November 1st or January 11th?), as is ``"last tuesday"``; every bad input
is an :class:`~mixmax_nb.errors.InputError` that says what to pass.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import TypeAlias

import pandas as pd

from .errors import InputError

DateLike: TypeAlias = date | datetime | pd.Timestamp | str
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HINT = 'Pass a date, a datetime or an ISO string such as "2026-11-15" or "2026-11-15T09:30Z".'


def to_utc(value: DateLike | None, *, field: str, end: bool = False) -> pd.Timestamp | None:
    """``value`` as a UTC Timestamp (None stays None); ``end``: a bare date is the end
    of that day (the instant just after it), so an ``until`` date is included."""
    if value is None:
        return None
    date_only = False
    if isinstance(value, str):
        text = value.strip()
        if not _ISO.match(text):
            raise InputError(
                f"{field}={value!r} is not a date this toolkit reads.", field=field, hint=_HINT
            )
        date_only = bool(_DATE_ONLY.match(text))
        try:
            stamp = pd.Timestamp(text)
        except (ValueError, TypeError):
            raise InputError(
                f"{field}={value!r} is not a valid date.", field=field, hint=_HINT
            ) from None
    elif isinstance(value, pd.Timestamp | datetime):
        stamp = pd.Timestamp(value)
    elif isinstance(value, date):
        stamp = pd.Timestamp(value)
        date_only = True
    else:
        raise InputError(
            f"{field} must be a date, not a {type(value).__name__}.", field=field, hint=_HINT
        )
    if pd.isna(stamp):
        raise InputError(f"{field} is empty (NaT).", field=field, hint=_HINT)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if end and date_only:
        stamp = stamp + timedelta(days=1)
    return stamp


def window(
    since: DateLike | None, until: DateLike | None
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``[start, end)``: ``until`` inclusive as above; ``since`` after ``until`` is refused."""
    start = to_utc(since, field="since")
    stop = to_utc(until, field="until", end=True)
    if start is not None and stop is not None and start >= stop:
        raise InputError(
            f"since ({start:%Y-%m-%d %H:%M}) is not before until ({until}).",
            field="since",
            hint="Swap them, or widen the range.",
        )
    return start, stop


def last_day(end: pd.Timestamp | None) -> date | None:
    """The last calendar day (UTC) an exclusive ``end`` includes."""
    return None if end is None else (end - timedelta(microseconds=1)).date()


def one_or_many(value: str | list[str] | tuple[str, ...] | None, *, field: str) -> list[str] | None:
    """A single string is one value (never its letters); a list stays a list."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple | set | frozenset) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InputError(f"{field} must be a string or a list of strings.", field=field)


__all__ = ["DateLike", "last_day", "one_or_many", "to_utc", "window"]
