"""Dialled numbers: E.164 from what people type, and the country a whitelist is held to."""

from __future__ import annotations

import pytest

from voxgate.services.dialplan import dialled, looks_like_number


@pytest.mark.parametrize(
    ("dest", "localization", "e164", "country"),
    [
        ("+1 (212) 555-1234", "US", "+12125551234", "US"),
        ("2125551234", "US", "+12125551234", "US"),
        ("12125551234", "US", "+12125551234", "US"),
        ("020 7946 0000", "GB", "+442079460000", "GB"),
        ("+16135550100", "GB", "+16135550100", "CA"),
        ("+18765550100", "US", "+18765550100", "JM"),
    ],
)
def test_numbers_become_e164_with_their_country(
    dest: str, localization: str, e164: str, country: str
) -> None:
    found = dialled(dest, localization)
    assert found is not None and found.e164 == e164 and found.countries == {country}
    assert found.allowed([country]) and not found.allowed(["FR"])


def test_a_number_no_country_claims_counts_as_all_that_share_its_code() -> None:
    found = dialled("+15551234567", "US")
    assert found is not None and found.e164 == "+15551234567"
    assert {"US", "CA", "JM"} <= found.countries
    assert not found.allowed(["US", "CA"])  # +1 reaches the Caribbean too: never a guess


@pytest.mark.parametrize("dest", ["12", "+1", "+999123456", "abc", "+1 212 555 1234 5678 9"])
def test_what_cannot_be_a_number_is_none(dest: str) -> None:
    assert dialled(dest, "US") is None


def test_numbers_are_told_from_sip_users_and_names() -> None:
    assert looks_like_number("+1 (212) 555-1234") and looks_like_number("911")
    for dest in ("gencredABC", "alice", "assistant-1", "", "12"):
        assert not looks_like_number(dest)
