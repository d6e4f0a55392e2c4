"""What a detector reports: a span of the original text, before it becomes a Finding."""

from __future__ import annotations

from dataclasses import dataclass

from models.findings import Kind, Severity


@dataclass(frozen=True, slots=True)
class Hit:
    rule: str
    kind: Kind
    severity: Severity
    start: int  # offsets in the segment's original text
    end: int
    canonical: str  # the value the fingerprint is made of
    masked: str
    customer_number: str | None = None
