"""`action list --intent`: the sandbox's word ranking, with its small synonym table."""

from __future__ import annotations

import pytest

from mixmax_nb.sandbox.membrane import SYNONYMS, rank_actions


@pytest.mark.parametrize(
    ("intent", "expected"),
    [
        ("who am I", "get-current-user"),
        ("whoami", "get-current-user"),
        ("enroll people into a sequence", "add-recipient-to-sequence"),
        ("add recipients to a sequence", "add-recipient-to-sequence"),
        ("cancel", "cancel-sequence-recipient"),
        ("remove someone from a sequence", "cancel-sequence-recipient"),
        ("opens and clicks", "list-livefeed-events"),
        ("recent activity", "list-livefeed-events"),
        ("webhook rules", "list-rules"),
        ("send an email", "send-message"),
    ],
)
def test_everyday_words_rank_the_right_action_first(intent: str, expected: str) -> None:
    assert rank_actions(intent)[0].key == expected


def test_literal_matches_beat_synonyms() -> None:
    # "remove" is a keyword of remove-unsubscribe's name and a synonym of cancel.
    assert rank_actions("remove unsubscribe")[0].key == "remove-unsubscribe"
    # "enrolled" (the recipients list keyword) is not "enroll" + add.
    assert rank_actions("enrolled recipients of a sequence")[0].key == "get-sequence-recipients"


def test_unmatched_words_give_nothing() -> None:
    assert rank_actions("zebra quantum") == []
    assert all(k == k.lower() for k in SYNONYMS)
