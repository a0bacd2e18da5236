"""JSON Schema -> an ipywidgets form, and the form's values -> the JSON input it describes.

Used by the action explorer for *any* action, including ones the toolkit has never
seen, so the rule is: whatever the schema says, build something usable and never
crash. What maps to a control:

==========================  ============================================================
schema                      control
==========================  ============================================================
string (``format`` hint)    ``Text``; ``Textarea`` for long text (HTML bodies, maxLength > 500)
number / integer            ``Text`` parsed on read (bounds shown in the placeholder)
boolean                     ``Checkbox`` with a default or when required; else a
                            three-way ``Dropdown`` (not set / true / false)
enum                        ``Dropdown`` (with "not set" when optional)
array of scalars            ``Textarea``: one item per line, or comma-separated
array of enum               ``SelectMultiple``
array of objects            repeated sub-forms with Add / Remove
object with properties      a nested, framed sub-form
local ``$ref``              what it points at (``schema_refs``), then as above
anything else               a raw JSON ``Textarea`` (anyOf, oneOf, const, allOf, remote
                            or recursive $ref, type lists, free-form objects, arrays of
                            arrays, ...)
==========================  ============================================================

Numbers are text, not ``IntText``/``BoundedIntText``, on purpose: an optional number
needs an empty state, and a bounded widget silently clamps an out-of-range value,
hiding the mistake that validation would name. ``type: [X, "null"]`` is treated as X.

A blank optional field is left out of the JSON; a read problem (bad number, bad
JSON) raises :class:`~mixmax_nb.errors.InputError` naming the field's dotted path,
and :meth:`SchemaForm.validate` then checks the whole value against the schema
(jsonschema), which names the field too. Labels and help texts come from the
schema (that is, from the service) and are escaped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

import ipywidgets as w

from ..errors import InputError
from ._common import esc
from .schema_refs import inline_refs

__all__ = ["UNSET", "Field", "SchemaForm", "build_form", "field_kind"]


class _Unset:
    """Marker for "the person left this blank": the key is left out of the JSON."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()
_SCALARS: Final = ("string", "number", "integer", "boolean")
_LONG_TEXT_NAMES: Final = ("body", "html", "source", "text", "content", "description", "filter")
_JSON_HELP: Final = "Raw JSON (this part of the schema has no simple form)."


def _plain_type(schema: Mapping[str, Any]) -> str | None:
    """The schema's single JSON type, ignoring a "null" alternative; None if ambiguous."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        return kinds[0] if len(kinds) == 1 and isinstance(kinds[0], str) else None
    return kind if isinstance(kind, str) else None


def field_kind(schema: Any) -> str:
    """Which control a (sub)schema gets: string, number, integer, boolean, enum,
    scalar_list, enum_list, object_list, object or json."""
    if not isinstance(schema, Mapping):
        return "json"  # `true`, `false` or garbage: let the person type JSON
    if any(k in schema for k in ("$ref", "anyOf", "oneOf", "allOf", "not", "const", "if")):
        return "json"
    if "enum" in schema:
        values = schema["enum"]
        return "enum" if isinstance(values, list) and values else "json"
    kind = _plain_type(schema)
    if kind in _SCALARS:
        return str(kind)
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties")
        return "object" if isinstance(props, Mapping) and props else "json"
    if kind == "array":
        items = schema.get("items")
        sub = field_kind(items) if isinstance(items, Mapping) else "json"
        if sub in ("string", "number", "integer"):
            return "scalar_list"
        if sub == "enum":
            return "enum_list"
        if sub == "object":
            return "object_list"
        return "json"
    return "json"


def _label_html(name: str, required: bool, schema: Mapping[str, Any]) -> str:
    title = schema.get("title")
    shown = f"{esc(name)}" + (f" <small>({esc(title)})</small>" if title and title != name else "")
    mark = ' <span class="mx-required" style="color:#c62828" title="required">*</span>'
    return f'<span class="mx-label">{shown}{mark if required else ""}</span>'


def _help_text(schema: Mapping[str, Any], kind: str) -> str:
    parts: list[str] = []
    if isinstance(schema.get("description"), str):
        parts.append(schema["description"])
    if kind == "json":
        parts.append(_JSON_HELP)
    elif kind == "scalar_list":
        parts.append("One per line, or comma-separated.")
    fmt = schema.get("format")
    if isinstance(fmt, str):
        parts.append(f"Format: {fmt}.")
    return " ".join(parts)


class Field:
    """One node of the form: a control (or sub-form) and how to read and write it."""

    def __init__(
        self, name: str, path: str, schema: Mapping[str, Any], required: bool, kind: str
    ) -> None:
        self.name = name
        self.path = path
        self.schema = schema
        self.required = required
        self.kind = kind
        self.control: Any = None
        """The input widget (tests set ``control.value``)."""
        self.widget: Any = None
        """What is laid out: label, control and help text."""

    def get(self) -> Any:
        raise NotImplementedError

    def set(self, value: Any) -> None:
        raise NotImplementedError

    def children(self) -> list[Field]:
        return []

    def _error(self, message: str) -> InputError:
        return InputError(
            f"invalid input at '{self.path}': {message}",
            field=self.path,
            hint="Fix that field and run again; nothing was sent.",
        )

    def _row(self, control: Any) -> Any:
        label = w.HTML(_label_html(self.name, self.required, self.schema))
        help_text = _help_text(self.schema, self.kind)
        items: list[Any] = [label, control]
        if help_text:
            items.append(
                w.HTML(
                    f'<div class="mx-help" style="color:#607d8b;font-size:11px">'
                    f"{esc(help_text)}</div>"
                )
            )
        return w.VBox(items, layout={"margin": "2px 0 6px 0"})


class _TextField(Field):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        long = (
            (self.schema.get("maxLength") or 0) > 500
            or self.name.lower() in _LONG_TEXT_NAMES
            or self.schema.get("contentMediaType") == "text/html"
        )
        cls = w.Textarea if long else w.Text
        placeholder = {"date-time": "2025-06-02T09:00:00Z", "email": "name@example.com"}.get(
            str(self.schema.get("format")), ""
        )
        self.control = cls(placeholder=placeholder, layout={"width": "95%"})
        if isinstance(self.schema.get("default"), str):
            self.control.value = self.schema["default"]
        self.widget = self._row(self.control)

    def get(self) -> Any:
        text = str(self.control.value)
        return text if text != "" else UNSET

    def set(self, value: Any) -> None:
        self.control.value = "" if value is UNSET or value is None else str(value)


def _parse_number(text: str, integer: bool) -> int | float:
    """``text`` as an int (or a float when not ``integer``); ValueError if it is neither."""
    text = text.strip().replace("_", "")
    try:
        return int(text)
    except ValueError:
        if integer:
            raise ValueError(f"{text!r} is not a whole number") from None
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text!r} is not a finite number")
    return int(number) if number.is_integer() and "e" not in text.lower() else number


class _NumberField(Field):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        lo, hi = self.schema.get("minimum"), self.schema.get("maximum")
        bounds = ""
        if lo is not None or hi is not None:
            bounds = f"{'' if lo is None else lo}..{'' if hi is None else hi}"
        what = "whole number" if self.kind == "integer" else "number"
        self.control = w.Text(placeholder=f"{what} {bounds}".strip(), layout={"width": "240px"})
        if isinstance(self.schema.get("default"), int | float) and not isinstance(
            self.schema.get("default"), bool
        ):
            self.control.value = str(self.schema["default"])
        self.widget = self._row(self.control)

    def get(self) -> Any:
        text = str(self.control.value).strip()
        if not text:
            return UNSET
        try:
            return _parse_number(text, self.kind == "integer")
        except ValueError as exc:
            raise self._error(str(exc)) from None

    def set(self, value: Any) -> None:
        self.control.value = "" if value is UNSET or value is None else str(value)


class _BoolField(Field):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        default = self.schema.get("default")
        if isinstance(default, bool) or self.required:
            # With a default (or required) there is always a value: a plain checkbox.
            self.control = w.Checkbox(value=bool(default), indent=False)
        else:
            # Optional without a default: "not set" must stay distinguishable from false.
            self.control = w.Dropdown(
                options=[("(not set)", None), ("true", True), ("false", False)], value=None
            )
        self.widget = self._row(self.control)

    def get(self) -> Any:
        value = self.control.value
        return UNSET if value is None else bool(value)

    def set(self, value: Any) -> None:
        if isinstance(self.control, w.Checkbox):
            self.control.value = bool(value) if value is not UNSET else False
        else:
            self.control.value = None if value is UNSET or value is None else bool(value)


class _EnumField(Field):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.values: list[Any] = list(self.schema["enum"])
        # Options carry indexes, not the values: True == 1 and 0 == False would
        # otherwise make two options the same to the Dropdown.
        options: list[tuple[str, int]] = [(_show(v), i) for i, v in enumerate(self.values)]
        if not self.required:
            options.insert(0, ("(not set)", -1))
        self.control = w.Dropdown(options=options, value=options[0][1])
        default = self.schema.get("default", UNSET)
        if default is not UNSET:
            self.set(default)
        self.widget = self._row(self.control)

    def get(self) -> Any:
        index = int(self.control.value)
        return UNSET if index < 0 else self.values[index]

    def set(self, value: Any) -> None:
        for index, candidate in enumerate(self.values):
            if candidate == value and type(candidate) is type(value):
                self.control.value = index
                return
        if value is UNSET and not self.required:
            self.control.value = -1


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class _ScalarListField(Field):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_kind = field_kind(self.schema.get("items"))
        self.control = w.Textarea(placeholder="one per line", rows=3, layout={"width": "95%"})
        if isinstance(self.schema.get("default"), list):
            self.set(self.schema["default"])
        self.widget = self._row(self.control)

    def get(self) -> Any:
        text = str(self.control.value)
        # Lines win over commas, so a multi-line list may hold commas (display names).
        parts = text.splitlines() if "\n" in text.strip() else text.split(",")
        items = [p.strip() for p in parts if p.strip()]
        if not items:
            return UNSET
        if self.item_kind == "string":
            return items
        try:
            return [_parse_number(p, self.item_kind == "integer") for p in items]
        except ValueError as exc:
            raise self._error(str(exc)) from None

    def set(self, value: Any) -> None:
        if value is UNSET or value is None:
            self.control.value = ""
        else:
            self.control.value = "\n".join(str(v) for v in value)


class _EnumListField(Field):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.values: list[Any] = list(self.schema["items"]["enum"])
        self.control = w.SelectMultiple(
            options=[(_show(v), i) for i, v in enumerate(self.values)],
            rows=min(6, len(self.values)),
        )
        if isinstance(self.schema.get("default"), list):
            self.set(self.schema["default"])
        self.widget = self._row(self.control)

    def get(self) -> Any:
        chosen = [self.values[i] for i in self.control.value]
        return chosen if chosen else UNSET

    def set(self, value: Any) -> None:
        picked = value if isinstance(value, list) else []
        self.control.value = tuple(
            i for i, v in enumerate(self.values) if any(v == p for p in picked)
        )


class _JsonField(Field):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.control = w.Textarea(placeholder="JSON", rows=3, layout={"width": "95%"})
        if "default" in self.schema:
            self.set(self.schema["default"])
        elif "const" in self.schema and self.required:
            self.set(self.schema["const"])
        self.widget = self._row(self.control)

    def get(self) -> Any:
        text = str(self.control.value).strip()
        if not text:
            return UNSET
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise self._error(f"not valid JSON ({exc.msg}, line {exc.lineno})") from None

    def set(self, value: Any) -> None:
        self.control.value = "" if value is UNSET else json.dumps(value, ensure_ascii=False)


class _ObjectField(Field):
    """A nested object: one child field per property, framed under its name."""

    def __init__(self, *args: Any, framed: bool = True) -> None:
        super().__init__(*args)
        props: Mapping[str, Any] = self.schema.get("properties") or {}
        required = set(self.schema.get("required") or ())
        self.fields: dict[str, Field] = {}
        for name, sub in props.items():
            if isinstance(sub, Mapping) and sub.get("readOnly"):
                continue  # the service fills it; asking for it would only confuse
            child_path = f"{self.path}.{name}" if self.path else str(name)
            self.fields[str(name)] = make_field(str(name), child_path, sub, str(name) in required)
        self.control = w.VBox([f.widget for f in self.fields.values()])
        if framed:
            body = w.VBox(
                [self.control],
                layout={"border": "1px solid #cfd8dc", "padding": "4px 8px", "margin": "2px 0"},
            )
            self.widget = self._row(body)
        else:
            self.widget = self.control
        if isinstance(self.schema.get("default"), Mapping):
            self.set(self.schema["default"])

    def get(self) -> Any:
        out: dict[str, Any] = {}
        for name, field in self.fields.items():
            value = field.get()
            if value is not UNSET:
                out[name] = value
        return out if out or self.required else UNSET

    def set(self, value: Any) -> None:
        data = value if isinstance(value, Mapping) else {}
        for name, field in self.fields.items():
            field.set(data.get(name, UNSET))

    def children(self) -> list[Field]:
        return list(self.fields.values())


class _ObjectListField(Field):
    """An array of objects as repeated sub-forms, each with a Remove button."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_schema: Mapping[str, Any] = self.schema["items"]
        self.items: list[_ObjectField] = []
        self.rows = w.VBox([])
        self.add_button = w.Button(description="Add item", icon="plus", layout={"width": "auto"})
        self.add_button.on_click(lambda _b: self.add())
        self.control = w.VBox([self.rows, self.add_button])
        self.widget = self._row(self.control)
        start = int(self.schema.get("minItems") or (1 if self.required else 0))
        if isinstance(self.schema.get("default"), list):
            self.set(self.schema["default"])
        else:
            for _ in range(start):
                self.add()

    def add(self) -> _ObjectField:
        index = len(self.items)
        item = _ObjectField(
            f"#{index + 1}", f"{self.path}.{index}", self.item_schema, True, "object", framed=False
        )
        self.items.append(item)
        self._redraw()
        return item

    def remove(self, index: int) -> None:
        del self.items[index]
        # Paths carry the index (validation names "to.1.email"): renumber the rest.
        values = [item.get() for item in self.items]
        self.items = []
        for value in values:
            self.add().set(value if value is not UNSET else {})
        self._redraw()

    def _redraw(self) -> None:
        rows = []
        for index, item in enumerate(self.items):
            button = w.Button(description="Remove", icon="trash", layout={"width": "auto"})
            button.on_click(_remover(self, index))
            rows.append(
                w.VBox(
                    [w.HTML(f"<b>{esc(self.name)} #{index + 1}</b>"), item.widget, button],
                    layout={"border": "1px solid #cfd8dc", "padding": "4px 8px", "margin": "2px"},
                )
            )
        self.rows.children = rows

    def get(self) -> Any:
        values = [item.get() for item in self.items]
        values = [v if v is not UNSET else {} for v in values]
        return values if values else UNSET

    def set(self, value: Any) -> None:
        self.items = []
        for item_value in value if isinstance(value, list) else []:
            self.add().set(item_value)
        self._redraw()

    def children(self) -> list[Field]:
        return list(self.items)


def _remover(field: _ObjectListField, index: int) -> Callable[[Any], None]:
    return lambda _button: field.remove(index)


_FIELDS: Final[dict[str, type[Field]]] = {
    "string": _TextField,
    "number": _NumberField,
    "integer": _NumberField,
    "boolean": _BoolField,
    "enum": _EnumField,
    "scalar_list": _ScalarListField,
    "enum_list": _EnumListField,
    "object_list": _ObjectListField,
    "object": _ObjectField,
    "json": _JsonField,
}


def make_field(name: str, path: str, schema: Any, required: bool) -> Field:
    kind = field_kind(schema)
    sub = schema if isinstance(schema, Mapping) else {}
    try:
        return _FIELDS[kind](name, path, sub, required, kind)
    except Exception:
        # A schema shape nobody foresaw (odd defaults, odd enums): degrade, never crash.
        return _JsonField(name, path, sub, required, "json")


class SchemaForm:
    """A form for one JSON Schema: ``form.widget`` to show, ``form.value()`` to read.

    The root is normally an object (an action's input); any other root becomes a
    single raw-JSON field for the whole input.
    """

    def __init__(self, schema: Any) -> None:
        self.schema: Any = schema if isinstance(schema, Mapping) else {}
        # Fields are built from the expanded schema; validation uses the original,
        # whose references jsonschema resolves itself.
        plain = inline_refs(self.schema)
        if field_kind(plain) == "object":
            self.root: Field = _ObjectField("", "", plain, True, "object", framed=False)
        elif isinstance(plain, Mapping) and _plain_type(plain) == "object":
            # An object with no declared properties: no parameters, or free-form JSON.
            free = plain.get("additionalProperties", True) is not False
            self.root = (
                _JsonField("input", "", plain, False, "json")
                if free
                else _ObjectField("", "", {"properties": {}}, True, "object", framed=False)
            )
        else:
            self.root = _JsonField("input", "", plain, False, "json")
        empty = isinstance(self.root, _ObjectField) and not self.root.fields
        note = w.HTML("<i>This action takes no input.</i>") if empty else None
        self.widget = w.VBox([note, self.root.widget] if note else [self.root.widget])

    @property
    def fields(self) -> dict[str, Field]:
        """Every field by dotted path (list items as ``to.0.email``), recomputed each time."""
        found: dict[str, Field] = {}

        def walk(field: Field) -> None:
            if field.path:
                found[field.path] = field
            for child in field.children():
                walk(child)

        walk(self.root)
        return found

    def field(self, path: str) -> Field:
        try:
            return self.fields[path]
        except KeyError:
            raise InputError(f"The form has no field {path!r}.", field=path) from None

    def value(self) -> dict[str, Any]:
        """The JSON input the form describes (blank optional fields left out)."""
        value = self.root.get()
        if value is UNSET:
            return {}
        if not isinstance(value, dict):
            raise InputError(
                "The input must be a JSON object.",
                field="input",
                hint='Type an object such as {"name": "value"}.',
            )
        return value

    def set_value(self, data: Mapping[str, Any] | None) -> None:
        self.root.set(dict(data or {}) if isinstance(self.root, _ObjectField) else data)

    def validate(self, key: str = "input") -> dict[str, Any]:
        """:meth:`value`, checked against the schema; InputError names the first bad field.

        A schema jsonschema cannot use (a remote ``$ref``, a malformed keyword) is
        not held against the person: the service checks the input anyway.
        """
        from .. import catalog

        data = self.value()
        try:
            catalog.validate_input(key, data, schema=dict(self.schema))
        except InputError:
            raise
        except Exception:  # noqa: S110 -- unusable schema: the service validates instead
            pass
        return data


def build_form(schema: Any) -> SchemaForm:
    return SchemaForm(schema)
