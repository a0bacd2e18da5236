"""Mixmax ``{{variable}}`` templates: which variables a template needs, and filling them.

Shared by the seed (a sequence's required variables come from its stage templates)
and by the emulated API (message bodies are rendered when read).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

_VAR = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")


def variables_in(*texts: str) -> list[str]:
    """The ``{{variable}}`` names used in templates, sorted."""
    found: set[str] = set()
    for text in texts:
        found.update(m.group(1) for m in _VAR.finditer(text))
    return sorted(found)


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill ``{{name}}``; an unknown name renders empty, as with allowMissingVariables."""
    return _VAR.sub(lambda m: str(values.get(m.group(1), "")), template)


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def compile_template(template: str) -> Callable[[Mapping[str, Any]], str]:
    """``render`` for one template, made once and applied to many value sets.

    The seed renders tens of thousands of subjects; turning ``{{name}}`` into a
    ``str.format_map`` field once is several times faster than the regex per
    message. Names that are not plain identifiers keep the regex path, since
    ``format`` would read dots and brackets as attribute and item access.
    """
    names = [m.group(1) for m in _VAR.finditer(template)]
    if not all(name.isidentifier() for name in names):
        return lambda values: render(template, values)
    pieces = _VAR.split(template)
    # split() alternates literal text and captured names: escape braces in the text.
    fmt = "".join(
        part.replace("{", "{{").replace("}", "}}") if i % 2 == 0 else "{" + part + "}"
        for i, part in enumerate(pieces)
    )
    return lambda values: fmt.format_map(_Blank(values))
