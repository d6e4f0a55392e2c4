"""The shape of one audit-log decision: what compliance needs, and nothing that names a person."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from models.findings import Kind, Location, Severity, Verdict, VerdictName

# What happened to the message: the gateway's decisions, then what the quarantine commands did.
Action = Literal[
    "delivered", "rejected", "quarantined", "deferred", "failed", "released", "deleted", "purged"
]


class AuditFinding(BaseModel):
    """A finding as the log keeps it: no masked form, no suggestion, only what can be counted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    kind: Kind
    severity: Severity
    location: Location
    fingerprint: str
    customer_number: str | None = None


class AuditRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    time: datetime
    message_id: str | None
    authenticated_as: str | None
    envelope_sender: str
    recipient_domains: tuple[str, ...]
    verdict: VerdictName
    reason: str
    manager_exception: bool
    action: Action
    findings: tuple[AuditFinding, ...] = ()
    # Parts that could not be read: their content types only (a part's name can hold an identifier).
    unscanned: tuple[str, ...] = ()
    size: int
    scan_seconds: float
    quarantine_id: str | None = None

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("time must carry a time zone")
        return value.astimezone(UTC)

    @classmethod
    def from_decision(
        cls,
        *,
        time: datetime,
        message_id: str | None,
        authenticated_as: str | None,
        envelope_sender: str,
        recipients: Sequence[str],
        verdict: Verdict,
        action: Action,
        size: int,
        scan_seconds: float,
        quarantine_id: str | None = None,
    ) -> AuditRecord:
        """Keep the recipients' domains only, and of each finding what identifies it without naming."""
        domains = sorted({r.rpartition("@")[2].strip().strip("<>").lower() for r in recipients if r.strip()})
        return cls(
            time=time,
            message_id=message_id,
            authenticated_as=authenticated_as,
            envelope_sender=envelope_sender,
            recipient_domains=tuple(domains),
            verdict=verdict.verdict,
            reason=verdict.reason,
            manager_exception=verdict.manager_exception,
            action=action,
            findings=tuple(
                AuditFinding(
                    rule=f.rule,
                    kind=f.kind,
                    severity=f.severity,
                    location=f.location,
                    fingerprint=f.fingerprint,
                    customer_number=f.customer_number,
                )
                for f in verdict.findings
            ),
            unscanned=tuple(u.content_type for u in verdict.unscanned),
            size=size,
            scan_seconds=round(scan_seconds, 6),
            quarantine_id=quarantine_id,
        )

    def masked_json(self, redact: Callable[[str], str]) -> dict[str, Any]:
        """`masked(redact).model_dump(mode="json")`, without the copies: the audit log's hot path."""
        body = self.model_dump(mode="json")
        if body["message_id"]:
            body["message_id"] = redact(body["message_id"])
        body["authenticated_as"] = redact(body["authenticated_as"]) if body["authenticated_as"] else None
        body["envelope_sender"] = redact(body["envelope_sender"])
        body["recipient_domains"] = [redact(d) for d in body["recipient_domains"]]
        body["reason"] = redact(body["reason"])
        for finding in body["findings"]:
            finding["location"]["part"] = redact(finding["location"]["part"])
        return body

    def masked(self, redact: Callable[[str], str]) -> AuditRecord:
        """A copy with every free-text field passed through `redact`.

        A Message-ID, an address or an attachment's name (a finding's location) may hold an
        identifier; fingerprints, customer numbers and fixed vocabulary are left as they are.
        """
        return self.model_copy(
            update={
                "message_id": redact(self.message_id) if self.message_id else self.message_id,
                "authenticated_as": redact(self.authenticated_as) if self.authenticated_as else None,
                "envelope_sender": redact(self.envelope_sender),
                "recipient_domains": tuple(redact(d) for d in self.recipient_domains),
                "reason": redact(self.reason),
                "findings": tuple(
                    f.model_copy(
                        update={"location": f.location.model_copy(update={"part": redact(f.location.part)})}
                    )
                    for f in self.findings
                ),
            }
        )
