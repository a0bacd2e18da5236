"""SQLite state of the emulated account: schema, opening, copying, reset.

One database file (or ``:memory:``) holds everything the sandbox knows: the
Mixmax account (users, teams, sequences, recipients, messages, live-feed events,
snippets, polls, unsubscribes, rules), the Membrane side (login, connections) and
the test controls (profile, injected faults, the request log of the rate limit).
Because it is a file in WAL mode, a write made by one process (the in-process
transport, or one `mixmax-nb-sandbox` subprocess) is seen by the next.

This module knows tables, not semantics: ``mixmax``, ``membrane`` and ``faults``
give the rows their meaning.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    _id TEXT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, timezone TEXT NOT NULL,
    is_current INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);
-- Small resources kept as JSON documents: teams, sequences, snippets, polls, rules,
-- unsubscribes. `name` is what search filters on (lower-cased email for unsubscribes).
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL, _id TEXT NOT NULL, sort_key INTEGER NOT NULL, name TEXT,
    doc TEXT NOT NULL, PRIMARY KEY (kind, _id));
CREATE TABLE IF NOT EXISTS contacts (
    email TEXT PRIMARY KEY, first_name TEXT, last_name TEXT, company TEXT, title TEXT,
    timezone TEXT);
CREATE TABLE IF NOT EXISTS recipients (
    _id TEXT PRIMARY KEY, sequence_id TEXT NOT NULL, email TEXT NOT NULL, name TEXT,
    user_id TEXT NOT NULL, state TEXT NOT NULL, draft INTEGER NOT NULL,
    completed_reason TEXT, created INTEGER NOT NULL, updated INTEGER NOT NULL,
    last_ordinal INTEGER, last_message_created INTEGER, next_scheduled INTEGER,
    opens INTEGER NOT NULL DEFAULT 0, clicks INTEGER NOT NULL DEFAULT 0,
    downloads INTEGER NOT NULL DEFAULT 0, replied INTEGER NOT NULL DEFAULT 0,
    variables TEXT NOT NULL, stages TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    _id TEXT PRIMARY KEY, created INTEGER NOT NULL, updated INTEGER NOT NULL,
    user_id TEXT NOT NULL, sent INTEGER, scheduled INTEGER, to_json TEXT NOT NULL,
    cc_json TEXT, bcc_json TEXT, subject TEXT, body TEXT, sequence_id TEXT,
    stage_id TEXT, stage_index INTEGER, recipient_id TEXT,
    tracking INTEGER NOT NULL DEFAULT 1, link_tracking INTEGER NOT NULL DEFAULT 1);
-- A million rows at the large size: columns, no JSON, no index on _id alone.
CREATE TABLE IF NOT EXISTS events (
    _id TEXT NOT NULL, type TEXT NOT NULL, ts INTEGER NOT NULL, message_id TEXT NOT NULL,
    user_id TEXT NOT NULL, sequence_id TEXT, city TEXT, os TEXT, program TEXT,
    is_mobile INTEGER, link_url TEXT, link_text TEXT, file_name TEXT);
CREATE TABLE IF NOT EXISTS connections (
    id TEXT PRIMARY KEY, created INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, skip INTEGER NOT NULL,
    remaining INTEGER NOT NULL, params TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS request_log (t REAL NOT NULL);
-- Membrane's action run logs (`action-run-log get`): one JSON record per run, the
-- newest RUN_LOG_KEEP kept. `seq` orders them; `id` is the run's actionRunId.
CREATE TABLE IF NOT EXISTS action_runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
"""

# Secondary indexes, kept apart from the tables so a bulk load (the seed) can
# build them once after inserting: building an index over finished rows is much
# faster than maintaining it row by row.
INDEXES = """
CREATE INDEX IF NOT EXISTS docs_order ON docs (kind, sort_key, _id);
CREATE INDEX IF NOT EXISTS docs_name ON docs (kind, name);
CREATE INDEX IF NOT EXISTS recipients_seq ON recipients (sequence_id, created, _id);
CREATE UNIQUE INDEX IF NOT EXISTS recipients_once ON recipients (sequence_id, email);
CREATE INDEX IF NOT EXISTS recipients_sched ON recipients (user_id, next_scheduled);
CREATE INDEX IF NOT EXISTS messages_order ON messages (created, _id);
CREATE INDEX IF NOT EXISTS messages_seq ON messages (sequence_id, created, _id);
-- The live feed lists sent messages newest first.
CREATE INDEX IF NOT EXISTS messages_sent ON messages (sent, _id);
CREATE INDEX IF NOT EXISTS events_order ON events (ts, _id);
CREATE INDEX IF NOT EXISTS events_message ON events (message_id, ts, _id);
-- Covers "has this message an open/click/... ?" for the live feed's search and stats,
-- without reading the event rows.
CREATE INDEX IF NOT EXISTS events_kind ON events (message_id, type);
CREATE INDEX IF NOT EXISTS events_seq ON events (sequence_id, ts, _id);
"""
_INDEX_NAMES = tuple(re.findall(r"IF NOT EXISTS (\w+) ON", INDEXES))
SCHEMA = TABLES + INDEXES

MEMORY = ":memory:"
# How many action run logs a database keeps (the newest): every run writes one, and a
# long pull runs thousands. Membrane keeps its logs for a while, then drops them too.
RUN_LOG_KEEP = 1000


def _private(path: Path, *, create: bool = False) -> None:
    """0600: a sandbox account holds made-up people, but it is a person's database,
    and the WAL files SQLite adds take the database file's mode."""
    with contextlib.suppress(OSError):
        if create and not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        if path.exists() and path.stat().st_mode & 0o777 != 0o600:
            os.chmod(path, 0o600)


def fold(value: str | None) -> str | None:
    """Unicode case folding, as SQL ``mx_fold(text)`` too: SQLite's own ``lower()``
    folds ASCII only, and the sandbox's names are not ASCII."""
    return value.casefold() if isinstance(value, str) else value


class Store:
    """A SQLite connection with the sandbox schema, safe to share between threads.

    ``sqlite3`` connections may not be used by two threads at once; sync calls of
    the toolkit run coroutines in worker threads, so every use goes through
    :meth:`tx` (one lock, one transaction).
    """

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self.lock = threading.RLock()

    @classmethod
    def open(cls, path: str | Path) -> Store:
        """Open (creating if needed) the database at ``path``, or ``:memory:``."""
        text = str(path)
        if text != MEMORY:
            Path(text).parent.mkdir(parents=True, exist_ok=True)
            _private(Path(text), create=True)
        conn = sqlite3.connect(text, check_same_thread=False, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        if text != MEMORY:
            # WAL: readers never block the writer, so concurrent subprocesses cooperate.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            for suffix in ("-wal", "-shm"):
                _private(Path(text + suffix))
        conn.execute("PRAGMA busy_timeout=30000")
        conn.create_function("mx_fold", 1, fold, deterministic=True)
        conn.executescript(TABLES)
        try:
            conn.executescript(INDEXES)
        except sqlite3.IntegrityError:
            # A database from before recipients were unique per sequence, holding an
            # exact duplicate: keep it readable (add_recipients still checks in its
            # transaction); `sandbox reset` rebuilds it with the constraint.
            conn.executescript(INDEXES.replace("CREATE UNIQUE INDEX", "CREATE INDEX"))
        return cls(conn, text)

    @contextmanager
    def bulk_load(self, *, scratch: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction for filling an empty store fast (the seed).

        Secondary indexes are dropped and built once at the end, with a page cache
        big enough for the whole load. ``scratch`` (a temporary file that is renamed
        into the cache only when complete) also turns the rollback journal and
        fsyncs off while loading: a crash there loses nothing, whereas a person's
        own database keeps its journal so a crash mid-reset cannot corrupt it.
        Afterwards a file is in WAL again, which concurrent subprocesses rely on.
        On error the store is wiped.
        """
        with self.lock:
            conn = self.conn
            for name in _INDEX_NAMES:
                conn.execute(f"DROP INDEX IF EXISTS {name}")
            # A page cache that holds the whole `default` account (the default is
            # 2 MB) keeps inserts and index sorts off the disk until commit.
            cache_size = conn.execute("PRAGMA cache_size").fetchone()[0]
            conn.execute("PRAGMA cache_size=-131072")
            if scratch and self.path != MEMORY:
                conn.execute("PRAGMA synchronous=OFF")
                conn.execute("PRAGMA journal_mode=OFF")
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
                conn.executescript(f"BEGIN; {INDEXES} COMMIT;")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self.wipe()
                raise
            finally:
                conn.execute(f"PRAGMA cache_size={int(cache_size)}")
                if scratch and self.path != MEMORY:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=NORMAL")

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock; committed on success, rolled back on error."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    def read(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> sqlite3.Row | None:
        with self.lock:
            row: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
            return row

    # -- meta --------------------------------------------------------------------

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(row["value"]) if row is not None else default

    def set_meta(self, key: str, value: Any, conn: sqlite3.Connection | None = None) -> None:
        sql = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"
        params = (key, json.dumps(value))
        if conn is not None:
            conn.execute(sql, params)
        else:
            with self.tx() as c:
                c.execute(sql, params)

    # -- action run logs -------------------------------------------------------------

    def add_run_log(self, run_id: str, doc: str, *, keep: int = RUN_LOG_KEEP) -> None:
        """Store one run's log record (JSON text) and drop all but the newest ``keep``."""
        with self.tx() as conn:
            cur = conn.execute(
                "INSERT OR REPLACE INTO action_runs (id, doc) VALUES (?, ?)", (run_id, doc)
            )
            conn.execute("DELETE FROM action_runs WHERE seq <= ?", ((cur.lastrowid or 0) - keep,))

    def run_log(self, run_id: str) -> dict[str, Any] | None:
        """The stored log record of run ``run_id``, or None."""
        row = self.one("SELECT doc FROM action_runs WHERE id = ?", (run_id,))
        if row is None:
            return None
        record: dict[str, Any] = json.loads(row["doc"])
        return record

    @property
    def seeded(self) -> bool:
        return self.get_meta("seed") is not None

    # -- whole-database operations ---------------------------------------------------

    def copy_from(self, source: str | Path) -> None:
        """Replace this database's content with ``source``'s (SQLite online backup)."""
        src = sqlite3.connect(str(source))
        try:
            with self.lock:
                src.backup(self.conn)
                # A source made by an older version may lack a newer table (run logs).
                self.conn.executescript(TABLES)
        finally:
            src.close()
        if self.path != MEMORY:
            self.conn.execute("PRAGMA journal_mode=WAL")

    def wipe(self) -> None:
        """Drop every table (used by reset before seeding again)."""
        with self.lock:
            names = [
                r[0]
                for r in self.conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            ]
            self.conn.execute("BEGIN IMMEDIATE")
            for name in names:
                self.conn.execute(f'DROP TABLE IF EXISTS "{name}"')
            self.conn.execute("COMMIT")
            self.conn.executescript(SCHEMA)

    def close(self) -> None:
        with self.lock:
            self.conn.close()
