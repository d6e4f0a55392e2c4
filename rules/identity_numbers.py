"""Detector: personnummer, samordningsnummer and interim numbers, less phones, references and ids."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

from rules import personnummer, phones
from rules.hits import Hit
from rules.normalize import NormalizedText
from rules.personnummer import IdentityNumber
from rules.words import MACHINE_HEADER_PREFIXES, MACHINE_TOKEN_LETTER_SEGMENTS, NUMBER_LABELS

RULE = "id-number"

# A machine token: segments of letters, digits, `_` and `-`, joined by dots, with no space inside.
TOKEN_JOINER = "."
SEGMENT_PUNCTUATION = "_-"
# An e-mail address's local part is written by a person (`anna.berg.NNNNNNNNNN@...`), not a machine.
ADDRESS_MARK = "@"
# How far a token is read on either side of the number, in characters: Eclipse's ids are ~80.
TOKEN_REACH = 256
_LABELS = frozenset(NUMBER_LABELS)
_SEGMENT_CHAR = re.compile(rf"[\w{re.escape(SEGMENT_PUNCTUATION)}]")
_TOKEN_RUN = re.compile(rf"[\w{re.escape(SEGMENT_PUNCTUATION + TOKEN_JOINER)}]*")
_LETTER = re.compile(r"[^\W\d_]")


# A quoted header field a machine wrote, at the start of a line (after any `>` quote marks): a
# prefix ending in `-` takes a field name after it (`X-Spam-Score`), the others are whole names.
_QUOTED_MACHINE_FIELD = re.compile(
    r"(?:>[ \t]?)*(?:"
    + "|".join(
        re.escape(p) + (r"[!-9;-~]*" if p.endswith("-") else "")
        for p in sorted(MACHINE_HEADER_PREFIXES, key=len, reverse=True)
    )
    + r")[ \t]*:",
    re.IGNORECASE,
)
_QUOTE_MARKS = re.compile(r"(?:>[ \t]?)*")
# How far back a folded field's continuation lines are followed to find its name, in characters.
QUOTED_FIELD_REACH = 4000


def in_quoted_machine_header(text: str, number: IdentityNumber) -> bool:
    """An unseparated 10-digit run in a machine's header field quoted in a body (a bounce quoting
    the original's `DKIM-Signature: ... t=NNNNNNNNNN`, a forwarded header block): a timestamp or a
    queue id, as in the message's own machine headers, which are never scanned.

    Separated and 12-digit forms are written by people and keep counting.
    """
    start = number.start
    if number.separator or number.end - start != 10 or number.kind == "interimsnummer":
        return False
    line = text.rfind("\n", 0, start) + 1
    limit = start - QUOTED_FIELD_REACH
    while True:
        quoted = _QUOTE_MARKS.match(text, line)
        first = quoted.end() if quoted else line
        if text[first : first + 1] not in (" ", "\t"):
            return _QUOTED_MACHINE_FIELD.match(text, line) is not None
        # A continuation line: the field's name is on a line above.
        if line == 0 or line < limit:
            return False
        line = text.rfind("\n", 0, line - 1) + 1


def _joined(text: str, dot: int, beyond: int) -> bool:
    """A dot at `dot` joins the number to a segment at `beyond`: a sentence's full stop has a space
    or the end of the text beyond it."""
    # `beyond` is one step further out than `dot`: within the text, both are.
    return (
        0 <= beyond < len(text)
        and text[dot] == TOKEN_JOINER
        and _SEGMENT_CHAR.match(text, beyond) is not None
    )


def _token_run(text: str, pos: int, endpos: int) -> int:
    """How many token characters follow `pos`."""
    run = _TOKEN_RUN.match(text, pos, endpos)
    return run.end() - pos if run else 0


def _is_name(segment: str) -> bool:
    """A segment written as a name is, one capital and small letters (`Anna.Andersson.NNNNNNNNNN.pdf`,
    a file a person named): machines write their tokens' words in lower case (`cdt.tool.base`) or
    run together (`MainActivity`)."""
    return len(segment) > 1 and segment.isalpha() and segment.istitle()


def is_machine_identifier(text: str, number: IdentityNumber) -> bool:
    """An unseparated 10-digit run that is one segment of a dotted machine token whose other
    segments hold letters (`cdt.managedbuild.tool.gnu.archiver.base.NNNNNNNNNN`), not a number.

    Separated and 12-digit forms are written by people and keep counting, in any token.
    """
    start, end = number.start, number.end
    if number.separator or end - start != 10 or number.kind == "interimsnummer":
        return False
    # Most numbers stand between spaces or punctuation: two characters on either side decide.
    if not (_joined(text, start - 1, start - 2) or _joined(text, end, end + 1)):
        return False
    # The token's ends, at C speed: backwards as a match on the reversed text before the number.
    low = start - _token_run(text[max(0, start - TOKEN_REACH) : start][::-1], 0, TOKEN_REACH)
    high = end + _token_run(text, end, end + TOKEN_REACH)
    # The run must be a whole segment: `x-NNNNNNNNNN.a.b` or `journal_NNNNNNNNNN.a.b` is not.
    whole = (start == low or text[start - 1] == TOKEN_JOINER) and (high == end or text[end] == TOKEN_JOINER)
    if not whole or text.startswith(ADDRESS_MARK, high):
        return False
    before = text[low : start - 1] if start > low else ""
    others = before.split(TOKEN_JOINER) + text[end + 1 : high].split(TOKEN_JOINER)
    if any(segment.casefold() in _LABELS or _is_name(segment) for segment in others):
        return False
    lettered = sum(1 for segment in others if _LETTER.search(segment))
    return lettered >= MACHINE_TOKEN_LETTER_SEGMENTS


def detect(
    text: NormalizedText,
    today: date,
    customer_numbers: frozenset[str] = frozenset(),
) -> Iterator[Hit]:
    """Identity numbers in text, less phone numbers, references, machine identifiers and known
    customer numbers."""
    for number in personnummer.find(text.text, today, text.one_byte):
        if customer_numbers and text.text[number.start : number.end] in customer_numbers:
            continue
        if (
            phones.is_payment_reference(text.text, number) or phones.is_phone(text.text, number)
        ) and not phones.is_labelled_identity(text.text, number):
            continue
        if is_machine_identifier(text.text, number) or in_quoted_machine_header(text.text, number):
            continue
        start, end = text.span_to_original(number.start, number.end)
        yield Hit(
            rule=RULE,
            kind=number.kind,
            severity="block",
            start=start,
            end=end,
            canonical=number.canonical,
            masked=number.masked,
        )
