"""The seeded account: deterministic, realistic rates at the default size, fast to open."""

from __future__ import annotations

import shutil
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from mixmax_nb.config import Settings
from mixmax_nb.sandbox import account, seed
from mixmax_nb.sandbox.membrane import SandboxTransport
from mixmax_nb.sandbox.store import Store

REF = date(2025, 6, 2)


def dump(store: Store) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for table in ("users", "docs", "recipients", "messages", "events"):
        rows += [tuple(r) for r in store.read(f"SELECT * FROM {table} ORDER BY 1, 2")]
    return rows


def test_same_seed_same_account_other_seed_other_account() -> None:
    a, b, c = Store.open(":memory:"), Store.open(":memory:"), Store.open(":memory:")
    seed.build(a, seed=3, size="small", reference_date=REF)
    seed.build(b, seed=3, size="small", reference_date=REF)
    seed.build(c, seed=4, size="small", reference_date=REF)
    assert dump(a) == dump(b)
    assert dump(a) != dump(c)


def test_generator_versions_agree() -> None:
    assert account.GENERATOR_VERSION == seed.GENERATOR_VERSION


@pytest.fixture(scope="module")
def default_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose cache holds the `default` account: generated once per module
    (the way `mx.connect` does it), shared by the shape, rate and open-time tests."""
    home = tmp_path_factory.mktemp("default-home")
    account._cached(Settings(home=home), seed=7, size="default", reference=REF)
    return home


@pytest.fixture(scope="module")
def default_store(default_home: Path) -> Store:
    # A copy: opening a file switches it to WAL, and the cache must stay as it was.
    settings = Settings(home=default_home)
    cached = account.cache_path(settings, seed=7, size="default", reference=REF)
    copy = default_home / "read.sqlite"
    shutil.copyfile(cached, copy)
    return Store.open(copy)


def test_default_size_shape(default_store: Store) -> None:
    counts = default_store.get_meta("counts")
    assert counts["teams"] == 4 and counts["users"] == 16 and counts["sequences"] == 30
    assert counts["contacts"] == 6000
    assert 14_000 <= counts["recipients"] <= 15_000
    states = dict(
        default_store.read(
            "SELECT coalesce(completed_reason, state), COUNT(*) FROM recipients GROUP BY 1"
        )
    )
    for status in (
        "active",
        "draft",
        "finished",
        "replied",
        "bounced",
        "unsubscribed",
        "cancelled",
        "failed",
    ):
        assert states.get(status, 0) > 0, status
    stages = default_store.read("SELECT doc FROM docs WHERE kind = 'sequences'")
    import json

    docs = [json.loads(r["doc"]) for r in stages]
    assert all(2 <= len(d["stages"]) <= 6 for d in docs)
    assert {s["type"] for d in docs for s in d["stages"]} == {
        "email",
        "manual_email",
        "call",
        "linkedin",
    }
    assert any(d["paused"] for d in docs) and any(d["archived"] for d in docs)


def test_default_rates_look_like_real_outreach(default_store: Store) -> None:
    q = default_store.read
    sent = q("SELECT COUNT(*) FROM messages WHERE sent IS NOT NULL")[0][0]

    def share(kind: str) -> float:
        n = q("SELECT COUNT(DISTINCT message_id) FROM events WHERE type = ?", (kind,))[0][0]
        return float(n) / sent

    assert 0.35 <= share("opened") <= 0.60
    assert 0.02 <= share("clicked") <= 0.08
    assert 0.03 <= share("replied") <= 0.12
    assert 0.01 <= share("bounced") <= 0.04
    # Opens come soon after sending, with a long tail.
    delays = [
        r[0]
        for r in q(
            "SELECT min(e.ts) - m.sent FROM events e JOIN messages m ON m._id = e.message_id "
            "WHERE e.type = 'opened' GROUP BY e.message_id"
        )
    ]
    delays.sort()
    median = delays[len(delays) // 2]
    assert 5 * 60_000 <= median <= 12 * 3_600_000
    assert delays[int(len(delays) * 0.95)] > 24 * 3_600_000


def test_most_activity_on_weekdays(default_store: Store) -> None:
    rows = default_store.read(
        "SELECT strftime('%w', ts / 1000, 'unixepoch'), COUNT(*) FROM events GROUP BY 1"
    )
    by_day = {int(d): n for d, n in rows}
    weekend = by_day.get(0, 0) + by_day.get(6, 0)
    assert weekend / sum(by_day.values()) < 0.15


def test_default_connect_copies_the_cache(default_home: Path) -> None:
    # How fast: benchmarks/bench_open.py.
    settings = Settings(home=default_home)
    transport = SandboxTransport.open(
        settings, size="default", db=default_home / "copy.sqlite", reference_date="2025-06-02"
    )
    assert transport.connection_id is not None
    memory = SandboxTransport.open(
        settings, size="default", db=":memory:", reference_date="2025-06-02"
    )
    assert memory.emulator.store.get_meta("counts")["events"] > 50_000


def test_child_generation_matches_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cache is generated in a child Python (a core of its own); it must write
    # exactly the account the in-process generator writes.
    out = tmp_path / "child.sqlite"
    assert account._generate_in_child(out, seed=3, size="small", reference=REF)
    child = Store.open(out)
    local = Store.open(":memory:")
    seed.build(local, seed=3, size="small", reference_date=REF)
    assert dump(child) == dump(local)
    # Without a Python to start, generation falls back to this process.
    monkeypatch.setattr(sys, "executable", "")
    assert not account._generate_in_child(
        tmp_path / "none.sqlite", seed=3, size="small", reference=REF
    )


def test_nothing_happens_after_the_reference_instant() -> None:
    store = Store.open(":memory:")
    seed.build(store, seed=11, size="small", reference_date=REF)
    end = seed.reference_ms(REF)
    late = store.one(
        "SELECT (SELECT COUNT(*) FROM messages WHERE created >= ? OR sent >= ?)"
        " + (SELECT COUNT(*) FROM events WHERE ts >= ?) AS n",
        (end, end, end),
    )
    assert late is not None and late["n"] == 0


def test_another_date_tells_the_same_story() -> None:
    """Seeded by the seed, not the date: the same people, sequences and rates, moved."""
    a, b = Store.open(":memory:"), Store.open(":memory:")
    seed.build(a, seed=11, size="small", reference_date=REF)
    seed.build(b, seed=11, size="small", reference_date=REF + timedelta(days=187))

    def story(store: Store) -> tuple[object, ...]:
        names = [
            r["name"]
            for r in store.read(
                "SELECT name FROM docs WHERE kind != 'unsubscribes' ORDER BY kind, name"
            )
        ]
        people = [r["email"] for r in store.read("SELECT email FROM contacts ORDER BY email")]
        per_seq = store.read(
            "SELECT sequence_id, SUM(replied) AS r, COUNT(*) AS n FROM recipients"
            " GROUP BY sequence_id"
        )
        best = max(per_seq, key=lambda r: r["r"] / r["n"])
        name = store.one("SELECT name FROM docs WHERE _id = ?", (best["sequence_id"],))
        return (names, people, store.get_meta("counts")["recipients"], name and name["name"])

    assert story(a) == story(b)


def test_sandbox_files_are_private_and_old_caches_pruned(tmp_path: Path) -> None:
    import os
    import stat

    home = tmp_path / "home"
    old = os.umask(0)
    try:
        transport = SandboxTransport.open(
            Settings(home=home), size="default", reference_date="2025-06-02"
        )
    finally:
        os.umask(old)
    db = Path(transport.emulator.store.path)
    for path in (db, Path(str(db) + "-wal")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    cache = home / "sandbox-cache"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    current = next(cache.glob(f"v{account.GENERATOR_VERSION}-default-*.sqlite"))
    assert stat.S_IMODE(current.stat().st_mode) == 0o600
    stale = [cache / "v1-default-seed7-2025-01-01.sqlite"]
    stale += [
        cache / f"v{account.GENERATOR_VERSION}-default-seed7-2024-0{m}-01.sqlite"
        for m in range(1, 5)
    ]
    for i, path in enumerate(stale):
        path.write_bytes(b"")
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    removed = account.prune_cache(cache, keep=current)
    assert stale[0] in removed  # another generator version
    left = sorted(p.name for p in cache.glob("*.sqlite"))
    assert len(left) == account.KEEP_CACHED and current.name in left
