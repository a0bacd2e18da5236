"""Exports safe to open in a spreadsheet: :func:`save` writes CSV or XLSX (by suffix).

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (or
their full-width forms, which some spreadsheets normalise) is read as a formula by
Excel, LibreOffice and Google Sheets: data such as a prospect's name could then run
``=HYPERLINK(...)`` or worse (OWASP "CSV injection"). Every CSV the toolkit writes
goes through here, so such cells get a leading ``'`` and are shown as text.

XLSX has no zoned timestamps: :func:`safe_xlsx` writes each zoned column in one zone
(UTC unless ``tz=`` says otherwise) with the zone in its header, e.g. ``sent_at (UTC)``;
Python objects (a recipient's variables) become JSON text; characters XML cannot hold
(control characters) are replaced with U+FFFD, and a warning says how many.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def defuse(value: Any) -> Any:
    """``value`` with a leading ``'`` when a spreadsheet would run it as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _is_text(series: pd.Series) -> bool:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return True  # categories are text as often as not (sequence names, senders)
    return pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)


def neutralize_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells (categorical ones included) and headers cannot run as
    spreadsheet formulas."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if _is_text(series):
            out[column] = series.astype(object).map(defuse, na_action="ignore")
    out.columns = pd.Index([defuse(str(c)) for c in out.columns])
    return out


def safe_csv(frame: pd.DataFrame, path: str | Path | None = None) -> str | None:
    """Write ``frame`` as CSV safe for spreadsheets; return the text when ``path`` is None.

    Every text cell is quoted: a bare carriage return inside an unquoted cell ends the
    row for a spreadsheet, and what follows it (``+1+2``) would start a new row as a
    formula. Quoted, a line break is part of the cell."""
    clean = neutralize_formulas(frame)
    options: dict[str, Any] = {
        "index": False,
        "quoting": csv.QUOTE_NONNUMERIC,
        "lineterminator": "\r\n",  # RFC 4180, which every spreadsheet reads
    }
    if path is None:
        buffer = io.StringIO()
        clean.to_csv(buffer, **options)
        return buffer.getvalue()
    clean.to_csv(path, encoding="utf-8-sig", **options)  # BOM: Excel then reads UTF-8
    return None


def _xlsx_ready(frame: pd.DataFrame, tz: str) -> tuple[pd.DataFrame, int]:
    """``frame`` as openpyxl can write it; and how many illegal characters were replaced."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    replaced = 0

    def text(value: Any) -> Any:
        nonlocal replaced
        if not isinstance(value, str):
            return value
        cleaned, n = ILLEGAL_CHARACTERS_RE.subn("\ufffd", value)
        replaced += n
        return cleaned

    out: dict[str, Any] = {}
    for name in frame.columns:
        series = frame[name]
        header = str(name)
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            series = series.dt.tz_convert(tz).dt.tz_localize(None)
            header = f"{name} ({tz})"
        elif series.dtype == object:
            series = series.map(
                lambda v: (
                    v
                    if v is None or isinstance(v, str | int | float | bool)
                    else json.dumps(v, default=str, ensure_ascii=False)
                ),
                na_action="ignore",
            )
        if _is_text(series) or series.dtype == object:
            series = series.astype(object).map(text, na_action="ignore")
        # Nullable dtypes: pd.NA is not a value Excel knows; an empty cell is.
        out[header] = series.astype(object).where(series.notna(), None)
    return pd.DataFrame(out, index=frame.index), replaced


def safe_xlsx(frame: pd.DataFrame, path: str | Path, *, tz: str = "UTC") -> Path:
    """Write ``frame`` as an Excel file that no cell can run a formula in (see the
    module docstring for zoned timestamps and odd characters); return the path."""
    target = Path(path)
    target.write_bytes(to_bytes(frame, "xlsx", tz=tz))
    return target


def save(frame: pd.DataFrame, path: str | Path, *, tz: str = "UTC") -> Path:
    """Write ``frame`` to ``path`` for a spreadsheet: ``.csv`` (:func:`safe_csv`) or
    ``.xlsx`` (:func:`safe_xlsx`, zoned timestamps in ``tz``). Any other suffix is an
    InputError saying which to use."""
    from ..errors import InputError

    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".csv":
        safe_csv(frame, target)
        return target
    if suffix == ".xlsx":
        return safe_xlsx(frame, target, tz=tz)
    raise InputError(
        f"Cannot export to {target.name!r}.",
        field="path",
        hint="Use a path ending in .csv or .xlsx.",
    )


MEDIA_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def to_bytes(frame: pd.DataFrame, kind: str, *, tz: str = "UTC") -> bytes:
    """What :func:`save` would write for ``kind`` (``"csv"`` or ``"xlsx"``), in memory:
    for a browser download, where the file must reach the person's machine, not the
    server's disk."""
    from ..errors import InputError

    if kind == "csv":
        text = safe_csv(frame)
        assert text is not None
        return ("\ufeff" + text).encode("utf-8")  # the BOM save() writes: Excel reads UTF-8
    if kind == "xlsx":
        ready, replaced = _xlsx_ready(neutralize_formulas(frame), tz)
        buffer = io.BytesIO()
        ready.to_excel(buffer, index=False, engine="openpyxl")
        if replaced:
            warnings.warn(
                f"{replaced} character(s) an Excel file cannot hold (control characters) "
                "were written as U+FFFD; the CSV export keeps them.",
                stacklevel=3,  # the caller of save() / safe_xlsx() / to_bytes()
            )
        return buffer.getvalue()
    raise InputError(f"Cannot export as {kind!r}.", field="kind", hint="Use 'csv' or 'xlsx'.")
