"""ActionExplorer headless: search, pick, fill, run, read the frame, runId and Python
call; an action the toolkit has never seen; the proxy tab; hostile strings escaped."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

import pytest

import mixmax_nb as mx
from mixmax_nb.errors import ServiceError
from mixmax_nb.widgets.explorer import ActionExplorer, python_call, result_records

EVIL = "<script>alert(1)</script>"

UNKNOWN = {
    "id": "a1",
    "key": "list-meeting-types",
    "name": f"List meeting types {EVIL}",
    "description": f"Never heard of it {EVIL}",
    "inputSchema": {
        "type": "object",
        "required": ["team"],
        "properties": {
            "team": {"type": "string"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 10},
            "active": {"type": "boolean", "default": True},
        },
    },
}
OBJECT_ACTION = {
    "id": "a2",
    "key": "get-meeting-type",
    "name": "Get meeting type",
    "inputSchema": {"type": "object", "properties": {"id": {"type": "string"}}},
}


class FakeAio:
    """Just what the explorer calls, for actions no catalog knows."""

    backend = "fake"

    def __init__(self) -> None:
        self.runs: list[tuple[str, dict[str, Any]]] = []
        self.requests: list[tuple[Any, ...]] = []

    async def action_records(
        self, intent: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        found = [UNKNOWN, OBJECT_ACTION]
        return [a for a in found if not intent or intent in str(a["key"])]

    async def run(self, key: str, data: Mapping[str, Any]) -> dict[str, Any]:
        self.runs.append((key, dict(data)))
        if key == "list-meeting-types":
            rows = [{"name": EVIL, "owner": {"email": "a@x.example"}}, {"name": "Intro"}]
            return {"output": {"results": rows, "hasNext": False}, "actionRunId": "run-1"}
        if data.get("id") == "boom":
            raise ServiceError("went wrong <b>", action_run_id="run-err")
        return {"output": {"_id": "m1", "title": EVIL}, "actionRunId": "run-2"}

    async def request(self, path: str, method: str, query: Any, data: Any) -> dict[str, Any]:
        self.requests.append((path, method, query, data))
        return {"status": 201, "headers": {"x": "1"}, "body": {"echo": EVIL}}


def test_unknown_action_search_pick_fill_run_frame() -> None:
    aio = FakeAio()
    explorer = ActionExplorer(aio, intent="meeting")
    assert len(explorer.picker.options) == 2
    assert EVIL not in explorer.about.value and "&lt;script&gt;" in explorer.about.value
    assert "may change data" in explorer.about.value  # unknown: assume it might write

    explorer.select("list-meeting-types")
    assert explorer.schema_source == "connection"
    explorer.run()  # "team" is required
    assert "team" in explorer.status.value and aio.runs == []

    explorer.form.field("team").control.value = "sales"  # type: ignore[union-attr]
    explorer.form.field("limit").control.value = "11"  # type: ignore[union-attr]
    explorer.run()
    assert "limit" in explorer.status.value and aio.runs == []

    explorer.form.field("limit").control.value = "5"  # type: ignore[union-attr]
    explorer.run()
    assert aio.runs == [("list-meeting-types", {"team": "sales", "limit": 5, "active": True})]
    frame = explorer.result_frame
    assert frame is not None and len(frame) == 2
    assert "owner.email" in frame.columns  # json_normalize for an unknown kind
    assert "run-1" in explorer.run_id.value
    assert EVIL not in explorer.result_html.value
    call = explorer.call.value
    assert (
        call
        == "client.run_action('list-meeting-types', {'team': 'sales', 'limit': 5, 'active': True})"
    )
    ast.parse(call)  # valid Python


def test_object_result_is_collapsible_json_and_errors_show_the_run_id() -> None:
    explorer = ActionExplorer(FakeAio())
    explorer.select("get-meeting-type")
    explorer.run()
    assert explorer.result_frame is None
    assert "<details" in explorer.result_html.value
    assert EVIL not in explorer.result_html.value
    explorer.form.field("id").control.value = "boom"  # type: ignore[union-attr]
    explorer.run()
    assert "went wrong &lt;b&gt;" in explorer.status.value
    assert "run-err" in explorer.run_id.value


def test_proxy_tab_sends_and_escapes() -> None:
    aio = FakeAio()
    explorer = ActionExplorer(aio, load=False)
    explorer.method.value = "POST"
    explorer.path.value = "/unsubscribes"
    explorer.query.value = "a=1\n# comment\nb = two"
    explorer.body.value = '{"email": "x@y.example"}'
    explorer.send()
    assert aio.requests == [
        ("/unsubscribes", "POST", {"a": "1", "b": "two"}, {"email": "x@y.example"})
    ]
    assert "HTTP 201" in explorer.proxy_status.value
    assert EVIL not in explorer.proxy_result.value
    ast.parse(explorer.proxy_call.value)

    explorer.body.value = "{bad"
    explorer.send()
    assert "body" in explorer.proxy_status.value.lower() and len(aio.requests) == 1


def test_python_call_repr_is_a_literal() -> None:
    data = {"a": [True, None, 1.5], "b": {"c": 'it\'s "quoted"\n'}}
    call = python_call("k", data)
    args = ast.parse(call).body[0].value.args  # type: ignore[attr-defined]
    assert ast.literal_eval(args[1]) == data


@pytest.mark.parametrize(
    ("output", "expected"),
    [([1], [1]), ({"results": [2]}, [2]), ({"records": []}, []), ({"a": 1}, None), (3, None)],
)
def test_result_records(output: Any, expected: Any) -> None:
    assert result_records(output) == expected


def test_on_the_sandbox_a_known_list_gets_its_typed_frame() -> None:
    client = mx.connect("sandbox", size="small", db=":memory:")
    explorer = mx.widgets.ActionExplorer(client, intent="unsubscribe")
    keys = [label for label, _ in explorer.picker.options]
    assert any("list-unsubscribes" in k for k in keys)
    explorer.select("list-unsubscribes")
    # The sandbox lists each action with its schema, as a connection does: it wins.
    assert explorer.schema_source == "connection"
    assert "connection&#x27;s own input schema" in explorer.about.value
    explorer.run()
    frame = explorer.result_frame
    assert frame is not None and list(frame.columns)[:3] == ["id", "email", "name"]
    assert frame.attrs["source"] == "sandbox"
    assert explorer.result is not None and explorer.result["actionRunId"]
    explorer.path.value = "/users/me"
    explorer.send()
    assert "HTTP 200" in explorer.proxy_status.value
