"""Exports safe to open in a spreadsheet (pure).

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (or
their full-width forms, which some spreadsheets normalise) is read as a formula by
Excel, LibreOffice and Google Sheets: data such as a prospect's name could then run
``=HYPERLINK(...)`` or worse (OWASP "CSV injection"). Every CSV the toolkit writes
goes through here, so such cells get a leading ``'`` and are shown as text.
"""

from __future__ import annotations

import csv
import io
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
