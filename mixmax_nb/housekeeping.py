"""Account housekeeping: unsubscribes, message drafts, safe HTML previews, poll results.

Every write follows the same two steps, so a re-run cell or a stray click cannot
do what nobody read:

* **preview** -- :func:`plan_unsubscribe` / :func:`plan_resubscribe` read the
  current list and say, per address, what would happen (nothing is written);
  :func:`create_draft` creates a *draft* (nothing is sent) and
  :meth:`Draft.preview` shows it;
* **confirm** -- :func:`apply_unsubscribes` and :meth:`Draft.send` do nothing
  unless called with ``confirm=True``; a draft that was already sent is refused
  rather than sent again.

:func:`safe_preview_html` renders an HTML body (a message, a template) so that
nothing in it runs and nothing is fetched: the HTML is sanitized with ``nh3``
(scripts, event handlers, ``javascript:`` URLs, forms, styles with ``url()`` and
remote images are dropped), then shown in ``<iframe sandbox="" srcdoc=...>`` (no
scripts, no forms, no pop-ups, an opaque origin) whose Content-Security-Policy
blocks every remote load. Either layer alone would stop a script; both are kept
because a sanitizer bug or a browser ignoring ``sandbox`` should not be enough.

The helpers take a :class:`~mixmax_nb.Client` (or its ``aio``) and are plain calls.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any, Final, Literal

from ._sync import run_sync
from .errors import InputError, MixmaxNbError

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

__all__ = [
    "Draft",
    "SafePreview",
    "UnsubscribePlan",
    "apply_unsubscribes",
    "create_draft",
    "plan_resubscribe",
    "plan_unsubscribe",
    "poll_chart",
    "preview_snippet",
    "safe_preview",
    "safe_preview_html",
    "sanitize_html",
    "send_draft",
]

_EMAIL: Final = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
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


def _aio(client: Any) -> Any:
    from .client import as_async

    return as_async(client)


# -- safe previews ---------------------------------------------------------------------


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


def preview_snippet(client: Any, snippet: Mapping[str, Any] | str) -> SafePreview:
    """A template (a snippet record or its id) previewed safely, its subject as the title."""
    record = run_sync(_aio(client).snippet(snippet)) if isinstance(snippet, str) else snippet
    title = str(record.get("title") or record.get("name") or "")
    return safe_preview(str(record.get("source") or ""), title=title)


# -- unsubscribes ----------------------------------------------------------------------

UnsubscribeAction = Literal["add", "remove"]


@dataclass(frozen=True)
class UnsubscribePlan:
    """What adding to / removing from the unsubscribe list would do (nothing written yet).

    ``rows``: one row per distinct address given: ``email``, ``name``, ``status``
    (``will add``, ``already unsubscribed``, ``will remove``, ``not on the list``,
    ``invalid``).
    """

    action: UnsubscribeAction
    rows: pd.DataFrame

    @property
    def to_apply(self) -> list[dict[str, str]]:
        todo = self.rows[self.rows["status"].isin(["will add", "will remove"])]
        out = []
        for record in todo.to_dict("records"):
            item = {"email": str(record["email"])}
            if self.action == "add" and isinstance(record.get("name"), str) and record["name"]:
                item["name"] = record["name"]
            out.append(item)
        return out

    def summary(self) -> str:
        counts = self.rows["status"].value_counts()
        parts = [f"{int(n)} {status}" for status, n in counts.items()]
        verb = "unsubscribe" if self.action == "add" else "resubscribe"
        return f"{verb}: " + (", ".join(parts) if parts else "no addresses")

    def _repr_html_(self) -> str:
        return (
            f"<p>{html.escape(self.summary())}. Nothing is written until "
            "<code>apply_unsubscribes(client, plan, confirm=True)</code>.</p>"
            + self.rows.to_html(index=False, escape=True)
        )


def _parse_emails(emails: str | Iterable[Any]) -> list[tuple[str, str]]:
    """(email, name) pairs from a pasted string, a list of strings or of dicts."""
    items: Iterable[Any] = re.split(r"[\n,;]+", emails) if isinstance(emails, str) else emails
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for item in items:
        if isinstance(item, Mapping):
            email, name = str(item.get("email") or "").strip(), str(item.get("name") or "")
        else:
            # "Jane Doe <jane@acme.com>" as a mail client writes it.
            name, email = parseaddr(str(item).strip())
            if not email or "@" not in email:
                email, name = str(item).strip(), ""
        if not email or email.lower() in seen:
            continue
        seen.add(email.lower())
        out.append((email, name.strip()))
    return out


def _plan(client: Any, emails: Any, action: UnsubscribeAction) -> UnsubscribePlan:
    import pandas as pd

    given = _parse_emails(emails)
    if not given:
        raise InputError("No email address given.", field="emails")
    current = run_sync(_aio(client).unsubscribes())
    # Mixmax matches unsubscribes without regard to case (sandbox README, assumption 21).
    listed = {str(e).lower() for e in current["email"].dropna()}
    rows = []
    for email, name in given:
        if not _EMAIL.match(email):
            status = "invalid"
        elif action == "add":
            status = "already unsubscribed" if email.lower() in listed else "will add"
        else:
            status = "will remove" if email.lower() in listed else "not on the list"
        rows.append({"email": email, "name": name, "status": status})
    frame = pd.DataFrame(rows, columns=["email", "name", "status"]).astype("string")
    return UnsubscribePlan(action, frame)


def plan_unsubscribe(client: Any, emails: Any) -> UnsubscribePlan:
    """Who would be added to the unsubscribe list (never contacted again); writes nothing.

    ``emails``: a pasted string (commas, semicolons or lines), a list of addresses,
    or a list of ``{"email", "name"}`` dicts.
    """
    return _plan(client, emails, "add")


def plan_resubscribe(client: Any, emails: Any) -> UnsubscribePlan:
    """Who would be removed from the unsubscribe list; writes nothing."""
    return _plan(client, emails, "remove")


def apply_unsubscribes(
    client: Any, plan: UnsubscribePlan, *, confirm: bool = False
) -> pd.DataFrame:
    """Carry out a plan's ``will add`` / ``will remove`` rows, only with ``confirm=True``.

    Returns one row per address written: ``email``, ``outcome`` (``added``,
    ``removed`` or ``error``), ``detail``, ``action_run_id``. An error on one address
    does not stop the others, and is never retried (a write).
    """
    import pandas as pd

    if confirm is not True:
        raise InputError(
            f"Not applied: {plan.summary()}.",
            field="confirm",
            hint="Read the plan, then call again with confirm=True.",
        )
    key = "add-unsubscribe" if plan.action == "add" else "remove-unsubscribe"
    done = "added" if plan.action == "add" else "removed"
    aio = _aio(client)
    rows = []
    for item in plan.to_apply:
        try:
            result = run_sync(aio.run(key, item))
            rows.append((item["email"], done, "", str(result.get("actionRunId") or "")))
        except MixmaxNbError as exc:
            rows.append(
                (item["email"], "error", str(exc), str(getattr(exc, "action_run_id", "") or ""))
            )
    return pd.DataFrame(rows, columns=["email", "outcome", "detail", "action_run_id"]).astype(
        "string"
    )


# -- message drafts --------------------------------------------------------------------


def _recipients(value: Any, field_name: str) -> list[dict[str, str]]:
    out = []
    for email, name in _parse_emails(value or []):
        if not _EMAIL.match(email):
            raise InputError(f"{email!r} is not an email address.", field=field_name)
        out.append({"email": email, **({"name": name} if name else {})})
    return out


@dataclass
class Draft:
    """A Mixmax draft: :meth:`preview` it, then :meth:`send` it with ``confirm=True``."""

    client: Any = field(repr=False)
    message: dict[str, Any]
    action_run_id: str = ""

    @property
    def id(self) -> str:
        return str(self.message.get("_id") or "")

    @property
    def sent(self) -> bool:
        return bool(self.message.get("sent"))

    def preview(self, *, height: int = 320) -> SafePreview:
        to = ", ".join(str(r.get("email")) for r in self.message.get("to") or [])
        title = f"To: {to} · Subject: {self.message.get('subject') or '(no subject)'}"
        return safe_preview(str(self.message.get("body") or ""), title=title, height=height)

    def send(self, *, confirm: bool = False) -> dict[str, Any]:
        """Send the draft. Without ``confirm=True`` nothing is sent."""
        self.message = send_draft(self.client, self.id, confirm=confirm)
        return self.message

    def _repr_html_(self) -> str:
        state = "sent" if self.sent else "draft (not sent)"
        return (
            f"<p>Message <code>{html.escape(self.id)}</code>: {state}.</p>"
            + self.preview()._repr_html_()
        )


def create_draft(
    client: Any,
    to: Any,
    subject: str,
    body: str,
    *,
    cc: Any = None,
    bcc: Any = None,
    tracking: bool = True,
) -> Draft:
    """Create a Mixmax draft (nothing is sent). ``to``/``cc``/``bcc`` as in
    :func:`plan_unsubscribe`: a pasted string, addresses or ``{email, name}`` dicts."""
    data: dict[str, Any] = {
        "to": _recipients(to, "to"),
        "subject": str(subject),
        "body": str(body),
        "trackingEnabled": bool(tracking),
        "linkTrackingEnabled": bool(tracking),
    }
    if not data["to"]:
        raise InputError("A draft needs at least one recipient.", field="to")
    for name, value in (("cc", cc), ("bcc", bcc)):
        if value:
            data[name] = _recipients(value, name)
    result = run_sync(_aio(client).run("create-message", data))
    output = result.get("output")
    if not isinstance(output, Mapping) or not output.get("_id"):
        raise MixmaxNbError("create-message returned no draft.")
    return Draft(client, dict(output), str(result.get("actionRunId") or ""))


def send_draft(client: Any, message_id: str, *, confirm: bool = False) -> dict[str, Any]:
    """Send a draft by id, only with ``confirm=True``; refuse one already sent.

    The message is read first, so running the cell again reports "already sent"
    instead of asking Mixmax to send twice.
    """
    if confirm is not True:
        raise InputError(
            f"Not sent: message {message_id}.",
            field="confirm",
            hint="Preview it, then call again with confirm=True.",
        )
    aio = _aio(client)
    current = run_sync(aio.message(message_id))
    if current.get("sent"):
        raise InputError(
            f"Message {message_id} was already sent; not sending it again.", field="messageId"
        )
    output = run_sync(aio.run_action("send-message", {"messageId": message_id}))
    if not isinstance(output, Mapping):
        raise MixmaxNbError("send-message returned no message.")
    return dict(output)


# -- polls -----------------------------------------------------------------------------


def poll_chart(client: Any, poll: Mapping[str, Any] | str) -> go.Figure:
    """A poll's answers per option as a bar chart (a poll record or its id)."""
    from . import charts, frames

    aio = _aio(client)
    record = run_sync(aio.poll(poll)) if isinstance(poll, str) else dict(poll)
    frame = frames.shape("poll_results", [record])
    frame.attrs["source"] = aio.backend
    return charts.poll_results_chart(frame, record.get("question"))
