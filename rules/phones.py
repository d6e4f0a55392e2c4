"""Telling phone numbers and payment references apart from identity numbers."""

from __future__ import annotations

import re
from functools import lru_cache

from rules.personnummer import IdentityNumber
from rules.words import (
    CONTEXT_WINDOW,
    FOREIGN_PHONE_REGIONS,
    IDENTITY_LABELS,
    NEGATIVE_CONTEXT_WORDS,
    PHONE_LABELS,
    PHONE_WORDS,
)

_RUN_MAX = 8  # characters of a phone number's run on either side of the number
_RUN_CHARS = re.compile(rf"[0-9 +\-()\u00a0]{{0,{_RUN_MAX}}}")
_RUN_CHARS_BEFORE = re.compile(rf"[0-9 +\-()\u00a0]{{0,{_RUN_MAX}}}\Z")


def _words_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])", re.IGNORECASE)


_PHONE_WORDS = _words_pattern(PHONE_WORDS)
# A label and nothing but a colon, a dot or spaces between it and the number, on the same line.
_PHONE_LABEL = re.compile(
    rf"(?<![^\W_])(?:{'|'.join(re.escape(w) for w in sorted(PHONE_LABELS, key=len, reverse=True))})"
    r"[ \t.:\u00a0]*\Z",
    re.IGNORECASE,
)
_NEGATIVE_WORDS = _words_pattern(NEGATIVE_CONTEXT_WORDS)
_IDENTITY_LABEL = _words_pattern(IDENTITY_LABELS)
# Every word that can say what a run is, for finding the one nearest before it.
_CONTEXT_WORDS = _words_pattern((*NEGATIVE_CONTEXT_WORDS, *PHONE_LABELS, *IDENTITY_LABELS))


def _near(pattern: re.Pattern[str], text: str, start: int, end: int) -> bool:
    before = text[max(0, start - CONTEXT_WINDOW) : start].rsplit("\n", 1)[-1]
    after = text[end : end + CONTEXT_WINDOW // 2].split("\n", 1)[0]
    return pattern.search(before) is not None or pattern.search(after) is not None


@lru_cache(maxsize=4096)
def _valid_swedish_phone(written: str) -> bool:
    # Imported on the first candidate that needs it: its import and metadata cost more than the
    # rest of `brukarvakt lint`'s start-up, and most text has no such candidate.
    import phonenumbers

    try:
        parsed = phonenumbers.parse(written, "SE")
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed) and phonenumbers.region_code_for_number(parsed) == "SE"


@lru_cache(maxsize=4096)
def _valid_foreign_phone(written: str) -> bool:
    import phonenumbers

    for region in FOREIGN_PHONE_REGIONS:
        try:
            parsed = phonenumbers.parse(written, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return True
    return False


def _labelled(text: str, run_start: int) -> bool:
    before = text[max(0, run_start - CONTEXT_WINDOW) : run_start].rsplit("\n", 1)[-1]
    return _PHONE_LABEL.search(before) is not None


def is_phone(text: str, number: IdentityNumber) -> bool:
    """A valid Swedish number written as a phone number, or next to a phone word; a number valid
    abroad right after a phone label ("Telefoonnummer : 06...")."""
    if number.canonical_form:
        return False
    # Searching from the start of the text would cost a pass over everything before the number;
    # one character more than a run, as `$` also matches before a newline that ends the window.
    before = _RUN_CHARS_BEFORE.search(text, max(0, number.start - _RUN_MAX - 1), number.start)
    after = _RUN_CHARS.match(text, number.end)
    run_start = before.start() if before else number.start
    run_end = after.end() if after else number.end
    written = text[run_start:run_end].strip(" -()\u00a0")
    # Swedish phone numbers are written with the trunk 0 or an international prefix; a bare
    # run such as 9001079806 parses as "valid" only because phonenumbers adds the 0 itself.
    if not written.startswith(("0", "+")):
        return False
    extra_digits = sum(ch.isdigit() for ch in written) > sum(
        ch.isdigit() for ch in text[number.start : number.end]
    )
    written_as_phone = (
        extra_digits or written.startswith("+") or _near(_PHONE_WORDS, text, run_start, run_end)
    )
    # phonenumbers last: loading it costs more than the rest of `brukarvakt lint`'s start-up.
    if written_as_phone and _valid_swedish_phone(written):
        return True
    # Only a label right before it, not a phone word anywhere near: "ring brukaren, pnr 0..." must
    # not clear a personnummer because its digits happen to be a valid number somewhere abroad.
    return _labelled(text, run_start) and _valid_foreign_phone(written)


def is_labelled_identity(text: str, number: IdentityNumber) -> bool:
    """An identity label (pnr, personnummer, ...) is the context word nearest before the run on its
    line: what a reference or phone word further away or after it says does not clear it."""
    before = text[max(0, number.start - CONTEXT_WINDOW) : number.start].rsplit("\n", 1)[-1]
    words = _CONTEXT_WORDS.findall(before)
    return bool(words) and _IDENTITY_LABEL.fullmatch(words[-1]) is not None


def is_payment_reference(text: str, number: IdentityNumber) -> bool:
    """An unseparated 10-digit run next to OCR, faktura, bankgiro, ... is not a personnummer."""
    if number.separator or number.end - number.start != 10:
        return False
    return _near(_NEGATIVE_WORDS, text, number.start, number.end)
