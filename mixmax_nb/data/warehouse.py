"""SQL over the engagement data: DuckDB views over the local store, dlt to any warehouse.

Two routes out of a notebook, both over the typed tables of :mod:`.engagement`:

* :func:`duckdb_connection` (``client.duckdb()``): an in-memory DuckDB database whose
  views read the local store's Parquet files where they lie. Nothing is copied and no
  DuckDB file exists, so no process ever holds DuckDB's single-writer lock: a notebook
  and a dashboard read at once while the next pull writes. ``events`` is the
  per-message event store (the newest part holding a message wins); ``sequences``,
  ``recipients``, ``recipient_stages``, ``messages``, ``stats`` and ``team_members`` are
  the latest pull's tables, which :func:`persist_tables` writes next to the store after
  every pull.
* :func:`load`: a dlt pipeline over every table of a pull, merged on its primary key
  into DuckDB (default, a file under the toolkit home) or any destination dlt is
  configured for (Postgres, BigQuery, Snowflake, MotherDuck, filesystem...: dlt's own
  env vars and ``secrets.toml``, never this code). A refresh writes only rows that are
  new or changed: each row carries :data:`HASH` (a fingerprint of its content), rows
  whose key and fingerprint the destination already holds are left out, and the
  events (the table that grows) are compared only inside dlt's incremental window on
  their ``timestamp``, reaching back ``lag`` for late events.

dlt and DuckDB are imported only when used; dlt is the ``[warehouse]`` extra.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from ..errors import InputError, MixmaxNbError, SetupError
from .engagement import ENGAGEMENT_TYPES, Detail, EngagementData
from .store import MessageEventStore

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

HASH: Final = "_mixmax_hash"
"""The column holding each row's content fingerprint (64-bit, pandas' stable hash)."""
DEFAULT_CONTRACT: Final[Mapping[str, str]] = {
    "tables": "evolve",
    "columns": "evolve",
    # A column whose type changes stops the load (dlt raises before anything is
    # written) instead of being coerced by the destination or split into variants.
    "data_type": "freeze",
}
EXTRA_HINT: Final = "Install it with: pip install 'mixmax-nb[warehouse]'"
TABLES_DIR: Final = "tables"
_OPEN: Final = ".."


@dataclass(frozen=True)
class Table:
    """One table of the dataset: its name, its primary key, its incremental cursor."""

    name: str
    keys: tuple[str, ...]
    cursor: str | None = None
    """dlt's incremental cursor: rows before the last value minus the lag are not sent."""


TABLES: Final = (
    Table("sequences", ("id",)),
    Table("recipients", ("id",)),
    Table("recipient_stages", ("recipient_id", "stage_id")),
    Table("messages", ("id",), cursor="sent_at"),
    Table("events", ("id",), cursor="timestamp"),
    Table("stats", ("key", "pull_window")),
    Table("team_members", ("team_id", "email")),
)


class SchemaContractError(MixmaxNbError):
    """A load would change a column's type in the destination (dlt's contract froze it)."""

    hint = (
        "Nothing was written. Migrate that column in the destination, or load with "
        "schema_contract={'data_type': 'evolve'} to let dlt handle it."
    )


# -- the tables of a pull -------------------------------------------------------------------


def _window(data: EngagementData) -> tuple[str, pd.Timestamp | None, pd.Timestamp | None]:
    """The pull's sending window as an ISO 8601 interval (``..`` for an open end)."""

    def iso(stamp: pd.Timestamp | None) -> str:
        return _OPEN if stamp is None else stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    return f"{iso(data.since)}/{iso(data.until)}", data.since, data.until


def dataset_frames(data: EngagementData) -> dict[str, pd.DataFrame]:
    """Every table of ``data`` by warehouse name (``stages`` is ``recipient_stages``;
    ``stats`` gains the pull's sending window: ``pull_window``, an ISO 8601 interval
    such as ``../..`` for all time, and ``pull_since`` / ``pull_until``)."""
    window, since, until = _window(data)
    stats = data.stats.copy()
    stats["pull_window"] = pd.array([window] * len(stats), dtype="string")
    for name, value in (("pull_since", since), ("pull_until", until)):
        stats[name] = pd.Series([value] * len(stats), dtype="datetime64[ms, UTC]")
    out = {
        "sequences": data.sequences,
        "recipients": data.recipients,
        "recipient_stages": data.stages,
        "messages": data.messages,
        "stats": stats,
    }
    if data.events is not None:
        out["events"] = data.events
    if data.team_members is not None:
        out["team_members"] = data.team_members
    return out


def _jsonable(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with Python objects (a recipient's variables) as JSON text: a type
    Parquet and every warehouse hold, compared and hashed the same in every run."""
    out = frame.reset_index(drop=True)
    for name in out.columns:
        if out[name].dtype == object:
            out[name] = pd.array(
                [None if v is None or v is pd.NA else json.dumps(v, sort_keys=True, default=str)
                 for v in out[name]],
                dtype="string",
            )  # fmt: skip
    return out


def _keyed(frame: pd.DataFrame, keys: tuple[str, ...]) -> pd.DataFrame:
    """No row without its whole key (a primary key is never null), each key once (the
    last row wins, as the merge itself would have it)."""
    missing = frame[list(keys)].isna().any(axis=1)
    if missing.any():
        warnings.warn(
            f"{int(missing.sum()):,} row(s) without a {'/'.join(keys)} left out of the load.",
            stacklevel=4,
        )
        frame = frame.loc[~missing]
    return frame.drop_duplicates(list(keys), keep="last").reset_index(drop=True)


def fingerprint(frame: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.int64]]:
    """A 64-bit fingerprint of each row's content. pandas' row hash uses a fixed key,
    so a row hashes the same in every process and every run."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return np.asarray(hashed.view(np.int64))


def arrow_tables(data: EngagementData) -> dict[str, pa.Table]:
    """Every table of ``data`` as Arrow, with :data:`HASH` and non-null keys."""
    import pyarrow as pa

    out: dict[str, pa.Table] = {}
    frames = dataset_frames(data)
    for spec in TABLES:
        if spec.name not in frames:
            continue
        frame = _keyed(_jsonable(frames[spec.name]), spec.keys)
        table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
        table = table.append_column(
            pa.field(HASH, pa.int64(), nullable=False), [fingerprint(frame)]
        )
        # Non-null key fields: dlt's primary key hints then agree with the Arrow schema.
        # Microsecond UTC timestamps: what every destination stores without a warning
        # (DuckDB has no zoned millisecond type); no value changes.
        fields = [
            pa.field(f.name, pa.timestamp("us", tz="UTC"), f.nullable)
            if pa.types.is_timestamp(f.type)
            else f.with_nullable(False)
            if f.name in spec.keys
            else f
            for f in table.schema
        ]
        out[spec.name] = table.cast(pa.schema(fields))
    return out


# -- the local copy of the latest pull (for the DuckDB views) --------------------------------


def _tables_dir(store: MessageEventStore) -> Path:
    return store.dir.parent / TABLES_DIR


def _write_atomic(table: pa.Table, final: Path, metadata: Mapping[bytes, bytes]) -> None:
    from .._atomic import write_parquet

    # A reader (a DuckDB view) sees the old file or the new one, never half.
    write_parquet(
        table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata}), final
    )


def persist_tables(store: MessageEventStore, data: EngagementData) -> Path | None:
    """Write the pull's tables (all but events, which the store keeps) as Parquet next to
    the store, each file atomically (0600; directory 0700). Returns the directory, or
    None with a warning when it cannot be written (the pull's result stands)."""
    import pyarrow as pa

    from .. import frames as shaping

    folder = _tables_dir(store)
    window, _, _ = _window(data)
    meta = {b"mixmax_nb.pull": json.dumps({"window": window, "detail": data.detail}).encode()}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for level in (folder, folder.parent, folder.parent.parent, folder.parent.parent.parent):
            with contextlib.suppress(OSError):
                os.chmod(level, 0o700)
        for name, frame in dataset_frames(data).items():
            if name == "events":
                continue
            table = pa.Table.from_pandas(_jsonable(frame), preserve_index=False)
            _write_atomic(table, folder / f"{name}.parquet", meta)
        # An empty events part with the events schema: the events view's glob matches
        # it, so the view works (empty) before the store has a part of its own.
        sentinel = folder / "part-schema.parquet"
        if not sentinel.exists():
            empty = pa.Table.from_pandas(shaping.empty("events"), preserve_index=False)
            _write_atomic(empty, sentinel, {})
    except OSError as exc:
        warnings.warn(
            f"The pulled tables could not be saved for SQL ({type(exc).__name__}: {exc}); "
            "client.duckdb() shows the previous pull's.",
            stacklevel=3,
        )
        return None
    return folder


# -- DuckDB views over the store ---------------------------------------------------------


# The newest part holding a message's events is the one to read (a refetched message is
# in a later part, and its rows in earlier parts must not count twice). One scan decides
# it: had the footers been read by a second glob, a part written between the two
# expansions would drop its messages from a query that runs while a pull writes. A
# message's events only grow (Mixmax keeps the newest 200), so its newest part with rows
# is its newest part. Part numbers, not file names, order the parts; the glob also
# matches tables/part-schema.parquet, the empty typed part that keeps the view valid.
_EVENTS_SQL: Final = """
CREATE VIEW events AS
SELECT * EXCLUDE (filename, _part)
FROM (
    SELECT e.*,
           TRY_CAST(regexp_extract(e.filename, 'engagement/part-([0-9]+)[.]parquet$', 1)
                    AS BIGINT) AS _part
    FROM read_parquet(:glob, filename = true, union_by_name = true) AS e
)
WHERE _part IS NOT NULL
QUALIFY _part = max(_part) OVER (PARTITION BY message_id)
"""
_FEED_EVENTS_SQL: Final = "CREATE VIEW events AS SELECT * FROM feed_events WHERE type IN (:types)"
_VIEW_SQL: Final = "CREATE VIEW :name AS SELECT * FROM read_parquet(:path)"
_DUCKDB_TYPES: Final = {
    "Int64": "BIGINT",
    "boolean": "BOOLEAN",
    "datetime64[ms, UTC]": "TIMESTAMPTZ",
}


def _empty_events_sql() -> str:
    """A typed, empty ``events`` (a store that has not been pulled into yet)."""
    from .. import frames

    columns = ", ".join(
        f'CAST(NULL AS {_DUCKDB_TYPES.get(str(dtype), "VARCHAR")}) AS "{name}"'
        for name, dtype in frames.SCHEMAS["events"].items()
    )
    return f"SELECT {columns} WHERE false"


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _account_dir(source: Any) -> Path:
    if isinstance(source, MessageEventStore):
        return source.dir.parent
    aio = getattr(source, "aio", None)
    if aio is not None and hasattr(aio, "engagement_store"):
        from .._sync import run_sync

        store = run_sync(aio.engagement_store())
        return Path(store.dir).parent
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        return path.parent if path.name == "engagement" else path
    raise InputError(
        f"duckdb_connection takes a client, a MessageEventStore or a store directory, "
        f"not {type(source).__name__}.",
        field="source",
    )


def duckdb_connection(source: Any, *, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with views over the local store (see the module
    docstring). ``source``: a (sync) client, a ``MessageEventStore``, or the account's
    store directory (``<home>/cache/<backend>/<account>``).

    Views read the files at each query, so a pull made after connecting shows up in
    the next query. Every timestamp is UTC (the session's ``TimeZone``)."""
    import duckdb

    root = _account_dir(source)
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    feed = root / "events.parquet"
    if feed.exists():
        # The account-wide live feed (connections that list every event), when pulled.
        con.execute(
            _VIEW_SQL.replace(":name", "feed_events").replace(":path", _sql_text(str(feed)))
        )
    # A connection serves events one way: per message (the store's parts) or as the
    # account's feed, whose engagement types are what a pull's events hold.
    store_parts = any((root / "engagement").glob("part-*.parquet"))
    if store_parts or (not feed.exists() and any(root.glob("*/part-*.parquet"))):
        # The glob also matches the empty schema part persist_tables writes, so the
        # view works before the store's first part and sees parts written later.
        glob = _sql_text(str(root / "*" / "part-*.parquet"))
        con.execute(_EVENTS_SQL.replace(":glob", glob))
    elif feed.exists():
        kinds = ", ".join(_sql_text(t) for t in ENGAGEMENT_TYPES)
        con.execute(_FEED_EVENTS_SQL.replace(":types", kinds))
    else:
        con.execute(f"CREATE VIEW events AS {_empty_events_sql()}")
    for spec in TABLES:
        path = root / TABLES_DIR / f"{spec.name}.parquet"
        if spec.name != "events" and path.exists():
            # The name from TABLES, the path quoted: nothing here comes from data.
            con.execute(
                _VIEW_SQL.replace(":name", spec.name).replace(":path", _sql_text(str(path)))
            )
    return con


# -- dlt ----------------------------------------------------------------------------------


def _dlt() -> Any:
    try:
        import dlt
    except ImportError as exc:
        raise SetupError(
            "Loading into a warehouse needs dlt, which is not installed.", hint=EXTRA_HINT
        ) from exc
    # dlt sends anonymous usage telemetry unless told otherwise; a toolkit holding
    # customer data makes no call the user did not ask for. Their own setting wins.
    if dlt.config.get("runtime.dlthub_telemetry") is None:
        from dlt.common.runtime import telemetry

        dlt.config["runtime.dlthub_telemetry"] = False
        telemetry.stop_telemetry()  # dlt started it when it resolved its runtime on import
    return dlt


def _name(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", "_".join(p for p in parts if p)).strip("_")[:60]


def default_duckdb_path(home: Path, source: str | None) -> Path:
    """Where :func:`load` puts the DuckDB file by default:
    ``<home>/warehouse/mixmax_warehouse.duckdb`` for real data and
    ``sandbox_warehouse.duckdb`` for the sandbox's, so a demo never merges into real
    data. (Not ``<dataset>.duckdb``: DuckDB names the database after the file, and a
    database and a schema of one name make every query ambiguous.)"""
    name = "sandbox" if source == "sandbox" else "mixmax"
    return Path(home) / "warehouse" / f"{name}_warehouse.duckdb"


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)


def _fingerprints(pipeline: Any, spec: Table, start: Any) -> pa.Table | None:
    """The destination's keys and fingerprints of ``spec`` (inside the cursor window
    when ``start`` is given), or None when it has none yet."""
    import pyarrow as pa

    schema = pipeline.default_schema if pipeline.default_schema_name else None
    if schema is None or HASH not in schema.tables.get(spec.name, {}).get("columns", {}):
        return None
    from dlt.common.destination.exceptions import DestinationUndefinedEntity

    relation = pipeline.dataset().table(spec.name)
    queries = [relation]
    if start is not None and spec.cursor is not None:
        queries = [
            relation.where(spec.cursor, "gte", start),
            relation.where(f"{spec.cursor} IS NULL"),
        ]
    try:
        with warnings.catch_warnings():
            # dlt 1.31 reads DuckDB with a method DuckDB 1.5 deprecates; not ours to fix.
            warnings.filterwarnings("ignore", "fetch_arrow_table", DeprecationWarning)
            found = [q.select(*spec.keys, HASH).arrow() for q in queries]
    except DestinationUndefinedEntity:
        return None  # the schema knows the table, the destination does not (yet)
    tables = [t for t in found if t is not None]
    return pa.concat_tables(tables) if tables else None


def _changed(pipeline: Any, spec: Table, table: pa.Table, start: Any) -> pa.Table:
    """The rows of ``table`` whose key and fingerprint the destination does not hold."""
    import pyarrow as pa

    if table.num_rows == 0:
        return table
    held = _fingerprints(pipeline, spec, start)
    if held is None or held.num_rows == 0:
        return table
    columns = [*spec.keys, HASH]
    probe = table.select(columns).append_column("_row", pa.array(np.arange(table.num_rows)))
    held = pa.table([held[c].cast(probe[c].type) for c in columns], names=columns)
    # An anti-join of (key, fingerprint) pairs: only keys and row numbers go in, so
    # every column type of the table is allowed (Arrow joins refuse dictionaries).
    rows = probe.join(held, keys=columns, join_type="left anti")["_row"]
    return table.take(np.sort(rows.to_numpy()))  # in the pull's order


def _resource(dlt: Any, pipeline: Any, spec: Table, table: pa.Table, lag: timedelta | None,
              contract: Any) -> Any:  # fmt: skip
    hints: dict[str, Any] = {
        "name": spec.name,
        "primary_key": list(spec.keys),
        "write_disposition": "merge",
        "schema_contract": contract,
        "columns": {HASH: {"data_type": "bigint", "nullable": False}},
    }
    if spec.cursor is not None:
        # Said outright: dlt's filter on the cursor then compares with a UTC literal
        # (without the hint it casts to a zone-less timestamp, which DuckDB refuses).
        hints["columns"][spec.cursor] = {"data_type": "timestamp", "timezone": True}
    if spec.cursor is not None and lag is not None:
        incremental = dlt.sources.incremental(
            spec.cursor,
            lag=lag.total_seconds(),  # seconds, for a datetime cursor
            on_cursor_value_missing="include",  # drafts have no send time yet
        )

        def windowed(cursor: Any = incremental) -> Any:
            # start_value is the last value already less the lag: the window dlt sends.
            yield _changed(pipeline, spec, table, cursor.start_value)

        return dlt.resource(windowed, **hints)

    def whole() -> Any:
        yield _changed(pipeline, spec, table, None)

    return dlt.resource(whole, **hints)


def load(
    client: Any = None,
    destination: Any = "duckdb",
    dataset_name: str = "mixmax",
    *,
    data: EngagementData | None = None,
    since: Any = None,
    detail: Detail = "events",
    lag: timedelta | None = timedelta(days=3),
    schema_contract: Any = None,
    table_format: str | None = None,
    **dlt_options: Any,
) -> Any:
    """Load every table of a fresh ``client.engagement(since=, detail=)`` pull (or of
    ``data``, an already pulled dataset) into ``destination`` with dlt; return dlt's
    ``LoadInfo`` (:func:`rows_written` reads how many rows each table got).

    Tables and keys: ``sequences`` (id), ``recipients`` (id), ``recipient_stages``
    (recipient_id, stage_id), ``messages`` (id), ``events`` (id), ``stats`` (key,
    pull_window), ``team_members`` (team_id, email); merged on the key, never duplicated.
    A refresh writes only new or changed rows (see the module docstring); ``events``
    and ``messages`` also go through dlt's incremental cursor (``timestamp`` /
    ``sent_at``, lagged by ``lag``; ``lag=None`` turns the cursor off).

    ``destination``: ``"duckdb"`` is a file under the toolkit home
    (:func:`default_duckdb_path`) unless dlt is configured with one
    (``DESTINATION__DUCKDB__CREDENTIALS``); any other dlt destination name or object
    takes its credentials from dlt's configuration. ``schema_contract``: dlt's, default
    :data:`DEFAULT_CONTRACT` (a type change raises :class:`SchemaContractError`).
    ``dlt_options`` go to ``dlt.pipeline`` (``pipeline_name``, ``pipelines_dir``,
    ``progress``...). A load interrupted before (killed, or an error between dlt's
    steps) is finished first: dlt keeps its packages until they are loaded."""
    dlt = _dlt()
    from ..config import Settings

    if data is None:
        if client is None:
            raise InputError("load() needs a client or data=.", field="client")
        data = client.engagement(since=since, detail=detail)
        if not isinstance(data, EngagementData):
            with contextlib.suppress(AttributeError):
                data.close()  # an AsyncClient's coroutine, never awaited
            raise InputError(
                "load() runs synchronously: pass the client from mx.connect(), or "
                "data=await client.engagement(...).",
                field="client",
            )
    home = Settings.from_env().home
    account = ""
    if client is not None and hasattr(client, "aio"):
        from .._sync import run_sync

        account = run_sync(client.aio.account_key())
    source_name = data.source or (getattr(client, "backend", None) if client else None) or "data"
    dlt_options.setdefault("pipeline_name", _name("mixmax_nb", source_name, account))
    pipelines_dir = Path(
        dlt_options.setdefault("pipelines_dir", str(home / "warehouse" / "pipelines"))
    )
    _private_dir(pipelines_dir)
    duckdb_file: Path | None = None
    if destination == "duckdb" and dlt.config.get("destination.duckdb.credentials") is None:
        duckdb_file = default_duckdb_path(home, source_name)
        _private_dir(duckdb_file.parent)
        destination = dlt.destinations.duckdb(credentials=str(duckdb_file))
    pipeline = dlt.pipeline(destination=destination, dataset_name=dataset_name, **dlt_options)
    try:
        if pipeline.has_pending_data:
            # run() with pending packages loads them and stops: finish the earlier,
            # interrupted load first, then extract this one against what it left.
            pipeline.run()
        contract = (
            dict(schema_contract or DEFAULT_CONTRACT)
            if not isinstance(schema_contract, str)
            else schema_contract
        )
        tables = arrow_tables(data)
        resources = [
            _resource(dlt, pipeline, spec, tables[spec.name], lag, contract)
            for spec in TABLES
            if spec.name in tables
        ]

        @dlt.source(name="mixmax", max_table_nesting=0)  # type: ignore[untyped-decorator]
        def mixmax() -> Any:
            return resources

        info = pipeline.run(mixmax(), table_format=table_format)
    except Exception as exc:
        _raise_contract(exc)
        raise
    finally:
        if duckdb_file is not None:
            for path in (duckdb_file, duckdb_file.with_name(duckdb_file.name + ".wal")):
                with contextlib.suppress(OSError):
                    os.chmod(path, 0o600)
    return info


def _raise_contract(exc: BaseException) -> None:
    """A frozen column type hit by this load becomes a :class:`SchemaContractError`."""
    from dlt.common.schema.exceptions import DataValidationError

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, DataValidationError):
        cause = getattr(cause, "exception", None) or cause.__cause__
    if cause is not None:
        raise SchemaContractError(
            f"A column type changed in table {cause.table_name!r}, column "
            f"{cause.column_name!r}: {cause.args[-1] if cause.args else cause}"
        ) from exc


def rows_written(info: Any) -> dict[str, int]:
    """Rows each table got in the last run of ``info``'s pipeline (dlt's own tables left out)."""
    trace = info.pipeline.last_trace
    normalized = trace.last_normalize_info if trace is not None else None
    counts: Mapping[str, int] = normalized.row_counts if normalized is not None else {}
    # By table name: dlt's own order depends on which normalize worker finished first.
    return {t: int(counts[t]) for t in sorted(counts) if not t.startswith("_dlt")}


__all__ = [
    "DEFAULT_CONTRACT",
    "HASH",
    "TABLES",
    "SchemaContractError",
    "Table",
    "arrow_tables",
    "dataset_frames",
    "default_duckdb_path",
    "duckdb_connection",
    "fingerprint",
    "load",
    "persist_tables",
    "rows_written",
]
