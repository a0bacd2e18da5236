"""What a widget tree shows as markup, for the tests that check hostile text stays inert."""

from __future__ import annotations

from typing import Any


def html_values(widget: Any) -> list[str]:
    """The value of every HTML-like widget in a tree (what the browser renders as markup),
    and the descriptions and tooltips of HTML widgets and buttons."""
    import ipywidgets as w

    out: list[str] = []
    stack = [widget]
    while stack:
        node = stack.pop()
        if isinstance(node, w.HTML | w.HTMLMath | w.Label):
            out.append(str(node.value))
        for attr in ("description", "tooltip"):
            if isinstance(getattr(node, attr, None), str) and isinstance(node, w.HTML | w.Button):
                out.append(getattr(node, attr))
        stack.extend(getattr(node, "children", ()))
    return out
