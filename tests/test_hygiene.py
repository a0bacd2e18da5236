"""Notebook and repository hygiene: nothing secret is committed or shown.

* Every committed notebook (``notebooks/``, ``apps/``) passes ``nbstripout --verify``:
  no outputs, no execution counts, no saved widget state (which would hold a
  Password widget's value, reference notebook-stack.md section 6).
* No tracked file carries a credential-looking string: a JWT, ``Bearer <token>``, the
  sandbox's login code. ``tests/`` is left out on purpose: the redaction tests hold
  fake tokens to prove they are caught.
* The Voila apps run headless on the sandbox, their widget state kept as Jupyter
  would save it, and the executed notebook shows no such string either
  (``tests/test_notebooks.py`` does the same for ``notebooks/``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = sorted((ROOT / "apps").glob("*.ipynb"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SECRETS = {
    "a JWT": re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    "a bearer token": re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}"),
    # The sandbox's fake login code; a real Membrane code has no fixed shape, so the
    # executed-notebook scan also applies the toolkit's own redaction patterns.
    "the sandbox login code": re.compile(r"SBX-[0-9A-F]{8}"),
    "a token field": re.compile(
        r"(?i)\"(access_?token|refresh_?token|api_?token|apiKey)\"\s*:\s*\"[^\"]{8,}\""
    ),
}


def _secrets_in(text: str) -> list[str]:
    return [
        f"{what}: {m.group(0)[:12]}…" for what, rx in SECRETS.items() for m in rx.finditer(text)
    ]


def test_there_are_apps() -> None:
    names = {p.stem for p in APPS}
    assert {"dashboard", "enroll", "connect"} <= names, names


def test_committed_notebooks_are_stripped() -> None:
    nbstripout = Path(sys.executable).parent / "nbstripout"
    paths = [str(p.relative_to(ROOT)) for p in [*NOTEBOOKS, *APPS]]
    done = subprocess.run(
        [str(nbstripout), "--verify", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"run nbstripout on:\n{done.stdout}{done.stderr}"


def test_no_tracked_file_holds_a_secret() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, timeout=60, check=False
    )
    if listed.returncode != 0:
        pytest.skip("not a git work tree")
    hits: list[str] = []
    for name in listed.stdout.decode().split("\0"):
        path = ROOT / name
        if not name or name.startswith("tests/") or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:4096]:
            continue  # binary
        hits += [f"{name}: {hit}" for hit in _secrets_in(data.decode("utf-8", "replace"))]
    assert not hits, hits


def test_the_scan_catches_what_it_should() -> None:
    token = "eyJhbGci" + "OiJIUzI1NiJ9.eyJ3b3Jrc3BhY2VLZXkiOiJ3MSJ9.c2lnbmF0dXJl"
    assert _secrets_in(f"x {token} y")
    assert _secrets_in("Authorization: Bearer " + "abcdefghijklmnop1234")
    assert _secrets_in('{"value": "SBX-0A1B2C3D"}')
    assert _secrets_in('{"access_token": "abcdefgh1234"}')
    assert not _secrets_in("Mixmax connects with an API token from your settings")
    assert not _secrets_in("the header is `Authorization: Bearer <token>`")


@pytest.mark.integration
@pytest.mark.parametrize("path", APPS, ids=[p.name for p in APPS])
def test_app_runs_headless_and_shows_no_secret(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbclient import NotebookClient

    from mixmax_nb.errors import redact

    if path.stem == "enroll":
        pytest.importorskip("mixmax_nb.widgets.enroll", reason="EnrollmentForm not written yet")
    monkeypatch.setenv("MIXMAX_NB_BACKEND", "sandbox")
    monkeypatch.setenv("MIXMAX_NB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MIXMAX_NB_SANDBOX_SIZE", "small")  # seeds in about a second
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    text = json.dumps(nb, default=str)
    assert "application/vnd.jupyter.widget-view+json" in text, "the app displayed no widget"
    assert not _secrets_in(text), _secrets_in(text)
    redacted = [line[:80] for line in text.split("\\n") if redact(line) != line]
    assert not redacted, redacted
