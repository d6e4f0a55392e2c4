"""Text normalisation before matching: Unicode digits to ASCII, invisible characters dropped."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Characters a writer (or a mail program) slips between digits without a visible trace.
INVISIBLE = "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"

_INVISIBLE_RE = re.compile(f"[{INVISIBLE}]")
# A decimal digit that is not ASCII: \d is Unicode-aware on str patterns.
_UNICODE_DIGIT_RE = re.compile(r"(?![0-9])\d")
_SPECIAL_RE = re.compile(f"[{INVISIBLE}]|(?![0-9])\\d")


def _ascii_digit(m: re.Match[str]) -> str:
    return str(unicodedata.decimal(m.group()))


@dataclass(frozen=True, slots=True)
class NormalizedText:
    """The text to match against, and the way back to positions in the original."""

    original: str
    text: str
    # origin[i] is the index in `original` of normalised character i; None when identical.
    origin: tuple[int, ...] | None = None

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


def normalize(text: str) -> NormalizedText:
    if text.isascii() or _SPECIAL_RE.search(text) is None:
        return NormalizedText(text, text)
    digits = _UNICODE_DIGIT_RE.sub(_ascii_digit, text)  # one character for one: offsets kept
    if _INVISIBLE_RE.search(digits) is None:
        return NormalizedText(text, digits)
    kept = [i for i, ch in enumerate(digits) if ch not in INVISIBLE]
    return NormalizedText(text, "".join(digits[i] for i in kept), tuple(kept))
