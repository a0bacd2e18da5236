"""The catalog: 20 actions, coherent metadata, validation that names the bad field."""

from __future__ import annotations

import json

import pytest

from mixmax_nb import catalog
from mixmax_nb.errors import InputError

SKILL_KEYS = {
    "list-teams",
    "list-rules",
    "remove-unsubscribe",
    "add-unsubscribe",
    "list-unsubscribes",
    "list-livefeed-events",
    "get-poll",
    "list-polls",
    "get-snippet",
    "list-snippets",
    "send-message",
    "get-message",
    "create-message",
    "list-messages",
    "get-sequence-recipients",
    "cancel-sequence-recipient",
    "add-recipient-to-sequence",
    "search-sequences",
    "list-sequences",
    "get-current-user",
}


def test_exactly_the_twenty_skill_actions() -> None:
    assert {a.key for a in catalog.ACTIONS} == SKILL_KEYS
    assert len(catalog.ACTIONS) == 20


@pytest.mark.parametrize("spec", catalog.ACTIONS, ids=lambda s: s.key)
def test_each_action_is_complete(spec: catalog.ActionSpec) -> None:
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(spec.input_schema)
    Draft202012Validator.check_schema(spec.output_schema)
    assert spec.name and spec.description and spec.kind and spec.path
    # Every list pages with `limit`, except one message's events: Mixmax documents no
    # paging there (at most 200, in one answer).
    if spec.page != "object" and spec.key != "list-livefeed-events":
        assert "limit" in spec.input_schema["properties"]


def test_writes_are_flagged() -> None:
    writes = {a.key for a in catalog.ACTIONS if a.writes}
    assert writes == {
        "add-recipient-to-sequence",
        "cancel-sequence-recipient",
        "create-message",
        "send-message",
        "add-unsubscribe",
        "remove-unsubscribe",
    }


def test_missing_required_field_is_named() -> None:
    with pytest.raises(InputError) as info:
        catalog.validate_input("get-sequence-recipients", {})
    assert info.value.field == "sequenceId"
    assert "sequenceId" in str(info.value) and "nothing was sent" in str(info.value)


def test_wrong_type_nested_field_is_named() -> None:
    with pytest.raises(InputError) as info:
        catalog.validate_input(
            "add-recipient-to-sequence",
            {"sequenceId": "s", "recipients": [{"email": "a@b.co"}, {"email": 5}]},
        )
    assert info.value.field == "recipients.1.email"


def test_the_built_in_schemas_are_never_stricter_than_membrane() -> None:
    # Membrane passes properties on that a schema does not name, and Mixmax clamps page
    # sizes: a guessed offline schema must refuse neither.
    catalog.validate_input("list-teams", {"limt": 5})
    catalog.validate_input("list-messages", {"limit": 1000})
    catalog.validate_input(
        "add-recipient-to-sequence",
        {"sequenceId": "s", "recipients": [{"email": "a@x.com", "futureOption": True}] * 150},
    )
    for spec in catalog.ACTIONS:
        text = json.dumps(spec.input_schema)
        assert '"additionalProperties": false' not in text, spec.key
        assert '"maxItems"' not in text, spec.key


def test_a_wrong_type_is_still_named() -> None:
    with pytest.raises(InputError) as info:
        catalog.validate_input("list-messages", {"limit": "all"})
    assert info.value.field == "limit"


def test_valid_input_passes_and_unknown_action_raises() -> None:
    catalog.validate_input("add-unsubscribe", {"email": "x@acme.com", "name": "X"})
    with pytest.raises(InputError, match="Unknown action"):
        catalog.get("delete-everything")


def test_schema_from_runtime_serves_unknown_actions() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    with pytest.raises(InputError) as info:
        catalog.validate_input("custom-thing", {}, schema)
    assert info.value.field == "n"
    catalog.validate_input("custom-thing", {"n": 1}, schema)
