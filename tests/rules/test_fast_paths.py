"""The engine's fast paths find exactly what the plain patterns find, on any text.

Speed comes from looking for digit runs in bytes before trying the pattern, and from a one-pass
check before normalising; these tests hold them to the straightforward versions they replace.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from rules import normalize as normalize_module
from rules import personnummer, phones
from rules.normalize import COMBINING, INVISIBLE, NormalizedText, normalize
from tests.conftest import TODAY, skatteverket

# Pieces that make identity-shaped text and everything around it: digits of several scripts,
# every kind of separator, letters (an interim letter too), invisible characters, emoji.
PIECES = (
    "19", "20", "18", "45", "03", "12", "31", "60", "91", "00", "1234", "9806", "0107", "0", "7",
    "-", "+", " ", "\u00a0", "\u2013", "\u2212", "\n", "> ", "\r\n", "a", "T", "k", "_", ":", ".",
    "٤٥", "５", "𝟙", "é", "å", "”", "😊", "\u200b", "\u00ad", "\ufeff", "\u0308", "\u030a", "\u202a",
)  # fmt: skip


def _numbers() -> list[str]:
    data = skatteverket()
    return data["personnummer"][:300] + data["samordningsnummer"][:60]


@st.composite
def texts(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(PIECES), max_size=16))
    if draw(st.booleans()):
        number = draw(st.sampled_from(_numbers()))
        written = draw(
            st.sampled_from((number, number[2:], f"{number[:8]}-{number[8:]}", f"{number[2:8]}-{number[8:]}"))
        )
        parts.insert(draw(st.integers(0, len(parts))), written)
    return "".join(parts)


def plain_find(text: str, today: date) -> list[personnummer.IdentityNumber]:
    found = (personnummer.identify(m, today) for m in personnummer.PATTERN.finditer(text))
    return [n for n in found if n is not None]


def plain_normalize(text: str) -> NormalizedText:
    """Normalisation as first written: each letter composed with its marks, then one exact pattern."""
    if text.isascii() or re.search(f"[{INVISIBLE}{COMBINING}]|(?![0-9])\\d", text) is None:
        return NormalizedText(text, text)
    chars: list[str] = []
    origin: list[int] = []
    for cluster in re.finditer(f"(?s).[{COMBINING}]*", text):
        composed = unicodedata.normalize("NFC", cluster.group())
        if composed == cluster.group():
            chars.extend(composed)
            origin.extend(range(cluster.start(), cluster.end()))
        else:
            chars.extend(composed)
            origin.extend([cluster.start()] * len(composed))
    digits = [str(unicodedata.decimal(ch)) if re.fullmatch(r"(?![0-9])\d", ch) else ch for ch in chars]
    kept = [i for i, ch in enumerate(digits) if ch not in INVISIBLE]
    mapped = tuple(origin[i] for i in kept)
    return NormalizedText(
        text, "".join(digits[i] for i in kept), None if mapped == tuple(range(len(text))) else mapped
    )


@settings(max_examples=400, deadline=None)
@given(texts())
def test_find_gives_exactly_what_the_pattern_alone_gives(text: str) -> None:
    assert personnummer.find(text, TODAY) == plain_find(text, TODAY)


@settings(max_examples=400, deadline=None)
@given(texts())
def test_normalize_gives_exactly_what_the_exact_pattern_gives(text: str) -> None:
    normalized = normalize(text)
    assert normalized == plain_normalize(text)
    if normalized.one_byte is not None:
        assert normalized.one_byte == normalize_module.one_byte(normalized.text)


@settings(max_examples=400, deadline=None)
@given(texts())
def test_find_with_the_one_byte_copy_gives_exactly_what_the_pattern_gives(text: str) -> None:
    assert personnummer.find(text, TODAY, normalize_module.one_byte(text)) == plain_find(text, TODAY)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40))
def test_find_and_normalize_agree_with_the_plain_versions_on_any_unicode(text: str) -> None:
    assert personnummer.find(text, TODAY) == plain_find(text, TODAY)
    assert normalize(text) == plain_normalize(text)


def test_a_number_far_into_a_long_text_is_found_at_its_place() -> None:
    number = skatteverket()["personnummer"][0]
    for filler in ("a" * 50_000, "å" * 50_000, "\u2013" * 50_000, "😊" * 20_000):
        text = f"{filler} {number[:8]}-{number[8:]} {filler}"
        (found,) = personnummer.find(text, TODAY)
        assert (found.start, found.end) == (len(filler) + 1, len(filler) + 14)


def test_the_table_of_digit_blocks_is_the_one_this_python_uses() -> None:
    assert normalize_module.digit_blocks_bmp() == tuple(normalize_module._blocks)
    if unicodedata.unidata_version == normalize_module.DIGIT_BLOCKS_UNICODE:
        assert normalize_module.digit_blocks_bmp() == normalize_module.DIGIT_BLOCKS_BMP


def test_in_latin_1_and_windows_1252_only_the_soft_hyphen_needs_normalising() -> None:
    for repertoire in normalize_module.SIMPLE_REPERTOIRES:
        chars = [bytes([b]).decode(repertoire, "ignore") for b in range(256)]
        special = [ch for ch in chars if ch and plain_normalize(ch).text != ch]
        assert special == ["\u00ad"], repertoire


def test_every_digit_beyond_ascii_starts_with_a_byte_the_fast_path_distrusts() -> None:
    leads = normalize_module.unicode_digit_lead_bytes()
    digits = [chr(c) for c in range(0x80, 0x110000) if chr(c).isdecimal()]
    assert len(digits) > 600
    assert all(d.encode("utf-8")[0] in leads for d in digits)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789 -+()\n\u00a0ab", max_size=30), st.data())
def test_the_phone_run_before_a_number_is_found_by_looking_near_it_only(
    text: str, data: st.DataObject
) -> None:
    start = data.draw(st.integers(0, len(text)))
    whole = phones._RUN_CHARS_BEFORE.search(text, 0, start)
    near = phones._RUN_CHARS_BEFORE.search(text, max(0, start - phones._RUN_MAX - 1), start)
    assert (whole.span() if whole else None) == (near.span() if near else None)
