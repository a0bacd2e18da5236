"""Every catalog action has a frame kind, a sandbox handler and a recorded fixture."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mixmax_nb import catalog, frames
from mixmax_nb.pages import split_page

FIXTURES = Path(__file__).parent / "fixtures" / "actions"
README = Path(__file__).parents[1] / "README.md"


@pytest.mark.parametrize("spec", catalog.ACTIONS, ids=lambda s: s.key)
def test_action_has_a_frame_kind(spec: catalog.ActionSpec) -> None:
    assert spec.kind in frames.SCHEMAS


@pytest.mark.parametrize("spec", catalog.ACTIONS, ids=lambda s: s.key)
def test_action_has_a_sandbox_handler(spec: catalog.ActionSpec) -> None:
    from mixmax_nb.sandbox.mixmax import Mixmax

    routes = Mixmax.__new__(Mixmax)
    Mixmax.__init__(routes, store=None, now_ms=lambda: 0)  # type: ignore[arg-type]
    path = re.sub(r"\{\w+\}", "abc123", spec.path)
    assert any(
        method == spec.method and pattern.fullmatch(path) for method, pattern, _ in routes.routes
    ), f"no sandbox route for {spec.method} {spec.path}"


@pytest.mark.parametrize("spec", catalog.ACTIONS, ids=lambda s: s.key)
def test_action_fixture_shapes_into_its_frame(spec: catalog.ActionSpec) -> None:
    path = FIXTURES / f"{spec.key}.json"
    assert path.exists(), f"record it: python tests/fixtures/record_actions.py ({path.name})"
    recorded = json.loads(path.read_text(encoding="utf-8"))
    catalog.validate_input(spec.key, recorded["input"])
    assert recorded["actionRunId"]
    output = recorded["output"]
    if spec.page == "object":
        # Single objects and {"recipients": [...]} outcome wrappers shape from the output.
        frame = frames.shape(spec.kind, [output])
    else:
        records, _, _ = split_page(output)
        assert records, "a recorded list fixture should hold records"
        frame = frames.shape(spec.kind, records)
    fixed = list(frames.SCHEMAS[spec.kind])
    assert list(frame.columns[: len(fixed)]) == fixed
    assert len(frame) >= 1


def test_readme_table_is_generated_from_the_catalog() -> None:
    text = README.read_text(encoding="utf-8")
    start, end = "<!-- catalog-table:start -->", "<!-- catalog-table:end -->"
    assert start in text and end in text, "README lacks the generated catalog table"
    block = text.split(start, 1)[1].split(end, 1)[0].strip()
    assert block == catalog.markdown_table(), (
        "README's action table is stale: paste `python -m mixmax_nb.catalog` between the markers"
    )
