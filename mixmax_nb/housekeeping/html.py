"""Safe HTML previews (pure): nothing in a message or template body runs or loads.

:func:`safe_preview_html` renders an HTML body (a message, a template) so that
nothing in it runs and nothing is fetched: the HTML is sanitized with ``nh3``
(scripts, event handlers, ``javascript:`` URLs, forms, styles with ``url()`` and
remote images are dropped), then shown in ``<iframe sandbox="" srcdoc=...>`` (no
scripts, no forms, no pop-ups, an opaque origin) whose Content-Security-Policy
blocks every remote load. Either layer alone would stop a script; both are kept
because a sanitizer bug or a browser ignoring ``sandbox`` should not be enough.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

# Only these data: images may stay: they are inline (no request) and none can script.
_DATA_IMAGE: Final = re.compile(r"^data:image/(png|gif|jpe?g|webp);base64,[a-z0-9+/=\s]*$", re.I)
_STYLE_DANGER: Final = re.compile(
    r"url\s*\(|expression\s*\(|@import|javascript:|behavior\s*:", re.I
)
CSP: Final = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
    "media-src 'none'; frame-src 'none'; form-action 'none'; base-uri 'none'"
)
"""No script, no remote image, font, frame or stylesheet; inline styles only."""


def _attribute_filter(blocked: list[str]) -> Any:
    def keep(tag: str, attr: str, value: str) -> str | None:
        if attr in ("src", "srcset", "background", "poster"):
            if tag == "img" and attr == "src" and _DATA_IMAGE.match(value.strip()):
                return value
            blocked.append(value)  # a remote (or odd) resource: never fetched in a preview
            return None
        if attr == "href" and value.strip().lower().startswith("data:"):
            return None
        if attr == "style" and _STYLE_DANGER.search(value):
            return None
        return value

    return keep


def sanitize_html(body: str) -> tuple[str, int]:
    """``body`` with everything that could run or load removed; and how many remote
    resources (images and the like) were dropped."""
    import nh3

    blocked: list[str] = []
    attributes = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()}
    # Email HTML leans on inline styles and classic layout attributes; keep them.
    attributes["*"] = {"style", "title", "lang", "dir", "align", "width", "height", "bgcolor"}
    attributes.setdefault("img", set()).update({"src", "alt"})
    cleaned = nh3.clean(
        str(body or ""),
        tags=set(nh3.ALLOWED_TAGS) | {"font"},
        attributes=attributes,
        attribute_filter=_attribute_filter(blocked),
        url_schemes={"http", "https", "mailto", "data"},
        clean_content_tags={"script", "style", "iframe", "object", "embed", "noscript"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return cleaned, len(blocked)


@dataclass(frozen=True)
class SafePreview:
    """A sanitized, sandboxed preview; displays itself in a notebook."""

    html: str
    """The ``<iframe sandbox srcdoc>`` markup (safe to put in any HTML output)."""
    blocked: int
    """Remote resources dropped from the body (images, backgrounds)."""
    title: str = ""

    def _repr_html_(self) -> str:
        return self.html


def _document(body: str) -> str:
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="referrer" content="no-referrer">'
        "<style>body{font-family:Arial,Helvetica,sans-serif;font-size:14px;margin:8px}"
        "img{max-width:100%}</style>"
        f"</head><body>{body}</body></html>"
    )


def safe_preview_html(body: str, *, title: str = "", height: int = 320) -> str:
    """An HTML body as inert markup: sanitized, then inside a sandboxed iframe with a CSP."""
    return safe_preview(body, title=title, height=height).html


def safe_preview(body: str, *, title: str = "", height: int = 320) -> SafePreview:
    cleaned, blocked = sanitize_html(body)
    srcdoc = html.escape(_document(cleaned), quote=True)
    note = (
        f'<div class="mx-blocked" style="color:#b26a00;font-size:12px">{blocked} remote '
        "resource(s) (images, backgrounds) were not loaded in this preview.</div>"
        if blocked
        else ""
    )
    head = (
        f'<div class="mx-preview-title" style="font-weight:600;margin:4px 0">'
        f"{html.escape(title, quote=True)}</div>"
        if title
        else ""
    )
    frame = (
        f'<iframe sandbox="" referrerpolicy="no-referrer" srcdoc="{srcdoc}" '
        f'style="width:100%;height:{int(height)}px;border:1px solid #cfd8dc;background:white" '
        'title="Preview (scripts and remote content disabled)"></iframe>'
    )
    return SafePreview(
        html=f'<div class="mx-safe-preview">{head}{frame}{note}</div>',
        blocked=blocked,
        title=title,
    )


def preview_snippet(snippet: Mapping[str, Any]) -> SafePreview:
    """A template (a snippet record, e.g. ``client.snippet(id)``) previewed safely, its
    title as the title."""
    title = str(snippet.get("title") or snippet.get("name") or "")
    return safe_preview(str(snippet.get("source") or ""), title=title)


__all__ = [
    "CSP",
    "SafePreview",
    "preview_snippet",
    "safe_preview",
    "safe_preview_html",
    "sanitize_html",
]
