"""schema_form on JSON Schemas the catalog does not have: controls, marks, defaults,
help text, raw-JSON fallbacks, read errors naming the field, and round trips that
validate against the schema."""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import jsonschema
import pytest

from mixmax_nb import catalog
from mixmax_nb.errors import InputError
from mixmax_nb.widgets.schema_form import SchemaForm, field_kind

# A made-up action ("create-meeting-link") with every construct the form supports.
MEETING: dict[str, Any] = {
    "type": "object",
    "required": ["title", "duration", "attendees"],
    "additionalProperties": False,
    "properties": {
        "title": {"type": "string", "minLength": 1, "description": "Shown <b>to guests</b>."},
        "duration": {"type": "integer", "minimum": 15, "maximum": 240, "default": 30},
        "price": {"type": "number", "minimum": 0},
        "public": {"type": "boolean", "default": True},
        "notify": {"type": "boolean"},
        "kind": {"enum": ["one-on-one", "group", 3, None]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "slots": {"type": "array", "items": {"type": "integer"}},
        "days": {"type": "array", "items": {"enum": ["mon", "tue", "wed"]}},
        "attendees": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["email"],
                "properties": {
                    "email": {"type": "string", "format": "email"},
                    "role": {"type": "string", "enum": ["host", "guest"]},
                },
            },
        },
        "location": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "geo": {
                    "type": "object",
                    "properties": {"lat": {"type": "number"}, "lng": {"type": "number"}},
                },
            },
        },
        "when": {"anyOf": [{"type": "integer"}, {"type": "string", "format": "date-time"}]},
        "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "mode": {"const": "fast"},
        "ref": {"$ref": "#/$defs/thing"},
        "nullable": {"type": ["string", "null"]},
        "mixed": {"type": ["string", "integer"]},
        "free": {"type": "object"},
        "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
        "server_id": {"type": "string", "readOnly": True},
    },
    "$defs": {"thing": {"type": "object", "properties": {"x": {"type": "integer"}}}},
}


def test_field_kinds_cover_supported_and_unsupported_constructs() -> None:
    form = SchemaForm(MEETING)
    kinds = {path: field.kind for path, field in form.fields.items()}
    assert kinds["title"] == "string"
    assert kinds["duration"] == "integer"
    assert kinds["price"] == "number"
    assert kinds["public"] == kinds["notify"] == "boolean"
    assert kinds["kind"] == "enum"
    assert kinds["tags"] == kinds["slots"] == "scalar_list"
    assert kinds["days"] == "enum_list"
    assert kinds["attendees"] == "object_list"
    assert kinds["attendees.0.email"] == "string"
    assert kinds["attendees.0.role"] == "enum"
    assert kinds["location"] == "object"
    assert kinds["location.geo.lat"] == "number"
    assert kinds["nullable"] == "string"  # ["string", "null"] is a string
    assert kinds["ref"] == "object" and kinds["ref.x"] == "integer"  # local $ref resolved
    for raw in ("when", "either", "mode", "mixed", "free", "matrix"):
        assert kinds[raw] == "json", raw
        assert isinstance(form.field(raw).control, w.Textarea)
    assert "server_id" not in kinds  # read-only: the service fills it


@pytest.mark.parametrize(
    "schema",
    [True, False, None, [], {"type": "wat"}, {"enum": []}, {"type": "object", "properties": 3}],
)
def test_odd_schemas_never_crash(schema: Any) -> None:
    form = SchemaForm({"type": "object", "properties": {"x": schema}})
    assert form.field("x").kind == "json"
    assert field_kind(schema) == "json"
    assert SchemaForm(schema).value() == {}


def test_required_marks_defaults_and_escaped_help() -> None:
    form = SchemaForm(MEETING)
    label = form.field("title").widget.children[0].value
    assert "mx-required" in label
    assert "mx-required" not in form.field("price").widget.children[0].value
    help_html = form.field("title").widget.children[2].value
    assert "&lt;b&gt;to guests&lt;/b&gt;" in help_html and "<b>to guests" not in help_html
    assert form.field("duration").control.value == "30"
    assert "15..240" in form.field("duration").control.placeholder
    assert form.field("public").control.value is True  # boolean default: a checkbox
    assert isinstance(form.field("notify").control, w.Dropdown)  # optional: three-way
    assert len(form.fields["attendees"].items) == 1  # minItems


def test_hostile_property_names_are_escaped() -> None:
    form = SchemaForm({"type": "object", "properties": {"<img src=x onerror=alert(1)>": {}}})
    html = form.widget.children[0].children[0].children[0].value
    assert "<img" not in html and "&lt;img" in html


def test_fill_and_read_round_trip_validates() -> None:
    form = SchemaForm(MEETING)
    form.field("title").control.value = "Demo"
    form.field("duration").control.value = "45"
    form.field("price").control.value = "12.5"
    form.field("public").control.value = False
    form.field("notify").control.value = True
    kind = form.field("kind")
    kind.control.value = 2  # the option index of 3
    form.field("tags").control.value = "a, b ,c"
    form.field("slots").control.value = "1\n2\n\n3"
    form.field("days").control.value = (0, 2)
    form.field("attendees.0.email").control.value = "jane@acme.example"
    form.fields["attendees"].add()
    form.field("attendees.1.email").control.value = "bob@acme.example"
    form.field("attendees.1.role").control.value = 1
    form.field("location.geo.lat").control.value = "48.85"
    form.field("when").control.value = "1700000000000"
    form.field("mode").control.value = '"fast"'
    form.field("free").control.value = '{"anything": [1, true, null]}'
    value = form.validate("create-meeting-link")
    assert value == {
        "title": "Demo",
        "duration": 45,
        "price": 12.5,
        "public": False,
        "notify": True,
        "kind": 3,
        "tags": ["a", "b", "c"],
        "slots": [1, 2, 3],
        "days": ["mon", "wed"],
        "attendees": [
            {"email": "jane@acme.example"},
            {"email": "bob@acme.example", "role": "guest"},
        ],
        "location": {"geo": {"lat": 48.85}},
        "when": 1700000000000,
        "mode": "fast",
        "free": {"anything": [1, True, None]},
    }
    jsonschema.validate(value, MEETING)
    # ...and back: set_value fills the same form, which reads the same JSON.
    again = SchemaForm(MEETING)
    again.set_value(value)
    assert again.value() == value


def test_blank_optional_fields_are_left_out() -> None:
    form = SchemaForm(MEETING)
    assert form.value() == {"duration": 30, "public": True, "attendees": [{}]}


def test_read_errors_name_the_field() -> None:
    form = SchemaForm(MEETING)
    form.field("duration").control.value = "4.5"
    with pytest.raises(InputError) as info:
        form.value()
    assert info.value.field == "duration"
    form.field("duration").control.value = "30"
    form.field("attendees.0.email").control.value = "a@b.example"
    form.field("free").control.value = "{not json"
    with pytest.raises(InputError) as info:
        form.value()
    assert info.value.field == "free"


def test_validation_names_missing_and_out_of_range_fields() -> None:
    form = SchemaForm(MEETING)
    form.field("attendees.0.email").control.value = "a@b.example"
    with pytest.raises(InputError) as info:
        form.validate("x")
    assert info.value.field == "title"
    form.field("title").control.value = "T"
    form.field("duration").control.value = "999"  # no silent clamping
    with pytest.raises(InputError) as info:
        form.validate("x")
    assert info.value.field == "duration"
    form.field("duration").control.value = "60"
    form.fields["attendees"].add()  # an empty second attendee lacks its email
    with pytest.raises(InputError) as info:
        form.validate("x")
    assert info.value.field == "attendees.1.email"


def test_removing_a_list_item_renumbers_paths() -> None:
    form = SchemaForm(MEETING)
    attendees = form.fields["attendees"]
    attendees.add()
    attendees.add()
    for index, email in enumerate(["a@x.example", "b@x.example", "c@x.example"]):
        form.field(f"attendees.{index}.email").control.value = email
    attendees.rows.children[1].children[2].click()  # the second item's Remove button
    assert form.value()["attendees"] == [{"email": "a@x.example"}, {"email": "c@x.example"}]
    assert "attendees.2.email" not in form.fields


def test_unresolvable_ref_does_not_block_the_run() -> None:
    schema = {"type": "object", "properties": {"x": {"$ref": "https://nowhere.invalid/s.json"}}}
    form = SchemaForm(schema)
    form.field("x").control.value = "1"
    assert form.validate("x") == {"x": 1}


def test_no_input_and_free_form_roots() -> None:
    empty = SchemaForm({"type": "object", "properties": {}, "additionalProperties": False})
    assert "no input" in empty.widget.children[0].value
    assert empty.validate("x") == {}
    free = SchemaForm({"type": "object"})
    free.root.control.value = '{"a": 1}'
    assert free.value() == {"a": 1}
    free.root.control.value = "[1]"
    with pytest.raises(InputError):
        free.value()


@pytest.mark.parametrize("spec", catalog.ACTIONS, ids=lambda a: a.key)
def test_every_catalog_schema_builds_and_its_blank_form_reads(spec: catalog.ActionSpec) -> None:
    form = SchemaForm(spec.input_schema)
    value = form.value()
    assert isinstance(value, dict)
    assert set(value) <= set(spec.input_schema.get("properties", {}))
