"""Through the real subprocess path on the sandbox command: the client reads the
connection's action list once and runs every action by the id it gave, never by key;
properties no schema names reach the command unchanged."""

from __future__ import annotations

import json
import shutil
import stat
import sys
from pathlib import Path

import pytest

import mixmax_nb as mx
from mixmax_nb.config import Settings
from mixmax_nb.sandbox.membrane import Emulator


def recording_wrapper(directory: Path) -> tuple[Path, Path]:
    """A `membrane` that logs its argv (one JSON list per line), then is the sandbox."""
    log = directory / "argv.jsonl"
    record = f"import json,sys; open({str(log)!r},'a').write(json.dumps(sys.argv[1:])+'\\n')"
    path = directory / "membrane"
    path.write_text(
        f'#!/bin/sh\n"{sys.executable}" -c "{record}" "$@"\n'
        f'exec "{sys.executable}" -m mixmax_nb.sandbox.cli "$@"\n',
        encoding="utf-8",
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path, log


def test_the_client_runs_by_the_listed_id_through_the_command(
    tmp_path: Path, small_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "account.sqlite"
    shutil.copyfile(small_template, db)
    monkeypatch.setenv("MIXMAX_NB_SANDBOX_DB", str(db))
    binary, log = recording_wrapper(tmp_path)
    monkeypatch.setenv("MIXMAX_NB_MEMBRANE_BIN", str(binary))
    control = Emulator.open(Settings.from_env(), db=str(db), start="ready")
    cid = next(c["id"] for c in control.list_connections() if c["state"] == "READY")
    listed = {a["key"]: a["id"] for a in control.list_actions(cid, limit=1000)["items"]}

    client = mx.connect("membrane")
    assert len(client.sequences()) == 6
    out = client.run_action("list-sequences", {"limit": 10, "someParameterWeDoNotKnow": 1})
    assert len(out["results"]) == 6

    calls = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    runs = [c for c in calls if c[:2] == ["action", "run"]]
    assert [c[2] for c in runs] == [listed["list-sequences"]] * 2
    assert not any(word in listed for c in calls for word in c[:3]), "an action ran by key"
    assert len([c for c in calls if c[:2] == ["action", "list"]]) == 1
    assert json.loads(runs[-1][4].removeprefix("--input=")) == {
        "limit": 10,
        "someParameterWeDoNotKnow": 1,
    }
