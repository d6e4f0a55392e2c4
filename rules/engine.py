"""The registry of detectors, and the scan that turns segments into findings."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from models.findings import Finding, Location, Segment, Severity
from rules import identity_numbers, person_names
from rules.fingerprint import fingerprint
from rules.guidance import suggestion
from rules.hits import Hit
from rules.normalize import NormalizedText, normalize
from rules.register.matcher import RegisterIndex


class CustomerLookup(Protocol):
    """A dict, or the register's compact table: only `get` is needed."""

    def get(self, fingerprint: str, /) -> str | None: ...


def _no_customers() -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class ScanContext:
    """What detectors may know besides the text; built once, reused for every message."""

    fingerprint_key: bytes
    today: date
    customer_numbers: frozenset[str] = frozenset()
    # fingerprint of a client identifier -> customer number (from the client register)
    customer_by_fingerprint: CustomerLookup = field(default_factory=_no_customers)
    # The loaded client register: names, phones and addresses of known clients.
    client_register: RegisterIndex | None = None
    # Unknown persons: the NER callable (None when policy.person_name is off), folded staff names.
    person_spans: person_names.PersonSpans | None = None
    staff_names: frozenset[str] = frozenset()
    person_name_severity: Severity = "warn"
    # Whether the message is about care; None: each text decides for itself. `scan` sets it per
    # message, so that a care word in the subject covers a name in the body.
    care_context: bool | None = None

    def with_care_context(self, care: bool | None) -> ScanContext:
        """This context for a text with or without care context, each copy made once per context
        (a copy costs more than a header's scan; the gateway keeps one context a day)."""
        if care == self.care_context:
            return self
        return self._with_care[care]

    @functools.cached_property
    def _with_care(self) -> dict[bool | None, ScanContext]:
        return {care: dataclasses.replace(self, care_context=care) for care in (True, False, None)}


Detector = Callable[[NormalizedText, ScanContext], Iterable[Hit]]


def _identity_numbers(text: NormalizedText, ctx: ScanContext) -> Iterable[Hit]:
    return identity_numbers.detect(text, ctx.today, ctx.customer_numbers)


def _person_names(text: NormalizedText, ctx: ScanContext) -> Iterable[Hit]:
    return person_names.detect(
        text, ctx.care_context, ctx.person_spans, ctx.staff_names, ctx.person_name_severity
    )


def _client_register(text: NormalizedText, ctx: ScanContext) -> Iterable[Hit]:
    if ctx.client_register is None:
        return ()
    found = ctx.client_register.detect(text)
    if not ctx.staff_names:
        return found
    # A staff member who bears a client's name would have every mail they sign blocked: such a
    # name is a warning (still shown and logged), since the text cannot tell the two apart.
    return (
        dataclasses.replace(h, severity="warn")
        if h.kind == "client_name" and person_names.is_staff(text.original[h.start : h.end], ctx.staff_names)
        else h
        for h in found
    )


# The one list of detectors every scan runs, in order.
DETECTORS: list[Detector] = [_identity_numbers, _client_register, _person_names]


def _location(part: str, text: str, offset: int, known: tuple[int, int] = (0, 1)) -> Location:
    """Line and column of `offset`; `known` is an earlier (offset, line) to count lines on from."""
    line_start = text.rfind("\n", 0, offset) + 1
    line = known[1] + text.count("\n", known[0], offset)
    return Location(part=part, line=line, column=offset - line_start + 1)


def hits(text: str, ctx: ScanContext, detectors: Iterable[Detector] | None = None) -> list[Hit]:
    normalized = normalize(text)
    found: list[Hit] = []
    for detector in DETECTORS if detectors is None else detectors:
        found.extend(detector(normalized, ctx))
    found = person_names.yield_to_other_findings(found)
    found.sort(key=lambda h: (h.start, -h.end))
    return found


def redact(text: str, ctx: ScanContext) -> str:
    """The text with every identifier replaced by its masked form (for part names, subjects)."""
    found = hits(text, ctx)
    return replace(text, found, lambda h: h.masked) if found else text


def redact_numbers(text: str, today: date) -> str:
    """`redact` for code that holds no ScanContext (audit log, notices): identity numbers only.

    Masking makes no fingerprint, so no key is needed; names from the client register need the
    full context.
    """
    return redact(text, ScanContext(fingerprint_key=b"", today=today))


def replace(text: str, found: Iterable[Hit], replacement: Callable[[Hit], str]) -> str:
    out: list[str] = []
    pos = 0
    for h in sorted(found, key=lambda h: (h.start, -h.end)):
        if h.start < pos:
            continue  # overlaps one already replaced
        out.append(text[pos : h.start])
        out.append(replacement(h))
        pos = h.end
    out.append(text[pos:])
    return "".join(out)


def scan(segments: Iterable[Segment], ctx: ScanContext) -> Iterator[Finding]:
    segments = list(segments)
    message_care = ctx.care_context
    if ctx.person_spans is not None and message_care is None:
        message_care = person_names.message_care_context(segments)
    base = ctx
    for segment in segments:
        if message_care is not None:
            ctx = base.with_care_context(person_names.segment_care_context(segment.part, message_care))
        part = None
        known = (0, 1)  # hits come in order: lines are counted on from the one before, not from 0
        for h in hits(segment.text, ctx):
            if part is None:
                part = redact(segment.part, ctx)  # a file name can hold the identifier itself
            location = _location(part, segment.text, h.start, known)
            known = (h.start, location.line)
            fp = fingerprint(ctx.fingerprint_key, h.canonical)
            customer = h.customer_number or ctx.customer_by_fingerprint.get(fp)
            yield Finding(
                rule=h.rule,
                kind=h.kind,
                severity=h.severity,
                location=location,
                masked=h.masked,
                fingerprint=fp,
                customer_number=customer,
                suggestion=suggestion(h.kind, customer),
                start=h.start,
                end=h.end,
            )
