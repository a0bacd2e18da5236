"""Finding, creating and resetting the sandbox database.

A database is opened as is when it already holds an account (that is how writes
persist across sessions and processes). An empty one is seeded: ``small``
directly; ``default`` and ``large`` from a cached, fully seeded file under
``Settings.home/sandbox-cache`` keyed by seed, size, reference date and generator
version, copied with SQLite's backup API (so ``:memory:`` works too). Generating
``default`` takes a few seconds once; copying it takes a fraction of a second.

Heavy imports (numpy, through ``seed``) happen only when something is generated,
which keeps the `mixmax-nb-sandbox` command quick.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from ..config import Settings
from .store import MEMORY, Store

GENERATOR_VERSION = 1  # keep equal to seed.GENERATOR_VERSION (checked by a test)
SIZES = ("small", "default", "large")


def default_db_path(settings: Settings, *, seed: int, size: str) -> Path:
    return settings.home / "sandbox" / f"account-{size}-seed{seed}.sqlite"


def cache_path(settings: Settings, *, seed: int, size: str, reference: date) -> Path:
    name = f"v{GENERATOR_VERSION}-{size}-seed{seed}-{reference.isoformat()}.sqlite"
    return settings.home / "sandbox-cache" / name


def resolve_db(settings: Settings, db: str | Path | None, *, seed: int, size: str) -> str:
    if db is not None:
        return str(db)
    if settings.sandbox_db:
        return settings.sandbox_db
    return str(default_db_path(settings, seed=seed, size=size))


def reference_date(value: str | date | None) -> date:
    from datetime import UTC, datetime

    if isinstance(value, date):
        return value
    if value:
        return date.fromisoformat(value)
    return datetime.now(UTC).date()


def fill(store: Store, settings: Settings, *, seed: int, size: str, reference: date) -> None:
    """Seed an empty store, through the cache for the bigger sizes."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, not {size!r}")
    from . import seed as seeding

    if size == "small":
        seeding.build(store, seed=seed, size=size, reference_date=reference)
        return
    cached = cache_path(settings, seed=seed, size=size, reference=reference)
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}")
        tmp.unlink(missing_ok=True)
        building = Store.open(tmp)
        try:
            seeding.build(building, seed=seed, size=size, reference_date=reference)
            with building.lock:
                building.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                building.conn.execute("PRAGMA journal_mode=DELETE")
        finally:
            building.close()
        os.replace(tmp, cached)  # atomic: a concurrent reader never sees half a file
    store.copy_from(cached)


def open_store(
    settings: Settings,
    *,
    seed: int,
    size: str,
    db: str | Path | None,
    reference: str | date | None,
) -> tuple[Store, bool]:
    """Open the account's database, seeding it if empty; return (store, newly_seeded)."""
    path = resolve_db(settings, db, seed=seed, size=size)
    store = Store.open(path)
    if store.seeded:
        return store, False
    fill(store, settings, seed=seed, size=size, reference=reference_date(reference))
    return store, True


def reset(store: Store, settings: Settings) -> None:
    """Throw away every change: the same seed, size and reference date, seeded again."""
    seed = int(store.get_meta("seed", settings.sandbox_seed))
    size = str(store.get_meta("size", settings.sandbox_size))
    ref = reference_date(store.get_meta("reference_date"))
    store.wipe()
    fill(store, settings, seed=seed, size=size, reference=ref)


__all__ = ["MEMORY", "SIZES", "open_store", "reset"]
