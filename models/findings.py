"""Shapes of what the engine finds and decides: segments, findings, unscanned parts, verdicts."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Severity = Literal["block", "warn"]
Kind = Literal[
    "personnummer",
    "samordningsnummer",
    "interimsnummer",
    "client_name",
    "client_phone",
    "client_address",
    "person_name",
]
VerdictName = Literal["pass", "warn", "block"]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Segment(Frozen):
    """A piece of text taken from a message or file, with where it came from."""

    part: str
    text: str


class Location(Frozen):
    part: str
    line: int
    column: int


class Finding(Frozen):
    rule: str
    kind: Kind
    severity: Severity
    location: Location
    masked: str
    fingerprint: str
    customer_number: str | None = None
    suggestion: str
    # Offsets in the segment's original text: used by --fix, never written to output.
    start: int
    end: int

    def public(self) -> dict[str, object]:
        """The fields that may leave the process (JSON output, audit log)."""
        return self.model_dump(exclude={"start", "end"})


class Unscanned(Frozen):
    """A part that could not be read, and why: never skipped silently."""

    name: str
    content_type: str
    reason: str
    # Encrypted mail (S/MIME, OpenPGP): policy.on_encrypted decides about it, not on_unscannable.
    encrypted: bool = False


class SenderContext(Frozen):
    authenticated_as: str | None = None
    tls: bool = False
    envelope_sender: str = ""
    from_header: str | None = None
    recipients: tuple[str, ...] = ()
    marked_secure: bool = False


class Verdict(Frozen):
    verdict: VerdictName
    reason: str
    manager_exception: bool = False
    unscannable: bool = False
    findings: tuple[Finding, ...] = ()
    unscanned: tuple[Unscanned, ...] = ()
    secure_route: bool = False
