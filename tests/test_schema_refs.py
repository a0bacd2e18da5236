"""schema_refs: local $refs are inlined for the form; the rest stays a raw JSON field."""

from __future__ import annotations

import copy
from typing import Any

import ipywidgets as w

from mixmax_nb.widgets.schema_form import SchemaForm
from mixmax_nb.widgets.schema_refs import inline_refs

RECIPIENTS: dict[str, Any] = {
    "type": "object",
    "required": ["sequenceId", "recipients"],
    "properties": {
        "sequenceId": {"$ref": "#/$defs/id", "description": "The sequence to add them to."},
        "recipients": {"type": "array", "items": {"$ref": "#/$defs/recipient"}},
        "owner": {"$ref": "#/definitions/a~1b"},
    },
    "$defs": {
        "id": {"type": "string", "description": "A 24-hex id."},
        "recipient": {
            "type": "object",
            "required": ["email"],
            "properties": {
                "email": {"$ref": "#/$defs/email"},
                "variables": {"type": "object"},
            },
        },
        "email": {"type": "string", "format": "email"},
    },
    "definitions": {"a/b": {"type": "string", "enum": ["me", "team"]}},
}


def test_local_refs_become_real_fields_and_the_value_validates() -> None:
    before = copy.deepcopy(RECIPIENTS)
    form = SchemaForm(RECIPIENTS)
    kinds = {path: field.kind for path, field in form.fields.items()}
    assert kinds["sequenceId"] == "string"
    assert kinds["recipients"] == "object_list"
    assert kinds["recipients.0.email"] == "string"
    assert kinds["owner"] == "enum"  # JSON Pointer escape ~1 read as "/"
    form.field("sequenceId").set("5ca6452d0000001800000018")
    form.field("recipients.0.email").set("ada@example.com")
    assert form.validate("add-recipient-to-sequence") == {
        "sequenceId": "5ca6452d0000001800000018",
        "recipients": [{"email": "ada@example.com"}],
    }
    assert before == RECIPIENTS  # the caller's schema is not changed


def test_keywords_beside_a_ref_win_over_the_target() -> None:
    plain = inline_refs(RECIPIENTS)
    assert plain["properties"]["sequenceId"] == {
        "type": "string",
        "description": "The sequence to add them to.",
    }


def test_recursive_remote_and_dangling_refs_stay_raw_json() -> None:
    schema = {
        "type": "object",
        "properties": {
            "tree": {"$ref": "#/$defs/node"},
            "remote": {"$ref": "https://example.invalid/s.json"},
            "dangling": {"$ref": "#/$defs/missing"},
        },
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "child": {"$ref": "#/$defs/node"}},
            }
        },
    }
    form = SchemaForm(schema)
    kinds = {path: field.kind for path, field in form.fields.items()}
    assert kinds["tree"] == "object"
    assert kinds["tree.name"] == "string"
    assert kinds["tree.child"] == "json"  # met again inside its own expansion
    assert kinds["remote"] == kinds["dangling"] == "json"
    assert isinstance(form.field("remote").control, w.Textarea)


def test_data_keywords_are_not_expanded() -> None:
    schema = {
        "type": "object",
        "properties": {"x": {"const": {"$ref": "#/$defs/y"}, "default": {"$ref": "#/a"}}},
        "$defs": {"y": {"type": "string"}},
    }
    assert inline_refs(schema)["properties"]["x"]["const"] == {"$ref": "#/$defs/y"}
    for odd in (None, True, []):
        assert inline_refs(odd) is odd
    broken = {"$schema": 5, "type": "object", "properties": {"a": {"$ref": "#/nope"}}}
    assert inline_refs(broken)["properties"]["a"] == {"$ref": "#/nope"}
    assert SchemaForm(broken).field("a").kind == "json"
