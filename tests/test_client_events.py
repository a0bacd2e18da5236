"""client.events() over real sandboxes: each account keeps its own cache."""

from __future__ import annotations

from pathlib import Path

import pytest

import mixmax_nb as mx


def test_two_sandbox_databases_never_share_an_event_cache(tmp_path: Path) -> None:
    small = mx.connect("sandbox", size="small", db=str(tmp_path / "a.sqlite"))
    other = mx.connect("sandbox", size="small", db=str(tmp_path / "b.sqlite"), seed=8)
    # Same seeded user id on both, yet different data: the caches must stay apart.
    assert small.transport.account_key != other.transport.account_key  # type: ignore[attr-defined]
    a = small.events()
    b = other.events()
    assert set(a["id"]).isdisjoint(set(b["id"]))
    assert small.events(refresh=False)["id"].tolist() == a["id"].tolist()


def test_in_memory_sandbox_caches_outside_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIXMAX_NB_HOME", str(tmp_path / "home"))
    client = mx.connect("sandbox", size="small", db=":memory:")
    frame = client.events()
    assert len(frame) > 0 and frame.attrs["source"] == "sandbox"
    assert not (tmp_path / "home" / "cache").exists()


def test_reset_starts_a_fresh_cache(tmp_path: Path) -> None:
    client = mx.connect("sandbox", size="small", db=str(tmp_path / "c.sqlite"))
    before = client.transport.account_key  # type: ignore[attr-defined]
    client.transport.sandbox_reset()  # type: ignore[attr-defined]
    assert client.transport.account_key != before  # type: ignore[attr-defined]
