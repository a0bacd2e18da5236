"""export.save: one helper for spreadsheet-safe CSV and XLSX, read back with real readers."""

from __future__ import annotations

import warnings
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

import mixmax_nb as mx
from mixmax_nb.data import export


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "subject": pd.array(['=HYPERLINK("x")', "Hi Ann", None], dtype="string"),
            "sent_at": pd.to_datetime(
                ["2026-11-02T09:30:00Z", "2026-11-03T23:15:00Z", None], utc=True
            ).astype("datetime64[ms, UTC]"),
            "opens": pd.array([3, None, 0], dtype="Int64"),
            "replied": pd.array([True, False, None], dtype="boolean"),
            "variables": [{"First name": "Ann"}, None, {"n": 1}],
            "state": pd.Categorical(["sent", "+draft", "sent"]),
        }
    )


def test_xlsx_writes_zoned_times_in_one_zone_named_in_the_header(tmp_path: Path) -> None:
    path = mx.export.save(_frame(), tmp_path / "out.xlsx", tz="America/St_Johns")
    sheet = openpyxl.load_workbook(path).active
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[0] == [
        "subject",
        "sent_at (America/St_Johns)",
        "opens",
        "replied",
        "variables",
        "state",
    ]
    # 09:30 UTC is 06:00 in St John's (UTC-3:30 in November); empty cells stay empty.
    assert str(rows[1][1]) == "2026-11-02 06:00:00"
    assert rows[3][1] is None and rows[2][2] is None and rows[3][3] is None
    assert rows[1][0] == '\'=HYPERLINK("x")'  # never a formula
    assert rows[2][5] == "'+draft"  # categoricals defused too
    assert rows[1][4] == '{"First name": "Ann"}'  # objects as JSON text
    assert (rows[1][2], rows[1][3]) == (3, True)


def test_xlsx_replaces_characters_excel_cannot_hold_and_says_so(tmp_path: Path) -> None:
    frame = pd.DataFrame({"name": pd.array(["ok", "bell\x07here"], dtype="string")})
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        export.save(frame, tmp_path / "odd.xlsx")
    assert any("1 character(s)" in str(w.message) for w in seen)
    sheet = openpyxl.load_workbook(tmp_path / "odd.xlsx").active
    assert sheet["A3"].value == "bell\ufffdhere"


def test_csv_and_an_unknown_suffix(tmp_path: Path) -> None:
    path = export.save(_frame(), tmp_path / "out.csv")
    text = path.read_text(encoding="utf-8-sig")
    assert text.splitlines()[1].startswith('"\'=HYPERLINK(""x"")"')
    with pytest.raises(mx.InputError, match=r"\.csv or \.xlsx"):
        export.save(_frame(), tmp_path / "out.json")


def test_the_events_frame_of_a_pull_goes_to_excel(tmp_path: Path) -> None:
    client = mx.connect("sandbox", size="small", db=":memory:")
    events = client.events(since="2025-05-30")
    path = export.save(events, tmp_path / "events.xlsx")
    sheet = openpyxl.load_workbook(path).active
    assert sheet.max_row == len(events) + 1
    assert "timestamp (UTC)" in [c.value for c in sheet[1]]
    client.close()
