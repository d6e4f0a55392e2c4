"""One engine per process: the fingerprint key and the register loaded once, reused per message."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from gateway import mail
from gateway.keys import fingerprint_key
from models.config import Config
from models.findings import Finding, Segment, SenderContext, Verdict
from rules import engine, policy
from rules.engine import ScanContext


@dataclass(frozen=True)
class MailScan:
    mail: mail.MailText
    findings: tuple[Finding, ...]


class Scanner:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.base = ScanContext(fingerprint_key=fingerprint_key(config.privacy), today=date.today())

    def context(self, today: date | None = None) -> ScanContext:
        return replace(self.base, today=today or date.today())

    def scan_segments(self, segments: list[Segment], today: date | None = None) -> tuple[Finding, ...]:
        return tuple(engine.scan(segments, self.context(today)))

    def scan_mail(self, data: bytes, today: date | None = None, prefix: str = "") -> MailScan:
        text = mail.extract(data, self.config.limits, prefix)
        return MailScan(text, self.scan_segments(text.segments, today))

    def redact(self, text: str) -> str:
        return engine.redact(text, self.context())

    def decide(self, scan: MailScan, sender: SenderContext) -> Verdict:
        return policy.decide(scan.findings, scan.mail.unscanned, sender, self.config.policy, self.config.secure)

    def marked_secure(self, subject: str) -> bool:
        tag = self.config.secure.marker.subject_tag
        return bool(tag) and tag.lower() in subject.lower()
