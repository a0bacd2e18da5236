"""The private store of per-message events, keyed by message (Parquet, append-only).

Mixmax serves events one message at a time (at most 200), so the store remembers,
per message, the counters its events were fetched under (a *signature*, see
``engagement.engaged_messages``). A refresh fetches only messages that are new or
whose counters moved, and writes ONE new part: those messages' events, and in the
same file's metadata their signatures and cap flags. Data and coverage therefore
commit together (a temporary file, then a rename): a crash leaves the earlier parts
as they were. A message's events are those of the newest part that lists it.

A no-op refresh reads one directory listing (the parts' names, sizes and change
times: at most :data:`MAX_PARTS` entries), whatever the store's size: what this
process already read of a part whose entry has not changed (its footer, its events)
is taken from memory, so a refresh reads the footers and the events of new parts only
(O(K) for K new events, plus the one append that wrote them; the part this process
has just written is taken from a copy of what it wrote, not read back). A fresh
process reads
every footer once, and the events once. Past :data:`MAX_PARTS` parts the small ones
are merged into one (the largest part stays as it is until superseded rows make up
half the store, when everything is merged). A part that cannot be read is set aside
with a warning, and the messages it covered are simply fetched again.

Under ``Settings.home/cache/<backend>/<account>/engagement/``: directories 0700,
files 0600.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._atomic import write_parquet

MAX_PARTS = 16
LISTED = "listed.json"
"""Recipients per sequence at the last pull: the next plan's page count (a hint only)."""
COVERAGE_KEY = b"mixmax_nb.messages"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class StoreRebuiltWarning(UserWarning):
    """Part of the local event store could not be read; its messages are fetched again."""


def _safe(part: str) -> str:
    return _SAFE.sub("_", part).strip("._")[:80] or "unknown"


@dataclass(frozen=True)
class Coverage:
    """What the store holds: message id -> signature, and the capped messages."""

    signatures: Mapping[str, str]
    capped: frozenset[str]


Stamp = tuple[str, int, int, int]
"""A part as the directory shows it: name, inode, size, change time (ns)."""


@dataclass
class _Seen:
    """What this process read of one store directory (see the module docstring)."""

    footers: dict[Stamp, dict[str, Any]] = field(default_factory=dict)
    coverage: tuple[tuple[Stamp, ...], Coverage] | None = None
    loaded: dict[Any, tuple[tuple[Stamp, ...], weakref.ref[pd.DataFrame]]] = field(
        default_factory=dict
    )
    written: dict[Stamp, pd.DataFrame] = field(default_factory=dict)
    """The part this process just wrote, as a copy of the events it wrote (O(K)): the
    next read takes them from here, not from the disk it has just written them to."""


_SEEN: dict[Path, _Seen] = {}
_SEEN_LOCK = threading.Lock()


def _stamps(folder: Path) -> list[Stamp]:
    """The parts, in order, from one directory listing (no file is opened)."""
    out: list[Stamp] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return out
    for entry in entries:
        name = entry.name
        if not (name.startswith("part-") and name.endswith(".parquet")):
            continue
        try:
            st = entry.stat()
        except OSError:
            continue  # gone between the listing and the stat (a compaction)
        out.append((name, st.st_ino, st.st_size, st.st_mtime_ns))
    return sorted(out)


class MessageEventStore:
    """The per-message events of one account (see the module docstring)."""

    def __init__(self, root: Path, backend: str, account: str) -> None:
        self.dir = Path(root) / "cache" / _safe(backend) / _safe(account) / "engagement"
        # What this process read is shared by every store object on the same directory,
        # however its path was spelled; resolved once (a refresh asks several times).
        self._key = self.dir.resolve()

    def __repr__(self) -> str:
        return f"MessageEventStore({str(self.dir)!r})"

    def parts(self) -> list[Path]:
        return [self.dir / s[0] for s in _stamps(self.dir)]

    def _seen(self) -> _Seen:
        with _SEEN_LOCK:
            return _SEEN.setdefault(self._key, _Seen())

    def _footers(self) -> list[tuple[Path, dict[str, Any]]]:
        return [(self.dir / stamp[0], info) for stamp, info in self._stamped_footers()]

    def _stamped_footers(self) -> list[tuple[Stamp, dict[str, Any]]]:
        """Each readable part's coverage; a footer is read once per version of a part."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        seen = self._seen()
        out: list[tuple[Stamp, dict[str, Any]]] = []
        for stamp in _stamps(self.dir):
            info = seen.footers.get(stamp)
            if info is None:
                path = self.dir / stamp[0]
                try:
                    meta = pq.read_schema(path).metadata or {}
                    info = json.loads(meta[COVERAGE_KEY])
                    if not isinstance(info.get("messages"), dict):
                        raise ValueError("no message coverage")
                except (OSError, pa.ArrowException, KeyError, TypeError, ValueError) as exc:
                    self._set_aside(path, exc)
                    continue
                seen.footers[stamp] = info
            out.append((stamp, info))
        live = {stamp for stamp, _ in out}
        for stale in [s for s in seen.footers if s not in live]:
            del seen.footers[stale]  # a part that was merged, set aside or rewritten
        return out

    def coverage(self) -> Coverage:
        """Signatures and cap flags of every stored message (footers only)."""
        return self._coverage(self._stamped_footers())

    def _coverage(self, footers: list[tuple[Stamp, dict[str, Any]]]) -> Coverage:
        seen = self._seen()
        key = tuple(stamp for stamp, _ in footers)
        if seen.coverage is not None and seen.coverage[0] == key:
            return seen.coverage[1]
        signatures: dict[str, str] = {}
        capped: set[str] = set()
        todo = footers
        if seen.coverage is not None and key[: len(seen.coverage[0])] == seen.coverage[0]:
            # Only parts were added: start from what was read (a C-level copy).
            signatures = dict(seen.coverage[1].signatures)
            capped = set(seen.coverage[1].capped)
            todo = footers[len(seen.coverage[0]) :]
        for _stamp, info in todo:
            for message, sig in info["messages"].items():
                signatures[str(message)] = str(sig)
                capped.discard(str(message))
            capped.update(str(m) for m in info.get("capped", ()))
        cover = Coverage(signatures, frozenset(capped))
        seen.coverage = (key, cover)
        return cover

    def load(self, messages: Collection[str] | None = None) -> pd.DataFrame | None:
        """Every stored event (the newest part of each message wins); None if empty.

        ``messages``: only those messages' events (None: all). What this process loaded
        before is reused while it is alive: only parts written since are read (and an
        unchanged store reads nothing but the directory listing). Rows are numbered
        from 0; the frame may be the one an earlier call returned, so treat it as
        read-only (copy it before changing it in place).
        """
        return self.snapshot(messages)[1]

    def snapshot(
        self, messages: Collection[str] | None = None
    ) -> tuple[Coverage, pd.DataFrame | None]:
        """:meth:`coverage` and :meth:`load` from one directory listing."""
        footers = self._stamped_footers()
        cover = self._coverage(footers)
        if not footers:
            return cover, None
        wanted = frozenset(messages) if messages is not None else None
        seen = self._seen()
        key = tuple(stamp for stamp, _ in footers)
        earlier, start, dropped = None, 0, frozenset[str]()
        for got, (old_key, ref) in list(seen.loaded.items()):
            frame = ref()
            if frame is None:
                del seen.loaded[got]
                continue
            if key[: len(old_key)] != old_key or (got is None) != (wanted is None):
                continue  # parts were merged, set aside or rewritten since
            same = got is wanted or got == wanted  # the pull hands the same window back
            partial = not same and wanted is not None and got is not None
            extra = wanted - got if partial else frozenset()
            old_infos = [info["messages"] for _s, info in footers[: len(old_key)]]
            if extra and not all(info.keys().isdisjoint(extra) for info in old_infos):
                continue  # a newly wanted message has events in parts read before
            if old_key == key and same:
                return cover, frame
            earlier, start = frame, len(old_key)
            dropped = got - wanted if partial else frozenset()
            if same:
                break
        frame = self._read(footers, wanted, earlier, start, dropped)
        if frame is not None:
            seen.loaded[wanted] = (key, weakref.ref(frame))
        return cover, frame

    def _read(
        self,
        footers: list[tuple[Stamp, dict[str, Any]]],
        wanted: frozenset[str] | None,
        earlier: pd.DataFrame | None,
        start: int,
        dropped: frozenset[str] = frozenset(),
    ) -> pd.DataFrame | None:
        """The newest events of each (wanted) message: ``earlier`` holds what parts
        ``[:start]`` gave (with ``dropped`` messages no longer wanted); only the parts
        from ``start`` on are read."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        # Newest part first: a message is its newest part's (O(K) for K new messages).
        claimed: set[str] = set()
        owns: dict[int, list[str]] = {}
        for index in range(len(footers) - 1, start - 1, -1):
            listed = footers[index][1]["messages"]
            owns[index] = [
                m for m in listed if m not in claimed and (wanted is None or m in wanted)
            ]
            claimed.update(listed)
        frames: list[pd.DataFrame] = []
        if earlier is not None:
            # Messages that a newer part lists again are replaced by that part's events;
            # only those that an earlier part listed can be in ``earlier`` (O(K) lookups
            # instead of a scan of every stored row when the new messages are new).
            # (Set operations on the parts' key views: C loops over the smaller side.)
            again = set(dropped)
            for i in range(start):
                again |= footers[i][1]["messages"].keys() & claimed
            if again:
                keep = ~earlier["message_id"].isin(list(again)).to_numpy(dtype=bool)
                frames.append(earlier.loc[keep] if not keep.all() else earlier)
            else:
                frames.append(earlier)
        for index in range(start, len(footers)):
            stamp, info = footers[index]
            own = owns[index]
            if not own:
                continue
            path = self.dir / stamp[0]
            written = self._seen().written.pop(stamp, None)
            if written is not None:
                if len(own) < len(info["messages"]):
                    written = written.loc[written["message_id"].isin(own).to_numpy(bool)]
                frames.append(written)
                continue
            try:
                table = pq.read_table(path)
            except (OSError, pa.ArrowException) as exc:
                self._set_aside(path, exc)
                continue
            if len(own) < len(info["messages"]):
                import pyarrow.compute as pc

                table = table.filter(pc.is_in(table["message_id"], pa.array(own)))
            frames.append(_categorical_nulls(table))
        if not frames:
            return None
        from .. import frames as shaping

        if len(frames) == 1 and frames[0] is earlier:
            return earlier
        out = shaping.concat("events", frames)
        return out.reset_index(drop=True) if not isinstance(out.index, pd.RangeIndex) else out

    def append(
        self, events: pd.DataFrame, signatures: Mapping[str, str], capped: Iterable[str] = ()
    ) -> Path | None:
        """Commit the events of the messages in ``signatures`` (one new part) atomically."""
        if not signatures:
            return None
        before: list[Stamp] | None = _stamps(self.dir)  # the new part's number, the count
        if before is not None and len(before) + 1 > MAX_PARTS:
            # Merge first, then write: the frame a refresh holds covers every part up
            # to now, so it stays valid through the merge, and the refresh that follows
            # reads only the new part (from memory). Merged after the write, the merged
            # part would hold messages that frame lacks: a reread of the whole store.
            self.compact()
            before = None  # the merge renumbered the parts: list them again
        return self._write_part(events, signatures, capped, before, remember=True)

    def _write_part(
        self,
        events: pd.DataFrame,
        signatures: Mapping[str, str],
        capped: Iterable[str],
        listed: list[Stamp] | None = None,
        *,
        remember: bool = False,
    ) -> Path:
        import pyarrow as pa

        self._private_dirs()
        info = {"messages": dict(signatures), "capped": sorted(set(capped))}
        table = _storable(pa.Table.from_pandas(events, preserve_index=False))
        meta = dict(table.schema.metadata or {})
        meta[COVERAGE_KEY] = json.dumps(info).encode()
        table = table.replace_schema_metadata(meta)
        listed = _stamps(self.dir) if listed is None else listed
        numbers = (stamp[0][5:-8] for stamp in listed)  # part-000012.parquet -> 000012
        number = max((int(d) for d in numbers if d.isdigit()), default=0) + 1
        final = write_parquet(table, self.dir / f"part-{number:06d}.parquet")
        try:
            st = final.stat()
        except OSError:
            return final  # gone already (another process merged it): nothing to remember
        stamp = (final.name, st.st_ino, st.st_size, st.st_mtime_ns)
        seen = self._seen()
        seen.footers[stamp] = info  # what its footer says: not read back
        if remember:  # not a merge (the whole store, maybe: not worth a copy in memory)
            # One part held at a time: the one a refresh reads right after its append.
            seen.written = {stamp: events.reset_index(drop=True).copy()}
        return final

    def compact(self) -> None:
        """Merge parts, atomically: the merged part is renamed into place before the
        old ones go. Usually the parts newer than the largest are merged (what they
        hold is small, so an append stays O(K) on average); everything is merged when
        the largest is not the oldest, or when newer parts supersede half of it."""
        footers = self._stamped_footers()
        if len(footers) < 2:
            return
        seen = self._seen()
        # What this process holds is brought up to date first (it reads only the new
        # parts): the merge keeps every message's newest events, so it stays valid.
        for wanted, (_key, ref) in list(seen.loaded.items()):
            if ref() is not None:
                self.load(wanted)
        footers = self._stamped_footers()
        before = tuple(stamp for stamp, _ in footers)
        sizes = [stamp[2] for stamp in before]
        big = sizes.index(max(sizes))
        tail = footers[big + 1 :]
        later = {m for _s, info in tail for m in info["messages"]}
        big_messages = footers[big][1]["messages"]
        superseded = sum(1 for m in big_messages if m in later)
        full = big > 0 or len(tail) < 2 or 2 * superseded > len(big_messages)
        group = footers if full else tail
        events = self._read(group, None, None, 0)
        if events is None:
            return
        alive = set(_stamps(self.dir))  # a part that could not be read was set aside
        signatures: dict[str, str] = {}
        capped: set[str] = set()
        for stamp, info in group:
            if stamp not in alive:
                continue
            for message, sig in info["messages"].items():
                signatures[str(message)] = str(sig)
                capped.discard(str(message))
            capped.update(str(m) for m in info.get("capped", ()))
        merged = self._write_part(events, signatures, capped)
        for stamp, _info in group:
            path = self.dir / stamp[0]
            if path != merged:
                path.unlink(missing_ok=True)
        if alive >= set(before):
            after = tuple(stamp for stamp, _ in self._stamped_footers())
            for wanted, (key, ref) in list(seen.loaded.items()):
                if key == before:
                    seen.loaded[wanted] = (after, ref)
            if seen.coverage is not None and seen.coverage[0] == before:
                seen.coverage = (after, seen.coverage[1])

    def clear(self) -> None:
        for path in self.parts():
            path.unlink(missing_ok=True)
        (self.dir / LISTED).unlink(missing_ok=True)
        with _SEEN_LOCK:
            _SEEN.pop(self._key, None)

    def listed_counts(self) -> dict[str, int]:
        """What the last pull listed, by sequence id (recipients) and by window start
        (messages' pages): what the next plan counts requests by."""
        try:
            data = json.loads((self.dir / LISTED).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def remember_listed(self, counts: Mapping[str, int]) -> None:
        self._private_dirs()
        merged = {**self.listed_counts(), **{str(k): int(v) for k, v in counts.items()}}
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".listed-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(merged, fh)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.dir / LISTED)

    def _private_dirs(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for level in (self.dir, *list(self.dir.parents)[:3]):
            with contextlib.suppress(OSError):
                os.chmod(level, 0o700)

    def _set_aside(self, path: Path, exc: BaseException) -> None:
        aside = path.with_name(f"unreadable-{int(time.time())}-{path.name}")
        with contextlib.suppress(OSError):
            os.replace(path, aside)
        warnings.warn(
            StoreRebuiltWarning(
                f"Part of the local event store ({path.name}) could not be used "
                f"({type(exc).__name__}); it was moved to {aside.name} and its messages "
                "are fetched again on the next pull."
            ),
            stacklevel=4,
        )


def _storable(table: Any) -> Any:
    """``table`` with every all-missing categorical typed as text categories.

    Arrow types an empty pandas categorical as a dictionary of nulls, which Parquet
    stores as a plain null column: read back, it would be ``object``, and every later
    stack would re-encode the whole column row by row.
    """
    import pyarrow as pa

    for index, column in enumerate(table.schema):
        kind = column.type
        if pa.types.is_dictionary(kind) and pa.types.is_null(kind.value_type):
            text = pa.dictionary(kind.index_type, pa.large_string())
            table = table.set_column(index, column.name, pa.nulls(len(table), text))
    return table


def _categorical_nulls(table: Any) -> pd.DataFrame:
    """``table`` as a frame; a categorical column that a part of an earlier version
    stored as a null column comes back categorical (all missing), not ``object``."""
    import pyarrow as pa

    from .. import frames as shaping

    frame: pd.DataFrame = table.to_pandas()
    nulls = [f.name for f in table.schema if pa.types.is_null(f.type)]
    if nulls:
        schema = shaping.empty("events").dtypes
        for name in nulls:
            dtype = schema.get(name)
            if isinstance(dtype, pd.CategoricalDtype):
                frame[name] = pd.Categorical.from_codes(
                    np.full(len(frame), -1, dtype=np.int8), dtype=dtype
                )
    return frame


__all__ = ["MAX_PARTS", "Coverage", "MessageEventStore", "StoreRebuiltWarning"]
