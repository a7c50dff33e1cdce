"""What a caller dialled, read as a phone number: the E.164 form a carrier is sent and the
country it rings in (what ``whitelisted_destinations`` is checked against).

A number written without ``+`` is read in the connection's ``localization`` (Telnyx's field:
``2125551234`` with ``US`` is ``+12125551234``). The country is libphonenumber's for the
number; a number it cannot place (a ``+1`` range it does not know) counts as every country
sharing its calling code, so a whitelist of ``US`` never lets ``+1 876`` (Jamaica) through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Dialled", "dialled", "looks_like_number"]

_NUMBER = re.compile(r"^\+?[0-9][0-9\s().-]{2,30}$")
_DECORATION = re.compile(r"[\s().-]")


@dataclass(frozen=True, slots=True)
class Dialled:
    e164: str
    countries: frozenset[str]  # one, unless libphonenumber cannot tell which shares the code

    def allowed(self, whitelist: list[str]) -> bool:
        return bool(self.countries) and self.countries <= set(whitelist)


def looks_like_number(dest: str) -> bool:
    """Digits (and the decorations people type), not a SIP user or a credential's name."""
    return bool(_NUMBER.match(dest.strip()))


def dialled(dest: str, localization: str) -> Dialled | None:
    """None when ``dest`` cannot be a phone number (too short or long for its country)."""
    import phonenumbers

    compact = _DECORATION.sub("", dest.strip())
    try:
        parsed = phonenumbers.parse(compact, None if compact.startswith("+") else localization)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    number = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    region = phonenumbers.region_code_for_number(parsed)
    if region and region != "001":
        return Dialled(number, frozenset({region}))
    shared = phonenumbers.region_codes_for_country_code(parsed.country_code or 0)
    return Dialled(number, frozenset(r for r in shared if r != "001"))
