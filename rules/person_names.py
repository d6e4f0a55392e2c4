"""Unknown persons: names the Swedish NER model finds in a message about care, staff excepted."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Literal

from models.config import StaffMember
from models.findings import Kind, Segment
from rules.fingerprint import mask_name
from rules.hits import Hit
from rules.normalize import NormalizedText
from rules.words import ADDRESS_HEADERS, CARE_WORDS, TITLE_WORDS

RULE = "person-name"
KIND: Kind = "person_name"

PersonSpans = Callable[[str], list[tuple[int, int]]]
PersonNameSeverity = Literal["warn", "block", "off"]

# Whole words only: "kund" is care context, "kunde" (could) is not.
_CARE_RE = re.compile(
    r"(?<!\w)(?:" + "|".join(re.escape(w) for w in sorted(CARE_WORDS, key=len, reverse=True)) + r")(?!\w)",
    re.IGNORECASE,
)
# Segments holding correspondents' display names: the people there are the sender and the
# recipients, not a client spoken about, and would otherwise warn on every care message.
_ADDRESS_HEADER_RE = re.compile(
    r"(?:^|/)header:(?:" + "|".join(map(re.escape, sorted(ADDRESS_HEADERS))) + r")$", re.I
)
# The genitive of a name, stripped before comparing with staff: "Annas", "Lars'", "Eva:s".
_GENITIVE_RE = re.compile(r"(?::s|['’]s?|s)$")
# What separates the words of a name, in a staff name or in an address's local part.
_NAME_SEPARATORS_RE = re.compile(r"[\s\-‐‑–.,_]+")


# A care word holds one of these: a plain substring test rules most texts out four times faster
# than the regular expression (which then checks whole words), and attachments can be megabytes.
_CARE_STEMS = tuple(
    w for w in {c.lower() for c in CARE_WORDS} if not any(o != w and o in w for o in CARE_WORDS)
)


def has_care_context(text: str) -> bool:
    lowered = text.lower()
    if not any(stem in lowered for stem in _CARE_STEMS):
        return False
    return _CARE_RE.search(text) is not None


def message_care_context(segments: Sequence[Segment]) -> bool:
    """Care context belongs to the whole message: a care word in the subject covers the body."""
    return any(has_care_context(s.text) for s in segments)


def segment_care_context(part: str, message_care: bool) -> bool:
    return message_care and _ADDRESS_HEADER_RE.search(part) is None


def fold(name: str) -> str:
    """Case and diacritics folded, hyphens as spaces: `Karl-Erik Öberg` = `karl erik oberg`."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_NAME_SEPARATORS_RE.split(plain.casefold())).strip()


def _address_name(address: str) -> str | None:
    """`anna.berg@kommun.se` -> `anna berg`: staff addresses usually spell the name out."""
    local = address.strip().strip("<>").partition("@")[0]
    words = [w for w in re.split(r"[._]", local) if w]
    if len(words) >= 2 and all(w.replace("-", "").isalpha() for w in words):
        return fold(" ".join(words))
    return None


def staff_names(staff: Iterable[StaffMember | str]) -> frozenset[str]:
    """Folded names of staff from config: the given names, and names spelled out in addresses."""
    names: set[str] = set()
    for entry in staff:
        if isinstance(entry, str):  # an address, or (no @) a name written as a plain string
            member = StaffMember(address=entry) if "@" in entry else StaffMember(name=entry)
        else:
            member = entry
        if member.name and fold(member.name):
            names.add(fold(member.name))
        if member.address and (derived := _address_name(member.address)):
            names.add(derived)
    return frozenset(names)


def is_staff(name: str, staff: frozenset[str]) -> bool:
    """Every word of the name belongs to one staff member: `Anna`, `Berg` and `Annas` are Anna Berg."""
    words = fold(name).split()
    if not words or not staff:
        return False
    plain = set(words)
    genitive = set(words[:-1]) | {_GENITIVE_RE.sub("", words[-1])}
    for member in staff:
        member_words = set(member.split())
        if plain <= member_words or genitive <= member_words:
            return True
    return False


# Words the model sometimes takes into a name ("Fru Kallesund", "Brukaren Lind"): not part of it.
_TITLES = frozenset(w.casefold() for w in TITLE_WORDS)
# A care word left in a span makes it the name of a unit or service ("Hemtjänsten Norr"), not a person.
_CARE = frozenset(w.casefold() for w in CARE_WORDS)
_WORD_RE = re.compile(r"\S+")


def _trim_title(text: str, start: int, end: int) -> int:
    """The start of the name proper, after any title or care word the span begins with."""
    for word in _WORD_RE.finditer(text, start, end):
        if word.group().rstrip(".").casefold() not in _TITLES:
            return word.start()
    return end


def _looks_like_name(name: str) -> bool:
    # The model was trained on edited text: a name starts with a capital letter. A span without one
    # is one of its rare misfires on a word, not worth a warning.
    if len(name) < 2 or not name[0].isupper() or not any(ch.isalpha() for ch in name[1:]):
        return False
    return not any(word.strip(".,:;").casefold() in _CARE for word in name.split())


def detect(
    text: NormalizedText,
    care_context: bool | None,
    person_spans: PersonSpans | None,
    staff: frozenset[str],
    severity: PersonNameSeverity,
) -> Iterator[Hit]:
    """Person names in `text`; `care_context` None means: decide from this text alone."""
    if person_spans is None or severity == "off":
        return
    if care_context is None:
        care_context = has_care_context(text.text)
    if not care_context:
        return
    for span_start, end in person_spans(text.text):
        start = _trim_title(text.text, span_start, end)
        name = " ".join(text.text[start:end].split())
        if not _looks_like_name(name) or is_staff(name, staff):
            continue
        o_start, o_end = text.span_to_original(start, end)
        yield Hit(
            rule=RULE,
            kind=KIND,
            severity=severity,
            start=o_start,
            end=o_end,
            canonical=name.casefold(),
            masked=mask_name(name),
        )


def yield_to_other_findings(found: Iterable[Hit]) -> list[Hit]:
    """A person name that another detector already reports (a client's name, a number) is dropped.

    The register's client_name finding says more (it blocks, and knows the customer number) about
    the same span: one finding per span keeps reports and guidance from repeating themselves.
    """
    hits = list(found)
    others = [h for h in hits if h.kind != KIND]
    if not others:
        return hits
    return [h for h in hits if h.kind != KIND or not any(o.start < h.end and h.start < o.end for o in others)]
