"""The 20 Mixmax actions of the Membrane connection, as data.

One :class:`ActionSpec` per action: its key, name and description (verbatim from
the Mixmax skill), its JSON Schema input and output, the frame kind that shapes its
result, the page shape of list outputs, whether it writes, and the Mixmax REST call
it most probably wraps. This table drives input validation (jsonschema), the
sandbox's dispatch, the generated forms of the explorer and the README's table.

The real connector's schemas are not published. At run time the connection's own
``action list`` gives each action's ``inputSchema``, and that one is what input is
checked against (``transport/actions.py``); the ones here are only the offline
default, collected in this one place so they are easy to change. They are never
stricter than Membrane: objects allow properties they do not name (Membrane passes
extras on), and bounds that Mixmax applies by clamping (page sizes) or that are our
own choices (batch sizes) are not in them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import InputError

PageShape = Literal["results", "records", "array", "object"]

STANDARD_PAGE_MAX = 300  # Mixmax clamps `limit` to 1..300
RECIPIENTS_PAGE_MAX = 50  # GET /sequences/:id/recipients pages at most 50
RECIPIENTS_CAP = 10_000  # ...and never past offset 10,000
ENROLL_BATCH_MAX = 100  # recipients per add call (assumed; Mixmax documents none)
CANCEL_BATCH_MAX = 100  # emails per cancel call (assumed)

Schema = dict[str, Any]


def _obj(props: Mapping[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    # No "additionalProperties": false: a guessed schema must not refuse a real parameter.
    schema: Schema = {"type": "object", "properties": dict(props)}
    if required:
        schema["required"] = list(required)
    return schema


def _id(what: str) -> Schema:
    return {"type": "string", "minLength": 1, "description": f"The {what} id."}


_LIMIT: Schema = {
    "type": "integer",
    "default": 50,
    "description": "Page size (Mixmax clamps it to 1..300).",
}
_PAGING: dict[str, Schema] = {
    "limit": _LIMIT,
    "next": {"type": "string", "description": "Cursor from the previous page's `next`."},
    "cursor": {"type": "string", "description": "Cursor from the previous page's `cursor`."},
}
_EMAIL: Schema = {
    "type": "string",
    "minLength": 3,
    "maxLength": 320,
    "pattern": "^[^@\\s]+@[^@\\s]+$",
}
_TIME: Schema = {
    "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "format": "date-time"}],
    "description": "Epoch milliseconds or an ISO 8601 timestamp.",
}
PAGE_CONTAINERS = ("results", "records", "items")
"""Keys under which a page object holds its records: Mixmax's ``results``, Membrane's
``records`` / ``items`` (see ``pages``)."""
EVENT_TYPES = ("sent", "opened", "clicked", "downloaded", "replied", "bounced", "unsubscribed")
"""Every event type a live feed can carry (the account-wide shape lists all of them)."""
ENGAGEMENT_TYPES = ("opened", "clicked", "downloaded", "replied")
"""The types of one message's events, as Mixmax documents them (MA §12, V)."""

_RESULTS_PAGE: Schema = {
    "type": "object",
    "properties": {
        "results": {"type": "array", "items": {"type": "object"}},
        "next": {"type": "string"},
        "hasNext": {"type": "boolean"},
        "previous": {"type": "string"},
        "hasPrevious": {"type": "boolean"},
    },
    "required": ["results"],
}
_OBJECT: Schema = {"type": "object"}


@dataclass(frozen=True)
class ActionSpec:
    key: str
    name: str
    description: str
    input_schema: Schema
    output_schema: Schema
    kind: str
    """Frame kind that shapes the output (see ``frames``)."""
    page: PageShape = "object"
    writes: bool = False
    method: str = "GET"
    path: str = ""
    """Probable Mixmax REST path, ``{name}`` placeholders filled from the input."""
    page_max: int = STANDARD_PAGE_MAX
    keywords: tuple[str, ...] = field(default=())
    """Extra words for intent search (synonyms a person might type)."""

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self.input_schema.get("required", ()))


def _list(
    key: str,
    name: str,
    desc: str,
    kind: str,
    path: str,
    extra: Mapping[str, Schema] = {},
    keywords: tuple[str, ...] = (),
    required: tuple[str, ...] = (),
) -> ActionSpec:
    return ActionSpec(
        key,
        name,
        desc,
        _obj({**extra, **_PAGING}, required),
        _RESULTS_PAGE,
        kind,
        page="results",
        path=path,
        keywords=keywords,
    )


ACTIONS: tuple[ActionSpec, ...] = (
    _list(
        "list-teams",
        "List Teams",
        "Lists all teams the user belongs to or has access to",
        "teams",
        "teams",
        keywords=("team", "members", "group"),
    ),
    _list(
        "list-rules",
        "List Rules (Webhooks)",
        "Lists all webhook rules configured for the user",
        "rules",
        "rules",
        {"expand": {"type": "string", "enum": ["actions"]}},
        keywords=("webhook", "rule", "automation", "trigger"),
    ),
    ActionSpec(
        "remove-unsubscribe",
        "Remove from Unsubscribes",
        "Remove an email address from the unsubscribe list",
        _obj({"email": _EMAIL}, ("email",)),
        _OBJECT,
        "unsubscribe_change",
        writes=True,
        method="DELETE",
        path="unsubscribes",
        keywords=("resubscribe", "unsubscribe", "opt-in", "delete"),
    ),
    ActionSpec(
        "add-unsubscribe",
        "Add to Unsubscribes",
        "Add an email address to the unsubscribe list",
        _obj({"email": _EMAIL, "name": {"type": "string"}}, ("email",)),
        _OBJECT,
        "unsubscribe_change",
        writes=True,
        method="POST",
        path="unsubscribes",
        keywords=("unsubscribe", "opt-out", "block", "suppress", "do not contact"),
    ),
    _list(
        "list-unsubscribes",
        "List Unsubscribes",
        "Lists all unsubscribed email addresses",
        "unsubscribes",
        "unsubscribes",
        keywords=("unsubscribe", "opt-out", "suppression"),
    ),
    # Mixmax serves the events of ONE message, at most 200 (mixmax-api.md section 12).
    ActionSpec(
        "list-livefeed-events",
        "List Live Feed Events",
        "Get email engagement events from the live feed (opens, clicks, replies, etc.)",
        _obj(
            {
                "messageId": {
                    "type": "string",
                    "minLength": 1,
                    "description": "The message whose events to list (at most the newest 200).",
                }
            },
            ("messageId",),
        ),
        {"type": "object", "properties": {"results": {"type": "array", "items": _OBJECT}}},
        "events",
        page="results",
        path="livefeed/events",
        keywords=("engagement", "opens", "clicks", "replies", "activity", "tracking", "analytics"),
    ),
    ActionSpec(
        "get-poll",
        "Get Poll",
        "Get a specific poll by ID with its results",
        _obj({"pollId": _id("poll")}, ("pollId",)),
        _OBJECT,
        "poll",
        path="polls/{pollId}",
        keywords=("poll", "vote", "survey", "results"),
    ),
    _list(
        "list-polls",
        "List Polls",
        "Lists all polls created by the user",
        "polls",
        "polls",
        keywords=("poll", "vote", "survey"),
    ),
    ActionSpec(
        "get-snippet",
        "Get Snippet",
        "Get a specific template/snippet by ID",
        _obj({"snippetId": _id("snippet")}, ("snippetId",)),
        _OBJECT,
        "snippet",
        path="snippets/{snippetId}",
        keywords=("template", "snippet"),
    ),
    _list(
        "list-snippets",
        "List Snippets (Templates)",
        "Lists templates/snippets that the user has access to (including shared ones)",
        "snippets",
        "snippets",
        {"search": {"type": "string"}},
        keywords=("template", "snippet", "canned"),
    ),
    ActionSpec(
        "send-message",
        "Send Message",
        "Send a previously created draft message.",
        _obj({"messageId": _id("message")}, ("messageId",)),
        _OBJECT,
        "message",
        writes=True,
        method="POST",
        path="messages/{messageId}/send",
        keywords=("send", "email", "draft", "deliver"),
    ),
    ActionSpec(
        "get-message",
        "Get Message",
        "Get a specific message by ID",
        _obj({"messageId": _id("message")}, ("messageId",)),
        _OBJECT,
        "message",
        path="messages/{messageId}",
        keywords=("email", "message"),
    ),
    ActionSpec(
        "create-message",
        "Create Message",
        "Creates a draft Mixmax message (email).",
        _obj(
            {
                "to": {
                    "type": "array",
                    "minItems": 1,
                    "items": _obj({"email": _EMAIL, "name": {"type": "string"}}, ("email",)),
                },
                "cc": {
                    "type": "array",
                    "items": _obj({"email": _EMAIL, "name": {"type": "string"}}, ("email",)),
                },
                "bcc": {
                    "type": "array",
                    "items": _obj({"email": _EMAIL, "name": {"type": "string"}}, ("email",)),
                },
                "subject": {"type": "string"},
                "body": {"type": "string", "description": "HTML body."},
                "trackingEnabled": {"type": "boolean", "default": True},
                "linkTrackingEnabled": {"type": "boolean", "default": True},
            },
            ("to",),
        ),
        _OBJECT,
        "message",
        writes=True,
        method="POST",
        path="messages",
        keywords=("draft", "compose", "email", "write"),
    ),
    _list(
        "list-messages",
        "List Messages",
        "Lists Mixmax messages (emails) for the authenticated user",
        "messages",
        "messages",
        {"sequenceId": {"type": "string", "minLength": 1}},
        keywords=("email", "sent", "outbox"),
    ),
    ActionSpec(
        "get-sequence-recipients",
        "Get Sequence Recipients",
        "Get all recipients of a sequence with their status",
        _obj(
            {
                "sequenceId": _id("sequence"),
                "offset": {"type": "integer", "minimum": 0, "maximum": RECIPIENTS_CAP - 1},
                "limit": {
                    "type": "integer",
                    "default": RECIPIENTS_PAGE_MAX,
                    "description": "Page size; Mixmax serves at most 50.",
                },
                "includeVariables": {"type": "boolean", "default": True},
                "sortBy": {
                    "enum": [
                        "email",
                        "lastStage",
                        "lastMessageCreated",
                        "nextStageScheduledAt",
                        "opens",
                        "clicks",
                        "replied",
                        "downloads",
                        "accepted",
                    ]
                },
                "sortDesc": {"type": "boolean"},
            },
            ("sequenceId",),
        ),
        {"type": "array", "items": {"type": "object"}},
        "recipients",
        page="array",
        path="sequences/{sequenceId}/recipients",
        page_max=RECIPIENTS_PAGE_MAX,
        keywords=("enrolled", "contacts", "prospects", "status", "people"),
    ),
    ActionSpec(
        "cancel-sequence-recipient",
        "Cancel Sequence for Recipient",
        "Cancel a sequence for a specific recipient by email",
        _obj(
            {
                "sequenceId": _id("sequence"),
                "emails": {"type": "array", "minItems": 1, "items": _EMAIL},
            },
            ("sequenceId", "emails"),
        ),
        _OBJECT,
        "cancel_outcomes",
        writes=True,
        method="POST",
        path="sequences/{sequenceId}/cancel",
        keywords=("remove", "stop", "exit", "unenroll"),
    ),
    ActionSpec(
        "add-recipient-to-sequence",
        "Add Recipient to Sequence",
        "Adds one or more recipients to a sequence.",
        _obj(
            {
                "sequenceId": _id("sequence"),
                "recipients": {
                    "type": "array",
                    "minItems": 1,
                    "items": _obj(
                        {
                            "email": _EMAIL,
                            "variables": {
                                "type": "object",
                                "additionalProperties": {
                                    "type": ["string", "number", "boolean", "null"]
                                },
                            },
                            "scheduledAt": {
                                "anyOf": [{"type": "integer", "minimum": 0}, {"const": False}]
                            },
                        },
                        ("email",),
                    ),
                },
                "scheduledAt": {
                    "anyOf": [{"type": "integer", "minimum": 0}, {"const": False}],
                    "description": "Epoch ms to start; false keeps the recipients as drafts.",
                },
                "enrich": {"type": "boolean", "default": False},
                "allowMissingVariables": {"type": "boolean", "default": False},
            },
            ("sequenceId", "recipients"),
        ),
        _OBJECT,
        "enroll_outcomes",
        writes=True,
        method="POST",
        path="sequences/{sequenceId}/recipients",
        keywords=("enroll", "add", "prospects", "contacts", "start"),
    ),
    _list(
        "search-sequences",
        "Search Sequences",
        "Search sequences by name",
        "sequences",
        "sequences/search",
        {"name": {"type": "string", "minLength": 1}},
        keywords=("find", "sequence", "campaign", "cadence"),
        required=("name",),
    ),
    _list(
        "list-sequences",
        "List Sequences",
        "Lists all sequences available to the authenticated user",
        "sequences",
        "sequences",
        {"expand": {"type": "string", "enum": ["stages"]}},
        keywords=("sequence", "campaign", "cadence", "outreach"),
    ),
    ActionSpec(
        "get-current-user",
        "Get Current User",
        "Returns the authenticated user's information including their user ID",
        _obj({}),
        _OBJECT,
        "user",
        path="users/me",
        keywords=("me", "whoami", "account", "profile"),
    ),
)

BY_KEY: dict[str, ActionSpec] = {a.key: a for a in ACTIONS}

# A connector that lists the whole account's events instead (not what Mixmax documents;
# the sandbox's second profile serves it, so both of the client's paths stay tested).
ACCOUNT_FEED_INPUT: Schema = _obj(
    {
        "since": _TIME,
        "until": _TIME,
        "types": {"type": "array", "items": {"enum": list(EVENT_TYPES)}, "uniqueItems": True},
        "sequenceId": {"type": "string", "minLength": 1},
        "messageId": {"type": "string", "minLength": 1},
        **_PAGING,
    }
)
ACCOUNT_FEED_OUTPUT: Schema = _RESULTS_PAGE


def get(key: str) -> ActionSpec:
    try:
        return BY_KEY[key]
    except KeyError:
        raise InputError(
            f"Unknown action {key!r}.",
            field="key",
            hint="See client.actions() for what the connection offers.",
        ) from None


def prewarm() -> None:
    """Import jsonschema in a background thread.

    Importing it can take over a second (it compiles an IRI grammar when the
    optional rfc3987-syntax is installed, as JupyterLab installs it); started at
    connect time, that cost is paid while the person reads the first output,
    not on their first call.
    """
    import threading

    def load() -> None:
        import jsonschema  # noqa: F401

    threading.Thread(target=load, name="mixmax_nb-prewarm", daemon=True).start()


_VALIDATORS: dict[int, tuple[Schema, Any]] = {}


def _validator(schema: Schema) -> Any:
    """One compiled validator per schema object (the connection's schemas live as long
    as its action list; the entry keeps its schema so the id stays its own)."""
    found = _VALIDATORS.get(id(schema))
    if found is not None and found[0] is schema:
        return found[1]
    from jsonschema import Draft202012Validator, FormatChecker
    from jsonschema.validators import validator_for

    # The draft the schema declares ($schema), else 2020-12.
    cls = validator_for(schema, default=Draft202012Validator)
    validator = cls(schema, format_checker=FormatChecker())
    if len(_VALIDATORS) > 512:
        _VALIDATORS.clear()
    _VALIDATORS[id(schema)] = (schema, validator)
    return validator


MAX_INPUT_DEPTH = 64
"""Nesting no Mixmax input needs; deeper input is a mistake (and would exhaust Python's
recursion in the schema check and the JSON encoder)."""


def _depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests, counted without recursion, stopping past ``limit``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, Mapping | list | tuple):
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, Mapping) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def check_encodable(key: str, data: Mapping[str, Any] | None) -> None:
    """Refuse, as InputError, input that no action can be sent: too deep, numbers JSON
    cannot carry (``10**5000``, ``nan``), values that are not JSON at all."""
    if data is not None and not isinstance(data, Mapping):
        raise InputError(
            f"{key}: the input must be a dict of parameters, not a {type(data).__name__}.",
            field="input",
        )
    if _depth(data, MAX_INPUT_DEPTH) > MAX_INPUT_DEPTH:
        raise InputError(
            f"{key}: the input nests more than {MAX_INPUT_DEPTH} levels deep.",
            field="input",
            hint="Pass the parameters the action's schema names; nothing was sent.",
        )
    import json

    try:
        json.dumps(dict(data or {}), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{key}: the input cannot be sent as JSON ({exc}).",
            field="input",
            hint="Use text, whole numbers of sensible size, true/false, lists and dicts; "
            "nothing was sent.",
        ) from None


def validate_input(key: str, data: Mapping[str, Any] | None, schema: Schema | None = None) -> None:
    """Check ``data`` against ``schema`` (the connection's, from ``action list``), else
    the catalog's built-in one; raise InputError naming the field.
    """
    if schema is None:
        if key not in BY_KEY:
            return
        schema = BY_KEY[key].input_schema
    validator = _validator(schema)
    errors = sorted(validator.iter_errors(dict(data or {})), key=lambda e: list(e.path))
    if not errors:
        return
    first = errors[0]
    path = ".".join(str(p) for p in first.absolute_path)
    if first.validator == "required":
        missing = str(first.message).split("'")[1] if "'" in first.message else ""
        path = f"{path}.{missing}" if path else missing
    elif first.validator == "additionalProperties":
        extra = sorted(set(first.instance) - set(first.schema.get("properties", {})))
        path = ".".join(filter(None, [path, ",".join(extra)]))
    message = _plain_message(first)
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    raise InputError(
        f"{key}: invalid input at '{path or '(root)'}': {message}{more}",
        field=path or None,
        hint="Fix that parameter and run again; nothing was sent.",
    )


def _plain_message(error: Any) -> str:
    text = str(error.message)
    # jsonschema quotes the whole instance; long or hostile values make that unreadable.
    return text if len(text) <= 200 else text[:200] + "..."


CLIENT_METHODS: dict[str, str] = {
    "get-current-user": "me()",
    "list-sequences": "sequences()",
    "search-sequences": "sequences(search=...)",
    "get-sequence-recipients": "recipients(sequence_id)",
    "add-recipient-to-sequence": "plan_enrollment(...) + enroll(plan)",
    "cancel-sequence-recipient": "plan_cancel(...) + cancel_recipients(plan)",
    "list-livefeed-events": "engagement(detail='events') / events(...)",
    "list-messages": "messages()",
    "get-message": "message(id)",
    "create-message": "create_draft(...)",
    "send-message": "send_draft(id, confirm=True)",
    "list-snippets": "snippets()",
    "get-snippet": "snippet(id)",
    "list-polls": "polls()",
    "get-poll": "poll(id)",
    "list-unsubscribes": "unsubscribes()",
    "add-unsubscribe": "plan_unsubscribe(...) + apply_unsubscribes(plan)",
    "remove-unsubscribe": "plan_resubscribe(...) + apply_unsubscribes(plan)",
    "list-teams": "teams()",
    "list-rules": "rules()",
}


def markdown_table() -> str:
    """The README's table of actions and client methods, generated from this catalog."""
    lines = [
        "| Action | Client method | Result | Writes | Required input |",
        "|---|---|---|---|---|",
    ]
    for spec in sorted(ACTIONS, key=lambda a: a.key):
        method = CLIENT_METHODS.get(spec.key, "run_action(...)")
        result = "dict" if spec.page == "object" else f"DataFrame ({spec.kind})"
        required = ", ".join(f"`{r}`" for r in spec.required) or "-"
        writes = "yes" if spec.writes else ""
        lines.append(f"| `{spec.key}` | `{method}` | {result} | {writes} | {required} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
