"""Personal identity numbers: personnummer, samordningsnummer and interim numbers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Literal

from rules.normalize import unicode_digit_lead_bytes

IdKind = Literal["personnummer", "samordningsnummer", "interimsnummer"]

# Every Unicode dash (category Pd), the minus sign and the plus signs used for 100+ years.
DASHES = (
    "-\u058a\u05be\u1400\u1806\u2010\u2011\u2012\u2013\u2014\u2015\u2e17\u2e1a\u2e3a"
    "\u2e3b\u2e40\u2e5d\u301c\u3030\u30a0\ufe31\ufe32\ufe58\ufe63\uff0d\u2212"
)
PLUSES = "+\uff0b"
INTERIM_LETTERS = "TRSUWXJKLMN"

_HS = r"[^\S\r\n]{0,3}"  # horizontal white space of any kind, NBSP and Unicode spaces included
_BREAK = r"(?:\r?\n(?:[ \t]{0,3}>){0,8}[ \t]{0,3})"  # plain-text wrapping, with quote prefixes
_SEP = rf"{_HS}{_BREAK}?{_HS}(?:[{re.escape(DASHES + PLUSES)}]{_HS}{_BREAK}?{_HS})?"

PATTERN = re.compile(
    rf"""
    (?<![^\W_])                                   # not inside a run of letters or digits
    (?P<cc>1[89]|20)?(?P<yy>\d\d)(?P<mm>[01]\d)(?P<dd>[0-9]\d)
    (?P<sep>{_SEP})
    (?P<serial>(?:\d|(?P<letter>[{INTERIM_LETTERS}{INTERIM_LETTERS.lower()}]))\d\d)
    (?P<check>\d)
    (?![^\W_])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class IdentityNumber:
    kind: IdKind
    canonical: str  # YYYYMMDDNNNC, century resolved; an interim letter upper-case
    start: int
    end: int
    separator: str

    @property
    def masked(self) -> str:
        return f"{self.canonical[2:8]}-****"

    @property
    def canonical_form(self) -> bool:
        """Written YYMMDD-NNNC or YYYYMMDD-NNNC: never cleared by context."""
        return len(self.separator) == 1 and self.separator in DASHES + PLUSES


def luhn_ok(ten: str) -> bool:
    total = 0
    for i, ch in enumerate(ten):
        d = int(ch) if ch.isdigit() else 1  # an interim letter counts as 1
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _real_date(year: int, month: int, day: int) -> bool:
    if not 1 <= month <= 12 or day < 1:
        return False
    return day <= (29 if month == 2 and _is_leap(year) else _MONTH_DAYS[month - 1])


def _earliest(year: int, month: int, day: int) -> date:
    """The earliest birth date a number can stand for: month 00 and day 60 mean unknown."""
    return date(year, max(month, 1), max(min(day, 28), 1))


def _resolve_year(yy: int, month: int, day: int, plus: bool, today: date) -> int:
    """The latest year ending in YY that is not in the future; `+` means 100 years earlier.

    `+` is written from the year a person turns 100, so it counts from the year alone. Without
    it, a date later this year cannot be a birth date yet: that is someone a century older who
    wrote `-` (a common slip), not a number to let through.
    """
    year = today.year - ((today.year - yy) % 100)
    if plus:
        return year - 100
    return year - 100 if _earliest(year, month, day) > today else year


def identify(m: re.Match[str], today: date) -> IdentityNumber | None:
    """Validate one candidate match: calendar, not in the future, serial, Luhn."""
    cc, yy, mm, dd, sep, serial, check, letter = m.group(
        "cc", "yy", "mm", "dd", "sep", "serial", "check", "letter"
    )
    month, day = int(mm), int(dd)
    # The cheapest refusal first: a month past 12 (every organisationsnummer) is never valid.
    if month > 12 or serial == "000" or not luhn_ok(yy + mm + dd + serial + check):
        return None
    coordination = day >= 60
    if coordination:
        day -= 60
        if not (0 <= day <= 31 and 0 <= month <= 12):
            return None
    elif not 1 <= month <= 12:
        return None
    plus = any(p in sep for p in PLUSES)
    year = int(cc + yy) if cc else _resolve_year(int(yy), month, day, plus, today)
    if not coordination and not _real_date(year, month, day):
        return None
    if _earliest(year, month, day) > today:
        return None
    kind: IdKind
    if letter:
        kind = "interimsnummer"
        serial = serial.upper()
    else:
        kind = "samordningsnummer" if coordination else "personnummer"
    return IdentityNumber(kind, f"{year:04d}{mm}{dd}{serial}{check}", m.start(), m.end(), sep)


# A match starts a run of at least six digits (the date) that no letter or digit precedes, so
# PATTERN is tried only where such a run starts: Python's regex engine would otherwise try it, with
# its look-behind, at every position of the text. The runs are found in the text's bytes, one byte a
# character (Latin-1 when it fits, else UTF-8 less its continuation bytes), where one translation
# and a substring search run at several hundred MB/s, about three times as fast as a regular
# expression for the runs. Text with other scripts' digits takes the regular expression.
_DATE_RUN = re.compile(r"\d\d{5,}")
_RUN, _OTHER, _SUSPECT = b"0", b".", b"u"
_SIX = _RUN * 6
_UTF8_CONTINUATION = bytes(range(0x80, 0xC0))


def _shape_tables() -> tuple[bytes, bytes]:
    """Byte -> `0` for an ASCII digit, else `.`; in UTF-8 `u` for the first byte of a digit beyond
    ASCII (Latin-1 has no such digits)."""
    latin1 = bytearray(_OTHER * 256)
    latin1[ord("0") : ord("9") + 1] = _RUN * 10
    utf8 = bytearray(latin1)
    for lead in unicode_digit_lead_bytes():
        utf8[lead] = _SUSPECT[0]
    return bytes(latin1), bytes(utf8)


_SHAPE_LATIN1, _SHAPE_UTF8 = _shape_tables()


def _shape(text: str) -> bytes | None:
    """One byte a character: `0` for an ASCII digit, `.` for anything else; None when the text
    holds digits of other scripts."""
    try:
        return text.encode("latin-1").translate(_SHAPE_LATIN1)
    except UnicodeEncodeError:
        pass
    # Dropping the continuation bytes leaves one byte (ASCII, or a lead byte) a character.
    shape = text.encode("utf-8", "surrogatepass").translate(_SHAPE_UTF8, _UTF8_CONTINUATION)
    return None if _SUSPECT in shape else shape


def _run_starts(text: str, one_byte: bytes | None) -> Iterator[int]:
    """Where every maximal run of six or more digits starts (indices into `text`)."""
    shape = one_byte.translate(_SHAPE_LATIN1) if one_byte is not None else _shape(text)
    if shape is None:
        for run in _DATE_RUN.finditer(text):
            yield run.start()
        return
    at = shape.find(_SIX)
    while at >= 0:
        yield at
        after = shape.find(_OTHER, at + 6)
        if after < 0:
            return
        at = shape.find(_SIX, after)


def _matches(text: str, one_byte: bytes | None) -> Iterator[re.Match[str]]:
    """Exactly what PATTERN.finditer(text) yields."""
    end = 0
    for start in _run_starts(text, one_byte):
        if start < end:
            continue  # inside the previous match, as finditer would have skipped it
        m = PATTERN.match(text, start)
        if m is not None:
            end = m.end()
            yield m


def find(text: str, today: date, one_byte: bytes | None = None) -> list[IdentityNumber]:
    """Every valid identity number in (normalised) text.

    `one_byte`: the same text encoded one byte a character in Latin-1 or Windows-1252, when the
    caller has it (NormalizedText.one_byte): it saves encoding the text again.
    """
    found = []
    for m in _matches(text, one_byte):
        number = identify(m, today)
        if number is not None:
            found.append(number)
    return found
