"""The warehouse hand-off (data/warehouse.py), against real engines: DuckDB and PostgreSQL.

PostgreSQL is a real server, never a mock: ``.ci/run`` starts one and exports
``MIXMAX_NB_TEST_PG``; without it the session fixture starts a throwaway cluster from
Debian's binaries (``tests/pg_cluster.py``), skips saying why when they are missing,
and fails instead on CI. Each test loads into a dataset (schema) of its own.

What is checked, on the small sandbox: row counts and keys equal the frames; a second
load after ``sandbox_add_activity`` writes exactly the new events and the rows that
changed, and no primary key is ever duplicated; a load killed with SIGKILL mid-way, or
stopped by an error between dlt's steps, leaves the destination as it was and is
finished by the next run; a type change is refused; ``client.duckdb()`` views equal
the frames, the newest part of a message wins, and two readers read at once while a
pull writes.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import mixmax_nb as mx
from mixmax_nb.data import warehouse as wh
from mixmax_nb.data.engagement import EngagementData
from mixmax_nb.data.store import MessageEventStore

sys.path.insert(0, str(Path(__file__).parent))
import pg_cluster

dlt = pytest.importorskip("dlt", reason="the warehouse extra is not installed")
duckdb = pytest.importorskip("duckdb")

pytestmark = pytest.mark.integration  # real DuckDB, dlt and PostgreSQL
KEYS = {spec.name: list(spec.keys) for spec in wh.TABLES}

# dlt's extract, normalize and load loops wait on threading events with a timeout.
# Under libfaketime (the shifted-calendar run of `make test`) Python computes those
# deadlines on a faked monotonic clock the kernel does not share, so they never wake
# (and with FAKETIME_DONT_FAKE_MONOTONIC=1, time.sleep fails with EINVAL instead).
needs_monotonic = pytest.mark.skipif(
    "faketime" in os.environ.get("LD_PRELOAD", ""),
    reason="under libfaketime dlt's timed waits never return (a faked monotonic clock)",
)


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A running PostgreSQL: CI's (MIXMAX_NB_TEST_PG), else a throwaway cluster."""
    dsn = os.environ.get(pg_cluster.ENV)
    if dsn:
        yield dsn
        return
    if pg_cluster.bindir() is None:
        reason = "PostgreSQL server binaries not found (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run these tests")
        pytest.skip(reason)
    try:
        cluster = pg_cluster.Cluster.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL could not start: {exc}")
        pytest.skip(f"PostgreSQL could not start: {exc}")
    try:
        yield cluster.dsn
    finally:
        cluster.stop()


@pytest.fixture
def sandbox() -> Iterator[mx.Client]:
    client = mx.connect("sandbox", size="small", db=":memory:")
    try:
        yield client
    finally:
        client.close()


def _destination(kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    if kind == "duckdb":
        return "duckdb"  # the default: a file under the toolkit home
    dsn = request.getfixturevalue("pg_dsn")
    # As the README says: dlt's own configuration, here its env var; never our code.
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", dsn)
    return "postgres"


def _dataset() -> str:
    return f"mx_{uuid.uuid4().hex[:10]}"


def _sql(info: Any, query: str) -> list[tuple[Any, ...]]:
    """Run ``query`` (``{t}`` = a qualified table name) on the pipeline's destination."""
    with info.pipeline.sql_client() as client:
        return list(client.execute_sql(query) or [])


def _table(info: Any, name: str) -> str:
    with info.pipeline.sql_client() as client:
        return str(client.make_qualified_table_name(name))


def _keys(info: Any, name: str) -> set[tuple[Any, ...]]:
    cols = ", ".join(KEYS[name])
    return {tuple(r) for r in _sql(info, f"SELECT {cols} FROM {_table(info, name)}")}


def _frame_keys(data: EngagementData, name: str) -> set[tuple[Any, ...]]:
    frame = wh.dataset_frames(data)[name]
    rows = frame[KEYS[name]].dropna().astype(object).itertuples(index=False, name=None)
    return {tuple(r) for r in rows}


def _assert_matches(info: Any, data: EngagementData) -> None:
    for name in wh.dataset_frames(data):
        table = _table(info, name)
        cols = ", ".join(KEYS[name])
        total = _sql(info, f"SELECT COUNT(*) FROM {table}")[0][0]
        dup = _sql(info, f"SELECT {cols} FROM {table} GROUP BY {cols} HAVING COUNT(*) > 1")
        assert not dup, f"{name}: duplicated primary keys {dup[:3]}"
        assert _keys(info, name) == _frame_keys(data, name), name
        assert total == len(_frame_keys(data, name)), name


def _drop(info: Any) -> None:
    with info.pipeline.sql_client() as client:
        client.drop_dataset()


# -- loads ----------------------------------------------------------------------------------


@needs_monotonic
@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_load_then_refresh_writes_only_what_changed(
    kind: str,
    sandbox: mx.Client,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    destination = _destination(kind, request, monkeypatch)
    dataset, name = _dataset(), f"t_{kind}"
    info = wh.load(sandbox, destination, dataset, pipeline_name=name)
    try:
        first = sandbox.engagement(detail="events")  # what that load pulled (nothing moved)
        _assert_matches(info, first)
        written = wh.rows_written(info)
        assert written["events"] == len(first.events) > 0

        # Nothing changed: nothing is written.
        again = wh.load(
            data=first, destination=destination, dataset_name=dataset, pipeline_name=name
        )
        assert sum(wh.rows_written(again).values()) == 0

        sandbox.transport.sandbox_add_activity(60, seed=19)
        second = sandbox.engagement(detail="events")
        info = wh.load(
            data=second, destination=destination, dataset_name=dataset, pipeline_name=name
        )
        written = wh.rows_written(info)
        new_events = set(second.events["id"]) - set(first.events["id"])
        assert new_events
        assert written.get("events", 0) == len(new_events)
        new_messages = set(second.messages["id"]) - set(first.messages["id"])
        assert written.get("messages", 0) >= len(new_messages)
        # Exactly the stages whose row differs (new counters, a send, a reply), no more.
        keys = KEYS["recipient_stages"]
        before = first.stages.set_index(keys).sort_index()
        after = second.stages.set_index(keys).sort_index()
        common = after.index.intersection(before.index)
        changed = (
            (
                after.loc[common].astype(object).fillna("∅")
                != before.loc[common].astype(object).fillna("∅")
            )
            .any(axis=1)
            .sum()
        )
        assert written.get("recipient_stages", 0) == changed + len(
            after.index.difference(before.index)
        )
        assert changed > 0
        _assert_matches(info, second)
        if kind == "postgres":
            secret = pg_cluster.safe(os.environ["DESTINATION__POSTGRES__CREDENTIALS"])
            password = os.environ["DESTINATION__POSTGRES__CREDENTIALS"].split(":")[2].split("@")[0]
            assert password not in str(info) and password not in caplog.text
            assert "***" in secret
        else:
            path = wh.default_duckdb_path(Path(os.environ["MIXMAX_NB_HOME"]), "sandbox")
            assert path.exists() and (path.stat().st_mode & 0o077) == 0
    finally:
        _drop(info)


@needs_monotonic
def test_load_rejects_a_type_change_and_evolves_a_new_column(
    sandbox: mx.Client, tmp_path: Path
) -> None:
    data = sandbox.engagement(detail="events")
    target = dlt.destinations.duckdb(str(tmp_path / "contract.duckdb"))
    info = wh.load(data=data, destination=target, dataset_name="c", pipeline_name="contract")
    events = data.events.copy()
    events["stage_index"] = events["stage_index"].astype("string").fillna("x")  # int -> text
    changed = EngagementData(**{**data.__dict__, "events": events})
    with pytest.raises(wh.SchemaContractError, match="stage_index"):
        wh.load(data=changed, destination=target, dataset_name="c", pipeline_name="contract")
    _assert_matches(info, data)  # nothing was written
    messages = data.messages.assign(campaign=pd.array(["spring"] * len(data.messages), "string"))
    grown = EngagementData(**{**data.__dict__, "messages": messages})
    info = wh.load(data=grown, destination=target, dataset_name="c", pipeline_name="contract")
    table = _table(info, "messages")
    # Every row changed, but dlt's cursor re-sends only emails sent in the lag window...
    windowed = wh.rows_written(info)["messages"]
    assert 0 < windowed < len(messages)
    assert _sql(info, f"SELECT COUNT(*) FROM {table} WHERE campaign = 'spring'") == [(windowed,)]
    # ...and with the cursor off, the rest: the fingerprints skip what is already there.
    info = wh.load(
        data=grown, destination=target, dataset_name="c", pipeline_name="contract", lag=None
    )
    assert wh.rows_written(info)["messages"] == len(messages) - windowed
    assert _sql(info, f"SELECT COUNT(*) FROM {table} WHERE campaign = 'spring'") == [
        (len(messages),)
    ]
    _assert_matches(info, grown)


@needs_monotonic
def test_an_error_between_dlt_steps_leaves_the_destination_and_the_next_run_resumes(
    sandbox: mx.Client,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    destination = _destination("postgres", request, monkeypatch)
    dataset = _dataset()
    first = sandbox.engagement(detail="events")
    info = wh.load(data=first, destination=destination, dataset_name=dataset, pipeline_name="steps")
    try:
        sandbox.transport.sandbox_add_activity(40, seed=23)
        second = sandbox.engagement(detail="events")
        real_load = dlt.Pipeline.load

        def broken(self: Any, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("injected between normalize and load")

        monkeypatch.setattr(dlt.Pipeline, "load", broken)
        with pytest.raises(Exception, match="injected"):
            wh.load(
                data=second, destination=destination, dataset_name=dataset, pipeline_name="steps"
            )
        _assert_matches(info, first)  # as it was
        monkeypatch.setattr(dlt.Pipeline, "load", real_load)
        info = wh.load(
            data=second, destination=destination, dataset_name=dataset, pipeline_name="steps"
        )
        _assert_matches(info, second)
    finally:
        _drop(info)


_KILLED_CHILD = """
import os, pickle, signal, sys
import dlt
from dlt.load.load import Load
from mixmax_nb.data import warehouse as wh

calls = {"n": 0}
real = Load.create_followup_jobs

def kill_mid_load(self, *args, **kwargs):
    out = real(self, *args, **kwargs)
    calls["n"] += 1
    if calls["n"] == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)  # some tables loaded, others not
    return out

Load.create_followup_jobs = kill_mid_load
with open(sys.argv[1], "rb") as fh:
    data = pickle.load(fh)
wh.load(data=data, destination=dlt.destinations.duckdb(sys.argv[2]), dataset_name="k",
        pipeline_name="killed")
print("not killed")
"""


@needs_monotonic
def test_a_load_killed_mid_way_is_finished_by_the_next_run(
    sandbox: mx.Client, tmp_path: Path
) -> None:
    target = str(tmp_path / "killed.duckdb")
    first = sandbox.engagement(detail="events")
    info = wh.load(data=first, destination=dlt.destinations.duckdb(target), dataset_name="k",
                   pipeline_name="killed")  # fmt: skip
    sandbox.transport.sandbox_add_activity(80, seed=29)
    second = sandbox.engagement(detail="events")
    (tmp_path / "data.pkl").write_bytes(pickle.dumps(second))
    (tmp_path / "child.py").write_text(textwrap.dedent(_KILLED_CHILD))
    child = subprocess.run(
        # The 11th finished job: after the copies into staging, amid the merges (some
        # tables merged, the others not yet).
        [sys.executable, str(tmp_path / "child.py"), str(tmp_path / "data.pkl"), target, "11"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr[-2000:]
    pipeline = dlt.attach("killed", pipelines_dir=info.pipeline.pipelines_dir)
    assert pipeline.has_pending_data  # the package waits to be finished
    loads = _table(info, "_dlt_loads")
    assert _sql(info, f"SELECT COUNT(*) FROM {loads}") == [(1,)]  # not marked as loaded
    info = wh.load(data=second, destination=dlt.destinations.duckdb(target), dataset_name="k",
                   pipeline_name="killed")  # fmt: skip
    _assert_matches(info, second)
    assert not info.pipeline.has_pending_data
    assert _sql(info, f"SELECT COUNT(*) FROM {loads}") == [(3,)]  # the resumed one, then ours


def test_missing_dlt_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dlt", None)
    with pytest.raises(mx.SetupError, match=r"mixmax-nb\[warehouse\]"):
        wh.load(data=None)


# -- DuckDB views over the store --------------------------------------------------------------


@pytest.mark.parametrize("shape", ["per-message", "account"])
def test_duckdb_views_equal_the_frames_and_two_readers_read_while_a_pull_writes(
    shape: str, sandbox: mx.Client
) -> None:
    if hasattr(sandbox.transport, "sandbox_set_livefeed"):
        sandbox.transport.sandbox_set_livefeed(shape)
    elif shape != "account":
        pytest.skip("this sandbox has one live-feed shape")
    assert sandbox.duckdb().sql("SELECT COUNT(*) FROM events").fetchone() == (0,)
    data = sandbox.engagement(detail="events")
    one, two = sandbox.duckdb(), sandbox.duckdb()
    frames = wh.dataset_frames(data)
    for name, frame in frames.items():
        assert one.sql(f"SELECT COUNT(*) FROM {name}").fetchone() == (len(frame),), name
    ids = {r[0] for r in one.sql("SELECT id FROM events").fetchall()}
    assert ids == set(data.events["id"])

    sandbox.transport.sandbox_add_activity(150, seed=31)
    errors: list[BaseException] = []
    counts: list[int] = []

    def read(con: Any) -> None:
        try:
            for _ in range(20):
                counts.append(con.sql("SELECT COUNT(*) FROM events").fetchone()[0])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    readers = [threading.Thread(target=read, args=(c.cursor(),)) for c in (one, two)]
    for t in readers:
        t.start()
    later = sandbox.engagement(detail="events")  # the store writes while both read
    for t in readers:
        t.join()
    assert not errors, errors
    assert counts and min(counts) >= len(data.events)
    for con in (one, two):  # the same connections see the new pull
        assert con.sql("SELECT COUNT(*), COUNT(DISTINCT id) FROM events").fetchone() == (
            len(later.events),
            len(later.events),
        )
        assert con.sql("SELECT COUNT(*) FROM messages").fetchone() == (len(later.messages),)


def test_events_view_reads_the_newest_part_of_each_message(tmp_path: Path) -> None:
    from mixmax_nb import frames

    store = MessageEventStore(tmp_path, "sandbox", "acct")

    def events(*rows: tuple[str, str]) -> pd.DataFrame:
        return frames.shape(
            "events",
            [
                {"_id": i, "type": "opened", "timestamp": 1_735_689_600_000, "messageId": m}
                for i, m in rows
            ],
        )

    store.append(
        events(("e1", "m1"), ("e2", "m1"), ("e9", "m2")), {"m1": "1/0/0/0", "m2": "1/0/0/0"}
    )
    # m1 refetched: e2 is gone and e3 is new; m2 only in the first part; m3 new, no events.
    store.append(events(("e1", "m1"), ("e3", "m1")), {"m1": "2/0/0/0", "m3": "1/0/0/0"})
    con = wh.duckdb_connection(store)
    got = sorted(con.sql("SELECT id, message_id FROM events").fetchall())
    assert got == [("e1", "m1"), ("e3", "m1"), ("e9", "m2")]
    loaded = store.load()
    assert loaded is not None
    assert sorted(zip(loaded["id"], loaded["message_id"], strict=True)) == got
    assert wh.duckdb_connection(store.dir).sql("SELECT COUNT(*) FROM events").fetchone() == (3,)


def test_persisted_tables_are_private(sandbox: mx.Client) -> None:
    sandbox.engagement(detail="summary")
    from mixmax_nb._sync import run_sync

    store = run_sync(sandbox.aio.engagement_store())
    folder = store.dir.parent / wh.TABLES_DIR
    files = sorted(folder.glob("*.parquet"))
    assert {f.stem for f in files} >= {"messages", "recipients", "recipient_stages", "sequences"}
    assert all(f.stat().st_mode & 0o077 == 0 for f in files)
    assert folder.stat().st_mode & 0o077 == 0
    assert not list(folder.glob(".*"))  # no temporary file left behind


_TELEMETRY_CHILD = """
import json, sys
import dlt
from dlt.common.runtime import anon_tracker
import mixmax_nb as mx
from mixmax_nb.data import warehouse as wh

would_post = []
def record(event_name, properties, context):
    # What dlt's own _send_event checks before it posts; nothing leaves the machine here.
    would_post.append((event_name, anon_tracker._ANON_TRACKER_ENDPOINT is not None))
anon_tracker._send_event = record

client = mx.connect("sandbox", size="small", db=":memory:")
wh.load(client, dlt.destinations.duckdb(sys.argv[1] + "/telemetry.duckdb"), "mixmax",
        detail="summary",
        pipeline_name="telemetry", pipelines_dir=sys.argv[1] + "/pipelines")
print(json.dumps({"posts": [name for name, sent in would_post if sent],
                  "setting": dlt.config.get("runtime.dlthub_telemetry")}))
"""


@needs_monotonic
@pytest.mark.parametrize("user_setting", [None, "true"])
def test_dlt_telemetry_is_off_unless_the_user_turns_it_on(
    user_setting: str | None, tmp_path: Path
) -> None:
    """A real load, in a fresh process (dlt's tracker is process-wide): by default dlt
    would post nothing; a user who turned dlt's telemetry on keeps it (which also shows
    the recorder sees the posts the default run must not make)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNTIME__")}
    env.update(HOME=str(tmp_path), MIXMAX_NB_HOME=str(tmp_path / "home"))
    if user_setting is not None:
        env["RUNTIME__DLTHUB_TELEMETRY"] = user_setting
    (tmp_path / "child.py").write_text(textwrap.dedent(_TELEMETRY_CHILD))
    child = subprocess.run(
        [sys.executable, str(tmp_path / "child.py"), str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr[-2000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    if user_setting is None:
        assert report == {"posts": [], "setting": False}
    else:
        assert report["setting"] == "true"
        assert "pipeline_run" in report["posts"]
