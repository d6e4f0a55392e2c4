"""`brukarvakt lint`: the engine on files, with compiler-style or JSON output."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

from gateway import mail
from gateway.config import load
from gateway.errors import UserError
from gateway.scanner import MailScan, Scanner
from gateway.text import decode_bytes
from models.findings import Finding, Segment, SenderContext, Unscanned, Verdict
from rules import engine

EXIT_CLEAN, EXIT_BLOCK, EXIT_ERROR = 0, 1, 2
TEXT_PART = "text"
_MBOX_SPLIT = re.compile(rb"(?m)^From [^\r\n]*\r?\n")


@dataclass
class FileResult:
    path: str
    verdict: Verdict
    findings: tuple[Finding, ...]
    unscanned: tuple[Unscanned, ...] = ()
    extra: dict[str, object] = field(default_factory=dict)


def _inputs(paths: list[str]) -> Iterator[str]:
    for p in paths:
        if p != "-" and os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    yield os.path.join(root, name)
        else:
            yield p


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None


def _is_mail(path: str, data: bytes) -> bool:
    return path.lower().endswith(".eml") or mail.looks_like_mail(data[:8192])


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
        verdict = self.scanner.decide(MailScan(mail.MailText(), findings), self.text_sender)
        return FileResult(path, verdict, findings)

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
            else self.scanner.decide(MailScan(mail.MailText(), ()), self.sender_context(None, (), ""))
        )
        return FileResult(path, worst, tuple(findings), tuple(unscanned))

    def lint(self, path: str, data: bytes) -> FileResult:
        if _is_mail(path, data):
            return self.lint_mail(path, data)
        return self.lint_text(path, decode_bytes(data))


def _text_line(path: str, f: Finding) -> str:
    customer = f" kundnummer {f.customer_number}" if f.customer_number else ""
    return (
        f"{path}:{f.location.line}:{f.location.column}: {f.rule} {f.severity} {f.kind} {f.masked}"
        f" i {f.location.part} [{f.fingerprint[:12]}]{customer}: {f.suggestion}"
    )


def _unscanned_line(path: str, u: Unscanned) -> str:
    return f"{path}:0:0: unscannable block {u.name} ({u.content_type}): {u.reason}"


def _json_file(r: FileResult) -> dict[str, object]:
    return {
        "path": r.path,
        "verdict": r.verdict.verdict,
        "findings": [f.public() for f in r.findings],
        "unscanned": [u.model_dump() for u in r.unscanned],
    }


def _fix(linter: Linter, path: str, data: bytes) -> int:
    if _is_mail(path, data):
        raise UserError(f"{path}: --fix works on plain text, not on mail messages")
    text = decode_bytes(data)
    ctx = linter.scanner.context()
    found = {(f.start, f.end): f for f in linter.scanner.scan_segments([Segment(part=TEXT_PART, text=text)])}
    hits = [h for h in engine.hits(text, ctx) if (h.start, h.end) in found]

    def replacement(h: engine.Hit) -> str:
        f = found[(h.start, h.end)]
        return f"kundnummer {f.customer_number}" if f.customer_number else f.masked

    sys.stdout.write(engine.replace(text, hits, replacement))
    sys.stdout.flush()
    return EXIT_CLEAN


def run(args: argparse.Namespace) -> int:
    config = load(args.config)
    linter = Linter(Scanner(config), args.sender)
    if args.fix:
        if len(args.paths) != 1 or os.path.isdir(args.paths[0]):
            raise UserError("--fix takes exactly one file (or - for standard input)")
        return _fix(linter, args.paths[0], _read(args.paths[0]))
    results: list[FileResult] = []
    errors = blocked = 0
    out = sys.stdout
    for path in _inputs(args.paths):
        try:
            data = _read(path)
        except UserError as e:
            print(f"brukarvakt: error: {e}", file=sys.stderr)
            errors += 1
            continue
        # A file named after the person it is about would leak through the output: mask it.
        result = linter.lint(linter.scanner.redact(path), data)
        blocked += result.verdict.verdict == "block"
        if args.format == "json":
            results.append(result)
            continue
        for f in result.findings:
            out.write(_text_line(result.path, f) + "\n")
        for u in result.unscanned:
            out.write(_unscanned_line(result.path, u) + "\n")
    if args.format == "json":
        # dumps, not dump: dump streams through the pure-Python encoder, several times slower.
        out.write(json.dumps({"files": [_json_file(r) for r in results]}, ensure_ascii=False))
        out.write("\n")
    if errors:
        return EXIT_ERROR
    return EXIT_BLOCK if blocked else EXIT_CLEAN
