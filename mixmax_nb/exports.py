"""Exports safe to open in a spreadsheet (pure).

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (or
their full-width forms, which some spreadsheets normalise) is read as a formula by
Excel, LibreOffice and Google Sheets: data such as a prospect's name could then run
``=HYPERLINK(...)`` or worse (OWASP "CSV injection"). Every CSV the toolkit writes
goes through here, so such cells get a leading ``'`` and are shown as text.
"""

from __future__ import annotations

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


def neutralize_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells and headers cannot run as spreadsheet formulas."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
            out[column] = series.map(defuse, na_action="ignore").astype(object)
    out.columns = pd.Index([defuse(str(c)) for c in out.columns])
    return out


def safe_csv(frame: pd.DataFrame, path: str | Path | None = None) -> str | None:
    """Write ``frame`` as CSV safe for spreadsheets; return the text when ``path`` is None."""
    clean = neutralize_formulas(frame)
    if path is None:
        buffer = io.StringIO()
        clean.to_csv(buffer, index=False)
        return buffer.getvalue()
    clean.to_csv(path, index=False, encoding="utf-8-sig")  # BOM: Excel then reads UTF-8
    return None
