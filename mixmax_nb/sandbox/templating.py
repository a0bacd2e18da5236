"""Mixmax ``{{variable}}`` templates: which variables a template needs, and filling them.

Shared by the seed (a sequence's required variables come from its stage templates)
and by the emulated API (message bodies are rendered when read).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
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
