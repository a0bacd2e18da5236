"""Reading recipients (hostile CSVs, lists, frames) and email normalization."""

from __future__ import annotations

import codecs
import io
from pathlib import Path

import pandas as pd
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from mixmax_nb.data.export import neutralize_formulas, safe_csv
from mixmax_nb.enrollment import (
    SequenceInfo,
    build_plan,
    check_email,
    normalize_email,
    split_pasted,
)
from mixmax_nb.enrollment.emails import email_key
from mixmax_nb.enrollment.input import read_recipients, sniff_delimiter
from mixmax_nb.errors import InputError

# -- hostile CSVs -------------------------------------------------------------------------


def test_bom_semicolons_quotes_newlines_blank_lines():
    text = (
        "email;first name;note\r\n"
        "\r\n"
        '"a@acme.com";"Jo; ""the boss""\nsecond line";x\r\n'
        ";;\r\n"
        "   \r\n"
        "b@acme.com;Bea\r\n"  # short row: padded
    )
    frame = read_recipients(codecs.BOM_UTF8 + text.encode("utf-8"))
    assert list(frame.columns) == ["email", "first name", "note"]
    assert frame["email"].tolist() == ["a@acme.com", "b@acme.com"]
    assert frame["first name"].iloc[0] == 'Jo; "the boss"\nsecond line'
    assert frame["note"].iloc[1] == ""


def test_utf16_and_cp1252_exports():
    text = "email\tname\nzoë@acme.com\tZoë\n"
    frame = read_recipients(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert frame["name"].tolist() == ["Zoë"]
    frame = read_recipients("email,name\nz@acme.com,Zoë\n".encode("cp1252"))
    assert frame["name"].tolist() == ["Zoë"]


def test_formula_looking_values_stay_text_and_are_neutralized_on_export():
    text = 'email,name\n"=HYPERLINK(""http://evil"",""x"")",=1+1\n+a@acme.com,@SUM(A1)\n'
    frame = read_recipients(io.StringIO(text))
    assert frame["email"].iloc[0] == '=HYPERLINK("http://evil","x")'
    plan = build_plan(SequenceInfo("s"), frame)
    assert plan.frame["reason"].iloc[0] == "invalid_email"
    csv_text = safe_csv(plan.frame[["email_input", "detail"]])
    assert csv_text is not None
    for line in csv_text.splitlines()[1:]:
        assert not line.lstrip('"').startswith(("=", "+", "-", "@"))
    clean = neutralize_formulas(frame)
    assert clean["name"].tolist() == ["'=1+1", "'@SUM(A1)"]


def test_values_that_pandas_would_eat_stay_as_written():
    frame = read_recipients(io.StringIO("email,zip,name\na@x.com,02139,NA\nb@x.com,,null\n"))
    assert frame["zip"].tolist() == ["02139", ""]
    assert frame["name"].tolist() == ["NA", "null"]


def test_too_many_fields_names_the_row_and_trailing_empties_are_fine():
    assert read_recipients(io.StringIO("email,name,\na@x.com,A,,\n"))["name"].tolist() == ["A"]
    with pytest.raises(InputError, match="Row 2"):
        read_recipients(io.StringIO("email,name\na@x.com,A\nb@x.com,Smith, Bob\n"))


def test_duplicate_and_blank_header_names():
    frame = read_recipients(io.StringIO("email,name,name,\nA@x.com,1,2,3\n"))
    assert list(frame.columns) == ["email", "name", "name_2", "column_4"]
    frame = read_recipients(io.StringIO("email,name,,\nA@x.com,1,,\n"))
    assert list(frame.columns) == ["email", "name"]


def test_sniffing():
    assert sniff_delimiter('"a,b";c;d\n1;2;3') == ";"
    assert sniff_delimiter("email\nx@y.com") == ","
    assert sniff_delimiter("\n\nemail|name\n") == "|"


def test_paths_file_objects_and_bad_sources(tmp_path: Path):
    path = tmp_path / "people.csv"
    path.write_text("email\na@x.com\n", encoding="utf-8")
    assert len(read_recipients(path)) == 1
    assert len(read_recipients(str(path))) == 1
    with path.open("rb") as fh:
        assert len(read_recipients(fh)) == 1
    with pytest.raises(InputError, match="No CSV file"):
        read_recipients(str(tmp_path / "missing.csv"))
    with pytest.raises(InputError, match="not a path"):
        read_recipients("a@x.com\nb@x.com")
    with pytest.raises(InputError, match="empty"):
        read_recipients(io.StringIO("\n\n"))
    with pytest.raises(InputError, match="no recipients"):
        read_recipients(io.StringIO("email\n\n"))
    with pytest.raises(InputError):
        read_recipients(42)


def test_lists_series_and_frames():
    assert read_recipients(["a@x.com", "b@x.com"])["email"].tolist() == ["a@x.com", "b@x.com"]
    assert read_recipients(pd.Series(["a@x.com"]), email="mail").columns.tolist() == ["mail"]
    df = pd.DataFrame({"email": ["a@x.com"]})
    copy = read_recipients(df)
    assert copy is not df and copy.equals(df)
    with pytest.raises(InputError, match="no recipients"):
        read_recipients([])
    with pytest.raises(InputError):
        read_recipients([1, 2])


def test_split_pasted():
    text = "a@x.com, b@x.com;c@x.com\n\n Jane Doe <j@x.com>\td@x.com"
    assert split_pasted(text) == ["a@x.com", "b@x.com", "c@x.com", "Jane Doe <j@x.com>", "d@x.com"]


def test_hundred_thousand_rows_read_and_planned():
    # How long this takes is a figure of benchmarks/bench_input.py, not a test.
    rows = "\n".join(f'user{i}@ex{i % 500}.com;Name {i};"Acme; Inc"' for i in range(100_000))
    data = ("\ufeffemail;first_name;company\n" + rows + "\n").encode("utf-8")
    frame = read_recipients(data)
    plan = build_plan(SequenceInfo("s", variables=("First name",)), frame)
    assert len(plan.to_add) == 100_000
    assert plan.to_add["email"].iloc[99_999] == "user99999@ex499.com"
    assert plan.recipients()[0] == {"email": "user0@ex0.com", "variables": {"First name": "Name 0"}}


# -- normalization --------------------------------------------------------------------------

_local = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+\-]{0,20}[A-Za-z0-9]", fullmatch=True).filter(
    lambda s: ".." not in s
)
_domain = st.from_regex(
    r"[A-Za-z][A-Za-z0-9\-]{0,10}[A-Za-z0-9]\.(com|org|io|co\.uk|example)", fullmatch=True
).filter(lambda d: d[2:4] != "--")  # IDNA reserves "--" in label positions 3-4 ("xn--")
_addresses = st.builds(lambda a, b: f"{a}@{b}", _local, _domain)


@settings(max_examples=300, deadline=None)
@given(_addresses)
def test_normalization_is_idempotent(address: str):
    once = normalize_email(address)
    assert once is not None
    assert normalize_email(once) == once


@settings(max_examples=300, deadline=None)
@given(_addresses, st.lists(st.booleans(), min_size=1, max_size=40))
def test_case_variants_collapse_to_one_key(address: str, flips: list[bool]):
    variant = "".join(
        c.upper() if flips[i % len(flips)] else c.lower() for i, c in enumerate(address)
    )
    a, b = check_email(address), check_email(variant)
    assert a.key is not None and a.key == b.key
    assert email_key(a.email or "") == email_key(b.email or "")


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=40) | _addresses)
def test_fast_path_agrees_with_the_full_validator(text: str):
    try:
        expected: str | None = validate_email(
            text.strip(" \t\r\n\u00a0\u200b\ufeff"),
            check_deliverability=False,
            allow_display_name=True,
        ).normalized
    except EmailNotValidError:
        expected = None
    got = check_email(text)
    if text.strip().lower().startswith("mailto:"):
        return  # we strip a mailto: prefix; the validator does not
    assert got.email == expected
    assert (got.error is None) == (expected is not None)


def test_unicode_and_display_names():
    assert normalize_email("Zoe <ZOË@Bücher.DE>") == "ZOË@bücher.de"
    assert check_email("ZOË@bücher.de").key == check_email("zoë@BÜCHER.de").key
    assert normalize_email("mailto:a@x.com") == "a@x.com"
    assert normalize_email(None) is None
    assert normalize_email(float("nan")) is None
    assert normalize_email(pd.NA) is None


def test_one_stray_legacy_byte_in_a_utf8_file_is_refused_naming_its_line() -> None:
    data = "email,first_name\njose@acme.com,José\n".encode() + b"zoe@acme.com,Zo\xeb\n"
    with pytest.raises(InputError, match=r"Line 3 of the CSV is not UTF-8") as info:
        read_recipients(data)
    assert "nothing was read" in str(info.value)


def test_a_wholly_legacy_file_is_read_and_says_so() -> None:
    data = "email,first_name\njose@acme.com,José\n".encode("cp1252")
    frame = read_recipients(data)
    assert list(frame["first_name"]) == ["José"]
    assert "Windows-1252" in frame.attrs["encoding_note"]
    assert "encoding_note" not in read_recipients(b"email\na@x.com\n").attrs


@pytest.mark.parametrize("text", [";", ",,,", ";;;\n;;;\n", " , \n"])
def test_a_delimiter_only_csv_is_a_clear_input_error(text: str) -> None:
    with pytest.raises(InputError, match="only delimiters"):
        read_recipients(text.encode())
