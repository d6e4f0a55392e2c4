"""One engine per process: the fingerprint key and the register loaded once, reused per message."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from gateway import mail, ner, register_store
from gateway.keys import fingerprint_key
from models.config import Config, Policy
from models.findings import Finding, Segment, SenderContext, Unscanned, Verdict
from rules import engine, person_names, policy
from rules.engine import ScanContext


@dataclass(frozen=True)
class MailScan:
    mail: mail.MailText
    findings: tuple[Finding, ...]


def person_name_fields(policy: Policy) -> dict[str, Any]:
    """The NER callable only when the rule is on; spaCy loads on the first message with care context.

    Staff names are given either way: the register's name matches use them too.
    """
    staff = person_names.staff_names(policy.staff)
    if policy.person_name == "off":
        return {"person_spans": None, "staff_names": staff}
    staff_words = frozenset(word for name in staff for word in name.split())
    return {
        "person_spans": functools.partial(ner.person_spans, ignore=staff_words),
        "staff_names": staff,
        "person_name_severity": policy.person_name,
    }


def register_fields(config: Config, key: bytes) -> dict[str, Any]:
    """The client register, read once; no file yet means no known clients (not an error)."""
    index = register_store.load(config.register.path, key)
    if index is None:
        return {}
    return {
        "client_register": index,
        "customer_numbers": index.customer_numbers,
        "customer_by_fingerprint": index.by_personnummer,
    }


class Scanner:
    def __init__(self, config: Config) -> None:
        self.config = config
        key = fingerprint_key(config.privacy)
        self.base = ScanContext(fingerprint_key=key, today=date.today())
        self.base = replace(self.base, **person_name_fields(config.policy), **register_fields(config, key))
        self._day: ScanContext | None = None  # the context of another day than the base's, once asked for

    def context(self, today: date | None = None) -> ScanContext:
        today = today or date.today()
        # One context per day, kept: a copy per message costs more than a small file's scan, and
        # the context keeps its care-context copies (rules/engine.py) for as long as it lives.
        if today != self.base.today:
            day = self._day
            if day is None or day.today != today:
                day = self._day = replace(self.base, today=today)
            return day
        return self.base

    def scan_segments(self, segments: list[Segment], today: date | None = None) -> tuple[Finding, ...]:
        return tuple(engine.scan(segments, self.context(today)))

    def scan_mail(self, data: bytes, today: date | None = None, prefix: str = "") -> MailScan:
        text = mail.extract(data, self.config.limits, prefix)
        text.unscanned = self._masked(text.unscanned)
        return MailScan(text, self.scan_segments(text.segments, today))

    def scan_file(self, name: str, data: bytes, today: date | None = None) -> MailScan:
        """A document or picture as the gateway reads an attachment of that name (for the linter)."""
        text = mail.extract_file(name, data, self.config.limits)
        text.unscanned = self._masked(text.unscanned)
        return MailScan(text, self.scan_segments(text.segments, today))

    def _masked(self, unscanned: list[Unscanned]) -> list[Unscanned]:
        """An unread part is named by its file name and its declared type, both the sender's words:
        either can be the identifier itself (`journal_<personnummer>.zip`, `application/x-<...>`)."""
        return [
            u.model_copy(update={"name": self.redact(u.name), "content_type": self.redact(u.content_type)})
            for u in unscanned
        ]

    def redact(self, text: str) -> str:
        return engine.redact(text, self.context())

    def decide(self, scan: MailScan, sender: SenderContext) -> Verdict:
        return self.verdict(scan.findings, scan.mail.unscanned, sender)

    def verdict(
        self, findings: Iterable[Finding], unscanned: Iterable[Unscanned], sender: SenderContext
    ) -> Verdict:
        """The policy's verdict on what a scan found (plain text has no message to pass along)."""
        return policy.decide(findings, unscanned, sender, self.config.policy, self.config.secure)

    def marked_secure(self, subject: str) -> bool:
        tag = self.config.secure.marker.subject_tag
        return bool(tag) and tag.lower() in subject.lower()
