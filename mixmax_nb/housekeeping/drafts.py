"""Message drafts: create one (nothing is sent), preview it, send it with confirm.

Handed the client (``AsyncClient.create_draft`` / ``send_draft``). A draft already sent
is refused rather than sent again, so re-running a cell cannot email anyone twice.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._sync import run_sync
from ..errors import InputError, MixmaxNbError
from .html import SafePreview, safe_preview
from .unsubscribes import EMAIL, parse_emails

if TYPE_CHECKING:
    from ..client import AsyncClient


def _recipients(value: Any, field_name: str) -> list[dict[str, str]]:
    out = []
    for email, name in parse_emails(value or []):
        if not EMAIL.match(email):
            raise InputError(f"{email!r} is not an email address.", field=field_name)
        out.append({"email": email, **({"name": name} if name else {})})
    return out


@dataclass
class Draft:
    """A Mixmax draft: :meth:`preview` it, then :meth:`send` it with ``confirm=True``."""

    client: AsyncClient = field(repr=False)
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
        self.message = run_sync(self.client.send_draft(self.id, confirm=confirm))
        return self.message

    def _repr_html_(self) -> str:
        state = "sent" if self.sent else "draft (not sent)"
        return (
            f"<p>Message <code>{html.escape(self.id)}</code>: {state}.</p>"
            + self.preview()._repr_html_()
        )


async def create(
    client: AsyncClient,
    to: Any,
    subject: str,
    body: str,
    *,
    cc: Any = None,
    bcc: Any = None,
    tracking: bool = True,
) -> Draft:
    """Create a Mixmax draft (nothing is sent)."""
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
    result = await client.run("create-message", data)
    output = result.get("output")
    if not isinstance(output, Mapping) or not output.get("_id"):
        raise MixmaxNbError("create-message returned no draft.")
    return Draft(client, dict(output), str(result.get("actionRunId") or ""))


async def send(client: AsyncClient, message_id: str, *, confirm: bool = False) -> dict[str, Any]:
    """Send a draft by id, only with ``confirm=True``; refuse one already sent (the
    message is read first, so a re-run cell says "already sent")."""
    if confirm is not True:
        raise InputError(
            f"Not sent: message {message_id}.",
            field="confirm",
            hint="Preview it, then call again with confirm=True.",
        )
    current = await client.message(message_id)
    if current.get("sent"):
        raise InputError(
            f"Message {message_id} was already sent; not sending it again.", field="messageId"
        )
    output = await client.run_action("send-message", {"messageId": message_id})
    if not isinstance(output, Mapping):
        raise MixmaxNbError("send-message returned no message.")
    return dict(output)


__all__ = ["Draft", "create", "send"]
