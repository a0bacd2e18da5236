"""Inline a JSON Schema's local ``$ref``s, so the form builder sees plain schemas.

Action input schemas may name shared parts once (``"$defs": {"recipient": ...}``) and
point at them (``{"$ref": "#/$defs/recipient"}``). A form cannot be built from a
pointer, so each local reference is replaced by what it points at, resolved by the
``referencing`` library (jsonschema's own resolver: JSON Pointer escapes, anchors).
Keywords beside a ``$ref`` (a title, a description) are kept over the target's, as
JSON Schema 2019-09 and later read them.

Left as they are, for the form to show a raw JSON field: references to other
documents (nothing is fetched), references that lead nowhere, and a reference met
again inside its own expansion (a recursive schema, which would never end).

Pure: the schema passed in is not changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

__all__ = ["inline_refs"]

_ROOT: Final = "urn:mixmax-nb:form-schema"
_VERBATIM: Final = frozenset({"enum", "const", "default", "examples", "$defs", "definitions"})
"""Keywords whose values are data or definitions, never schemas to expand in place."""


def inline_refs(schema: Any) -> Any:
    """``schema`` with every resolvable local ``$ref`` replaced by its target."""
    if not isinstance(schema, Mapping):
        return schema
    try:
        resource = Resource.from_contents(dict(schema), default_specification=DRAFT202012)
        resolver = Registry().with_resource(_ROOT, resource).resolver(_ROOT)
    except Exception:  # an unusable "$schema" or "$id": build from the schema as it is
        return schema
    return _expand(schema, resolver, ())


def _expand(node: Any, resolver: Any, seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_expand(item, resolver, seen) for item in node]
    if not isinstance(node, Mapping):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#") and ref not in seen:
        try:
            resolved = resolver.lookup(ref)
        except Unresolvable:
            resolved = None
        if resolved is not None and isinstance(resolved.contents, Mapping):
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            merged = {**resolved.contents, **siblings}
            return _expand(merged, resolved.resolver, (*seen, ref))
    return {
        key: value if key in _VERBATIM else _expand(value, resolver, seen)
        for key, value in node.items()
    }
