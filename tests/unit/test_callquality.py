"""Call report ids and the quality figures, pure."""

from __future__ import annotations

from voxgate.domain.callquality import mos, report_id, summarize, verify_report_id

KEY = b"k" * 32


def test_a_report_id_names_its_session_and_cannot_be_made_without_the_key() -> None:
    rid = report_id(KEY, "sess-1")
    assert rid.startswith("sess-1.") and verify_report_id(KEY, rid) == "sess-1"
    assert verify_report_id(b"x" * 32, rid) is None  # another deployment's key
    assert verify_report_id(KEY, "sess-2." + rid.split(".")[1]) is None  # moved to another
    assert verify_report_id(KEY, "garbage") is None and verify_report_id(b"", rid) is None


def test_mos_follows_the_simplified_e_model() -> None:
    assert mos(0, 0, 0) == 4.4  # R = 93.2 - 10/40 = 92.95: the best a call scores here
    assert mos(40, 5, 0) > mos(300, 30, 0) > mos(300, 30, 5)
    assert mos(2000, 500, 50) == 1.0  # clamped


def test_a_summary_of_nothing_is_empty_not_an_error() -> None:
    empty = summarize([{"summary": {"callId": "c"}}])
    assert empty["intervals"] == 0 and empty["mos"] is None and empty["rtt_ms_avg"] is None
    assert summarize([{"stats": [{"audio": "not an object"}, 7]}])["intervals"] == 1
