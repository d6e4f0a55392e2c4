"""The registry of detectors, and the scan that turns segments into findings."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date

from models.findings import Finding, Location, Segment
from rules import identity_numbers
from rules.fingerprint import fingerprint
from rules.guidance import suggestion
from rules.hits import Hit
from rules.normalize import NormalizedText, normalize


@dataclass(frozen=True)
class ScanContext:
    """What detectors may know besides the text; built once, reused for every message."""

    fingerprint_key: bytes
    today: date
    customer_numbers: frozenset[str] = frozenset()
    # fingerprint of a client identifier -> customer number (from the client register)
    customer_by_fingerprint: dict[str, str] = field(default_factory=dict)


Detector = Callable[[NormalizedText, ScanContext], Iterable[Hit]]


def _identity_numbers(text: NormalizedText, ctx: ScanContext) -> Iterable[Hit]:
    return identity_numbers.detect(text, ctx.today, ctx.customer_numbers)


# The one list of detectors every scan runs, in order.
DETECTORS: list[Detector] = [_identity_numbers]


def _location(part: str, text: str, offset: int) -> Location:
    line_start = text.rfind("\n", 0, offset) + 1
    return Location(part=part, line=text.count("\n", 0, offset) + 1, column=offset - line_start + 1)


def hits(text: str, ctx: ScanContext, detectors: Iterable[Detector] | None = None) -> list[Hit]:
    normalized = normalize(text)
    found: list[Hit] = []
    for detector in DETECTORS if detectors is None else detectors:
        found.extend(detector(normalized, ctx))
    found.sort(key=lambda h: (h.start, -h.end))
    return found


def redact(text: str, ctx: ScanContext) -> str:
    """The text with every identifier replaced by its masked form (for part names, subjects)."""
    return replace(text, hits(text, ctx), lambda h: h.masked)


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
    for segment in segments:
        part = None
        for h in hits(segment.text, ctx):
            if part is None:
                part = redact(segment.part, ctx)  # a file name can hold the identifier itself
            fp = fingerprint(ctx.fingerprint_key, h.canonical)
            customer = h.customer_number or ctx.customer_by_fingerprint.get(fp)
            yield Finding(
                rule=h.rule,
                kind=h.kind,
                severity=h.severity,
                location=_location(part, segment.text, h.start),
                masked=h.masked,
                fingerprint=fp,
                customer_number=customer,
                suggestion=suggestion(h.kind, customer),
                start=h.start,
                end=h.end,
            )
