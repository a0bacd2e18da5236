"""Email syntax checks and the keys that decide who is "the same person" (pure).

Two values matter for every address:

- the **normalized** address, what we send to Mixmax: email-validator's
  normalization (domain lower-cased and IDNA-checked, Unicode NFC), the local
  part's case kept, because the local part is case-sensitive by the RFC and
  Mixmax stores it as given;
- the **key**, ``normalized.casefold()``: Mixmax matches duplicates and
  unsubscribes case-sensitively, so ``John@acme.com`` and ``john@acme.com`` would
  be mailed twice. Planning compares keys, never raw strings.

No network look-ups (``check_deliverability=False``). Checking a domain costs
about 30 µs in email-validator (IDNA), so domains are validated once each and
plain ASCII local parts with the same rule email-validator applies (dot-atom);
anything else goes through the full validator. A test holds the fast path equal
to the full one.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

# RFC 5322 atext, as in email_validator.rfc_constants (ASCII only).
_ATEXT = r"a-zA-Z0-9_!#\$%&'\*\+\-/=\?\^`\{\|\}~"
_PLAIN = re.compile(rf"([{_ATEXT}]+(?:\.[{_ATEXT}]+)*)@([A-Za-z0-9.\-]+)\Z")
_LOCAL_MAX = 64  # RFC 5321 limits email-validator enforces
_ADDRESS_MAX = 254
# Characters people paste around an address from spreadsheets and mail clients.
_STRIP = " \t\r\n\u00a0\u200b\ufeff"


@dataclass(frozen=True, slots=True)
class Checked:
    """One address checked: ``email`` is None exactly when ``error`` is set."""

    original: str
    email: str | None
    error: str | None

    @property
    def key(self) -> str | None:
        return email_key(self.email) if self.email is not None else None


def email_key(email: str) -> str:
    """The case-insensitive identity of an already normalized address."""
    return email.casefold()


@lru_cache(maxsize=65_536)
def _domain(domain: str) -> tuple[str | None, str | None]:
    """(normalized domain, None) or (None, error) -- through the full validator, once."""
    try:
        result = validate_email(f"x@{domain}", check_deliverability=False)
    except EmailNotValidError as exc:
        return None, str(exc)
    return result.domain, None


def _full(text: str) -> tuple[str | None, str | None]:
    try:
        result = validate_email(text, check_deliverability=False, allow_display_name=True)
    except EmailNotValidError as exc:
        return None, str(exc)
    return result.normalized, None


def _is_missing(value: object) -> bool:
    """None, NaN, or pandas' NA / NaT (checked by name: this module imports no pandas)."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(value, float) and value != value


def check_email(value: object) -> Checked:
    """Check one value (anything a spreadsheet cell may hold)."""
    if _is_missing(value):
        return Checked("", None, "The email address is empty.")
    original = str(value)
    text = original.strip(_STRIP)
    if text.lower().startswith("mailto:"):
        text = text[7:].strip(_STRIP)
    if not text:
        return Checked(original, None, "The email address is empty.")
    match = _PLAIN.match(text)
    if match and len(match.group(1)) <= _LOCAL_MAX and len(text) <= _ADDRESS_MAX:
        domain, error = _domain(match.group(2))
        if domain is None:
            return Checked(original, None, error)
        address = f"{match.group(1)}@{domain}"
        if len(address) <= _ADDRESS_MAX:
            return Checked(original, address, None)
    email, error = _full(text)
    return Checked(original, email, error)


def normalize_email(value: object) -> str | None:
    """The normalized address, or None if ``value`` is not a valid address."""
    return check_email(value).email


def check_emails(values: Iterable[object]) -> list[Checked]:
    """Check many values; repeated values are checked once."""
    seen: dict[object, Checked] = {}
    out: list[Checked] = []
    for value in values:
        try:
            checked = seen.get(value)
        except TypeError:  # unhashable cell content
            checked = None
        if checked is None:
            checked = check_email(value)
            with contextlib.suppress(TypeError):
                seen[value] = checked
        out.append(checked)
    return out


def split_pasted(text: str) -> list[str]:
    """Addresses pasted as text: separated by new lines, commas, semicolons or spaces.

    ``Jane Doe <jane@acme.com>`` stays whole: words without an ``@`` right before
    a ``<...>`` are its display name. Other stray words are kept as items, so the
    plan reports them as invalid instead of silently dropping them.
    """
    items: list[str] = []
    for line in text.splitlines():
        words: list[str] = []
        for token in _PASTE_TOKEN.findall(line):
            if token.startswith("<"):
                items.append(" ".join([*words, token]))
                words = []
            elif "@" in token:
                items.extend(words)
                words = []
                items.append(token)
            else:
                words.append(token)
        items.extend(words)
    return items


_PASTE_TOKEN = re.compile(r"<[^<>]*>|[^\s,;<>]+")
