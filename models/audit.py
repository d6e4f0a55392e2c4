"""The shapes of audit-log lines: decisions about messages and security events, naming no person."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from models.findings import Kind, Location, Severity, Verdict, VerdictName

# What happened to the message: the gateway's decisions, then what was done with a held one later.
Action = Literal[
    "delivered", "rejected", "quarantined", "deferred", "failed", "released", "deleted", "purged"
]
# Events that are not a decision about a message: who tried what and was refused, and what
# people did with the log's own data. Compliance sees attempts, not only the mail that got through.
EventAction = Literal[
    "auth-failed",  # a wrong password or an unknown user at SMTP AUTH (the user name only)
    "refused",  # 530 (not allowed to send) or 553 (MAIL FROM not the login) during the session
    "upstream-unparsed",  # a trusted upstream's Received header that is not Postfix's
    "shown-in-clear",  # a held message shown unmasked (break-the-glass), with the reason typed
    "console-login",  # a console user signed in, or failed to
    "console-search",  # a search of the audit by person (the search term is never written)
    "console-export",  # a search result exported
    "console-logout",  # a console user signed out, or was signed out after the idle timeout
    "console-view",  # a held message opened in the console, masked
    "release-failed",  # a release the next hop refused or deferred: the message stays held
]


# What Python keeps for a byte that is not UTF-8 (surrogateescape): no UTF-8 line can hold it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def writable(redact: Callable[[str], str]) -> Callable[[str], str]:
    """`redact` for text that may hold bytes that were not UTF-8 (an envelope address as the MTA
    gave it): each such character becomes U+FFFD first. One of them made the whole line, and every
    line written with it in the same batch, fail to be written at all.
    """

    def masked(text: str) -> str:
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                text = _LONE_SURROGATE.sub("\ufffd", text)
        return redact(text)

    return masked


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
    # Parts that could not be read: their content types only (a part's name can hold an identifier;
    # the content type is the sender's word too, and masked like the other free text).
    unscanned: tuple[str, ...] = ()
    size: int
    scan_seconds: float
    quarantine_id: str | None = None
    # Who acted on a held message (release, delete) and why, as they typed it (masked on writing).
    actor: str | None = None
    note: str | None = None

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
        redact = writable(redact)
        body = self.model_dump(mode="json")
        if body["message_id"]:
            body["message_id"] = redact(body["message_id"])
        body["authenticated_as"] = redact(body["authenticated_as"]) if body["authenticated_as"] else None
        body["envelope_sender"] = redact(body["envelope_sender"])
        body["recipient_domains"] = [redact(d) for d in body["recipient_domains"]]
        body["reason"] = redact(body["reason"])
        for finding in body["findings"]:
            finding["location"]["part"] = redact(finding["location"]["part"])
        if body["unscanned"]:
            body["unscanned"] = [redact(c) for c in body["unscanned"]]
        if body["note"]:
            body["note"] = redact(body["note"])
        return body

    def masked(self, redact: Callable[[str], str]) -> AuditRecord:
        """A copy with every free-text field passed through `redact`.

        A Message-ID, an address or an attachment's name (a finding's location) may hold an
        identifier; fingerprints, customer numbers and fixed vocabulary are left as they are.
        """
        redact = writable(redact)
        return self.model_copy(
            update={
                "message_id": redact(self.message_id) if self.message_id else self.message_id,
                "authenticated_as": redact(self.authenticated_as) if self.authenticated_as else None,
                "envelope_sender": redact(self.envelope_sender),
                "recipient_domains": tuple(redact(d) for d in self.recipient_domains),
                "reason": redact(self.reason),
                "note": redact(self.note) if self.note else self.note,
                "unscanned": tuple(redact(c) for c in self.unscanned),
                "findings": tuple(
                    f.model_copy(
                        update={"location": f.location.model_copy(update={"part": redact(f.location.part)})}
                    )
                    for f in self.findings
                ),
            }
        )


class AuditEvent(BaseModel):
    """A security or console event in the same hash chain as the decisions.

    `login` is a user name as typed (never a password); `envelope_sender` the MAIL FROM that was
    refused; `detail` a fixed word or a reply code; `note` what a person typed as the reason.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    time: datetime
    action: EventAction
    client_address: str | None = None
    login: str | None = None
    envelope_sender: str | None = None
    detail: str = ""
    actor: str | None = None
    quarantine_id: str | None = None
    note: str | None = None
    result: Literal["ok", "refused", "failed"] = "refused"

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("time must carry a time zone")
        return value.astimezone(UTC)

    def masked_json(self, redact: Callable[[str], str]) -> dict[str, Any]:
        """The line's fields with every text a person chose (user name, address, reason) masked."""
        redact = writable(redact)
        body = self.model_dump(mode="json")
        for key in ("login", "envelope_sender", "note", "detail"):
            if body[key]:
                body[key] = redact(body[key])
        return body
