"""Phone numbers and countries, checked with ``phonenumbers`` (Google's libphonenumber data).

The library takes a twentieth of a second to import, so it is loaded on first use: a CLI
command that never touches a number does not pay for it.
"""

from __future__ import annotations

import re

from voxgate.domain.errors import ValidationFailed

__all__ = ["E164", "e164", "regions"]

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_DECORATION = re.compile(r"[\s().-]")


def e164(text: str, pointer: str = "/phone_number") -> str:
    """``text`` (``+`` and the country code first; spaces, dots, dashes and brackets allowed)
    as E.164, or ``ValidationFailed`` at ``pointer`` for a number that cannot exist."""
    import phonenumbers

    field = pointer.rsplit("/", 1)[-1] or "phone_number"
    compact = _DECORATION.sub("", text.strip())
    if not compact.startswith("+"):
        raise ValidationFailed(
            f"{field} must be in +E.164 format: '+', the country code, then the number",
            pointer=pointer,
        )
    try:
        parsed = phonenumbers.parse(compact, None)
    except phonenumbers.NumberParseException:
        raise ValidationFailed(f"{field} is not a phone number", pointer=pointer) from None
    if not phonenumbers.is_possible_number(parsed):
        raise ValidationFailed(
            f"{field} has the wrong number of digits for its country", pointer=pointer
        )
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationFailed(
            f"{field} is not a valid number in its country's numbering plan", pointer=pointer
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def regions(codes: list[str]) -> list[str]:
    """Country codes (ISO 3166-1 alpha-2) in upper case, each once, in the order given;
    ``ValueError`` for one libphonenumber does not know."""
    from phonenumbers import SUPPORTED_REGIONS

    out: list[str] = []
    for code in codes:
        upper = code.strip().upper()
        if upper not in SUPPORTED_REGIONS:
            raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
        if upper not in out:
            out.append(upper)
    return out
