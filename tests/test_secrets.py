"""No secret leaks: run the workflows, then scan everything they left behind.

Workflows: the ConnectWizard with a pasted login code (and a wrong one first), a pull
into the event cache, an enrollment (journal), and errors (an injected 5xx, a defunct
connection, a wrong code). Then scanned for the login code, the connection's Mixmax
API token and token-shaped strings (JWTs, bearer headers):

* every file under MIXMAX_NB_HOME (cache parquet and meta, enrollment journals), byte
  for byte;
* captured logs at DEBUG;
* the message, ``repr`` and ``hint`` of every error raised;
* the state (``get_state()``) of every widget alive.

**Exempt:** the sandbox database (``MIXMAX_NB_HOME/sandbox*``). It plays the servers'
part -- Membrane keeps the pending login code and Mixmax the API token on their side --
so it must hold both; it is not toolkit state and is never shown. Everything the
toolkit itself writes is scanned.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path

import pandas as pd
import pytest

from mixmax_nb.client import AsyncClient
from mixmax_nb.errors import MixmaxNbError
from mixmax_nb.sandbox.membrane import SandboxTransport
from mixmax_nb.widgets.connect import ConnectWizard

TOKEN_SHAPES = (
    re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),  # JWT
    re.compile(rb"(?i)bearer\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(rb"SBX-[0-9A-F]{8}"),  # the sandbox's login code shape
)


def _widget_states() -> list[str]:
    from ipywidgets.widgets.widget import _instances

    return [json.dumps(w.get_state(), default=str) for w in list(_instances.values())]


def _scan(blob: bytes, secrets: list[str], where: str) -> list[str]:
    found = [f"{where}: the secret {s[:4]}..." for s in secrets if s and s.encode() in blob]
    found += [
        f"{where}: token-shaped {m.group(0)[:12]!r}" for p in TOKEN_SHAPES for m in p.finditer(blob)
    ]
    return found


def test_no_secret_in_files_logs_errors_or_widget_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "mixmax_nb_home"  # set by the autouse fixture in conftest
    errors: list[BaseException] = []
    secrets: list[str] = []

    async def body() -> None:
        transport = SandboxTransport.open(size="small", start="logged-out")
        control = transport.emulator
        wizard = ConnectWizard(transport=transport)
        await wizard.wait()
        wizard.login_button.click()
        await wizard.wait()
        # A wrong code first: the error must not echo it either.
        wrong = "SBX-DEADBEEF"
        secrets.append(wrong)
        wizard.code.value = wrong
        wizard.complete_button.click()
        await wizard.wait()
        code = transport.sandbox_login_code()
        secrets.append(code)
        wizard.code.value = code
        wizard.complete_button.click()
        await wizard.wait()
        transport.sandbox_complete_connect(wizard.connection["id"])  # type: ignore[index]
        wizard.done_button.click()
        await wizard.wait()
        client = wizard.use().aio
        token = control.store.get_meta("api_token", None)
        if token:
            secrets.append(str(token))

        await client.events()
        # Errors on the way: a 5xx on a write, a defunct connection on a read.
        seqs = await client.sequences()
        me = (await client.me())["_id"]
        mine = seqs.loc[seqs["user_id"].eq(me) & ~seqs["archived"].fillna(False).astype(bool)]
        sid = str(mine["id"].iloc[0])
        from mixmax_nb.enrollment.apply import load_sequence

        info = await load_sequence(client, sid)
        people = pd.DataFrame({"email": [f"s{i}@prospect.example" for i in range(150)]})
        for name in info.required:
            people[name] = "x"
        plan = await client.plan_enrollment(sid, people)
        transport.faults.inject("server_error", after=1)
        try:
            await client.enroll(plan, progress=False)
        except MixmaxNbError as exc:
            errors.append(exc)
        await client.enroll(plan, progress=False)
        transport.faults.inject("defunct")
        try:
            await AsyncClient(transport).events()
        except MixmaxNbError as exc:
            errors.append(exc)
        transport.sandbox_complete_connect()
        await client.events()
        wizard.close()

    asyncio.run(body())
    assert len(errors) == 2 and len(secrets) >= 2

    leaks: list[str] = []
    scanned = 0
    for path in home.rglob("*"):
        if not path.is_file() or path.relative_to(home).parts[0].startswith("sandbox"):
            continue
        scanned += 1
        leaks += _scan(path.read_bytes(), secrets, str(path.relative_to(home)))
    assert scanned >= 2, "the cache and the journal should have been scanned"
    leaks += _scan(caplog.text.encode(), secrets, "logs")
    for exc in errors:
        text = f"{exc} {exc!r} {getattr(exc, 'hint', '')} {getattr(exc, 'data', '')}"
        leaks += _scan(text.encode(), secrets, f"error {type(exc).__name__}")
    for state in _widget_states():
        leaks += _scan(state.encode(), secrets, "widget state")
    assert not leaks, leaks
