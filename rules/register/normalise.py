"""A client's phone numbers and street address in the forms the register keys them by."""

from __future__ import annotations

import re
from collections.abc import Iterator

from rules.register.folding import fold, words

# A phone number as written: an international or trunk prefix, then digits and the separators
# people group them with.
WRITTEN_PHONE = re.compile(r"(?<![\w+])(?:\+|00|\(0|0)[\d \u00a0\-\u2010-\u2015()/.]{5,24}\d")
_DIGITS = re.compile(r"\d+")
_STREET = re.compile(
    r"^\s*(?P<street>[^\d,]*?[^\W\d_][^\d,]*?)\s*(?P<number>\d+)\s*(?P<letter>[^\W\d_])?(?![^\W\d_])"
)


def e164(phone: str) -> str | None:
    """A phone number from the register in E.164 (`+46701740605`), or None if it is not valid."""
    # Imported on first use, as in rules.phones: only the register's import needs it here.
    import phonenumbers

    try:
        parsed = phonenumbers.parse(phone, "SE")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def street_address(address: str) -> tuple[list[str], str, str] | None:
    """(street words, house number, entrance letter) of `Storgatan 12 B, 123 45 Ort`; None if no number."""
    m = _STREET.match(address)
    if m is None:
        return None
    street = words(m["street"])
    if not street:
        return None
    return street, m["number"], fold(m["letter"] or "")


def phone_candidates(written: str) -> Iterator[tuple[str, int]]:
    """E.164 forms a written phone number may stand for, longest first, with how many characters they use.

    A run such as `070-174 06 05 2 st` holds more digits than the number: every cut at a
    separator is tried, longest first.
    """
    groups = list(_DIGITS.finditer(written))
    international = written.startswith("+") or written.startswith("00")
    for k in range(len(groups), 0, -1):
        digits = "".join(g.group() for g in groups[:k])
        if not 7 <= len(digits) <= 17:
            continue
        end = groups[k - 1].end()
        if international:
            digits = digits[2:] if written.startswith("00") else digits
            yield "+" + digits, end
            if digits.startswith("460"):  # +46 (0)70 ...: the trunk 0 written inside brackets
                yield "+46" + digits[3:], end
        elif digits.startswith("0"):
            yield "+46" + digits[1:], end
