"""The shipped Swedish person-name model: loaded from package data once per process, on first use.

spaCy takes about a second to import and the model a little more to load, so neither happens at
import time: only the first message with care context pays (rules/person_names.py decides that with
a word list before calling here). Trained by train/ner/train_ner.py.
"""

from __future__ import annotations

import bisect
import functools
import re
import threading
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


def candidate_regions(text: str, ignore: frozenset[str] = frozenset()) -> list[tuple[int, int]]:
    """Windows of `text` that may hold a person name, merged: the only text the model reads.

    Swedish capitalises names and the first word of a sentence, and little else. A capitalised
    word inside a sentence is a candidate; so is a sentence's first word when it is a known first
    name or surname ("Anna ringde."). Most care mail ("Insatsen flyttas till onsdag.") then never
    reaches the model, which costs about a millisecond per 100 characters it reads. Words in
    `ignore` (staff names, folded as rules.person_names.fold does) are no reason to read a
    sentence: the detector would drop such a name anyway.
    """
    names = name_words()
    found = [m.span() for m in _INSIDE.finditer(text)]
    # Capitalised words are many (every sentence starts with one) and names few: the distinct
    # words are checked, and the text is walked again only for the few that are names.
    known = {
        w
        for w in set(_CAPITALISED.findall(text))
        if _known(w.casefold().rstrip(":'’"), names)
        and not (ignore and _known(fold(w.rstrip(":'’")), ignore))
    }
    for word in known:  # each found as a whole word where it stands
        found += [m.span() for m in re.finditer(rf"(?<![\w'’:-]){re.escape(word)}(?![\w'’:-])", text)]
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
