"""Planning rules one by one (pure: no client, no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import pytest

from mixmax_nb.enrollment import (
    Schedule,
    SequenceInfo,
    build_cancel_plan,
    build_plan,
    guess_columns,
    required_variables,
    sending_days,
)
from mixmax_nb.enrollment.variables import template_variables
from mixmax_nb.errors import InputError

SEQ = SequenceInfo(
    id="s1",
    name="Q3",
    variables=("First name",),
    templates=("Hi {{First name}}", "<p>{{ Company | there }}</p>"),
)


def frame(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["email", "first_name"])


def reasons(plan: Any) -> list[Any]:
    return [None if pd.isna(r) else r for r in plan.frame["reason"]]


def test_valid_rows_are_added_with_normalized_email_and_variables():
    plan = build_plan(SEQ, frame((" Jane@ACME.com ", "Jane")))
    row = plan.frame.iloc[0]
    assert row["action"] == "add"
    assert row["email"] == "Jane@acme.com"  # domain lower-cased, local part kept
    assert row["email_input"] == " Jane@ACME.com "
    assert row["variables"] == {"First name": "Jane"}
    assert row["row"] == 1


def test_invalid_email():
    plan = build_plan(SEQ, frame(("nope", "A"), ("", "B"), ("a@b", "C")))
    assert reasons(plan) == ["invalid_email"] * 3
    assert "@" in plan.frame["detail"].iloc[0]


def test_duplicate_in_input_including_case_variants():
    plan = build_plan(SEQ, frame(("a@acme.com", "A"), ("A@Acme.com", "A2"), ("a@acme.com", "A3")))
    assert reasons(plan) == [None, "duplicate_in_input", "duplicate_in_input"]
    assert "row 1" in plan.frame["detail"].iloc[1]
    assert "case variant" in plan.frame["detail"].iloc[1]


def test_a_row_missing_variables_does_not_claim_the_address():
    plan = build_plan(SEQ, frame(("a@acme.com", ""), ("A@acme.com", "Ann")))
    assert reasons(plan) == ["missing_variables", None]


def test_already_in_sequence_including_case_variants():
    existing = pd.DataFrame(
        {"email": ["Bob@acme.com", "c@acme.com"], "state": ["active", "completed"]}
    )
    plan = build_plan(
        SEQ,
        frame(("bob@acme.com", "B"), ("c@acme.com", "C"), ("d@acme.com", "D")),
        existing=existing,
    )
    assert reasons(plan) == ["already_in_sequence", "already_in_sequence", None]
    assert "case variant" in plan.frame["detail"].iloc[0]
    assert "completed" in plan.frame["detail"].iloc[1]


def test_unsubscribed_case_insensitive_and_domains():
    plan = build_plan(
        SEQ,
        frame(("x@acme.com", "X"), ("y@blocked.com", "Y"), ("z@ok.com", "Z")),
        unsubscribed=pd.DataFrame({"email": ["X@ACME.COM", "@blocked.com"]}),
    )
    assert reasons(plan) == ["unsubscribed", "unsubscribed", None]
    assert "domain" in plan.frame["detail"].iloc[1]


def test_missing_required_variables():
    plan = build_plan(SEQ, frame(("a@acme.com", "  "), ("b@acme.com", None)))  # type: ignore[arg-type]
    assert reasons(plan) == ["missing_variables"] * 2
    assert "First name" in plan.frame["detail"].iloc[0]


def test_rule_order_invalid_then_unsubscribed_then_in_sequence():
    plan = build_plan(
        SEQ,
        frame(("a@acme.com", ""), ("bad", "")),
        existing=pd.DataFrame({"email": ["a@acme.com"], "state": ["active"]}),
        unsubscribed=["a@acme.com"],
    )
    assert reasons(plan) == ["unsubscribed", "invalid_email"]


def test_journaled_addresses_are_already_in_sequence():
    plan = build_plan(SEQ, frame(("a@acme.com", "A")), journaled={"a@acme.com": "drafted earlier"})
    assert reasons(plan) == ["already_in_sequence"]
    assert plan.frame["detail"].iloc[0] == "drafted earlier"


def test_variables_explicit_mapping_and_unknown_column():
    data = pd.DataFrame({"mail": ["a@acme.com"], "fn": ["A"], "co": ["Acme"]})
    plan = build_plan(SEQ, data, email="mail", variables={"First name": "fn", "Company": "co"})
    assert plan.recipients() == [
        {"email": "a@acme.com", "variables": {"First name": "A", "Company": "Acme"}}
    ]
    with pytest.raises(InputError, match="'nope'"):
        build_plan(SEQ, data, email="mail", variables={"First name": "nope"})


def test_missing_email_column_and_empty_input():
    with pytest.raises(InputError, match="no column 'email'") as info:
        build_plan(
            SEQ, pd.DataFrame({"E-mail Address": ["a@x.com"], "first_name": ["A"]}), email="email"
        )
    assert "E-mail Address" in (info.value.hint or "")
    # Without email=..., the column is found by its name.
    plan = build_plan(SEQ, pd.DataFrame({"E-mail Address": ["a@x.com"], "first_name": ["A"]}))
    assert plan.email_column == "E-mail Address"
    with pytest.raises(InputError, match="no recipients"):
        build_plan(SEQ, frame())
    with pytest.raises(InputError, match="No email column"):
        build_plan(SEQ, pd.DataFrame({"name": ["x"]}))


def test_unmapped_required_variable_names_it():
    with pytest.raises(InputError, match=r"\{\{First name\}\}"):
        build_plan(SEQ, pd.DataFrame({"email": ["a@x.com"], "company": ["Acme"]}))


def test_numbers_become_text_without_dot_zero():
    seq = SequenceInfo("s", variables=("n",))
    plan = build_plan(seq, pd.DataFrame({"email": ["a@x.com"], "n": [42.0]}))
    assert plan.recipients()[0]["variables"] == {"n": "42"}


def test_summary_counts_and_sending_days():
    rows = [(f"p{i}@acme.com", "P") for i in range(1200)] + [("bad", "x"), ("p0@acme.com", "P")]
    plan = build_plan(SEQ, frame(*rows), daily_limit=500)
    summary = plan.summary(today=date(2026, 1, 2))  # a Friday
    assert summary.to_add == 1200
    assert summary.skipped["invalid_email"] == 1
    assert summary.skipped["duplicate_in_input"] == 1
    assert summary.sending_days == 3
    assert summary.first_day == date(2026, 1, 2)
    assert summary.last_day == date(2026, 1, 6)  # Fri, Mon, Tue: weekends skipped
    text = str(summary)
    assert "3 sending day(s)" in text and "1,200" in text
    counts = summary.counts
    assert counts.loc[counts["action"] == "add", "rows"].item() == 1200
    draft = plan.summary("draft")
    assert draft.sending_days == 0 and "drafts" in str(draft)


def test_sending_days_weekdays_only():
    days = sending_days(1001, 500, date(2026, 1, 3))  # Saturday
    assert days == [(date(2026, 1, 5), 500), (date(2026, 1, 6), 500), (date(2026, 1, 7), 1)]
    assert sending_days(0, 500, date(2026, 1, 5)) == []


def test_html_escapes_data():
    plan = build_plan(SEQ, frame(("<img src=x onerror=alert(1)>", "<b>x</b>")))
    html = plan._repr_html_()
    assert "<img" not in html and "&lt;img" in html


def test_fingerprint_depends_on_rows_and_schedule():
    a = build_plan(SEQ, frame(("a@acme.com", "A")))
    b = build_plan(SEQ, frame(("a@acme.com", "A"), ("bad", "x")))
    now, draft = Schedule.parse("now"), Schedule.parse("draft")
    assert a.fingerprint(now) == b.fingerprint(now)  # only the add rows count
    assert a.fingerprint(now) != a.fingerprint(draft)
    c = build_plan(SEQ, frame(("a@acme.com", "B")))
    assert a.fingerprint(now) != c.fingerprint(now)


def test_schedule_parsing():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert Schedule.parse("now").scheduled_at is None
    assert Schedule.parse("draft").scheduled_at is False
    at = Schedule.parse("2026-01-05 09:00", now=now)  # naive: UTC
    assert at.scheduled_at == int(datetime(2026, 1, 5, 9, tzinfo=UTC).timestamp() * 1000)
    assert at.token.startswith("at:")
    with pytest.raises(InputError, match="past"):
        Schedule.parse(datetime(2025, 1, 1, tzinfo=UTC), now=now)
    with pytest.raises(InputError):
        Schedule.parse(True)


def test_template_variables():
    assert template_variables("Hi {{ First name }}, {{company|there}} {{#if x}}{{/if}}") == (
        ["First name"],
        ["company"],
    )
    assert template_variables("<p>{{First&nbsp;name}}</p>") == (["First name"], [])
    assert required_variables(["Email", "title"], ["{{firstName}} {{title|}}"]) == ["firstName"]
    assert required_variables(["Email", "title"], []) == ["title"]


def test_guess_columns():
    cols = ["Email", "First Name", "company_name", "Job Title"]
    assert guess_columns(["firstName", "company", "title"], cols) == {
        "firstName": "First Name",
        "company": "company_name",
        "title": "Job Title",
    }


def test_cancel_plan_rules():
    existing = pd.DataFrame(
        {"email": ["A@x.com", "a@x.com", "b@x.com"], "state": ["active", "active", "completed"]}
    )
    plan = build_cancel_plan(
        SEQ, ["a@x.com", "b@x.com", "c@x.com", "bad", "A@X.com"], existing=existing
    )
    assert reasons(plan) == [
        None,
        "not_active",
        "not_in_sequence",
        "invalid_email",
        "duplicate_in_input",
    ]
    assert plan.emails() == ["A@x.com", "a@x.com"]  # both case variants leave
    assert "cancel: 1" in plan.summary()
    with pytest.raises(InputError):
        build_cancel_plan(SEQ, [], existing=existing)


def test_schedule_parse_accepts_a_schedule() -> None:
    from mixmax_nb.enrollment.plan import Schedule

    draft = Schedule.parse("draft")
    assert Schedule.parse(draft) is draft
