"""Text normalisation before matching: Unicode digits to ASCII, invisible characters dropped."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache

# Characters a writer (or a mail program) slips between digits without a visible trace: besides
# the zero-width ones, the direction controls a program puts around copied text (Teams and Skype
# wrap a number in U+202A ... U+202C; isolates U+2066-2069), variation selectors and the fillers
# that show as nothing.
INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f\u200b\u200c\u200d"
    "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069"
    "\u3164\ufe00\ufe01\ufe02\ufe03\ufe04\ufe05\ufe06\ufe07\ufe08\ufe09\ufe0a\ufe0b\ufe0c\ufe0d"
    "\ufe0e\ufe0f\ufeff\uffa0"
)
# Combining diacritical marks: a letter written as its base and a mark (o + U+0308 for ö), as macOS
# stores file names and as text copied from its programs comes, is composed (NFC) before matching,
# so that Öhrnvall is Öhrnvall however it was stored.
COMBINING = "\u0300-\u036f"


@cache
def _exact() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """Invisible characters, digits beyond ASCII (\\d is Unicode-aware on str patterns), any of
    those or a combining mark, and a letter with the marks on it.

    Compiled on first need (a few milliseconds of start-up): most text never needs them.
    """
    return (
        re.compile(f"[{INVISIBLE}]"),
        re.compile(r"(?![0-9])\d"),
        re.compile(f"[{INVISIBLE}{COMBINING}]|(?![0-9])\\d"),
        re.compile(f"[^{COMBINING}][{COMBINING}]+"),
    )


# Where each block of ten decimal digits beyond ASCII starts in the Basic Multilingual Plane
# (Unicode keeps a script's digits 0-9 together), as of the Unicode version below. A test checks
# the table against `\d`; a Python with another Unicode version builds it at import instead.
DIGIT_BLOCKS_UNICODE = "14.0.0"
# fmt: off
DIGIT_BLOCKS_BMP = (
    0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66,
    0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
)
# fmt: on


def digit_blocks_bmp() -> tuple[int, ...]:
    """The table above, computed: every non-ASCII BMP character `\\d` matches whose value is 0."""
    digits = re.findall(r"\d", "".join(map(chr, range(0x80, 0x10000))))
    return tuple(ord(d) for d in digits if unicodedata.decimal(d) == 0)


def unicode_digit_lead_bytes() -> frozenset[int]:
    """The first UTF-8 byte of every decimal digit beyond ASCII (any beyond the BMP included)."""
    return frozenset(
        {chr(z + i).encode("utf-8")[0] for z in _blocks for i in range(10)} | set(range(0xF0, 0xF5))
    )


_blocks = DIGIT_BLOCKS_BMP if unicodedata.unidata_version == DIGIT_BLOCKS_UNICODE else digit_blocks_bmp()
# One plain character set, which the regex engine scans several times faster than the exact pattern: every
# invisible character, every BMP digit beyond ASCII and any character beyond the BMP (rare; the
# exact pattern then decides). Most mail has none of them, and is done with after this one pass.
_MAYBE_SPECIAL_RE = re.compile(
    "["
    + INVISIBLE
    + COMBINING
    + "".join(f"{chr(z)}-{chr(z + 9)}" for z in _blocks)
    + "\U00010000-\U0010ffff]"
)


def _ascii_digit(m: re.Match[str]) -> str:
    return str(unicodedata.decimal(m.group()))


@dataclass(frozen=True, slots=True)
class NormalizedText:
    """The text to match against, and the way back to positions in the original."""

    original: str
    text: str
    # origin[i] is the index in `original` of normalised character i; None when identical.
    origin: tuple[int, ...] | None = None
    # `text` encoded one byte a character (Latin-1 or Windows-1252) when it fits, as the check for
    # what to normalise made it: detectors look for digits in it without encoding the text again.
    one_byte: bytes | None = field(default=None, compare=False, repr=False)

    def to_original(self, index: int) -> int:
        if self.origin is None:
            return index
        if index >= len(self.origin):
            return len(self.original)
        return self.origin[index]

    def span_to_original(self, start: int, end: int) -> tuple[int, int]:
        if self.origin is None:
            return start, end
        return self.to_original(start), self.to_original(end - 1) + 1


# Character sets in which the soft hyphen is the only character to normalise: Latin-1 (å, ä, ö,
# é, NBSP; encoding it is a copy at memory speed) and Windows-1252, which adds the dashes, curly
# quotes and euro sign that mail programs type. Encoding tells at C speed whether a text fits.
SIMPLE_REPERTOIRES = ("latin-1", "cp1252")
_SIMPLE_SPECIAL = "\u00ad"


def one_byte(text: str) -> bytes | None:
    """The text in the first of SIMPLE_REPERTOIRES it fits, one byte a character; else None."""
    for repertoire in SIMPLE_REPERTOIRES:
        try:
            return text.encode(repertoire)
        except UnicodeEncodeError:
            continue
    return None


def normalize(text: str) -> NormalizedText:
    encoded = one_byte(text)
    if encoded is not None:
        if _SIMPLE_SPECIAL not in text:
            return NormalizedText(text, text, None, encoded)
    else:
        maybe = _MAYBE_SPECIAL_RE.search(text)
        if maybe is None or _exact()[2].search(text, maybe.start()) is None:
            return NormalizedText(text, text)
    invisible, unicode_digit, _, marked = _exact()
    composed, composed_origin = _composed(text, marked)
    digits = unicode_digit.sub(_ascii_digit, composed)  # one character for one: offsets kept
    dropped = [m.start() for m in invisible.finditer(digits)]
    if not dropped:
        return NormalizedText(text, digits, composed_origin)
    # Slices and ranges between the dropped characters: C speed, where a loop over every
    # character of a long mail with one zero-width space in it took milliseconds.
    pieces: list[str] = []
    kept: list[int] = []
    start = 0
    for index in [*dropped, len(digits)]:
        pieces.append(digits[start:index])
        kept.extend(range(start, index))
        start = index + 1
    if composed_origin is not None:
        kept = [composed_origin[i] for i in kept]
    return NormalizedText(text, "".join(pieces), tuple(kept))


def _composed(text: str, marked: re.Pattern[str]) -> tuple[str, tuple[int, ...] | None]:
    """The text with each letter and its combining marks composed (NFC) where a composed form
    exists, and the way back: a composed letter stands for its base letter's place."""
    pieces: list[str] = []
    origin: list[int] = []
    start = 0
    for m in marked.finditer(text):
        written = m.group()
        nfc = unicodedata.normalize("NFC", written)
        if nfc == written:
            continue
        pieces.append(text[start : m.start()])
        origin.extend(range(start, m.start()))
        pieces.append(nfc)
        origin.extend([m.start()] * len(nfc))
        start = m.end()
    if not pieces:
        return text, None
    pieces.append(text[start:])
    origin.extend(range(start, len(text)))
    return "".join(pieces), tuple(origin)
