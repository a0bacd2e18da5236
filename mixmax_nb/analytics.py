"""Engagement metrics over an engagement dataset, as Mixmax defines them (pure).

No I/O and no widgets: every function takes an :class:`Engagement` (built once by
:func:`prepare` from a :class:`~mixmax_nb.data.engagement.EngagementData`) and returns
small, aggregated DataFrames whose ``attrs["source"]`` says where the data came from
(``"sandbox"`` or ``"membrane"``), so charts can mark sandbox data.

Units (read these before any rate)
----------------------------------
* A **delivery** is one sent sequence email: a recipient's stage with a ``sentAt``
  and a ``messageId``. Its outcome comes from Mixmax's counters on that stage, as
  Mixmax's own Sequence Insights reads them: **opened** = ``opens`` > 0, **clicked**
  = ``clicks`` > 0, **downloaded** = ``downloads`` > 0, **replied** and **bounced**
  as the stage says. A bounced email is never counted as opened or replied.
* **Delivered** = sent and not bounced.
* A **recipient** (person) is one address in one sequence (the same address in two
  sequences is two people, as Mixmax counts enrollments); **reached** = at least one
  of their emails was delivered.
* **Time** of a delivery is its send time. A date range selects emails *sent* in the
  range and counts everything that happened to them, even after the range ends.
* **Weeks** start on Monday 00:00 UTC and are labelled by that Monday.
* Per-message events (``detail="events"``) give the *times* of opens, clicks and
  replies, links and files; they never change a count. Without them,
  :func:`time_to_first` and the event heatmap are empty and say why.

Counts in :func:`kpi_table`
---------------------------
``enrolled`` people added to the sequence in the range (not by stage);
``sent`` / ``delivered`` / ``bounced`` / ``opened`` / ``clicked`` / ``downloaded`` /
``replied`` emails, as above; ``reached`` / ``people_replied`` / ``unsubscribed``
people.

Rates (each with ``<rate>_lo`` / ``<rate>_hi``: a 95% Wilson score interval)
--------------------------------------------------------------------------
Mixmax's, equal to what Sequence Insights shows for the same data: ``open_rate``,
``click_rate``, ``reply_rate``, ``download_rate`` = count / delivered emails;
``bounce_rate`` = bounced / sent. Ours, named apart: ``delivery_rate`` = delivered /
sent; ``click_to_open_rate`` = opened-and-clicked / opened; ``people_reply_rate`` =
people who replied / people reached (what an A/B comparison tests: one vote per
person); ``unsubscribe_rate`` = people who unsubscribed / reached.

A rate whose denominator is 0 is ``NaN`` (and so are its bounds).

Speed
-----
:func:`prepare` turns the stages into one row per delivery with integer codes and
flag columns, once. Every metric and :meth:`Engagement.filter` then works on those
arrays with numpy/pandas group-bys; no library code loops over rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, NamedTuple, TypeAlias

import numpy as np
import pandas as pd

from ._keys import BLOCK, Join, first_rows, match, runs
from ._memory import kept
from ._parallel import beside
from .data.engagement import EngagementData

__all__ = [
    "DIMENSIONS",
    "RATES",
    "Comparison",
    "Engagement",
    "cohorts",
    "compare",
    "funnel",
    "heatmap",
    "kpi_summary",
    "kpi_table",
    "newcombe_interval",
    "prepare",
    "stage_dropoff",
    "stats_table",
    "time_to_first",
    "time_to_summary",
    "top_files",
    "top_links",
    "weekly_trends",
    "wilson_interval",
]

Dimension: TypeAlias = Literal["sequence", "stage", "sender", "team", "week"]
DIMENSIONS: Final = ("sequence", "stage", "sender", "team", "week")
Frameish: TypeAlias = "Engagement | EngagementData"
IntArray: TypeAlias = np.ndarray[Any, np.dtype[np.int64]]
BoolArray: TypeAlias = np.ndarray[Any, np.dtype[np.bool_]]

Z95: Final = 1.959963984540054  # two-sided 95% normal quantile
_NAT: Final = np.iinfo(np.int64).min
_MS_HOUR: Final = 3_600_000
_MS_DAY: Final = 86_400_000
_MS_WEEK: Final = 7 * _MS_DAY
_MONDAY0: Final = 4 * _MS_DAY  # 1970-01-01 was a Thursday; 1970-01-05 the first Monday
_FLAGS: Final = ("bounced", "opened", "clicked", "downloaded", "replied", "unsubscribed")
_TYPE_ORDER: Final = ("sent", *_FLAGS)
_ENGAGEMENT_TYPES: Final = ("opened", "clicked", "downloaded", "replied", "unsubscribed")
DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
NO_TEAM: Final = "(no team)"

RATES: Final[Mapping[str, tuple[str, str, str]]] = {
    # rate: (numerator, denominator, plain-words definition). The first five are
    # Mixmax's own (Sequence Insights: % of delivered emails, bounces % of sent).
    "open_rate": ("opened", "delivered", "opened / delivered emails (Mixmax's Open %)"),
    "click_rate": ("clicked", "delivered", "clicked / delivered emails (Mixmax's Click %)"),
    "reply_rate": ("replied", "delivered", "replied / delivered emails (Mixmax's Reply %)"),
    "download_rate": (
        "downloaded",
        "delivered",
        "downloaded / delivered emails (Mixmax's Download %)",
    ),
    "bounce_rate": ("bounced", "sent", "bounced / sent emails (Mixmax's Bounce %)"),
    "delivery_rate": ("delivered", "sent", "delivered / sent emails"),
    # Ours, named apart so no one takes them for Mixmax's.
    "click_to_open_rate": ("opened_clicked", "opened", "ours: clicked / opened emails"),
    "people_reply_rate": (
        "people_replied",
        "reached",
        "ours: people who replied / people reached (one vote per person)",
    ),
    "unsubscribe_rate": ("unsubscribed", "reached", "ours: people who unsubscribed / reached"),
}
MIXMAX_RATES: Final = ("open_rate", "click_rate", "reply_rate", "download_rate", "bounce_rate")


# -- intervals -----------------------------------------------------------------------


def wilson_interval(
    successes: Any, trials: Any, z: float = Z95
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], np.ndarray[Any, np.dtype[np.float64]]]:
    """Wilson score interval for ``successes / trials`` (arrays or scalars).

    ``centre = (p + z²/2n) / (1 + z²/n)``, ``half = z/(1 + z²/n) · sqrt(p(1-p)/n + z²/4n²)``.
    Unlike the normal approximation it stays inside [0, 1] and behaves at 0 and n
    successes. ``trials == 0`` gives NaN bounds.
    """
    x = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        z2 = z * z
        denom = 1.0 + z2 / n
        centre = (p + z2 / (2.0 * n)) / denom
        half = (z / denom) * np.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
        lo = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
        hi = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    return lo, hi


def newcombe_interval(
    x1: int, n1: int, x2: int, n2: int, z: float = Z95
) -> tuple[float, float, float]:
    """Difference ``p1 - p2`` with Newcombe's hybrid Wilson score interval (method 10).

    With Wilson bounds ``(l1, u1)`` and ``(l2, u2)`` of each proportion:
    ``lower = d - sqrt((p1 - l1)² + (u2 - p2)²)``,
    ``upper = d + sqrt((u1 - p1)² + (p2 - l2)²)`` (Newcombe, Stat. Med. 1998).
    Returns ``(d, lower, upper)``; NaNs when either group is empty.
    """
    if n1 <= 0 or n2 <= 0:
        return (math.nan, math.nan, math.nan)
    p1, p2 = x1 / n1, x2 / n2
    (l1,), (u1,) = wilson_interval([x1], [n1], z)
    (l2,), (u2,) = wilson_interval([x2], [n2], z)
    d = p1 - p2
    lower = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (d, lower, upper)


# -- preparation -------------------------------------------------------------------


@dataclass(frozen=True)
class _Labels:
    """Code -> text for each dimension (codes index these arrays)."""

    sequence_ids: np.ndarray[Any, Any]
    sequence_names: np.ndarray[Any, Any]
    user_ids: np.ndarray[Any, Any]
    user_names: np.ndarray[Any, Any]
    teams: np.ndarray[Any, Any]
    subjects: np.ndarray[Any, Any]
    sequence_tz: np.ndarray[Any, Any]


@dataclass(frozen=True)
class Engagement:
    """Events reshaped for fast metrics: one row per delivery, plus slim event rows.

    Build it with :func:`prepare` once per pull; :meth:`filter` returns a filtered
    view cheaply (boolean masks over arrays), which is what makes a dashboard filter
    change fast. Every metric function accepts an ``Engagement`` or a raw events
    frame.

    ``deliveries`` columns: ``seq``, ``stage``, ``user``, ``team``, ``recipient``,
    ``subject`` (integer codes; -1 = unknown), ``sent_at`` (epoch ms), ``week``
    (Monday-based week number), the flags of :data:`_FLAGS`, and ``first_open`` /
    ``first_click`` / ``first_reply`` (epoch ms, NaT's integer when none).
    ``events`` columns: ``delivery`` (row of ``deliveries``), ``type``, ``ts`` (epoch
    ms). ``assets``: ``delivery``, ``type``, ``link_url``, ``link_text``,
    ``file_name`` of the click and download events only.
    """

    deliveries: pd.DataFrame
    events: pd.DataFrame
    assets: pd.DataFrame
    enrollments: pd.DataFrame
    labels: _Labels
    source: str | None = None
    orphan_events: int = 0
    types: tuple[str, ...] = _FLAGS
    account_tz: str = "UTC"
    event_tz: np.ndarray[Any, Any] | None = None
    has_events: bool = False
    """The data holds per-message events (``detail="events"``): timings, links, files
    and the event heatmap need them; counts and rates never do."""
    capped: int = 0
    """Messages whose events stopped at Mixmax's cap of 200 (their counts stay right)."""
    _cache: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def n_deliveries(self) -> int:
        return len(self.deliveries)

    def _tag(self, frame: pd.DataFrame, **attrs: Any) -> pd.DataFrame:
        if self.source is not None:
            frame.attrs["source"] = self.source
        frame.attrs.update(attrs)
        return frame

    def filter(
        self,
        *,
        since: Any = None,
        until: Any = None,
        sequences: Iterable[str] | None = None,
        senders: Iterable[str] | None = None,
        teams: Iterable[str] | None = None,
        types: Iterable[str] | None = None,
    ) -> Engagement:
        """Deliveries sent in ``[since, until)`` by these senders/teams in these sequences.

        ``sequences`` and ``senders`` take ids; ``teams`` takes team names. ``None``
        means "all"; an empty list selects nothing. ``types`` chooses which engagement
        event types count (``opened``, ``clicked``, ``downloaded``, ``replied``,
        ``unsubscribed``, ``bounced``); ``sent`` always defines the messages looked
        at, so leaving it out changes nothing. Excluding ``bounced`` treats every sent
        message as delivered.
        """
        d = self.deliveries
        mask = np.ones(len(d), dtype=bool)
        emask = np.ones(len(self.enrollments), dtype=bool)
        lo, hi = _ms(since), _ms(until)
        if lo is not None:
            mask &= d["sent_at"].to_numpy() >= lo
            emask &= self.enrollments["created_at"].to_numpy() >= lo
        if hi is not None:
            mask &= d["sent_at"].to_numpy() < hi
            emask &= self.enrollments["created_at"].to_numpy() < hi
        for column, chosen, universe in (
            ("seq", sequences, self.labels.sequence_ids),
            ("user", senders, self.labels.user_ids),
            ("team", teams, self.labels.teams),
        ):
            if chosen is None:
                continue
            wanted = np.isin(universe.astype(object), np.asarray(list(chosen), dtype=object))
            codes = np.flatnonzero(wanted)
            mask &= np.isin(d[column].to_numpy(), codes)
            emask &= np.isin(self.enrollments[column].to_numpy(), codes)
        deliveries = d.loc[mask] if not mask.all() else d
        kept = self.types if types is None else tuple(t for t in _FLAGS if t in set(types))
        dropped = [t for t in _FLAGS if t not in kept]
        if dropped:
            deliveries = deliveries.copy()
            deliveries[dropped] = False
        events = self.events
        if not mask.all() or dropped:
            keep = mask[events["delivery"].to_numpy()]
            if dropped:
                keep &= ~events["type"].isin(dropped).to_numpy()
            events = events.loc[keep]
        assets = self.assets
        if not mask.all() or dropped:
            keep_a = mask[assets["delivery"].to_numpy()]
            if dropped:
                keep_a &= ~assets["type"].isin(dropped).to_numpy()
            assets = assets.loc[keep_a]
        enrollments = self.enrollments.loc[emask] if not emask.all() else self.enrollments
        # The filtered view shares the (expensive) local-time cache with its parent.
        return replace(
            self,
            deliveries=deliveries,
            events=events,
            assets=assets,
            enrollments=enrollments,
            types=kept,
        )


def _ms(value: Any) -> int | None:
    """A time bound as epoch ms (naive values are UTC); None stays None."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


def _epoch_ms(series: pd.Series) -> IntArray:
    """A tz-aware datetime column as int64 epoch ms (NaT -> the int64 minimum)."""
    values = series.dt.tz_convert("UTC").dt.as_unit("ms") if len(series) else series
    if len(series) == 0:
        return np.empty(0, dtype=np.int64)
    return np.asarray(values.to_numpy(dtype="datetime64[ms]").view(np.int64), dtype=np.int64)


def _codes(values: pd.Series, universe: pd.Index) -> IntArray:
    """Position of each value in ``universe`` (-1 when missing or absent).

    Arrow codes first (runs of equal values hashed once), then look up only the
    distinct values: converting a million strings to Python objects for
    ``get_indexer`` is what would be slow.
    """
    if len(values) == 0:
        return np.empty(0, dtype=np.int64)
    try:
        (codes,), dictionary = _encode(_arrow(values))
        uniques: Any = dictionary.to_pylist()
    except (TypeError, ValueError):  # not text (Arrow refuses it): pandas' factorize
        raw, uniques = pd.factorize(values, use_na_sentinel=True)
        codes = np.asarray(raw, dtype=np.int64)
    lookup = np.asarray(universe.get_indexer(pd.Index(np.asarray(uniques, dtype=object))))
    return np.where(codes >= 0, lookup[np.maximum(codes, 0)], -1) if len(lookup) else codes


def _distinct_text(values: pd.Series) -> list[Any]:
    """Distinct non-null values in order of first appearance (Arrow's hash, no objects)."""
    import pyarrow.compute as pc

    if len(values) == 0:
        return []
    return [v for v in pc.unique(_arrow(values)).to_pylist() if v is not None]


def _isin(series: pd.Series, wanted: Sequence[str]) -> BoolArray:
    """``series.isin(wanted)`` as a bool array, on the category codes when categorical."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        cats = list(series.cat.categories)
        hit = np.asarray([c in wanted for c in cats] + [False], dtype=bool)
        return hit[np.asarray(series.cat.codes.to_numpy(), dtype=np.int64)]  # -1: the False
    return np.asarray(series.isin(wanted).to_numpy(dtype=bool), dtype=bool)


def _recode(codes: IntArray, lookup: np.ndarray[Any, Any]) -> IntArray:
    """Map factorize codes through ``lookup`` (-1 stays -1)."""
    if len(lookup) == 0:
        return np.full(len(codes), -1, dtype=np.int64)
    return np.where(codes >= 0, lookup[np.maximum(codes, 0)], -1).astype(np.int64)


def _text_array(values: Any) -> np.ndarray[Any, Any]:
    return np.asarray(
        [str(v) if v is not None and v is not pd.NA and v == v else "" for v in values],
        dtype=object,
    )


def _distinct(codes: IntArray, size: int) -> int:
    """Number of distinct non-negative codes below ``size`` (cheaper than np.unique)."""
    seen = np.zeros(size, dtype=bool)
    seen[codes] = True
    return int(seen.sum())


def _factorize_via(small: np.ndarray[Any, Any], codes: IntArray) -> tuple[IntArray, Any]:
    """``pd.factorize(small[codes])`` (code -1 takes ``small``'s last slot) without
    text per row: the few texts are factorized, then the rows' integer codes."""
    kinds, kind_text = pd.factorize(small)
    kinds = np.asarray(kinds, dtype=np.int64)
    last = np.broadcast_to(kinds[-1], len(codes))  # no row: the last slot (no copy)
    return _codes_by_row(codes, kinds, last, np.asarray(kind_text, dtype=object))


def _factorize_runs(values: IntArray) -> tuple[IntArray, np.ndarray[Any, Any]]:
    """``pd.factorize(values)``, hashing one value per run of equal neighbours (a
    recipient's stages come together): a value's first row always starts a run, so
    the codes are the same."""
    n = len(values)
    if n < 2:
        codes, uniques = pd.factorize(values)
        return np.asarray(codes, dtype=np.int64), np.asarray(uniques)
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    if len(starts) > 0.8 * n:  # few runs: no saving
        codes, uniques = pd.factorize(values)
        return np.asarray(codes, dtype=np.int64), np.asarray(uniques)
    head_codes, uniques = pd.factorize(values[starts])
    return np.repeat(np.asarray(head_codes, dtype=np.int64), np.diff(np.r_[starts, n])), uniques


def _group_min(codes: IntArray, values: IntArray, n: int) -> IntArray:
    """Per-code minimum of ``values`` (NaT's integer where a code has no value)."""
    out = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    if len(codes):
        # Events come grouped by message: the minimum of each run of one code first
        # (a vectorised reduceat), then the unbuffered ``minimum.at`` on one value
        # per run only.
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        np.minimum.at(out, codes[starts], np.minimum.reduceat(values, starts))
    out[out == np.iinfo(np.int64).max] = _NAT
    return out


def _mapping(values: Any) -> dict[str, str]:
    if values is None:
        return {}
    if isinstance(values, pd.DataFrame):
        cols = list(values.columns)
        key = "user_id" if "user_id" in cols else cols[0]
        val = next(c for c in cols if c != key)
        pairs = zip(values[key].astype(object), values[val].astype(object), strict=True)
        return {str(k): str(v) for k, v in pairs if k is not pd.NA and v is not pd.NA}
    return {str(k): str(v) for k, v in dict(values).items()}


_EMAIL_STAGES: Final = ("email", "manual_email")


def _users_and_teams(
    members: pd.DataFrame | None,
    user_names: Mapping[str, str] | pd.DataFrame | None,
    user_teams: Mapping[str, str] | pd.DataFrame | None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Display name and team name per user id: the explicit mappings win, else the
    team members frame (a user's first team)."""
    names: dict[str, str] = {}
    teams: dict[str, str] = {}
    if members is not None and len(members):
        for uid, name, email, team in zip(
            members["user_id"].astype(object),
            members["name"].astype(object),
            members["email"].astype(object),
            members["team_name"].astype(object),
            strict=True,
        ):
            if uid is None or uid is pd.NA:
                continue
            label = name if isinstance(name, str) and name else email
            if isinstance(label, str) and label:
                names.setdefault(str(uid), label)
            if isinstance(team, str) and team:
                teams.setdefault(str(uid), team)
    names.update(_mapping(user_names))
    teams.update(_mapping(user_teams))
    return names, teams


def _arrow(series: pd.Series) -> Any:
    """A text column as one Arrow string array (zero-copy for Arrow-backed strings)."""
    import pyarrow as pa

    try:
        array = pa.array(series.array)
    except (TypeError, pa.ArrowInvalid, pa.ArrowTypeError):
        array = pa.array(series.astype(object).to_numpy(), from_pandas=True, type=pa.string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    # 32-bit offsets: Arrow's hashing of `string` is about 2.5x faster than of
    # `large_string` (pandas' own), and ids and names never reach 2 GB.
    return array.cast(pa.string()) if array.type != pa.string() else array


def _encode(*arrays: Any) -> tuple[list[IntArray], Any]:
    """Codes of every value of several Arrow string arrays in ONE shared dictionary
    (-1 for null; codes in order of first appearance), and the dictionary: joining on
    text without Python objects."""
    import pyarrow as pa
    import pyarrow.compute as pc

    starts = [runs(a) for a in arrays]
    heads = [a if s is None else a.take(s) for a, s in zip(arrays, starts, strict=True)]
    encoded = pa.concat_arrays(heads).dictionary_encode()
    codes = np.asarray(pc.fill_null(encoded.indices, -1).to_numpy(), dtype=np.int64)
    bounds = np.cumsum([len(h) for h in heads])[:-1]
    out = []
    for array, run, part in zip(arrays, starts, np.split(codes, bounds), strict=True):
        out.append(part if run is None else np.repeat(part, np.diff(np.r_[run, len(array)])))
    return out, encoded.dictionary


def _codes_by_row(
    rows: IntArray, row_codes: IntArray, otherwise: IntArray | None, dictionary: Any
) -> tuple[IntArray, Any]:
    """Per delivery, the code of its row in another frame (``row_codes[rows]``; row -1:
    none), else its own code in ``otherwise``; renumbered by first appearance, with the
    dictionary of only the values used (as ``_encode`` would give for the rows' text).

    In blocks of rows: every whole-column temporary at millions of deliveries would
    be fresh memory, which costs more than the work itself; blocks are reused.
    """
    n = len(rows)
    out = np.empty(n, dtype=np.int64)
    slot = np.full(len(dictionary) + 1, -1, dtype=np.int64)  # code + 1 -> new code
    used: list[Any] = []
    for lo in range(0, n, BLOCK):
        r = rows[lo : lo + BLOCK]
        if len(row_codes):
            block = np.where(r >= 0, row_codes[np.maximum(r, 0)], -1)
        else:
            block = np.full(len(r), -1, dtype=np.int64)
        if otherwise is not None:
            block = np.where(block >= 0, block, otherwise[lo : lo + BLOCK])
        block += 1
        seen = pd.unique(block)  # in order of first appearance within the block
        fresh = seen[(seen > 0) & (slot[seen] < 0)]
        slot[fresh] = np.arange(len(used), len(used) + len(fresh))
        used.extend((fresh - 1).tolist())
        out[lo : lo + BLOCK] = slot[block]
    return out, dictionary.take(np.asarray(used, dtype=np.int64))


def _stage_email_codes(
    emails: Any, picked: IntArray, rec_emails: Any | None
) -> tuple[list[IntArray], int]:
    """:func:`match` codes of the picked stages' addresses, lowercased (and of the
    recipients', when given), without copying the text of every picked row.

    Stages come grouped by recipient: only the first row of each run of one address is
    lowercased and matched; each picked row takes its run's code.
    """
    import pyarrow.compute as pc

    starts = runs(emails)
    others = [rec_emails] if rec_emails is not None else []
    if starts is None:
        chosen = emails if len(picked) == len(emails) else emails.take(picked)
        return match(pc.utf8_lower(chosen), *others)
    codes, n = match(pc.utf8_lower(emails.take(starts)), *others)
    # Each row's run: a count of the run starts up to it (one pass in order; a binary
    # search per picked row cost 5x more at millions of stages).
    starts_here = np.zeros(len(emails), dtype=np.int32)
    starts_here[starts] = 1
    run_of_row = np.cumsum(starts_here, dtype=np.int64)[picked] - 1
    return [codes[0][run_of_row], *codes[1:]], n


class _Names(NamedTuple):
    """Senders' and subjects' codes per source column, before the message join picks
    each delivery's (no messages frame: the stages' senders are the deliveries')."""

    msg_user: IntArray | None
    stage_user: IntArray
    users: Any  # Arrow dictionary of the user ids
    msg_subject: IntArray | None
    subjects: Any  # Arrow dictionary of the subjects


class _People(NamedTuple):
    """What :func:`prepare` keys by sequence, address, sender and subject, per delivery."""

    seq_code: IntArray
    email_codes: list[IntArray]  # the deliveries', then the recipients' (when any)
    n_emails: int
    rec_codes: IntArray
    rec_uniques: np.ndarray[Any, Any]
    ordinal: IntArray
    unsubscribed: BoolArray
    names: _Names


def _on_last_stage(flagged: BoolArray, recipient_ids: Any, ordinal: IntArray) -> BoolArray:
    """``flagged`` only on each recipient's last sent stage: Mixmax exits a recipient
    who unsubscribed, so the unsubscribe counts once, on their last email.

    Only the recipients with a flagged row are grouped (Arrow's ``is_in`` finds all of
    their rows): unsubscribes are a few percent of recipients, ids are millions.
    """
    import pyarrow.compute as pc

    out = np.zeros(len(flagged), dtype=bool)
    if not flagged.any():
        return out
    wanted = pc.unique(recipient_ids.filter(flagged))
    rows = np.flatnonzero(pc.is_in(recipient_ids, value_set=wanted).to_numpy(zero_copy_only=False))
    (codes,), _ = match(recipient_ids.take(rows))
    codes = np.where(codes >= 0, codes, int(codes.max(initial=-1)) + 1)  # no id: one group
    last = np.full(int(codes.max()) + 1, -1, dtype=np.int64)
    np.maximum.at(last, codes, ordinal[rows])
    out[rows] = flagged[rows] & (ordinal[rows] == last[codes])
    return out


def _equals(series: pd.Series, value: str) -> BoolArray:
    """``series == value`` as a bool array (NA is False), on the category codes when
    categorical (no text per row)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        cats = list(series.cat.categories)
        if value not in cats:
            return np.zeros(len(series), dtype=bool)
        return np.asarray(series.cat.codes.to_numpy() == cats.index(value), dtype=bool)
    return np.asarray(series.to_numpy(dtype=object) == value, dtype=bool)


def prepare(
    data: EngagementData,
    *,
    user_names: Mapping[str, str] | pd.DataFrame | None = None,
    user_teams: Mapping[str, str] | pd.DataFrame | None = None,
    account_tz: str = "UTC",
) -> Engagement:
    """Reshape an :class:`~mixmax_nb.data.engagement.EngagementData` once for every metric.

    A **delivery** is one sent email of a sequence: a recipient's stage with a
    ``sentAt`` and a ``messageId``. Its flags come from Mixmax's own counters on that
    stage (``opens`` > 0 is opened, and so on), so every count equals what Mixmax's
    Sequence Insights shows for the same data. The per-message events, when the data
    has them (``detail="events"``), add the times of the first open, click and reply,
    the links and files, and the event heatmap; they never change a count.

    A delivery's **sender** is the message's ``userId`` (from the messages frame), else
    the user who added the recipient; its **team** that user's team (team members
    frame, or ``user_teams``), else the first team the sequence is shared with.
    ``account_tz`` is the fallback time zone for :func:`heatmap`.

    Joins run on integers, never Python objects: ids are hashed from their Arrow bytes
    (:mod:`mixmax_nb._keys`), names and subjects are Arrow dictionary codes. A
    million-event dataset prepares in under a second.

    Freed memory stays in the process for the next call, pyarrow's included
    (:mod:`mixmax_nb._memory`; ``MIXMAX_NB_KEEP_MEMORY=0`` leaves the allocators alone).
    At scale, the people and names are worked out on a second core while this thread
    joins the message ids (:mod:`mixmax_nb._parallel`); the result is the same.
    """
    with kept():
        return _prepare(data, user_names, user_teams, account_tz)


def _prepare(
    data: EngagementData,
    user_names: Mapping[str, str] | pd.DataFrame | None,
    user_teams: Mapping[str, str] | pd.DataFrame | None,
    account_tz: str,
) -> Engagement:
    import pyarrow.compute as pc

    st = data.stages
    n_rows = len(st)
    if n_rows:
        mask = (
            _isin(st["type"], _EMAIL_STAGES)
            & st["sent_at"].notna().to_numpy()
            & np.asarray(_arrow(st["message_id"]).is_valid().to_numpy(zero_copy_only=False))
        )
    else:
        mask = np.zeros(0, dtype=bool)
    picked = np.flatnonzero(mask)
    nd = len(picked)
    every = nd == n_rows  # every stage is a sent email: nothing to pick

    def pick(values: Any) -> Any:
        return values if every else values[picked]

    def num(name: str) -> IntArray:
        return np.asarray(pick(st[name].fillna(0).to_numpy(dtype=np.int64)), dtype=np.int64)

    def flag(name: str) -> BoolArray:
        return np.asarray(pick(st[name].fillna(False).to_numpy(dtype=bool)), dtype=bool)

    def text(frame: pd.DataFrame, name: str, rows: IntArray | None = None) -> Any:
        array = _arrow(frame[name])
        return array.take(rows) if rows is not None and not every else array

    names_map, team_map = _users_and_teams(data.team_members, user_names, user_teams)
    sequences = data.sequences

    # Sequences: the frame first, then ids seen only on recipients.
    seq_ids: list[Any] = []
    if len(sequences):
        seq_ids.extend(sequences["id"].dropna().astype(object))
    if n_rows:
        seq_ids.extend(_distinct_text(st["sequence_id"]))
    if len(data.recipients):
        seq_ids.extend(_distinct_text(data.recipients["sequence_id"]))
    seq_index = pd.Index(pd.unique(np.asarray(seq_ids, dtype=object)))
    seq_names = np.asarray(seq_index.astype(str), dtype=object)
    seq_tz = np.full(len(seq_index), "", dtype=object)
    seq_team = np.full(len(seq_index), NO_TEAM, dtype=object)
    if len(sequences):
        pos = _codes(sequences["id"], seq_index)
        ok = pos >= 0
        names = _text_array(sequences["name"])
        seq_names[pos[ok]] = np.where(names[ok] != "", names[ok], seq_names[pos[ok]])
        if "timezone" in sequences:
            seq_tz[pos[ok]] = _text_array(sequences["timezone"])[ok]
        if "team_ids" in sequences:
            firsts = _text_array(sequences["team_ids"])
            for p, first in zip(pos[ok], firsts[ok], strict=True):  # one per sequence
                tid = first.split(",")[0].strip()
                if tid:
                    seq_team[p] = tid

    def people_and_names() -> _People:
        """Everything keyed by sequence, address, sender and subject: on the second
        core (:mod:`mixmax_nb._parallel`) while this thread joins the message ids."""
        seq_code = pick(_codes(st["sequence_id"], seq_index)) if n_rows else picked
        # People: (sequence, address compared case-insensitively).
        recipients = data.recipients
        rec_emails = pc.utf8_lower(_arrow(recipients["email"])) if len(recipients) else None
        email_codes, n_em = _stage_email_codes(_arrow(st["email"]), picked, rec_emails)
        rec_pair = np.where(seq_code >= 0, seq_code, len(seq_index)) * (n_em + 1) + email_codes[0]
        rec_codes, rec_uniques = _factorize_runs(rec_pair)
        ordinal = pick(st["ordinal"].fillna(-1).to_numpy(dtype=np.int64))
        unsubscribed = _on_last_stage(
            pick(_equals(st["completed_reason"], "unsubscribed")),
            text(st, "recipient_id", picked),
            ordinal,
        )
        # Senders and subjects: text encoded once per source column, never copied per
        # delivery (each delivery takes its message's code once the join is done).
        stage_users = text(st, "user_id", picked)
        if len(data.messages):
            (msg_user, stage_user), users = _encode(_arrow(data.messages["user_id"]), stage_users)
            (msg_subject,), subjects = _encode(_arrow(data.messages["subject"]))
            coded = _Names(msg_user, stage_user, users, msg_subject, subjects)
        else:
            (stage_user,), users = _encode(stage_users)
            coded = _Names(None, stage_user, users, None, stage_users[:0])
        return _People(
            seq_code, email_codes, n_em, rec_codes, rec_uniques, ordinal, unsubscribed, coded
        )

    people_future = beside(n_rows, people_and_names)

    # Message ids join stages, events and the messages frame: hashed once.
    events = data.events
    messages = data.messages
    has_events = events is not None and len(events) > 0
    # The stages' column whole, the unsent rows masked: no copy of its text.
    columns_of_ids = [_arrow(st["message_id"])]
    if has_events:
        assert events is not None
        columns_of_ids.append(_arrow(events["message_id"]))
    if len(messages):
        columns_of_ids.append(_arrow(messages["id"]))
    masks = [None if every else mask] + [None] * (len(columns_of_ids) - 1)
    by_message = Join(*columns_of_ids, masks=masks)
    msg_rows = (
        pick(by_message.rows(len(columns_of_ids) - 1, 0)) if len(messages) else np.full(nd, -1)
    )
    # Events (when pulled): times of first engagement, links, files; never the counts.
    if has_events:
        assert events is not None
        ev_delivery = by_message.rows(0, 1)  # a stage row: its delivery, when picked
        if not every:
            delivery_of_row = np.full(n_rows + 1, -1, dtype=np.int64)  # slot -1: none
            delivery_of_row[picked] = np.arange(nd)
            ev_delivery = delivery_of_row[ev_delivery]
        cat = events["type"].astype("category")
        remap = np.asarray(
            [_TYPE_ORDER.index(c) if c in _TYPE_ORDER else -1 for c in cat.cat.categories]
        )
        # Small codes (int8) through a lookup whose slot 0 is "no type": no n-sized
        # 64-bit temporaries.
        lookup = np.asarray([-1, *remap.tolist()], dtype=np.int8)
        types = lookup[np.asarray(cat.cat.codes.to_numpy()) + 1]
        ts = _epoch_ms(events["timestamp"])
        keep = (ev_delivery >= 0) & (types > 0) & (ts != _NAT)
        orphans = int(((ev_delivery < 0) & (types > 0)).sum())
        kd, kt, kts = ev_delivery[keep], types[keep], ts[keep]
        is_asset = np.isin(kt, [_TYPE_ORDER.index("clicked"), _TYPE_ORDER.index("downloaded")])
        assets = events.iloc[np.flatnonzero(keep)[is_asset]][list(_ASSET_COLUMNS)]
        assets = assets.reset_index(drop=True)
    else:
        orphans = 0
        kd = kt = kts = np.empty(0, dtype=np.int64)
        is_asset = np.empty(0, dtype=bool)
        assets = pd.DataFrame({c: pd.Series([], dtype="string") for c in _ASSET_COLUMNS})

    people = people_future.result()
    seq_code, email_codes, n_em = people.seq_code, people.email_codes, people.n_emails
    rec_codes, rec_uniques, coded = people.rec_codes, people.rec_uniques, people.names
    # Sender: the message's user, else who added the recipient; subject: the message's.
    if coded.msg_user is not None and coded.msg_subject is not None:
        user_code, user_dict = _codes_by_row(
            msg_rows, coded.msg_user, coded.stage_user, coded.users
        )
        subj_code, subj_dict = _codes_by_row(msg_rows, coded.msg_subject, None, coded.subjects)
    else:
        user_code, user_dict = coded.stage_user, coded.users
        subj_code, subj_dict = np.full(nd, -1, dtype=np.int64), coded.subjects
    user_index = pd.Index(np.asarray(user_dict.to_pylist(), dtype=object))
    if len(data.recipients):
        extra_users = np.asarray(_distinct_text(data.recipients["user_id"]), dtype=object)
        user_index = user_index.append(pd.Index(extra_users).difference(user_index))
    user_names_arr = np.asarray([names_map.get(str(u), str(u)) for u in user_index], dtype=object)

    team_of_user: np.ndarray[Any, Any] | None = None
    if team_map:
        team_of_user = np.asarray([team_map.get(str(u), NO_TEAM) for u in user_index], dtype=object)
        team_codes, team_uniques = _factorize_via(np.append(team_of_user, NO_TEAM), user_code)
    else:
        team_codes, team_uniques = _factorize_via(np.append(seq_team, NO_TEAM), seq_code)

    bounced = flag("bounced")
    sent_at = np.asarray(pick(_epoch_ms(st["sent_at"])) if nd else picked, dtype=np.int64)
    # One dict of arrays, made a frame once without copying (pandas would otherwise
    # stack same-typed columns into one block: a copy of every row).
    columns: dict[str, Any] = {
        "seq": seq_code,
        "stage": people.ordinal,
        "user": np.asarray(user_code, dtype=np.int64),
        "team": np.asarray(team_codes, dtype=np.int64),
        "recipient": np.asarray(rec_codes, dtype=np.int64),
        "subject": np.asarray(subj_code, dtype=np.int64),
        "sent_at": sent_at,
        "week": (sent_at - _MONDAY0) // _MS_WEEK,
        "bounced": bounced,
        "opened": (num("opens") > 0) & ~bounced,
        "clicked": (num("clicks") > 0) & ~bounced,
        "downloaded": (num("downloads") > 0) & ~bounced,
        "replied": flag("replied") & ~bounced,
        "unsubscribed": people.unsubscribed & ~bounced,
    }

    for column, kind in (
        ("first_open", "opened"),
        ("first_click", "clicked"),
        ("first_reply", "replied"),
    ):
        rows = kt == _TYPE_ORDER.index(kind)
        columns[column] = _group_min(kd[rows], kts[rows], nd)
    deliveries = pd.DataFrame(columns, copy=False)
    slim = pd.DataFrame(
        {
            "delivery": kd,
            "type": pd.Categorical.from_codes(kt, dtype=pd.CategoricalDtype(list(_TYPE_ORDER))),
            "ts": kts,
        },
        copy=False,
    )
    assets.insert(0, "type", slim["type"].iloc[np.flatnonzero(is_asset)].array)
    assets.insert(0, "delivery", kd[is_asset])

    enrollments = _enrollments(
        data.recipients,
        seq_index,
        user_index,
        None
        if team_of_user is None
        else np.append(team_of_user, team_map.get(str(pd.NA), NO_TEAM)),
        np.append(seq_team, NO_TEAM),
        pd.Index(np.asarray(team_uniques, dtype=object)),
        email_codes[1] if len(email_codes) > 1 else np.empty(0, dtype=np.int64),
        pd.Index(np.asarray(rec_uniques)),
        n_em,
        len(seq_index),
    )
    team_labels = np.asarray(team_uniques, dtype=object)
    if not team_map and data.team_members is not None and len(data.team_members):
        ids_to_names = dict(
            zip(
                data.team_members["team_id"].astype(object),
                data.team_members["team_name"].astype(object),
                strict=True,
            )
        )
        team_labels = np.asarray([str(ids_to_names.get(t, t)) for t in team_labels], dtype=object)
    labels = _Labels(
        sequence_ids=np.asarray(seq_index, dtype=object),
        sequence_names=seq_names,
        user_ids=np.asarray(user_index, dtype=object),
        user_names=user_names_arr,
        teams=np.concatenate([team_labels, enrollments.attrs.pop("extra_teams")]),
        subjects=_text_array(subj_dict.to_pylist()),
        sequence_tz=seq_tz,
    )
    eng = Engagement(
        deliveries=deliveries,
        events=slim,
        assets=assets,
        enrollments=enrollments,
        labels=labels,
        source=data.source,
        orphan_events=orphans,
        account_tz=account_tz,
        has_events=data.events is not None,
        capped=len(data.capped),
    )
    eng._cache["has_recipients"] = True
    eng._cache["base_deliveries"] = deliveries
    eng._cache["base_events"] = slim
    if data.since is not None or data.until is not None:
        # The pull's window: emails sent in it (``until`` already exclusive here).
        return eng.filter(since=data.since, until=data.until)
    return eng


_ASSET_COLUMNS: Final = ("link_url", "link_text", "file_name")


def _enrollments(
    recipients: pd.DataFrame,
    seq_index: pd.Index,
    user_index: pd.Index,
    team_of_user: np.ndarray[Any, Any] | None,
    seq_team: np.ndarray[Any, Any],
    team_index: pd.Index,
    r_em: IntArray,
    rec_index: pd.Index,
    n_emails: int,
    n_seqs: int,
) -> pd.DataFrame:
    """The recipients frame, coded like the deliveries (people added to a sequence)."""
    columns = ("seq", "user", "team", "recipient", "created_at", "week")
    if not len(recipients):
        empty = pd.DataFrame({c: np.empty(0, dtype=np.int64) for c in columns})
        empty.attrs["extra_teams"] = np.empty(0, dtype=object)
        return empty
    r_seq = _codes(recipients["sequence_id"], seq_index)
    r_user = _codes(recipients["user_id"], user_index)
    # Team per user (or per sequence), the last slot for none: text per code, not per row.
    if team_of_user is not None:
        small, slot = team_of_user, np.where(r_user >= 0, r_user, len(team_of_user) - 1)
    else:
        small, slot = seq_team, np.where(r_seq >= 0, r_seq, len(seq_team) - 1)
    kinds, kind_text = pd.factorize(small)
    row_kind = np.asarray(kinds, dtype=np.int64)[slot]
    r_team = np.asarray(team_index.get_indexer(pd.Index(kind_text)), dtype=np.int64)[row_kind]
    extra_kinds = np.asarray(pd.unique(row_kind[r_team < 0]), dtype=np.int64)
    extra = np.asarray(kind_text, dtype=object)[extra_kinds]
    if len(extra):
        place = np.full(len(kind_text), -1, dtype=np.int64)
        place[extra_kinds] = np.arange(len(extra_kinds))
        r_team = np.where(r_team >= 0, r_team, len(team_index) + place[row_kind])
    created = _epoch_ms(recipients["created_at"])
    r_pair = np.where(r_seq >= 0, r_seq, n_seqs) * (n_emails + 1) + r_em
    r_rec = np.asarray(rec_index.get_indexer(pd.Index(r_pair)), dtype=np.int64)
    r_rec = np.where(r_em >= 0, r_rec, -1)
    frame = pd.DataFrame(
        {
            "seq": r_seq,
            "user": r_user,
            "team": r_team,
            "recipient": r_rec,
            "created_at": created,
            "week": (created - _MONDAY0) // _MS_WEEK,
            # As they come (categorical): no text per row.
            "state": recipients["state"].array,
            "reason": recipients["completed_reason"].array,
        },
        copy=False,
    )
    dated = created != _NAT
    out: pd.DataFrame = frame if dated.all() else frame.loc[dated].reset_index(drop=True)
    out.attrs["extra_teams"] = np.asarray(extra, dtype=object)
    return out


def _engagement(data: Frameish) -> Engagement:
    if isinstance(data, Engagement):
        return data
    return prepare(data)


# -- KPI table ---------------------------------------------------------------------


def _group_codes(eng: Engagement, frame: pd.DataFrame, by: Dimension | None) -> IntArray:
    """Group code per row of ``deliveries``/``enrollments`` for a dimension."""
    if by is None:
        return np.zeros(len(frame), dtype=np.int64)
    if by == "sequence":
        return np.asarray(frame["seq"].to_numpy(), dtype=np.int64)
    if by == "sender":
        return np.asarray(frame["user"].to_numpy(), dtype=np.int64)
    if by == "team":
        return np.asarray(frame["team"].to_numpy(), dtype=np.int64)
    if by == "week":
        return np.asarray(frame["week"].to_numpy(), dtype=np.int64)
    if by == "stage":
        # Sequence and stage together: stage 2 of one sequence is not stage 2 of another.
        if "stage" not in frame:
            return np.full(len(frame), -(2**62), dtype=np.int64)
        seq = np.asarray(frame["seq"].to_numpy(), dtype=np.int64)
        return (seq + 1) * 1024 + np.asarray(frame["stage"].to_numpy(), dtype=np.int64) + 1
    raise ValueError(f"Unknown dimension {by!r}: use one of {', '.join(DIMENSIONS)}.")


def _group_label(
    eng: Engagement, by: Dimension | None, keys: IntArray
) -> tuple[list[Any], list[str]]:
    lab = eng.labels
    if by is None:
        return (["all"] * len(keys), ["All"] * len(keys))
    if by == "sequence":
        ids = [lab.sequence_ids[k] if k >= 0 else "" for k in keys]
        names = [lab.sequence_names[k] if k >= 0 else "(no sequence)" for k in keys]
        return (ids, _unique_labels(names, ids))
    if by == "sender":
        ids = [lab.user_ids[k] if k >= 0 else "" for k in keys]
        return (ids, [lab.user_names[k] if k >= 0 else "(unknown sender)" for k in keys])
    if by == "team":
        names = [lab.teams[k] if 0 <= k < len(lab.teams) else NO_TEAM for k in keys]
        return (names, names)
    if by == "week":
        days = pd.to_datetime(keys * _MS_WEEK + _MONDAY0, unit="ms", utc=True)
        return (list(days), [f"Week of {d:%Y-%m-%d}" for d in days])
    # stage
    ids, texts = [], []
    for k in keys:
        seq, stg = int(k) // 1024 - 1, int(k) % 1024 - 1
        name = lab.sequence_names[seq] if seq >= 0 else "(no sequence)"
        ids.append(f"{lab.sequence_ids[seq] if seq >= 0 else ''}:{stg}")
        texts.append(f"{name} · stage {stg + 1}" if stg >= 0 else f"{name} · (no stage)")
    return (ids, texts)


def _unique_labels(names: list[str], ids: list[str]) -> list[str]:
    """Names, made unique by a short id suffix where two groups share one."""
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return [f"{n} ({i[-6:]})" if counts[n] > 1 else n for n, i in zip(names, ids, strict=True)]


def _dense_factorize(values: IntArray) -> tuple[IntArray, IntArray]:
    """``pd.factorize(values, sort=True)`` for integer group codes: by counting when
    their range is small (sequences, weeks, stages), else pandas' hash."""
    if len(values):
        lo, hi = int(values.min()), int(values.max())
        if hi - lo <= 4 * len(values) + 4096:
            present = np.bincount(values - lo) > 0
            remap = np.cumsum(present, dtype=np.int64) - 1
            keys = np.flatnonzero(present).astype(np.int64) + lo
            return remap[values - lo], keys
    codes, uniques = pd.factorize(values, sort=True)
    return np.asarray(codes, dtype=np.int64), np.asarray(uniques, dtype=np.int64)


def _people_per_group(
    codes: IntArray,
    r: IntArray,
    k: int,
    people: Sequence[tuple[str, BoolArray]],
    n: int,
) -> dict[str, IntArray]:
    """Distinct recipients per group under each mask (a person counts once per group)."""
    out: dict[str, IntArray] = {}
    if len(r) and r.min() < 0:  # no person known (prepare gives every delivery one)
        people = [(name, mask & (r >= 0)) for name, mask in people]
        r = np.maximum(r, 0)
    n_rec = int(r.max()) + 1 if len(r) else 1
    # Each recipient in one group only (by sequence: a recipient is a (sequence,
    # address) pair; for everything at once): count recipients, not pairs.
    group_of = np.full(n_rec, -1, dtype=np.int64)
    group_of[r] = codes
    if np.array_equal(group_of[r], codes):
        for name, mask in people:
            seen = np.zeros(n_rec, dtype=bool)
            seen[r[mask]] = True
            out[name] = np.bincount(group_of[seen], minlength=k).astype(np.int64)
        return out
    pair = codes * n_rec + r
    if k * n_rec <= max(32 * n, 1 << 20):  # at most 32 bytes a row, briefly
        # Few (group, person) cells: one flag per cell, no hash table.
        for name, mask in people:
            cell = np.zeros(k * n_rec, dtype=bool)
            cell[pair[mask]] = True
            out[name] = cell.reshape(k, n_rec).sum(axis=1, dtype=np.int64)
        return out
    # Distinct (group, recipient) pairs first, then count pairs per group.
    pair_codes, pairs = pd.factorize(pair)
    pair_group = np.asarray(pairs, dtype=np.int64) // n_rec
    pair_codes = np.asarray(pair_codes, dtype=np.int64)
    for name, mask in people:
        hit = np.zeros(len(pairs), dtype=bool)
        hit[pair_codes[mask]] = True
        out[name] = np.bincount(pair_group[hit], minlength=k).astype(np.int64)
    return out


def _counts(eng: Engagement, by: Dimension | None) -> pd.DataFrame:
    d = eng.deliveries
    codes, keys = _dense_factorize(_group_codes(eng, d, by))
    k = len(keys)
    delivered = ~d["bounced"].to_numpy()
    opened = delivered & d["opened"].to_numpy()
    clicked = delivered & d["clicked"].to_numpy()
    replied = delivered & d["replied"].to_numpy()
    # The email counts in one pass: each delivery's flags as a number below 32, then
    # one bincount of (group, flags) cells, summed per flag (instead of a masked copy
    # and a bincount per column).
    flags = (
        delivered.astype(np.int64)
        | opened.astype(np.int64) << 1
        | clicked.astype(np.int64) << 2
        | (delivered & d["downloaded"].to_numpy()).astype(np.int64) << 3
        | replied.astype(np.int64) << 4
    )
    cells = np.bincount(codes * 32 + flags, minlength=k * 32).reshape(k, 32)
    bit = np.arange(32)

    def having(*bits: int) -> IntArray:
        mask = np.ones(32, dtype=bool)
        for b in bits:
            mask &= (bit >> b & 1).astype(bool)
        return np.asarray(cells[:, mask].sum(axis=1), dtype=np.int64)

    sent = np.asarray(cells.sum(axis=1), dtype=np.int64)
    columns: dict[str, Any] = {
        "sent": sent,
        "delivered": having(0),
        "bounced": sent - having(0),
        "opened": having(1),
        "clicked": having(2),
        "downloaded": having(3),
        "opened_clicked": having(1, 2),
        "replied": having(4),
    }
    r = d["recipient"].to_numpy()
    people = (
        ("reached", delivered),
        ("people_replied", replied),
        ("unsubscribed", delivered & d["unsubscribed"].to_numpy()),
    )
    columns.update(_people_per_group(codes, r, k, people, len(d)))
    keys = np.asarray(keys, dtype=np.int64)
    # Enrolled: from the recipients frame, grouped the same way (not by stage); a
    # group with enrollments and no send yet gets a row of zeros (an outer join).
    has_recipients = bool(eng._cache.get("has_recipients"))
    if has_recipients and by != "stage":
        enrolled_keys, enrolled = np.unique(
            np.asarray(_group_codes(eng, eng.enrollments, by), dtype=np.int64),
            return_counts=True,
        )
        every = np.union1d(keys, enrolled_keys)
        at = np.searchsorted(every, keys)
        for name, values in list(columns.items()):
            spread = np.zeros(len(every), dtype=np.int64)
            spread[at] = values
            columns[name] = spread
        counted = np.zeros(len(every), dtype=np.int64)
        counted[np.searchsorted(every, enrolled_keys)] = enrolled
        columns["enrolled"] = pd.array(counted, dtype="Int64")
        keys = every
    else:
        columns["enrolled"] = pd.array([pd.NA] * len(keys), dtype="Int64")
    return pd.DataFrame(columns, index=pd.Index(keys, name="g"), copy=False)


def kpi_table(data: Frameish, by: Dimension | None = "sequence") -> pd.DataFrame:
    """Counts and rates per group; every count and rate is defined in the module docstring.

    ``by`` is one of :data:`DIMENSIONS` (``None``: one row for everything). Columns:
    ``key`` (id, week start or team name), ``label`` (readable), ``enrolled``, ``sent``,
    ``delivered``, ``bounced``, ``opened``, ``clicked``, ``downloaded``, ``replied``
    (emails, as Mixmax counts them), ``reached``, ``people_replied``, ``unsubscribed``
    (people), then each rate of :data:`RATES` with ``_lo`` and ``_hi`` (95% Wilson).
    Rows are sorted by ``sent``, largest first (by time for ``week``, by position for
    ``stage``).
    """
    eng = _engagement(data)
    counts = _counts(eng, by)
    keys = np.asarray(counts.index.to_numpy(), dtype=np.int64)
    ids, labels = _group_label(eng, by, keys)
    # Every column in one dict, one frame at the end (a column added at a time costs
    # pandas an insert each: most of the time on a small table).
    columns: dict[str, Any] = {"key": ids, "label": labels}
    for column in (
        "enrolled",
        "sent",
        "delivered",
        "bounced",
        "opened",
        "clicked",
        "downloaded",
        "replied",
        "reached",
        "people_replied",
        "unsubscribed",
    ):
        columns[column] = counts[column].to_numpy()
    helper = counts["opened_clicked"].to_numpy()
    for rate, (num, den, _doc) in RATES.items():
        x = helper if num == "opened_clicked" else counts[num].to_numpy(dtype=np.float64)
        nn = counts[den].to_numpy(dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            columns[rate] = np.where(nn > 0, x / nn, np.nan)
        columns[f"{rate}_lo"], columns[f"{rate}_hi"] = wilson_interval(x, nn)
    table = pd.DataFrame(columns, copy=False)
    if by in ("week", "stage"):
        table = table.iloc[np.argsort(keys, kind="stable")]
    else:
        table = table.sort_values(["sent", "label"], ascending=[False, True], kind="stable")
    return eng._tag(table.reset_index(drop=True), dimension=by or "all")


def stats_table(stats: pd.DataFrame) -> pd.DataFrame:
    """Mixmax's own totals per sequence (the ``stats`` of ``client.plan_engagement()``
    or of a pull) in :func:`kpi_table`'s shape, so :func:`charts.kpi_chart` draws them:
    the counts Mixmax reports, each of Mixmax's rates of :data:`RATES` recomputed from
    them, with ``_lo`` / ``_hi`` (95% Wilson). No per-message request is needed: this
    is the first chart a plan can draw. The account's own row is left out; sorted by
    ``sent``, largest first."""
    from .data.engagement import ACCOUNT

    rows = stats.loc[stats["key"].astype("string") != ACCOUNT]
    table = pd.DataFrame(
        {"key": rows["key"].astype("string"), "label": rows["label"].astype("string")}
    )
    for column in ("sent", "delivered", "bounced", "opened", "clicked", "downloaded", "replied"):
        table[column] = rows[column].astype("Int64").fillna(0).to_numpy(dtype=np.int64)
    for rate, (num, den, _doc) in RATES.items():
        if num not in table or den not in table:
            continue  # ours, not in Mixmax's totals
        x = table[num].to_numpy(dtype=np.float64)
        nn = table[den].to_numpy(dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            table[rate] = np.where(nn > 0, x / nn, np.nan)
        table[f"{rate}_lo"], table[f"{rate}_hi"] = wilson_interval(x, nn)
    table = table.sort_values(["sent", "label"], ascending=[False, True], kind="stable")
    table = table.reset_index(drop=True)
    table.attrs.update(stats.attrs)
    table.attrs["dimension"] = "sequence"
    return table


def kpi_summary(data: Frameish) -> pd.Series:
    """The one-row :func:`kpi_table` (everything together) as a Series, for KPI cards."""
    row = kpi_table(data, None).iloc[0].drop(["key", "label"])
    eng = _engagement(data)
    if eng.source is not None:
        row.attrs["source"] = eng.source
    return row


def weekly_trends(data: Frameish, *, as_of: Any = None) -> pd.DataFrame:
    """:func:`kpi_table` by send week (Monday, UTC), oldest first; ``week`` is a Timestamp.

    ``partial`` marks a week the data does not cover to its end: the week holding
    ``as_of`` (the pull's ``until`` when given, else the newest send in the data),
    unless ``as_of`` is its very end. Its counts (and its rates, whose replies are still
    coming) are not comparable with full weeks: charts mark it instead of drawing a
    drop. ``attrs["as_of"]`` says where the data ends."""
    from ._time import window

    eng = _engagement(data)
    table = kpi_table(eng, "week")
    table.insert(0, "week", pd.to_datetime(table["key"], utc=True))
    if as_of is None and isinstance(data, EngagementData) and data.until is not None:
        as_of = data.until
    if as_of is not None:
        _, edge = window(None, as_of)  # exclusive: a date means through that day
    else:
        sent = eng.deliveries["sent_at"]  # epoch ms
        edge = pd.Timestamp(int(sent.max()), unit="ms", tz="UTC") if len(sent) else None
    partial = np.zeros(len(table), dtype=bool)
    if edge is not None and len(table):
        ends = table["week"] + pd.Timedelta(days=7)
        partial = ((table["week"] <= edge) & (ends > edge)).to_numpy()
    table["partial"] = partial
    table.attrs["as_of"] = edge
    return table


# -- funnel, stages -----------------------------------------------------------------


def funnel(data: Frameish) -> pd.DataFrame:
    """Emails at each step, nested so a step is never wider than the one before it:
    ``sent`` -> ``delivered`` -> ``opened`` -> ``replied after opening``.

    ``sent``, ``delivered`` and ``opened`` are the :func:`kpi_table` counts. The last
    step counts replies to emails that were also opened; a reply from a client that
    blocks tracking images has no open, so ``attrs["replied_unopened"]`` says how many
    replies are left out here (they are in the table's Reply %). ``of_sent`` = count /
    sent (with 95% Wilson bounds); ``of_previous`` = count / the step before.
    """
    eng = _engagement(data)
    d = eng.deliveries
    delivered = ~d["bounced"].to_numpy()
    opened = delivered & d["opened"].to_numpy()
    replied = delivered & d["replied"].to_numpy()
    steps = {
        "sent": len(d),
        "delivered": int(delivered.sum()),
        "opened": int(opened.sum()),
        "replied after opening": int((opened & replied).sum()),
    }
    counts = list(steps.values())
    base = counts[0]
    frame = pd.DataFrame({"step": list(steps), "emails": counts})
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["of_sent"] = np.where(base > 0, frame["emails"] / max(base, 1), np.nan)
        prev = np.r_[base, counts[:-1]].astype(np.float64)
        frame["of_previous"] = np.where(prev > 0, frame["emails"] / np.maximum(prev, 1), np.nan)
    lo, hi = wilson_interval(frame["emails"], np.full(len(frame), base))
    frame["of_sent_lo"], frame["of_sent_hi"] = lo, hi
    return eng._tag(frame, replied_unopened=int((replied & ~opened).sum()))


def stage_dropoff(data: Frameish, sequence_id: str | None = None) -> pd.DataFrame:
    """Per stage of one sequence: who got it, engaged, left, and went on.

    ``sent``: recipients sent that stage; ``opened`` / ``replied`` / ``bounced`` /
    ``unsubscribed``: of them, recipients with that event on that stage's message
    (opened/replied counted on delivered messages); ``continued``: recipients sent
    this stage who were also sent a later one; ``dropoff_rate`` = 1 - continued / sent
    (NaN for the last stage, where nobody can continue); ``reply_rate`` = replied /
    sent at that stage. ``sequence_id`` None takes the sequence with most deliveries.
    """
    eng = _engagement(data)
    d = eng.deliveries
    if sequence_id is None:
        seqs = d["seq"].to_numpy()
        seq = int(np.bincount(seqs[seqs >= 0]).argmax()) if (seqs >= 0).any() else -1
    else:
        found = np.flatnonzero(eng.labels.sequence_ids == sequence_id)
        seq = int(found[0]) if len(found) else -2
    part = d.loc[d["seq"].to_numpy() == seq]
    delivered = ~part["bounced"].to_numpy()
    frame = pd.DataFrame(
        {
            "stage": part["stage"].to_numpy(),
            "r": part["recipient"].to_numpy(),
            "opened": delivered & part["opened"].to_numpy(),
            "replied": delivered & part["replied"].to_numpy(),
            "bounced": part["bounced"].to_numpy(),
            "unsubscribed": part["unsubscribed"].to_numpy(),
        }
    )
    per = frame.groupby(["stage", "r"], sort=True).max().reset_index()
    # Highest stage each recipient was sent: they "continued" past every lower stage.
    last = per.groupby("r")["stage"].transform("max").to_numpy()
    per["continued"] = last > per["stage"].to_numpy()
    out = per.groupby("stage", sort=True).agg(
        sent=("r", "size"),
        opened=("opened", "sum"),
        replied=("replied", "sum"),
        bounced=("bounced", "sum"),
        unsubscribed=("unsubscribed", "sum"),
        continued=("continued", "sum"),
    )
    out = out.reset_index()
    out["stage_number"] = out["stage"] + 1
    sent = out["sent"].to_numpy(dtype=np.float64)
    out["reply_rate"] = out["replied"] / sent
    lo, hi = wilson_interval(out["replied"], sent)
    out["reply_rate_lo"], out["reply_rate_hi"] = lo, hi
    out["dropoff_rate"] = 1.0 - out["continued"] / sent
    if len(out):
        out.loc[out.index[-1], "dropoff_rate"] = np.nan
    name = eng.labels.sequence_names[seq] if seq >= 0 else ""
    sid = eng.labels.sequence_ids[seq] if seq >= 0 else (sequence_id or "")
    return eng._tag(out, sequence_id=str(sid), sequence_name=str(name))


# -- time to open / reply -------------------------------------------------------------

TIME_BINS_H: Final = (0.0, 1.0, 2.0, 4.0, 8.0, 24.0, 48.0, 72.0, 168.0, 336.0, math.inf)
"""Bin edges in hours for :func:`time_to_first` (readable: 1h, 2h, 4h, 8h, 1d, ... 2w+)."""


def _bin_label(lo: float, hi: float) -> str:
    def fmt(h: float) -> str:
        if h < 24:
            return f"{h:g}h"
        return f"{h / 24:g}d"

    return f"> {fmt(lo)}" if math.isinf(hi) else f"{fmt(lo)}–{fmt(hi)}"


def _delays(eng: Engagement) -> dict[str, np.ndarray[Any, np.dtype[np.float64]]]:
    d = eng.deliveries
    sent = d["sent_at"].to_numpy()
    delivered = ~d["bounced"].to_numpy()
    out = {}
    for kind, column in (("open", "first_open"), ("reply", "first_reply")):
        first = d[column].to_numpy()
        flag = "opened" if kind == "open" else "replied"
        ok = delivered & d[flag].to_numpy() & (first != _NAT)
        # Clock skew can put an event a hair before its send; count it as immediate.
        out[kind] = np.maximum(first[ok] - sent[ok], 0).astype(np.float64) / _MS_HOUR
    return out


def time_to_first(data: Frameish, bins: Sequence[float] = TIME_BINS_H) -> pd.DataFrame:
    """Distribution of the delay from send to the first open / first reply (per delivery).

    One row per (``kind`` in ``open``/``reply``, bin): ``bin`` label, ``lo_h``/``hi_h``
    edges in hours, ``deliveries`` (delivered messages whose first such event falls
    in the bin), ``share`` of that kind's total. Only delivered messages that were
    opened / replied to appear; the delay is first event time minus send time.
    """
    eng = _engagement(data)
    delays = _delays(eng)
    edges = np.asarray(bins, dtype=np.float64)
    rows = []
    for kind, values in delays.items():
        counts, _ = np.histogram(values, bins=edges)
        # np.histogram's last bin is closed; an infinite edge keeps that harmless.
        total = counts.sum()
        for i, c in enumerate(counts):
            rows.append(
                {
                    "kind": kind,
                    "bin": _bin_label(edges[i], edges[i + 1]),
                    "lo_h": edges[i],
                    "hi_h": edges[i + 1],
                    "deliveries": int(c),
                    "share": c / total if total else np.nan,
                }
            )
    return eng._tag(pd.DataFrame(rows), needs_events=not eng.has_events)


def time_to_summary(data: Frameish) -> pd.DataFrame:
    """Per kind (``open``, ``reply``): ``n``, ``median_h``, ``p25_h``, ``p75_h``, ``p90_h``.

    Hours from send to the first open / first reply of each delivered message that
    got one (the same population as :func:`time_to_first`).
    """
    eng = _engagement(data)
    rows = []
    for kind, values in _delays(eng).items():
        q = np.quantile(values, [0.25, 0.5, 0.75, 0.9]) if len(values) else np.full(4, np.nan)
        rows.append(
            {
                "kind": kind,
                "n": len(values),
                "median_h": q[1],
                "p25_h": q[0],
                "p75_h": q[2],
                "p90_h": q[3],
            }
        )
    return eng._tag(pd.DataFrame(rows), needs_events=not eng.has_events)


# -- when: day-of-week x hour -----------------------------------------------------------


_QUARTER: Final = 900_000  # 15 minutes: the finest offset any time zone uses


def _local_parts(
    eng: Engagement, ts: IntArray, zone_codes: IntArray, zone_names: Sequence[str]
) -> tuple[IntArray, IntArray]:
    """Day of week (0 = Monday) and hour of epoch-ms ``ts``, each in its own zone
    (``zone_names[zone_codes[i]]``).

    Converting every timestamp is slow; instead each zone converts the quarter hours
    spanning the data once (a few thousand values) into one (zone, quarter) table, and
    every row looks its cell up in one step. Offsets change only on quarter-hour
    boundaries, so this is exact.
    """
    if len(ts) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    quarter = ts // _QUARTER
    first = int(quarter.min())
    span = np.arange(first, int(quarter.max()) + 1, dtype=np.int64)
    stamps = pd.DatetimeIndex((span * _QUARTER).astype("datetime64[ms]")).tz_localize("UTC")
    table = np.empty((len(zone_names), len(span)), dtype=np.int64)
    for z, zone in enumerate(zone_names):
        try:
            local = stamps.tz_convert(zone or eng.account_tz)
        except (ValueError, KeyError, LookupError):
            # An unknown zone name: fall back to the account's rather than fail the chart.
            local = stamps.tz_convert(eng.account_tz)
        # Wall-clock ms once per zone, then day and hour by arithmetic (pandas' own
        # field accessors would convert to local time again for each field).
        wall = np.asarray(local.tz_localize(None).as_unit("ms").asi8, dtype=np.int64)
        days = wall // 86_400_000
        table[z] = ((days + 3) % 7) * 24 + (wall // 3_600_000) % 24  # 1970-01-01: Thu
    cell = table[zone_codes, quarter - first]
    dow, hour = np.divmod(cell, 24)
    return dow, hour


def _delivery_zones(eng: Engagement, tz: str | None) -> tuple[IntArray, list[str], str]:
    """Zone of every delivery of the unfiltered data (codes into the names), and where
    it came from. Zones are resolved per sequence (a few), then taken per delivery."""
    base: pd.DataFrame = eng._cache["base_deliveries"]
    if tz:
        return np.zeros(len(base), dtype=np.int64), [tz], tz
    seq = base["seq"].to_numpy()
    seq_tz = eng.labels.sequence_tz
    per_seq = np.asarray(
        [*np.where(seq_tz != "", seq_tz, eng.account_tz), eng.account_tz], dtype=object
    )
    codes, names = pd.factorize(per_seq)
    # Sequence code -1 (none) takes the last entry: the account's zone.
    zone_codes = np.asarray(codes, dtype=np.int64)[np.where(seq >= 0, seq, len(seq_tz))]
    any_seq_tz = bool((seq_tz != "").any())
    described = (
        f"each sequence's send-window zone (else {eng.account_tz})"
        if any_seq_tz
        else f"the account's zone ({eng.account_tz})"
    )
    return zone_codes, [str(z) for z in names], described


def _parts_cached(
    eng: Engagement, key: tuple[Any, ...], compute: Any
) -> tuple[IntArray, IntArray, str]:
    """Local (day, hour) arrays over the *unfiltered* rows, once per prepared data.

    Time-zone conversion is the slow step of a heatmap; filtered views share this
    cache and only index into it, so a filter change does not convert again.
    """
    cache = eng._cache.setdefault("parts", {})
    if key not in cache:
        cache[key] = compute()
    result: tuple[IntArray, IntArray, str] = cache[key]
    return result


def heatmap(
    data: Frameish,
    kind: str = "opened",
    tz: str | None = None,
    *,
    when: Literal["event", "sent"] = "event",
) -> pd.DataFrame:
    """Counts by local day of week (rows, Mon..Sun) x hour (columns 0..23).

    ``when="event"`` counts events of type ``kind`` (default ``opened``) at the time
    they happened: when people engage. ``when="sent"`` instead gives, per send
    day x hour, the share of delivered messages that got ``kind`` (a rate, NaN where
    nothing was sent): what time to send. ``attrs["counts"]`` holds the underlying
    counts (events, or delivered messages for ``sent``).

    Time zone: ``tz`` when given. Otherwise each recipient's own zone when the events
    frame carries one (a ``recipient_timezone`` or ``timezone`` column); Mixmax does
    not send one, so the usual default is the zone of the sequence's send window
    (the ``timezone`` of the sequences frame, chosen by the sender for that audience),
    and the account's zone (``account_tz`` of :func:`prepare`, UTC by default) for
    sequences without one. ``attrs["tz"]`` says which was used.
    """
    eng = _engagement(data)
    base_d: pd.DataFrame = eng._cache["base_deliveries"]
    if when == "sent":

        def sent_parts() -> tuple[IntArray, IntArray, str]:
            codes, names, described = _delivery_zones(eng, tz)
            dow, hour = _local_parts(eng, base_d["sent_at"].to_numpy(), codes, names)
            return dow, hour, described

        dow_all, hour_all, described = _parts_cached(eng, ("sent", tz), sent_parts)
        d = eng.deliveries
        rows = d.index.to_numpy()
        cell = dow_all[rows] * 24 + hour_all[rows]
        delivered = ~d["bounced"].to_numpy()
        hit = d[kind].to_numpy() if kind in d else np.zeros(len(d), dtype=bool)
        den = np.bincount(cell[delivered], minlength=168).astype(np.float64)
        num = np.bincount(cell[delivered], weights=hit[delivered].astype(np.float64), minlength=168)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(den > 0, num / den, np.nan)
        counts = den
    else:
        base_e: pd.DataFrame = eng._cache["base_events"]

        def event_parts() -> tuple[IntArray, IntArray, str]:
            sel = np.flatnonzero((base_e["type"] == kind).to_numpy())
            if tz is None and eng.event_tz is not None:
                own = np.where(eng.event_tz[sel] != "", eng.event_tz[sel], eng.account_tz)
                codes, uniques = pd.factorize(np.asarray(own, dtype=object))
                zone_codes = np.asarray(codes, dtype=np.int64)
                names = [str(z) for z in uniques]
                described = "each recipient's own zone"
            else:
                dz, names, described = _delivery_zones(eng, tz)
                zone_codes = dz[base_e["delivery"].to_numpy()[sel]]
            dow = np.full(len(base_e), -1, dtype=np.int64)
            hour = np.full(len(base_e), -1, dtype=np.int64)
            dow[sel], hour[sel] = _local_parts(eng, base_e["ts"].to_numpy()[sel], zone_codes, names)
            return dow, hour, described

        dow_all, hour_all, described = _parts_cached(eng, ("event", kind, tz), event_parts)
        ev = eng.events
        rows = ev.index.to_numpy()[(ev["type"] == kind).to_numpy()]
        values = np.bincount(dow_all[rows] * 24 + hour_all[rows], minlength=168).astype(np.float64)
        counts = values
    grid = pd.DataFrame(values.reshape(7, 24), index=list(DAYS), columns=list(range(24)))
    grid.index.name = "day"
    grid.columns.name = "hour"
    return eng._tag(
        grid,
        tz=described,
        kind=kind,
        when=when,
        counts=counts.reshape(7, 24).astype(np.int64).tolist(),
        needs_events=when == "event" and not eng.has_events,
    )


# -- cohorts --------------------------------------------------------------------------


def cohorts(data: Frameish, weeks: int = 8) -> pd.DataFrame:
    """Cumulative reply rate by enrollment week and weeks since enrollment.

    A recipient's enrollment is the ``created_at`` of its row in the recipients frame
    when :func:`prepare` got one and the row matches, else its first send. Rows: one
    per (``cohort`` week start, ``weeks_since`` 0..``weeks``-1): ``recipients`` in the
    cohort (reached), ``replied`` = of them, recipients whose first reply came within
    ``weeks_since + 1`` weeks of enrollment, ``reply_rate`` = replied / recipients.
    Cells a cohort has not lived through yet (beyond the latest send in the data) are
    NaN, so young cohorts are not read as failing.
    """
    eng = _engagement(data)
    d = eng.deliveries
    delivered = ~d["bounced"].to_numpy()
    # The reply's own time when events were pulled; else the replied email's send time,
    # which the reply can only follow (a summary knows which email got the reply).
    first_reply = d["first_reply"].to_numpy()
    when = np.where(first_reply != _NAT, first_reply, d["sent_at"].to_numpy())
    reply = np.where(delivered & d["replied"].to_numpy(), when, _NAT)
    # Per recipient (dense codes): first send, reached at all, first reply.
    r = d["recipient"].to_numpy()
    e = eng.enrollments
    known = e["recipient"].to_numpy() if len(e) else np.empty(0, dtype=np.int64)
    size = int(max(r.max(initial=-1), known.max(initial=-1))) + 1
    never = np.iinfo(np.int64).max
    start = np.full(size, never, dtype=np.int64)
    np.minimum.at(start, r, d["sent_at"].to_numpy())
    first = np.full(size, never, dtype=np.int64)
    np.minimum.at(first, r, np.where(reply == _NAT, never, reply))
    reached = np.zeros(size, dtype=bool)
    reached[r[delivered]] = True
    if len(e):
        # Enrolled before the first send (the recipients frame's created_at) counts.
        added = np.full(size, never, dtype=np.int64)
        ok = known >= 0
        np.minimum.at(added, known[ok], e["created_at"].to_numpy()[ok])
        start = np.where(start != never, np.minimum(start, added), start)
    per = pd.DataFrame({"start": start[reached], "reply": first[reached]})
    now = int(d["sent_at"].max()) if len(d) else 0
    cohort = (per["start"].to_numpy() - _MONDAY0) // _MS_WEEK
    has_reply = per["reply"].to_numpy() != np.iinfo(np.int64).max
    lag = np.where(
        has_reply, (per["reply"].to_numpy() - per["start"].to_numpy()) // _MS_WEEK, weeks
    )
    lag = np.clip(lag, 0, weeks)
    rows = []
    for c in np.unique(cohort):  # one per week: a handful, not one per row
        in_c = cohort == c
        size = int(in_c.sum())
        hist = np.bincount(lag[in_c & has_reply], minlength=weeks + 1)[:weeks]
        cum = np.cumsum(hist)
        start_ms = int(c) * _MS_WEEK + _MONDAY0
        for k in range(weeks):
            lived = start_ms + k * _MS_WEEK <= now
            rows.append(
                {
                    "cohort": pd.Timestamp(start_ms, unit="ms", tz="UTC"),
                    "weeks_since": k,
                    "recipients": size,
                    "replied": int(cum[k]),
                    "reply_rate": cum[k] / size if lived and size else np.nan,
                }
            )
    frame = pd.DataFrame(
        rows, columns=["cohort", "weeks_since", "recipients", "replied", "reply_rate"]
    )
    return eng._tag(
        frame, reply_times="events" if eng.has_events else "send time of the replied email"
    )


# -- top links and files ---------------------------------------------------------------


def _top(eng: Engagement, kind: str, column: str, text: str | None, n: int) -> pd.DataFrame:
    import pyarrow.compute as pc

    ev = eng.assets
    sel = ev.loc[(ev["type"] == kind).to_numpy()]
    delivery = sel["delivery"].to_numpy()
    recips = eng.deliveries["recipient"].reindex(delivery).to_numpy(dtype=float, na_value=-1)
    recips = recips.astype(np.int64)  # -1: a delivery the filter left out
    # Items in order of first appearance (as a groupby without sorting would give).
    (codes,), items = _encode(pc.fill_null(_arrow(sel[column]), "(unknown)"))
    k = len(items)
    every = np.ones(len(sel), dtype=bool)
    counted = _people_per_group(codes, recips, k, [("recipients", recips >= 0)], len(sel))
    messages = _people_per_group(codes, delivery, k, [("messages", every)], len(sel))
    out = pd.DataFrame(
        {
            "events": np.bincount(codes, minlength=k).astype(np.int64),
            "recipients": counted["recipients"],
            "messages": messages["messages"],
        },
        index=pd.Index(items.to_pylist(), dtype=object, name=column),
    )
    if text:
        # Codes number items by first appearance: each item's first row is its text.
        first = sel[text].iloc[first_rows(codes)]
        out["text"] = first.astype(object).fillna("").to_numpy()
    out = out.sort_values(["recipients", "events"], ascending=False).head(n)
    return out.reset_index()


def top_links(data: Frameish, n: int = 10) -> pd.DataFrame:
    """Most clicked links: ``link_url``, ``events`` (clicks), ``recipients`` (unique
    people who clicked it), ``messages`` (unique deliveries), ``text`` (its link
    text, as first seen). Sorted by recipients, then clicks."""
    eng = _engagement(data)
    return eng._tag(_top(eng, "clicked", "link_url", "link_text", n))


def top_files(data: Frameish, n: int = 10) -> pd.DataFrame:
    """Most downloaded files: ``file_name``, ``events`` (downloads), ``recipients``
    (unique people), ``messages`` (unique deliveries). Sorted by recipients."""
    eng = _engagement(data)
    return eng._tag(_top(eng, "downloaded", "file_name", None, n))


# -- comparing two sequences or templates ---------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """People reply rates of two groups (ours: one vote per person), their difference
    and a plain-words verdict.

    ``difference`` = ``rate_a - rate_b`` (people who replied / people reached), with
    ``lower``/``upper`` its 95% Newcombe hybrid Wilson score interval.
    """

    label_a: str
    label_b: str
    replied_a: int
    reached_a: int
    replied_b: int
    reached_b: int
    rate_a: float
    rate_b: float
    difference: float
    lower: float
    upper: float
    verdict: str
    source: str | None = None

    def to_frame(self) -> pd.DataFrame:
        lo_a, hi_a = wilson_interval([self.replied_a], [self.reached_a])
        lo_b, hi_b = wilson_interval([self.replied_b], [self.reached_b])
        frame = pd.DataFrame(
            {
                "group": [self.label_a, self.label_b],
                "reached": [self.reached_a, self.reached_b],
                "replied": [self.replied_a, self.replied_b],
                "people_reply_rate": [self.rate_a, self.rate_b],
                "people_reply_rate_lo": [lo_a[0], lo_b[0]],
                "people_reply_rate_hi": [hi_a[0], hi_b[0]],
            }
        )
        if self.source is not None:
            frame.attrs["source"] = self.source
        frame.attrs["verdict"] = self.verdict
        return frame


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _verdict(c: dict[str, Any]) -> str:
    a, b = c["label_a"], c["label_b"]
    if c["reached_a"] == 0 or c["reached_b"] == 0:
        empty = a if c["reached_a"] == 0 else b
        return f"Cannot compare: {empty} reached nobody in this selection."
    d, lo, hi = c["difference"], c["lower"], c["upper"]
    pts = f"{100 * d:+.1f} points (95% interval {100 * lo:+.1f} to {100 * hi:+.1f})"
    rates = (
        f"{a}: {_pct(c['rate_a'])} of {c['reached_a']}; "
        f"{b}: {_pct(c['rate_b'])} of {c['reached_b']}"
    )
    if lo > 0:
        return f"{a} gets more replies than {b}: {pts}. {rates}."
    if hi < 0:
        return f"{b} gets more replies than {a}: {-100 * d:+.1f} points in its favour. {rates}."
    return (
        f"No clear winner yet: the difference is {pts}, which includes zero. "
        f"More recipients are needed to tell them apart. {rates}."
    )


def compare(
    data: Frameish,
    a: str,
    b: str,
    by: Literal["sequence", "subject", "sender", "stage"] = "sequence",
) -> Comparison:
    """Compare the reply rate of two sequences (or templates, by subject line).

    ``a`` and ``b`` are ids or names (sequence id/name; for ``subject`` the subject
    text, the nearest thing to a template the events carry; sender id/name; stage as
    ``"<sequence id>:<0-based stage>"``). Reply rate = replied recipients / reached
    recipients, as in :func:`kpi_table`; the difference ``a - b`` has a 95% Newcombe
    hybrid Wilson score interval and the verdict says in words whether one wins.
    """
    eng = _engagement(data)
    d = eng.deliveries
    lab = eng.labels

    def mask_for(value: str) -> tuple[BoolArray, str]:
        if by == "sequence":
            hit = np.flatnonzero((lab.sequence_ids == value) | (lab.sequence_names == value))
            return np.isin(d["seq"].to_numpy(), hit), _name(lab.sequence_names, hit, value)
        if by == "sender":
            hit = np.flatnonzero((lab.user_ids == value) | (lab.user_names == value))
            return np.isin(d["user"].to_numpy(), hit), _name(lab.user_names, hit, value)
        if by == "subject":
            hit = np.flatnonzero(lab.subjects == value)
            return np.isin(d["subject"].to_numpy(), hit), value
        seq_id, _, stage = value.rpartition(":")
        hit = np.flatnonzero(lab.sequence_ids == seq_id)
        stage_no = int(stage) if stage.lstrip("-").isdigit() else -99
        ok = np.isin(d["seq"].to_numpy(), hit) & (d["stage"].to_numpy() == stage_no)
        return ok, f"{_name(lab.sequence_names, hit, seq_id)} · stage {stage_no + 1}"

    counts: dict[str, Any] = {}
    for side, value in (("a", a), ("b", b)):
        mask, label = mask_for(value)
        part = d.loc[mask]
        delivered = ~part["bounced"].to_numpy()
        r = part["recipient"].to_numpy()
        counts[f"reached_{side}"] = int(np.unique(r[delivered]).size)
        counts[f"replied_{side}"] = int(np.unique(r[delivered & part["replied"].to_numpy()]).size)
        counts[f"label_{side}"] = label
    if counts["label_a"] == counts["label_b"]:
        counts["label_a"], counts["label_b"] = f"A: {counts['label_a']}", f"B: {counts['label_b']}"
    diff, lower, upper = newcombe_interval(
        counts["replied_a"], counts["reached_a"], counts["replied_b"], counts["reached_b"]
    )
    counts["rate_a"] = (
        counts["replied_a"] / counts["reached_a"] if counts["reached_a"] else math.nan
    )
    counts["rate_b"] = (
        counts["replied_b"] / counts["reached_b"] if counts["reached_b"] else math.nan
    )
    counts.update(difference=diff, lower=lower, upper=upper)
    return Comparison(verdict=_verdict(counts), source=eng.source, **counts)


def _name(names: np.ndarray[Any, Any], hit: IntArray, fallback: str) -> str:
    return str(names[hit[0]]) if len(hit) else fallback
