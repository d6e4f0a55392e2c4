"""The shipped Swedish person-name model: loaded from package data once per process, on first use.

spaCy takes about a second to import and the model a little more to load, so neither happens at
import time: only the first message with care context pays (rules/person_names.py decides that with
a word list before calling here). Trained by train/ner/train_ner.py.
"""

from __future__ import annotations

import bisect
import codecs
import functools
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.errors import UserError
from rules.person_names import fold

MODEL_DIR = Path(__file__).resolve().parent / "data" / "ner_sv"
LABEL = "PERSON"
NAME_WORDS_FILE = Path(__file__).resolve().parent / "data" / "name_words.txt"
# Only this much of one segment goes through the model, to bound the time one message can take
# (measured: about 0.5 s for 50,000 characters on one core, 2 ms for a short message). Names further
# into a long attachment are not looked for; identity numbers and register names still are, in full.
MAX_CHARS = 50_000

_lock = threading.Lock()
# The gateway scans in a thread pool; spaCy does not promise that one pipeline may run in several
# threads at once, and a call takes milliseconds, so calls take turns.
_run_lock = threading.Lock()
_nlp: Any = None
loads = 0  # how many times the model was loaded in this process: once, or never


def load() -> Any:
    """The spaCy pipeline, loaded on the first call; later calls return the same object."""
    global _nlp, loads
    if _nlp is not None:
        return _nlp
    with _lock:
        if _nlp is None:
            if not (MODEL_DIR / "meta.json").is_file():
                raise UserError(
                    f"the Swedish name model is missing ({MODEL_DIR}): reinstall brukarvakt, "
                    "or set policy.person_name: off"
                )
            import spacy

            _nlp = spacy.load(MODEL_DIR)
            loads += 1
    return _nlp


_CAP = "A-ZÀ-ÖØ-Þ"
# What ends a sentence before a word, so that its capital says nothing about a name.
SENTENCE_ENDS = '.!?:;"”»•*>|–—\\-'
_WORD_REST = r"[\w'’:-]*"
# A capitalised word inside a sentence: after a character that ends no sentence and the white
# space of one line break at most. Names are found only written so (rules/person_names.py drops
# the rest), and Swedish capitalises little else inside a sentence. The capital comes first and
# the look-behinds after it, so that the regular expression engine skips to capitals.
_NOT_END = rf"[^\s{SENTENCE_ENDS}]"
_INSIDE = re.compile(
    rf"[{_CAP}](?:(?<={_NOT_END}[ \t\n][{_CAP}])|(?<={_NOT_END}\r\n[{_CAP}])|(?<={_NOT_END}[ \t]{{2}}[{_CAP}]))"
    + _WORD_REST
)
# Any capitalised word: one that is a known first name or surname is a candidate wherever it
# stands, a sentence's first word included ("Anna ringde.").
_CAPITALISED = re.compile(rf"[{_CAP}]{_WORD_REST}")
# Words before and after a candidate that the model sees with it: a sentence is rarely longer,
# and a bounded window bounds the model's time.
REGION_CHARS = 160


@functools.cache
def name_words() -> frozenset[str]:
    """SCB's first names (20+ bearers) and common surnames, case-folded (gateway/data/name_words.txt)."""
    lines = NAME_WORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def _known(word: str, names: frozenset[str]) -> bool:
    return word in names or (word.endswith("s") and word[:-1] in names)  # "Annas"


# ---- The same search, fast: on a copy of the text one byte per character (Latin-1, where every
# capital of _CAP lives) in which every capital is the byte `U`. A pattern that begins with a
# literal byte is searched for by a tight loop in C, where one that begins with a class of letters
# is tried at every character: 1.7 times faster on the relay benchmark's care text (0.26 against
# 0.43 ms per 50,000 characters), where this prefilter costs more than every other rule together.
#
# Characters outside Latin-1 become a byte of their own kind (what the patterns ask of them):
# a space, a sentence end, `#` for anything else, and `X` (a capital) for a letter, a digit or
# `’`, so that a word holding one is read from the text itself. Each text's result is that
# of the plain regular expressions above (tests/gateway/test_ner.py compares them).
_REST = re.compile(r"[\w'’:-]")


def _to_latin1(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    out = []
    for ch in error.object[error.start : error.end]:
        if ch.isspace():
            out.append(" ")
        elif ch in SENTENCE_ENDS:
            out.append(".")
        elif _REST.match(ch):
            out.append("X")
        else:
            out.append("#")
    return "".join(out), error.end


codecs.register_error("brukarvakt-name-classes", _to_latin1)

_LATIN1 = [chr(b) for b in range(256)]
_CAPITAL_BYTES = bytes(b for b, ch in enumerate(_LATIN1) if re.fullmatch(f"[{_CAP}]", ch))
# Capitals to `U`, every other byte itself.
_CAPITALS_TO_U = bytes.maketrans(_CAPITAL_BYTES, b"U" * len(_CAPITAL_BYTES))
_NOT_CAPITAL = bytes(b for b in range(256) if b not in _CAPITAL_BYTES)


def _byte_class(predicate: Callable[[str], bool]) -> bytes:
    """A bytes-pattern class of the Latin-1 characters for which the predicate holds."""
    return b"".join(re.escape(bytes([b])) for b, ch in enumerate(_LATIN1) if predicate(ch))


# What may follow a capital inside its word, less capitals (a capital there begins a piece of
# its own, see _PIECE); and what may stand before the white space before a word inside a sentence.
_REST_CLASS = _byte_class(lambda ch: bool(_REST.match(ch)) and ch.encode("latin-1") not in _CAPITAL_BYTES)
_NOT_END_CLASS = _byte_class(lambda ch: not re.match(_NOT_END, ch))
_INSIDE_BYTES = re.compile(
    rb"U(?:(?<=[^" + _NOT_END_CLASS + rb"][ \t\n]U)|(?<=[^" + _NOT_END_CLASS + rb"]\r\nU)"
    rb"|(?<=[^" + _NOT_END_CLASS + rb"][ \t]{2}U))"
)
# Each capital with what follows it up to the next capital or the word's end, and whether a
# capital follows at once (`OBS`, `McKay`: the word goes on and is read whole from the text).
_PIECE = re.compile(rb"U([" + _REST_CLASS + rb"]*)(?=(U)|)")
_MULTI = re.compile(rb"U[" + _REST_CLASS + rb"]*U[" + _REST_CLASS + rb"U]*")


def _capitalised_words(text: str, coded: bytes, marked: bytes) -> set[str]:
    """The distinct capitalised words of `text` (as _CAPITALISED finds them), give or take a few more."""
    capitals = coded.translate(None, _NOT_CAPITAL)
    pieces = _PIECE.findall(marked)
    words = {
        _LATIN1[capital] + tail.decode("latin-1")
        for capital, (tail, more) in set(zip(capitals, pieces, strict=True))
        if not more
    }
    if len(pieces) > len(words):  # a word with a capital inside: read from the text
        # (Read by the plain expression, which begins a word only at a capital of _CAP: a letter
        # outside Latin-1 is a capital in the byte copy, and `\u212aARIN` folds to `karin`.)
        for m in _MULTI.finditer(marked):
            words.update(_CAPITALISED.findall(text, m.start(), m.end()))
    return words


@functools.lru_cache(maxsize=1 << 16)
def _known_name(word: str, ignore: frozenset[str]) -> bool:
    """A capitalised word that is a known name and not a staff member's (the same words recur in every mail)."""
    return _known(word.casefold().rstrip(":'’"), name_words()) and not (
        ignore and _known(fold(word.rstrip(":'’")), ignore)
    )


def candidate_regions(text: str, ignore: frozenset[str] = frozenset()) -> list[tuple[int, int]]:
    """Windows of `text` that may hold a person name, merged: the only text the model reads.

    Swedish capitalises names and the first word of a sentence, and little else. A capitalised
    word inside a sentence is a candidate; so is a sentence's first word when it is a known first
    name or surname ("Anna ringde."). Most care mail ("Insatsen flyttas till onsdag.") then never
    reaches the model, which costs about a millisecond per 100 characters it reads. Words in
    `ignore` (staff names, folded as rules.person_names.fold does) are no reason to read a
    sentence: the detector would drop such a name anyway.
    """
    try:
        coded = text.encode("latin-1")
    except UnicodeEncodeError:
        # Each run of characters outside Latin-1 costs a call of the error handler: text written
        # mostly outside it (Cyrillic, Arabic, many emoji) is searched by the plain expressions.
        if len(text) - len(text.encode("latin-1", "ignore")) > len(text) // PLAIN_ABOVE:
            return _regions(text, _plain_spans(text, ignore), ignore)
        coded = text.encode("latin-1", "brukarvakt-name-classes")
    return _regions(text, _byte_spans(text, coded, ignore), ignore)


def _byte_spans(text: str, coded: bytes, ignore: frozenset[str]) -> list[tuple[int, int]]:
    """The spans candidate_regions looks for, found on the byte copy `coded` of the text."""
    marked = coded.translate(_CAPITALS_TO_U)
    # Inside a sentence, as the byte copy sees it; then the text itself decides (a character
    # outside Latin-1 may have looked like a capital or a space).
    inside = [
        exact.span()
        for m in _INSIDE_BYTES.finditer(marked)
        if (exact := _INSIDE.match(text, m.start())) is not None
    ]
    # Capitalised words are many (every sentence starts with one) and names few: the distinct
    # words are checked, and the text is walked again only for the few that are names.
    known = {w for w in _capitalised_words(text, coded, marked) if _known_name(w, ignore)}
    return inside + _occurrences(text, known)


# Above one character outside Latin-1 in this many, the plain search is the faster (Swedish mail
# has a dash or a typographic quote now and then, Cyrillic or Arabic text one in every word).
PLAIN_ABOVE = 100


def _plain_spans(text: str, ignore: frozenset[str]) -> list[tuple[int, int]]:
    """The spans candidate_regions looks for, found by the regular expressions on the text itself."""
    known = {w for w in set(_CAPITALISED.findall(text)) if _known_name(w, ignore)}
    return [m.span() for m in _INSIDE.finditer(text)] + _occurrences(text, known)


def _occurrences(text: str, words: set[str]) -> list[tuple[int, int]]:
    """Each word found as a whole word where it stands (the word first in the pattern: see above)."""
    found: list[tuple[int, int]] = []
    for word in words:
        w = re.escape(word)
        found += [m.span() for m in re.finditer(rf"{w}(?<![\w'’:-]{w})(?![\w'’:-])", text)]
    return found


def _regions(text: str, found: list[tuple[int, int]], ignore: frozenset[str]) -> list[tuple[int, int]]:
    """The windows around the spans found, merged; a staff name is no reason for one."""
    regions: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if ignore and _known(fold(text[start:end].rstrip(":'’")), ignore):
            continue
        start, end = max(0, start - REGION_CHARS), min(len(text), end + REGION_CHARS)
        if regions and start <= regions[-1][1]:
            regions[-1] = (regions[-1][0], max(end, regions[-1][1]))
        else:
            regions.append((start, end))
    return regions


def person_spans(text: str, ignore: frozenset[str] = frozenset()) -> list[tuple[int, int]]:
    """Character spans of person names in `text` (within its first MAX_CHARS characters)."""
    regions = candidate_regions(text[:MAX_CHARS], ignore)
    if not regions:
        return []
    # One call over the candidate windows, separated by blank lines, then mapped back.
    offsets: list[int] = []
    pieces: list[str] = []
    joined_at = 0
    for start, end in regions:
        offsets.append(joined_at)
        pieces.append(text[start:end])
        joined_at += end - start + len(SEPARATOR)
    nlp = load()
    with _run_lock:
        doc = nlp(SEPARATOR.join(pieces))
    spans = []
    for e in doc.ents:
        if e.label_ != LABEL:
            continue
        i = bisect.bisect_right(offsets, e.start_char) - 1
        start, end = regions[i]
        o_start = start + e.start_char - offsets[i]
        o_end = o_start + (e.end_char - e.start_char)
        if o_end <= end:  # a span across the separator is no name in the original
            spans.append((o_start, o_end))
    return spans


SEPARATOR = "\n\n"
