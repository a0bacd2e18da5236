"""Account housekeeping: unsubscribes, message drafts, safe HTML previews.

Every write follows the same two steps, so a re-run cell or a stray click cannot do
what nobody read, and every write is a client method (the one write path):

* **preview** -- ``client.plan_unsubscribe`` / ``client.plan_resubscribe`` read the
  current list and say, per address, what would happen (nothing is written);
  ``client.create_draft`` creates a *draft* (nothing is sent) and :meth:`Draft.preview`
  shows it;
* **confirm** -- ``client.apply_unsubscribes`` and ``client.send_draft`` (or
  :meth:`Draft.send`) do nothing unless called with ``confirm=True``; a draft that was
  already sent is refused rather than sent again.

``html`` (pure) makes the previews inert; ``charts.poll_chart`` draws a poll's answers.
"""

from __future__ import annotations

from .drafts import Draft
from .html import CSP, SafePreview, preview_snippet, safe_preview, safe_preview_html, sanitize_html
from .unsubscribes import UnsubscribePlan

__all__ = [
    "CSP",
    "Draft",
    "SafePreview",
    "UnsubscribePlan",
    "preview_snippet",
    "safe_preview",
    "safe_preview_html",
    "sanitize_html",
]
