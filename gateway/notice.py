"""The sender's guidance notice: an RFC 3464 report in Swedish about what was found and what to write, and its sending.

The notice holds the original's headers with every identifier masked, never its body. It is
sent with `MAIL FROM:<>` and `Auto-Submitted: auto-replied` (RFC 3834), straight to the next
hop: the gateway never scans it, and never answers a message that is itself automatic, so
notices cannot loop.
"""

from __future__ import annotations

import asyncio
import email.header
import email.parser
import email.policy
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from email.charset import QP, Charset
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.utils import format_datetime, make_msgid
from typing import Any

from gateway import logs
from gateway.delivery import deliver
from gateway.logs import log
from models.config import Config
from models.findings import Verdict
from rules.engine import redact_numbers
from rules.guidance import SAFE_WAYS, WHAT, place

MAX_FINDINGS_LISTED = 20
HEADER_LINE_MAX = 76

SUBJECT_BLOCKED = "Inte skickat: meddelandet innehöll uppgifter om en brukare"
SUBJECT_WARNED = "Skickat, men kontrollera: meddelandet kan innehålla uppgifter om en brukare"
INTRO_BLOCKED = (
    "Ditt e-postmeddelande har inte skickats. Det innehöll uppgifter om en brukare, och sådana "
    "uppgifter får inte skickas med e-post. Meddelandet hålls kvar och når inte mottagaren."
)
INTRO_WARNED = (
    "Ditt e-postmeddelande har skickats, men det kan innehålla uppgifter om en brukare. "
    "Kontrollera det, och skriv på det här sättet nästa gång."
)
FOUND = "Det här hittades (uppgifterna visas maskerade):"
UNREADABLE = "En del kunde inte granskas: {} ({})."
INSTEAD = "Så gör du i stället:"
CLOSING_BLOCKED = "Ta bort uppgifterna och skicka meddelandet igen. Har du frågor, kontakta din chef."
AUTOMATIC = "Det här är ett automatiskt meddelande från brukarvakt; svara inte på det."
# The report's machine-readable part is ASCII (RFC 3464); its text is for mail programs and admins.
DIAGNOSTIC_BLOCKED = "smtp; 550 5.7.1 Message holds personal data about a care recipient; not sent"
DIAGNOSTIC_WARNED = "smtp; 250 2.0.0 Sent; it may hold personal data about a care recipient"

Redact = Callable[[str], str]
_COMMENT = re.compile(r"\([^()]*\)")  # RFC 5322 comments, as in "Auto-Submitted: no (a person)"


def _default_redact(text: str) -> str:
    return redact_numbers(text, date.today())


def _headers(original: bytes | Message) -> Message:
    if isinstance(original, Message):
        return original
    end = original.find(b"\r\n\r\n")
    end = original.find(b"\n\n") if end < 0 else end
    head = original if end < 0 else original[: end + 2]
    return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)


def should_notify(original: bytes | Message, mail_from: str) -> bool:
    """RFC 3834: never answer `<>` (a bounce or notice) nor anything Auto-Submitted other than `no`."""
    if not mail_from.strip().strip("<>"):
        return False
    headers = _headers(original)
    if headers.get("Auto-Submitted") is None:
        return True
    keyword = _COMMENT.sub(" ", _raw(headers, "Auto-Submitted")).split(";")[0]
    return keyword.strip().lower() == "no"


def _raw(headers: Message, name: str) -> str:
    """A header's value as written (compat32 turns undeclared 8-bit values into Header objects)."""
    for key, value in headers.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return ""


def _decoded(value: str) -> str:
    if not value.isascii():  # raw 8-bit header bytes kept as surrogate escapes by compat32
        value = value.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    if "=?" not in value:
        return value
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except Exception:  # a malformed encoded word: the raw text is what the reader sees
        return value


def masked_headers(headers: Message, redact: Redact) -> str:
    """The header block with identifiers masked, as 7-bit text (RFC 2047 where needed)."""
    lines = []
    for name, raw in headers.raw_items():  # raw: undeclared 8-bit bytes as surrogate escapes
        raw = str(raw)
        text = _decoded(raw)
        masked = redact(text)
        if masked == text and raw.isascii():
            lines.append(f"{name}: {raw}")  # untouched, folding kept
            continue
        flat = " ".join(masked.split())
        if flat.isascii():
            lines.append(f"{name}: {flat}")
        else:
            lines.append(f"{name}: {email.header.Header(flat, 'utf-8', header_name=name).encode()}")
    return "\r\n".join(lines) + "\r\n"


def _text(
    verdict: Verdict,
    subject: str,
    rcpt_tos: Sequence[str],
    arrival: datetime,
    reference: str | None,
    redact: Redact,
) -> str:
    blocked = verdict.verdict == "block"
    lines = ["Hej!", "", INTRO_BLOCKED if blocked else INTRO_WARNED, ""]
    lines.append(f"Ämne: {subject or '(inget ämne)'}")
    lines.append(f"Till: {', '.join(redact(r) for r in rcpt_tos)}")
    lines.append(f"Mottaget: {arrival:%Y-%m-%d %H:%M} ({arrival:%Z})".replace(" ()", ""))
    if reference:
        lines.append(f"Ärende: {reference}")
    if verdict.findings or verdict.unscanned:
        lines += ["", FOUND]
    shown = verdict.findings[:MAX_FINDINGS_LISTED]
    for f in shown:
        what = WHAT[f.kind]
        part = redact(f.location.part)
        where = place(part) + (
            "" if part.rpartition("/")[2].startswith("header:") else f", rad {f.location.line}"
        )
        lines.append(f"- {what[0].upper()}{what[1:]} ({f.masked}) i {where}. {redact(f.suggestion)}")
    if len(verdict.findings) > len(shown):
        lines.append(f"- ... och {len(verdict.findings) - len(shown)} uppgifter till av samma slag.")
    for u in verdict.unscanned:
        lines.append("- " + UNREADABLE.format(place(redact(u.name)), redact(u.reason)))
    customers = sorted({f.customer_number for f in verdict.findings if f.customer_number})
    if customers:
        lines += [
            "",
            f"Brukarens kundnummer: {', '.join(customers)}. Skriv det i stället för namn och personnummer.",
        ]
    lines += ["", INSTEAD, *(f"- {way}" for way in SAFE_WAYS), ""]
    if blocked:
        lines.append(CLOSING_BLOCKED)
    lines.append(AUTOMATIC)
    return "\n".join(lines) + "\n"


def _delivery_status(
    verdict: Verdict, rcpt_tos: Sequence[str], reporting_mta: str, arrival: datetime, redact: Redact
) -> Message:
    blocked = verdict.verdict == "block"
    per_message = Message()
    per_message["Reporting-MTA"] = f"dns; {reporting_mta}"
    per_message["Arrival-Date"] = format_datetime(arrival)
    blocks = [per_message]
    for rcpt in rcpt_tos:
        per_rcpt = Message()
        address = redact(rcpt)
        per_rcpt["Final-Recipient"] = f"{'rfc822' if address.isascii() else 'utf-8'}; {address}"
        per_rcpt["Action"] = "failed" if blocked else "relayed"
        per_rcpt["Status"] = "5.7.1" if blocked else "2.0.0"
        per_rcpt["Diagnostic-Code"] = DIAGNOSTIC_BLOCKED if blocked else DIAGNOSTIC_WARNED
        blocks.append(per_rcpt)
    part = Message()
    part["Content-Type"] = "message/delivery-status"
    part.set_payload(blocks)  # type: ignore[arg-type]  # compat32 keeps the field groups as a list
    return part


def build_notice(
    original: bytes,
    verdict: Verdict,
    mail_from: str,
    rcpt_tos: list[str],
    reporting_mta: str,
    arrival: datetime,
    *,
    from_address: str | None = None,
    reference: str | None = None,
    redact: Redact | None = None,
) -> bytes:
    """The notice to `mail_from` about `original`, as bytes ready for `deliver(config, "", [mail_from], ...)`.

    `redact` masks identifiers in the original's headers and in texts taken from it; the
    default masks identity numbers, a Scanner's `redact` masks register names too.
    `reference` (a quarantine id) lets the sender and IT talk about the same message.
    """
    mask = redact or _default_redact
    headers = _headers(original)
    subject = " ".join(mask(_decoded(_raw(headers, "Subject"))).split())

    text_charset = Charset("utf-8")
    text_charset.body_encoding = QP  # readable in a raw view, unlike base64
    human = Message()
    human.set_payload(_text(verdict, subject, rcpt_tos, arrival, reference, mask), text_charset)
    del human["MIME-Version"]  # belongs to the top level only

    headers_part = Message()
    headers_part["Content-Type"] = "text/rfc822-headers"
    headers_part["Content-Transfer-Encoding"] = "7bit"
    headers_part.set_payload(masked_headers(headers, mask))

    report = MIMEMultipart("report", report_type="delivery-status")
    report.attach(human)
    report.attach(_delivery_status(verdict, rcpt_tos, reporting_mta, arrival, mask))
    report.attach(headers_part)

    report["From"] = from_address or f"postmaster@{reporting_mta}"
    report["To"] = mask(mail_from)  # the envelope delivers it; the header need not show an identifier
    subject_line = SUBJECT_BLOCKED if verdict.verdict == "block" else SUBJECT_WARNED
    report["Subject"] = email.header.Header(subject_line, "utf-8", header_name="Subject").encode()
    report["Date"] = format_datetime(datetime.now(arrival.tzinfo))
    report["Message-ID"] = make_msgid("brukarvakt", domain=reporting_mta)
    report["Auto-Submitted"] = "auto-replied"
    original_id = _raw(headers, "Message-ID").strip()
    if original_id and mask(original_id) == original_id:
        report["In-Reply-To"] = original_id
        report["References"] = original_id
    return report.as_bytes(policy=email.policy.compat32.clone(linesep="\r\n"))


# --- sending ------------------------------------------------------------------------------------

NOTICE_MAIL_FROM = ""
# Waits before a notice is tried again after a temporary failure of the next hop.
NOTICE_RETRY_SECONDS = (30.0, 120.0, 600.0)
NOTICE_RETRIES_HELD = 1000  # notices waiting at most (each holds a few KB: the original's headers)


class NoticeSender:
    """Sends guidance notices straight to the next hop (never scanned by us: no loop), with retries.

    In quarantine mode the notice is the sender's only word of why the mail did not arrive: a next
    hop that is briefly down must not swallow it. A stop does not wait for retries: the held
    message is on disk either way.
    """

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        self.sending: set[asyncio.Task[Any]] = set()  # attempts under way: a stop waits for them
        self.retries: set[asyncio.Task[Any]] = set()  # waiting to be tried again: a stop cancels them
        self.closing = False

    def notify(
        self,
        config: Config,
        original: bytes,
        verdict: Verdict,
        mail_from: str,
        rcpt_tos: list[str],
        *,
        reference: str | None = None,
        redact: Redact | None = None,
    ) -> None:
        """Build and send the notice in the background, unless RFC 3834 says not to answer."""
        self._track(self._notify(config, original, verdict, mail_from, rcpt_tos, reference, redact))

    def _track(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)
        return task

    async def _notify(
        self,
        config: Config,
        original: bytes,
        verdict: Verdict,
        mail_from: str,
        rcpt_tos: list[str],
        reference: str | None,
        redact: Redact | None,
    ) -> None:
        try:
            if not should_notify(original, mail_from):
                return  # RFC 3834: never answer a notice, a bounce or an auto-reply
            notice = build_notice(
                original,
                verdict,
                mail_from,
                rcpt_tos,
                self.hostname,
                datetime.now(UTC),
                reference=reference,
                redact=redact,
            )
        except Exception as e:
            log("notice_failed", "error", error=type(e).__name__)
            return
        await self._send(config, notice, mail_from, attempt=1)

    async def _send(self, config: Config, notice: bytes, mail_from: str, attempt: int) -> None:
        try:
            delivery = await deliver(config, NOTICE_MAIL_FROM, [mail_from], notice)
        except Exception as e:
            log("notice_failed", "error", error=type(e).__name__, attempt=attempt)
            return
        domain = logs.domain(mail_from)
        if delivery.delivered or delivery.code >= 500 or attempt > len(NOTICE_RETRY_SECONDS):
            log("notice", code=delivery.code, delivered=delivery.delivered, domain=domain, attempt=attempt)
            return
        if self.closing or len(self.retries) >= NOTICE_RETRIES_HELD:
            # Stopping, or the next hop has been refusing for long: the held message is on disk.
            log("notices_abandoned", "warning", count=1, code=delivery.code, domain=domain, attempt=attempt)
            return
        delay = NOTICE_RETRY_SECONDS[attempt - 1]
        log("notice_deferred", "warning", code=delivery.code, domain=domain, attempt=attempt, retry_in=delay)
        retry = asyncio.ensure_future(self._retry(config, notice, mail_from, attempt + 1, delay))
        self.retries.add(retry)
        retry.add_done_callback(self.retries.discard)
        retry.add_done_callback(self.sending.discard)

    async def _retry(self, config: Config, notice: bytes, mail_from: str, attempt: int, delay: float) -> None:
        await asyncio.sleep(delay)  # a stop cancels the wait
        # From here on an attempt under way, which a stop lets finish like any other.
        this = asyncio.current_task()
        if this is not None:
            self.retries.discard(this)
            self.sending.add(this)
        await self._send(config, notice, mail_from, attempt)

    def stop(self) -> None:
        """No more retries: the ones waiting are dropped (their messages are held or delivered)."""
        self.closing = True
        if self.retries:
            log("notices_abandoned", "warning", count=len(self.retries))
            for task in list(self.retries):
                task.cancel()
