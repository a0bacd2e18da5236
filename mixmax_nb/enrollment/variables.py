"""Which variables a sequence needs, and which input columns fill them (pure).

A Mixmax sequence's templates use ``{{First name}}``-style placeholders in each
stage's subject and HTML body, and the sequence lists the names it uses in
``variables``. A recipient added without a value for one of them gets
``error: Missing variable`` from Mixmax, so the plan checks them first.

Template syntax beyond ``{{name}}`` is not documented; we read it leniently:
``{{name|fallback}}`` / ``{{name || "fallback"}}`` have a fallback and are not
required; handlebars block tags (``{{#if}}``, ``{{/if}}``, ``{{else}}``,
comments) are not variables. ``Email`` is filled by Mixmax from the address.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
_TAGS = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")

# Filled by Mixmax itself: never asked of the input.
BUILTIN = frozenset({"email", "emailaddress"})

# Column names people use for the common variables, squashed (see squash()).
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "firstname": ("first", "fname", "givenname", "forename", "prenom"),
    "lastname": ("last", "lname", "surname", "familyname", "nom"),
    "fullname": ("name", "contactname", "contact"),
    "company": ("companyname", "organization", "organisation", "org", "account", "accountname"),
    "title": ("jobtitle", "position", "role"),
}


def squash(name: str) -> str:
    """``"First name"``, ``first_name`` and ``firstName`` all become ``firstname``."""
    return _NOT_ALNUM.sub("", name.casefold())


def _clean(name: str) -> str:
    return _SPACES.sub(" ", html.unescape(name)).strip()


def template_variables(text: str) -> tuple[list[str], list[str]]:
    """(required, optional) variable names used in one subject or HTML body, in order."""
    required: list[str] = []
    optional: list[str] = []
    # Editors sometimes wrap parts of a placeholder in tags (<span>{{First</span> name}}).
    plain = _TAGS.sub("", text) if "<" in text else text
    for match in _PLACEHOLDER.finditer(plain):
        inner = _clean(match.group(1))
        if not inner or inner[0] in "#/!>^&" or inner in ("else", "this"):
            continue
        name, bar, _fallback = inner.partition("|")
        name = name.strip()
        if not name:
            continue
        target = optional if bar else required
        if name not in target:
            target.append(name)
    return required, optional


def required_variables(variables: Iterable[str], templates: Iterable[str]) -> list[str]:
    """Names the input must fill: used without a fallback in a template, or listed by the
    sequence (unless a template gives it a fallback); ``Email`` excluded."""
    required: list[str] = []
    optional: set[str] = set()
    for text in templates:
        if not text:
            continue
        req, opt = template_variables(text)
        required.extend(r for r in req if r not in required)
        optional.update(opt)
    optional -= set(required)  # a fallback in one place does not help the other
    for name in variables:
        name = _clean(str(name))
        if name and name not in required and name not in optional:
            required.append(name)
    return [r for r in required if squash(r) not in BUILTIN]


def guess_columns(names: Iterable[str], columns: Sequence[str]) -> dict[str, str]:
    """Variable -> input column, for the names a column obviously fills.

    Exact name first, then the squashed name (case, spaces, ``_`` ignored), then
    common synonyms (``fname`` for ``First name``). A column is used once.
    """
    by_squash: dict[str, str] = {}
    for column in columns:
        by_squash.setdefault(squash(str(column)), str(column))
    taken: set[str] = set()
    out: dict[str, str] = {}
    for name in names:
        candidates = [name, by_squash.get(squash(name), "")]
        for alias in _SYNONYMS.get(squash(name), ()):
            candidates.append(by_squash.get(alias, ""))
        for key, aliases in _SYNONYMS.items():
            if squash(name) in aliases:
                candidates.append(by_squash.get(key, ""))
        for candidate in candidates:
            if candidate and candidate in columns and candidate not in taken:
                out[name] = candidate
                taken.add(candidate)
                break
    return out


def guess_email_column(columns: Sequence[str]) -> str | None:
    """The column that holds the address: ``email``, ``Email``, ``E-mail address``..."""
    squashed = {squash(str(c)): str(c) for c in reversed(list(columns))}
    for name in ("email", "emailaddress", "mail", "workemail", "businessemail", "to"):
        if name in squashed:
            return squashed[name]
    return None


def describe_mapping(mapping: Mapping[str, str]) -> str:
    return ", ".join(f"{{{{{var}}}}} <- {col!r}" for var, col in mapping.items())
