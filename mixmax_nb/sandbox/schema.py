"""Server-side input validation of the emulated Membrane, for the catalog's JSON Schemas.

Membrane checks an action's input against its ``inputSchema`` before running it.
The sandbox does the same with this small validator of the JSON Schema keywords
the catalog uses (type, properties, required, additionalProperties, enum, const,
anyOf, string/number/array bounds, pattern, uniqueItems, format date-time). It
exists because importing ``jsonschema`` costs over a second (its format checkers
compile grammars), which would make every `mixmax-nb-sandbox` call slow.
Unknown keywords are ignored, as JSON Schema says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .ids import parse_time

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _is(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(name, (object,)))


def errors(schema: Mapping[str, Any], value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every violation as (path, message); empty when ``value`` is valid."""
    where = path or "(root)"
    found: list[tuple[str, str]] = []
    kind = schema.get("type")
    if kind is not None:
        names = kind if isinstance(kind, list) else [kind]
        if not any(_is(value, n) for n in names):
            return [(where, f"{json.dumps(value)[:80]} is not of type {' or '.join(names)}")]
    if "const" in schema and value != schema["const"]:
        found.append((where, f"must be {json.dumps(schema['const'])}"))
    if "enum" in schema and value not in schema["enum"]:
        found.append((where, f"{json.dumps(value)[:80]} is not one of {schema['enum']}"))
    if "anyOf" in schema and all(errors(s, value, path) for s in schema["anyOf"]):
        found.append((where, "does not match any allowed form"))
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            found.append((where, "is too short"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            found.append((where, "is too long"))
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append((where, f"does not match {schema['pattern']!r}"))
        if schema.get("format") == "date-time" and parse_time(value) is None:
            found.append((where, "is not a date-time"))
    if _is(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            found.append((where, f"is less than the minimum of {schema['minimum']}"))
        if "maximum" in schema and value > schema["maximum"]:
            found.append((where, f"is greater than the maximum of {schema['maximum']}"))
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            found.append((where, "has too few items"))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            found.append((where, f"has more than {schema['maxItems']} items"))
        if schema.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) < len(
            value
        ):
            found.append((where, "has non-unique items"))
        if isinstance(schema.get("items"), Mapping):
            for i, item in enumerate(value):
                found += errors(schema["items"], item, f"{path}.{i}" if path else str(i))
    if isinstance(value, dict):
        props: Mapping[str, Any] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                found.append((f"{path}.{name}" if path else name, "is a required property"))
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            sub = f"{path}.{name}" if path else name
            if name in props:
                found += errors(props[name], item, sub)
            elif extra is False:
                found.append((sub, "is not an allowed property"))
            elif isinstance(extra, Mapping):
                found += errors(extra, item, sub)
    return found
