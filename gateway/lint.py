"""The linter: the engine on a file or a mail message, as if it were sent (the door `lint` uses)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cached_property

from gateway.scanner import Scanner
from gateway.sniff import looks_like_mail
from gateway.text import decode_bytes
from models.findings import Finding, Segment, SenderContext, Unscanned, Verdict
from rules import engine

TEXT_PART = "text"
_MBOX_SPLIT = re.compile(rb"(?m)^From [^\r\n]*\r?\n")


@dataclass
class FileResult:
    path: str
    verdict: Verdict
    findings: tuple[Finding, ...]
    unscanned: tuple[Unscanned, ...] = ()
    extra: dict[str, object] = field(default_factory=dict)


def is_mail(path: str, data: bytes) -> bool:
    return path.lower().endswith(".eml") or looks_like_mail(data[:8192])


# Read as text, a Word file, a workbook, a PDF or a picture showed nothing and linted clean: bytes
# no text in UTF-8 or cp1252 holds (a zero byte: zip, OLE, pictures, UTF-16 text) or a document's
# own start make the file a document, read as the gateway reads an attachment.
DOCUMENT_STARTS = (b"%PDF-", b"{\\rtf")


def is_document(data: bytes) -> bool:
    return data.find(b"\x00", 0, 8192) >= 0 or data.startswith(DOCUMENT_STARTS)


class Linter:
    def __init__(self, scanner: Scanner, sender: str | None) -> None:
        self.scanner = scanner
        self.sender = sender.strip().lower() if sender else None

    def sender_context(
        self, from_address: str | None, recipients: tuple[str, ...], subject: str
    ) -> SenderContext:
        # With --sender the question is "may this person send it, done right": authenticated,
        # over TLS, from their own address. Without it, nobody is vouched for.
        return SenderContext(
            authenticated_as=self.sender,
            tls=self.sender is not None,
            envelope_sender=self.sender or (from_address or ""),
            from_header=(from_address or self.sender or "").lower() or None,
            recipients=recipients,
            marked_secure=self.scanner.marked_secure(subject),
        )

    def lint_text(self, path: str, text: str) -> FileResult:
        findings = self.scanner.scan_segments([Segment(part=TEXT_PART, text=text)])
        if not findings:
            return FileResult(path, self.clean_text, findings)
        return FileResult(path, self.scanner.verdict(findings, (), self.text_sender), findings)

    @cached_property
    def clean_text(self) -> Verdict:
        """The verdict on plain text with nothing in it, the same for every such file: made once."""
        return self.scanner.verdict((), (), self.text_sender)

    @cached_property
    def text_sender(self) -> SenderContext:
        """Plain text has no headers: the same sender for every file, made once."""
        return self.sender_context(None, (), "")

    def lint_mail(self, path: str, data: bytes) -> FileResult:
        messages = _MBOX_SPLIT.split(data) if data.startswith(b"From ") else [data]
        messages = [m for m in messages if m.strip()]
        findings: list[Finding] = []
        unscanned: list[Unscanned] = []
        verdicts: list[Verdict] = []
        for i, message in enumerate(messages, 1):
            prefix = f"message[{i}]/" if len(messages) > 1 else ""
            scan = self.scanner.scan_mail(message, prefix=prefix)
            findings.extend(scan.findings)
            unscanned.extend(scan.mail.unscanned)
            sender = self.sender_context(scan.mail.from_address, scan.mail.recipients, scan.mail.subject)
            verdicts.append(self.scanner.decide(scan, sender))
        order = {"pass": 0, "warn": 1, "block": 2}
        worst = (
            max(verdicts, key=lambda v: order[v.verdict])
            if verdicts
            else self.scanner.verdict((), (), self.sender_context(None, (), ""))
        )
        return FileResult(path, worst, tuple(findings), tuple(unscanned))

    def fixed(self, text: str) -> str:
        """The text with every identifier replaced: the customer number where known, else masked."""
        ctx = self.scanner.context()
        found = {
            (f.start, f.end): f for f in self.scanner.scan_segments([Segment(part=TEXT_PART, text=text)])
        }
        hits = [h for h in engine.hits(text, ctx) if (h.start, h.end) in found]

        def replacement(h: engine.Hit) -> str:
            f = found[(h.start, h.end)]
            return f"kundnummer {f.customer_number}" if f.customer_number else f.masked

        return engine.replace(text, hits, replacement)

    def lint_document(self, path: str, data: bytes) -> FileResult:
        scan = self.scanner.scan_file(os.path.basename(path), data)
        verdict = self.scanner.verdict(scan.findings, scan.mail.unscanned, self.text_sender)
        return FileResult(path, verdict, scan.findings, tuple(scan.mail.unscanned))

    def lint(self, path: str, data: bytes) -> FileResult:
        if is_mail(path, data):
            return self.lint_mail(path, data)
        if is_document(data):
            return self.lint_document(path, data)
        return self.lint_text(path, decode_bytes(data))
