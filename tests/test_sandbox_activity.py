"""New live-feed activity "now", and the time scale the client paces itself by."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import date
from pathlib import Path

import pytest

from mixmax_nb.client import AsyncClient
from mixmax_nb.config import Settings
from mixmax_nb.sandbox import cli, seed
from mixmax_nb.sandbox.membrane import SandboxTransport
from mixmax_nb.transport.limits import NoLimit

NOW = 1_760_000_000.0  # 2025-10-09, well after the seeded account (reference 2025-06-02)


@pytest.fixture(scope="module")
def small_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One seeded small account for the module; each test copies the file."""
    path = tmp_path_factory.mktemp("activity") / "template.sqlite"
    seed.write_file(path, seed=11, size="small", reference_date=date(2025, 6, 2))
    return path


@pytest.fixture
def db(small_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "account.sqlite"
    shutil.copyfile(small_template, path)
    return path


def open_transport(db: Path, **options: object) -> SandboxTransport:
    return SandboxTransport.open(
        Settings(home=db.parent), db=db, clock=lambda: NOW, start="ready", **options
    )


def test_activity_is_newer_than_everything_and_consistent(db: Path) -> None:
    t = open_transport(db)
    store = t.emulator.store
    before = store.one("SELECT MAX(ts) AS ts, COUNT(*) AS n FROM events")
    assert before is not None
    result = t.sandbox_add_activity(200, seed=5)
    assert result["added"] == 200 and sum(result["types"].values()) == 200
    assert {"sent", "opened"} <= set(result["types"])
    new = store.read("SELECT * FROM events WHERE ts > ? ORDER BY ts", (before["ts"],))
    assert len(new) == 200
    assert store.one("SELECT COUNT(*) AS n FROM events")["n"] == before["n"] + 200  # type: ignore[index]
    assert new[-1]["ts"] <= NOW * 1000 and new[0]["ts"] > before["ts"]
    assert len({r["ts"] for r in new}) == 200  # strictly increasing: a clean "newest first"
    # Every event points at a sent message; clicks carry a link, opens a device.
    for row in new:
        msg = store.one("SELECT sent FROM messages WHERE _id = ?", (row["message_id"],))
        assert msg is not None and msg["sent"] is not None and msg["sent"] <= row["ts"]
        if row["type"] == "clicked":
            assert row["link_url"]
        if row["type"] != "sent":
            assert row["os"] is not None
    replied = store.read(
        "SELECT r.state, r.completed_reason, r.replied FROM events e "
        "JOIN messages m ON m._id = e.message_id JOIN recipients r ON r._id = m.recipient_id "
        "WHERE e.ts > ? AND e.type = 'replied'",
        (before["ts"],),
    )
    assert all(r["replied"] == 1 and r["state"] in ("completed", "failed") for r in replied)


def test_activity_is_deterministic_given_a_seed(small_template: Path, tmp_path: Path) -> None:
    def run(name: str, seed: int) -> list[tuple[object, ...]]:
        path = tmp_path / name
        shutil.copyfile(small_template, path)
        t = open_transport(path)
        t.sandbox_add_activity(60, seed=seed)
        rows = t.emulator.store.read("SELECT * FROM events ORDER BY ts DESC, _id LIMIT 60")
        return [tuple(r) for r in rows]

    assert run("a.sqlite", 1) == run("b.sqlite", 1)
    assert run("c.sqlite", 1) != run("d.sqlite", 2)


def test_activity_shows_up_first_in_the_feed(db: Path) -> None:
    # The account-wide profile: the newest events of the account, first.
    t = open_transport(db, livefeed="account")
    t.sandbox_add_activity(5, seed=3)
    page = asyncio.run(t.run_action("list-livefeed-events", {"limit": 5}))["output"]
    newest = t.emulator.store.read("SELECT _id FROM events ORDER BY ts DESC, _id DESC LIMIT 5")
    assert [e["_id"] for e in page["results"]] == [r["_id"] for r in newest]


def test_activity_shows_up_first_in_its_message(db: Path) -> None:
    # Mixmax as documented: one message's events, newest first.
    t = open_transport(db, livefeed="per-message")
    t.sandbox_add_activity(20, seed=4)
    row = t.emulator.store.one(
        "SELECT _id, message_id FROM events WHERE type != 'sent' ORDER BY ts DESC LIMIT 1"
    )
    assert row is not None
    page = asyncio.run(t.run_action("list-livefeed-events", {"messageId": row["message_id"]}))[
        "output"
    ]
    assert page["results"][0]["_id"] == row["_id"]


def test_activity_command(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MIXMAX_NB_SANDBOX_DB", str(db))
    assert cli.main(["sandbox", "activity", "7", "--seed", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["added"] == 7 and sum(out["types"].values()) == 7
    assert cli.main(["sandbox", "activity", "-1"]) == 2


def test_time_scale_follows_the_profile_and_paces_the_client(db: Path) -> None:
    t = open_transport(db, profile="realistic", scale=10)
    assert t.time_scale == 10.0 and t.rate_limited
    limiter = AsyncClient(t).limiter
    assert limiter.interval == pytest.approx(60.0 / 10 / (120 * 0.95), rel=0.1)
    t.sandbox_set_profile(scale=60)
    assert t.time_scale == 60.0
    # A client made after the change paces at the new scale.
    assert AsyncClient(t).limiter.interval == pytest.approx(limiter.interval / 6)
    t.sandbox_set_profile("instant")
    assert isinstance(AsyncClient(t).limiter, NoLimit)
