"""Finding, creating and resetting the sandbox database.

A database is opened as is when it already holds an account (that is how writes
persist across sessions and processes). An empty one is seeded: ``small``
directly; ``default`` and ``large`` from a cached, fully seeded file under
``Settings.home/sandbox-cache`` keyed by seed, size, names profile, reference date and
generator version, copied with SQLite's backup API (so ``:memory:`` works too). The
names profile (``default`` or ``adversarial``, see ``names``) is part of every file
name, so accounts of different profiles never share a database or a cache file. Generating
``default`` takes a few seconds once; copying it takes a fraction of a second.

Heavy imports (numpy, through ``seed``) happen only when something is generated,
which keeps the `mixmax-nb-sandbox` command quick.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

from ..config import Settings
from .names import NAME_PROFILES
from .store import MEMORY, Store

GENERATOR_VERSION = 5  # keep equal to seed.GENERATOR_VERSION (checked by a test)
SIZES = ("small", "default", "large")
LEGACY_NAMES = "adversarial"
"""The words of an account generated before names profiles existed (generator v4 and
older): the hostile lists, which are the ``adversarial`` profile's now."""


def check_names(names: str) -> str:
    if names not in NAME_PROFILES:
        raise ValueError(f"names must be one of {NAME_PROFILES}, not {names!r}")
    return names


def stored_names(store: Store) -> str:
    """The names profile of a seeded database (:data:`LEGACY_NAMES` if it predates them)."""
    return str(store.get_meta("names") or LEGACY_NAMES)


def default_db_path(settings: Settings, *, seed: int, size: str, names: str = "default") -> Path:
    return settings.home / "sandbox" / f"account-{size}-seed{seed}-{names}.sqlite"


def cache_path(
    settings: Settings, *, seed: int, size: str, reference: date, names: str = "default"
) -> Path:
    name = f"v{GENERATOR_VERSION}-{size}-seed{seed}-{names}-{reference.isoformat()}.sqlite"
    return settings.home / "sandbox-cache" / name


def resolve_db(
    settings: Settings, db: str | Path | None, *, seed: int, size: str, names: str = "default"
) -> str:
    if db is not None:
        return str(db)
    if settings.sandbox_db:
        return settings.sandbox_db
    return str(default_db_path(settings, seed=seed, size=size, names=names))


def reference_date(value: str | date | None) -> date:
    from datetime import UTC, datetime

    if isinstance(value, date):
        return value
    if value:
        return date.fromisoformat(value)
    return datetime.now(UTC).date()


def _generate_in_child(
    out: Path, *, seed: int, size: str, reference: date, names: str = "default"
) -> bool:
    """Run the generator in a child Python; False if that could not be done.

    Generation is CPU-bound Python holding the GIL for over a second, and
    ``mx.connect()`` starts importing jsonschema in a thread at the same moment
    (``catalog.prewarm``, another ~1.3 s of GIL). In one process the two take
    turns on one core; a child process gives generation the second core, which
    is what keeps the first-ever ``default`` open under 3 s on two cores. The
    parent also never imports numpy on this path.
    """
    if not sys.executable:
        return False
    env = dict(os.environ)
    # The child must import this very package, even if it was put on sys.path by hand
    # (found from this file: the sandbox never imports the package root above it).
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    argv = [sys.executable, "-m", "mixmax_nb.sandbox.seed", str(out), "--seed", str(seed)]
    argv += ["--size", size, "--reference-date", reference.isoformat(), "--names", names]
    try:
        done = subprocess.run(argv, env=env, capture_output=True, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and out.exists()


KEEP_CACHED = 3
"""Cached accounts kept per size, seed and names profile (one per reference date)."""


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)


def prune_cache(directory: Path, *, keep: Path) -> list[Path]:
    """Remove cached accounts of older generator versions, and all but the newest
    :data:`KEEP_CACHED` of each size, seed and names profile (``keep`` always stays);
    return them."""
    removed: list[Path] = []
    groups: dict[str, list[Path]] = {}
    for path in directory.glob("v*-*-seed*-*.sqlite"):
        version, _, rest = path.name.partition("-")
        if version != f"v{GENERATOR_VERSION}":
            removed.append(path)
            continue
        size, seed_part, *more = rest.split("-")
        # ``<size>-seed<n>-<names>-<date>``; a name without a profile counts as default.
        names = more[0] if more and more[0] in NAME_PROFILES else "default"
        groups.setdefault(f"{size}-{seed_part}-{names}", []).append(path)
    for paths in groups.values():
        paths.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        removed += [p for p in paths[KEEP_CACHED:] if p != keep]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def _cached(
    settings: Settings, *, seed: int, size: str, reference: date, names: str = "default"
) -> Path:
    """The fully seeded cache file of a bigger size, generated first if missing."""
    cached = cache_path(settings, seed=seed, size=size, reference=reference, names=names)
    if not cached.exists():
        _private_dir(cached.parent)
        tmp = cached.with_suffix(f".tmp{os.getpid()}")
        tmp.unlink(missing_ok=True)
        if not _generate_in_child(tmp, seed=seed, size=size, reference=reference, names=names):
            from . import seed as seeding

            tmp.unlink(missing_ok=True)
            seeding.write_file(tmp, seed=seed, size=size, reference_date=reference, names=names)
        os.chmod(tmp, 0o600)
        os.replace(tmp, cached)  # atomic: a concurrent reader never sees half a file
        prune_cache(cached.parent, keep=cached)
    return cached


def fill(
    store: Store,
    settings: Settings,
    *,
    seed: int,
    size: str,
    reference: date,
    names: str = "default",
) -> None:
    """Seed an empty store, through the cache for the bigger sizes."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, not {size!r}")
    check_names(names)
    if size == "small":
        from . import seed as seeding

        seeding.build(store, seed=seed, size=size, reference_date=reference, names=names)
        return
    store.copy_from(_cached(settings, seed=seed, size=size, reference=reference, names=names))


def open_store(
    settings: Settings,
    *,
    seed: int,
    size: str,
    db: str | Path | None,
    reference: str | date | None,
    names: str | None = None,
) -> tuple[Store, bool]:
    """Open the account's database, seeding it if empty; return (store, newly_seeded).

    ``names``: the names profile; None means ``settings.sandbox_names`` for a new
    database and whatever an existing one holds. Given, an existing database must hold
    that profile (its words cannot change without reseeding): ValueError otherwise."""
    profile = check_names(names or settings.sandbox_names)
    path = resolve_db(settings, db, seed=seed, size=size, names=profile)
    ref = reference_date(reference)
    target = Path(path)
    if path != MEMORY and db is None and not settings.sandbox_db:
        _private_dir(target.parent)  # the default place, under the toolkit's home
    if path != MEMORY and size in SIZES[1:] and not target.exists():
        # A new file of a cached size is a plain file copy of the cache (tens of
        # milliseconds for `default`), not a page-by-page SQLite backup into an
        # open connection (several hundred). Copied under a temporary name and
        # renamed, so a concurrent opener sees no file or a whole one.
        cached = _cached(settings, seed=seed, size=size, reference=ref, names=profile)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
        shutil.copyfile(cached, tmp)
        ours = True
        try:
            os.link(tmp, target)  # fails if another process got there first: keep theirs
        except FileExistsError:
            ours = False
        except OSError:  # a filesystem without hard links
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        store = Store.open(path)
        if store.seeded:
            return _same_names(store, names), ours
    else:
        store = Store.open(path)
        if store.seeded:
            return _same_names(store, names), False
    fill(store, settings, seed=seed, size=size, reference=ref, names=profile)
    return store, True


def _same_names(store: Store, asked: str | None) -> Store:
    held = stored_names(store)
    if asked is not None and asked != held:
        store.close()
        raise ValueError(
            f"the sandbox database {store.path} holds the {held!r} names, not {asked!r}: "
            f"open another database (db=...), or reset this one with names={asked!r}"
        )
    return store


def reset(store: Store, settings: Settings, *, names: str | None = None) -> None:
    """Throw away every change: the same seed, size, reference date and names profile
    (or ``names``), seeded again."""
    seed = int(store.get_meta("seed", settings.sandbox_seed))
    size = str(store.get_meta("size", settings.sandbox_size))
    ref = reference_date(store.get_meta("reference_date"))
    profile = check_names(
        names or (stored_names(store) if store.seeded else settings.sandbox_names)
    )
    store.wipe()
    fill(store, settings, seed=seed, size=size, reference=ref, names=profile)


__all__ = ["MEMORY", "NAME_PROFILES", "SIZES", "open_store", "reset", "stored_names"]
