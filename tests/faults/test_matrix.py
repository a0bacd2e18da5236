"""The fault matrix as tests: every applicable fault x workflow x way in (see ``matrix``).

A handful of key rows run in ``make test`` (unmarked, a few seconds each); the rest are
``slow`` and run, with the printed table, in ``make faults``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .matrix import FAULTS, PATHS, WORKFLOWS, applicable, build_template, run_row

# The rows `make test` proves: one of each kind of fault, the write path through the
# real subprocess (a write whose answer is lost when the CLI is killed), and an
# interrupted enrollment re-run. Each takes 0.5-6 s.
FAST = {
    ("rate_limit", "pull", "sandbox"),
    ("server_error", "enroll", "sandbox"),
    ("timeout", "pull", "sandbox"),
    ("killed", "enroll", "cli"),
    ("defunct", "enroll", "sandbox"),
    ("defunct", "wizard", "sandbox"),
    ("truncated_page", "pull", "sandbox"),
    ("next_echoed", "pull", "sandbox"),
    ("interrupt", "enroll", "sandbox"),
    ("interrupt", "dashboard", "sandbox"),
}

ROWS = [
    pytest.param(
        f,
        w,
        p,
        id=f"{f}-{w}-{p}",
        marks=(
            ((pytest.mark.integration,) if p == "cli" else ())
            if (f, w, p) in FAST
            else (pytest.mark.slow,)
        ),
    )
    for f in FAULTS
    for w in WORKFLOWS
    for p in PATHS
    if applicable(f, w, p)
]


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template(tmp_path_factory.mktemp("fault-matrix"))


@pytest.mark.parametrize(("fault", "workflow", "path"), ROWS)
def test_row(fault: str, workflow: str, path: str, template: Path, tmp_path: Path) -> None:
    outcome = run_row(fault, workflow, path, tmp_path / "row", template)
    assert outcome.ok, outcome.problems
    if outcome.first.startswith("stopped"):
        assert outcome.message, "a stopped run must show a message"
