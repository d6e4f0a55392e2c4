"""The one way a message goes, whichever door it came in by: scan -> decide -> deliver | quarantine -> audit, notice.

A door (the SMTP server, the milter) turns its protocol into an `Arrival`: the bytes, the envelope
and the `Identity` it established (SMTP AUTH, a trusted upstream's Received header, a milter
macro). The pipeline decides nothing about protocols; it answers with an `Outcome` whose reply
the door passes on. The quarantine's release (CLI and console) goes through the same hand-on
and the same audit writer.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway import replies
from gateway.audit import AuditLine, AuditLog, GroupCommit
from gateway.delivery import deliver
from gateway.errors import UserError
from gateway.logs import domains, log
from gateway.mail import too_deep_reason
from gateway.notice import NoticeSender
from gateway.quarantine import QuarantineStore
from gateway.scanner import MailScan, Scanner
from models.audit import Action, AuditEvent, AuditRecord
from models.config import Config
from models.delivery import Delivery
from models.findings import SenderContext, Unscanned, Verdict

SCAN_THREADS = 4
# The extractors stop themselves after limits.scan_timeout_seconds and name the part they could
# not finish (the policy's on_unscannable decides). This later deadline is the backstop for a
# scan that does not stop by itself: 451, the sender retries.
SCAN_BACKSTOP_SECONDS = 2.0
# A text message scans in about a millisecond per 100 KB with the number and register rules:
# on the event loop that costs less than the hand-over to a scan thread, whose CPU-bound work
# then fights the loop for the GIL (measured with the relay benchmark at 100 KB: scanning cost
# 19-25% of passthrough throughput with a 64 KB bound, 12-15% with this one).
# Anything else (attachments, OCR, archives) may take seconds and is scanned in a thread, so
# that the other sessions go on meanwhile. Whether small text scans are cheap with this config
# (the language model for person names is not) is measured: at start on a warm-up message, then
# as a moving average of the real ones; above INLINE_SCAN_SECONDS they go to a thread too.
INLINE_SCAN_BYTES = 256 * 1024
INLINE_SCAN_SECONDS = 0.002
SCAN_COST_WEIGHT = 0.1  # of the newest scan in the moving average
# Care words and a made-up name, so that every detector (the language model too) loads and runs
# once before the first client connects, not inside its session.
WARM_UP = (
    "From: personal@example.invalid\r\nTo: mottagare@example.invalid\r\nSubject: Insats\r\n\r\n"
    "Hej! Brukaren Kalle Provsson i hemtjänsten behöver hjälp med medicinen i morgon.\r\n"
).encode()
# Care text without a name: what a small message costs to scan when the model is not needed.
PLAIN_WARM_UP = (
    "From: personal@example.invalid\r\nTo: mottagare@example.invalid\r\nSubject: Insats\r\n\r\n"
    "Hej! Kundnummer 10234 i hemtjänsten behöver hjälp med medicinen i morgon.\r\n"
).encode()
# The audit line's verdict for a message relayed by `serve --no-scan`.
NOT_SCANNED = Verdict(verdict="pass", reason="not-scanned")

_TOP_CONTENT_TYPE = re.compile(rb"^content-type:[ \t]*([!-~]+)", re.IGNORECASE | re.MULTILINE)
_HEADER_START = re.compile(rb"^[^ \t\r\n]", re.MULTILINE)
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*([^\r\n]*)", re.IGNORECASE | re.MULTILINE)


# ---------------------------------------------------------------- what goes in and comes out


@dataclass(frozen=True)
class Identity:
    """Who sent the message, as the door established it; nobody unless a login is known."""

    authenticated_as: str | None = None  # lower case
    tls: bool = False
    client_address: str = ""  # the connecting peer: logs and security events only


@dataclass(frozen=True)
class Arrival:
    """A message as a door received it."""

    data: bytes
    mail_from: str  # "" for the null sender
    rcpt_tos: tuple[str, ...]
    identity: Identity
    connection: str = ""  # the door's id for the session, for logs


@dataclass(frozen=True)
class Outgoing:
    """A message on its way on: the bytes as received and the one header the gateway adds."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    header: bytes
    secure: bool  # to the secure next hop (secure.marker) rather than the ordinary one

    def as_bytes(self) -> bytes:
        return self.header + self.data


# What hands a passed message on: to the next hop in lockstep (serve), or back to the MTA (milter).
Handoff = Callable[[Config, Outgoing], Awaitable[Delivery]]


async def to_next_hop(config: Config, outgoing: Outgoing) -> Delivery:
    """The next hop (or the local Maildir), in lockstep: its reply is the outcome."""
    return await deliver(
        config, outgoing.mail_from, list(outgoing.rcpt_tos), outgoing.as_bytes(), secure=outgoing.secure
    )


@dataclass
class Outcome:
    """The decision and what was done; `reply` is what the door answers (SMTP text, ASCII)."""

    reply: str
    action: Action
    verdict: Verdict | None = None
    # The verdict header given to the hand-on (a milter adds it to the message itself).
    header: bytes = b""
    route: str | None = None  # "secure" or "normal" when handed on
    quarantine_id: str | None = None
    # Why the message was refused or deferred before the policy spoke: a limit or an error's type.
    refusal: str | None = None
    scan_seconds: float = 0.0
    audited: bool = False
    extra: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- what a config makes


@dataclass
class Stage:
    """Everything a config makes for the pipeline; swapped whole on reload, so a message sees one config."""

    config: Config
    scanner: Scanner | None  # None with `serve --no-scan`
    redactor: Scanner  # masks numbers and the register's names in whatever is written down
    audit: AuditLog
    quarantine: QuarantineStore
    # Moving average of how long a small one-text-part message takes to scan (see INLINE_SCAN_*).
    small_scan_seconds: float = 0.0

    @classmethod
    def build(cls, config: Config, *, scan: bool = True) -> Stage:
        # The scanner's redaction masks client names from the register too, not only numbers; the
        # audit lines of --no-scan are masked the same way (that scanner reads no mail).
        redactor = Scanner(config)
        stage = cls(
            config=config,
            scanner=redactor if scan else None,
            redactor=redactor,
            audit=AuditLog(config.audit.path, redact=redactor.redact),
            quarantine=QuarantineStore(config, redact=redactor.redact),
        )
        if scan:
            try:
                stage.scan_timed(WARM_UP)  # loads what loads lazily
                # The first estimate from a plain message: the warm-up's own name sends it
                # through the language model, which most mail is spared (see ner.py).
                stage.small_scan_seconds = stage.scan_timed(PLAIN_WARM_UP)[1]
            except Exception as e:
                raise UserError(f"the scanner fails on a test message ({type(e).__name__}: {e})") from None
        return stage

    def redact(self, text: str) -> str:
        return self.redactor.redact(text)

    def scan_timed(self, data: bytes, on_loop: bool = False) -> tuple[MailScan, float]:
        """The scan and what it cost the event loop, or would have cost it.

        On the loop, its whole time: the loop waited for all of it (the language model's lock
        too). In a scan thread, its CPU time: the thread's waits for the GIL are the loop's work.
        """
        assert self.scanner is not None
        clock = time.perf_counter if on_loop else time.thread_time
        started = clock()
        scan = self.scanner.scan_mail(data)
        return scan, clock() - started


# ---------------------------------------------------------------- the pipeline


class Pipeline:
    """Decides about messages and acts on the decision; one per process, its stage swapped on reload."""

    def __init__(self, stage: Stage, *, handoff: Handoff = to_next_hop, hostname: str | None = None) -> None:
        self.stage = stage
        self.handoff = handoff
        self.hostname = hostname or socket.gethostname() or "localhost"
        self.scan_pool = ThreadPoolExecutor(SCAN_THREADS, thread_name_prefix="scan")
        self.audit_writer = GroupCommit()
        self.notices = NoticeSender(self.hostname)
        # Called with every message's outcome (metrics); an observer's failure is logged, not fatal.
        self.observers: list[Callable[[Arrival, Outcome], None]] = []

    # ---- messages

    async def process(self, arrival: Arrival) -> Outcome:
        """The decision about one message and what was done with it; never raises."""
        stage = self.stage
        started = time.monotonic()
        try:
            outcome = await self._process(stage, arrival)
        except Exception as e:  # whatever happened, the sender keeps the message and retries
            outcome = Outcome(replies.plain(replies.TEMPORARY_FAILURE), "deferred", refusal=type(e).__name__)
            outcome.extra["error"] = type(e).__name__
        if not outcome.audited:
            # Refused or deferred before the policy spoke (a limit, an error): still a decision
            # about a message that did not leave, so compliance sees it too.
            await self._audit(
                stage,
                _record(
                    arrival,
                    None,
                    Verdict(verdict="block", reason=f"not-decided: {outcome.refusal or 'unknown'}"),
                    outcome.action,
                    0.0,
                ),
                outcome.action,
            )
        verdict = outcome.verdict
        log(
            "message",
            connection=arrival.connection,
            peer=arrival.identity.client_address,
            action=outcome.action,
            code=int(outcome.reply[:3]),
            verdict=verdict.verdict if verdict else None,
            reason=_reason(verdict),
            kinds=sorted({f.kind for f in verdict.findings}) if verdict else [],
            findings=len(verdict.findings) if verdict else 0,
            recipient_domains=domains(arrival.rcpt_tos),
            recipients=len(arrival.rcpt_tos),
            size=len(arrival.data),
            ms=round((time.monotonic() - started) * 1000, 1),
            **({"route": outcome.route} if outcome.route else {}),
            **({"quarantine_id": outcome.quarantine_id} if outcome.quarantine_id else {}),
            **({"limit": outcome.refusal} if outcome.refusal and "error" not in outcome.extra else {}),
            **outcome.extra,
        )
        for observer in self.observers:
            try:
                observer(arrival, outcome)
            except Exception as e:
                log("observer_failed", "error", error=type(e).__name__)
        return outcome

    async def _process(self, stage: Stage, arrival: Arrival) -> Outcome:
        config = stage.config
        data = arrival.data
        limit = _header_limit(data, config.limits.max_headers)
        if limit:
            return Outcome(replies.plain(limit), "rejected", refusal="max_headers")
        login = arrival.identity.authenticated_as
        if login and not config.auth.allow_sender_mismatch and arrival.mail_from.lower() != login:
            # An SMTP AUTH session is refused this at MAIL FROM already; an identity vouched for
            # by an upstream or a milter macro is known only now.
            return Outcome(replies.plain(replies.SENDER_MISMATCH_DATA), "rejected", refusal="sender_mismatch")

        if stage.scanner is None:
            # --no-scan (benchmarks only): everything a scanned clean message costs but the scan
            # and the policy (the same hand-on, verdict header and audit line), so that the relay
            # benchmark's passthrough differs from scanning by the scan alone.
            outcome = await self._hand_on(stage, arrival, None, secure=False)
            await self._audit(stage, _record(arrival, _message_id(data), NOT_SCANNED, outcome.action, 0.0))
            outcome.audited = True
            return outcome

        scan_started = time.monotonic()
        try:
            scan = await self._scan(stage, data)
        except TimeoutError:
            # A timeout depends on the load of the moment: a temporary failure makes the sender's
            # server try again later, where a permanent one would bounce a clean message. Never
            # a pass: the message was not read.
            return Outcome(replies.plain(replies.SCAN_TIMEOUT), "deferred", refusal="scan_timeout")
        scan_seconds = time.monotonic() - scan_started
        if _too_deep(scan.mail.unscanned, config.limits.max_mime_depth):
            return Outcome(replies.plain(replies.MIME_TOO_DEEP), "rejected", refusal="max_mime_depth")

        scanner = stage.scanner
        sender = SenderContext(
            authenticated_as=login,
            tls=arrival.identity.tls,
            envelope_sender=arrival.mail_from.lower(),
            from_header=(scan.mail.from_address or "").lower() or None,
            recipients=tuple(r.lower() for r in arrival.rcpt_tos),
            marked_secure=scanner.marked_secure(scan.mail.subject),
        )
        verdict = scanner.decide(scan, sender)
        secure = sender.marked_secure and config.secure.next_hop is not None

        if verdict.verdict == "block":
            if config.policy.on_block == "quarantine":
                return await self._quarantine(stage, arrival, verdict, scan, scan_seconds)
            why = _why(verdict, sender, config)
            marker = config.secure.marker.subject_tag if config.secure.next_hop is not None else None
            await self._audit(
                stage, _record(arrival, scan.mail.message_id, verdict, "rejected", scan_seconds)
            )
            reply = replies.block(verdict, marker=marker, why=why, redact=stage.redact)
            return Outcome(reply, "rejected", verdict, scan_seconds=scan_seconds, audited=True)

        outcome = await self._hand_on(stage, arrival, verdict, secure=secure)
        outcome.scan_seconds = scan_seconds
        # The line is fsync'd before the sender hears 250 (a failed write is reported, see _audit):
        # a compliance log that misses a message that left is worth little. The group commit keeps
        # that to one fsync per batch of decisions.
        await self._audit(
            stage, _record(arrival, scan.mail.message_id, verdict, outcome.action, scan_seconds)
        )
        outcome.audited = True
        if outcome.action == "delivered" and verdict.verdict == "warn" and config.policy.notify_on_warn:
            self.notices.notify(
                config, arrival.data, verdict, arrival.mail_from, list(arrival.rcpt_tos), redact=stage.redact
            )
        return outcome

    async def _scan(self, stage: Stage, data: bytes) -> MailScan:
        config = stage.config
        small = small_text(data)
        if small and stage.small_scan_seconds < INLINE_SCAN_SECONDS:
            scan, took = stage.scan_timed(data, on_loop=True)
        else:
            loop = asyncio.get_running_loop()
            scan, took = await asyncio.wait_for(
                loop.run_in_executor(self.scan_pool, stage.scan_timed, data),
                timeout=config.limits.scan_timeout_seconds + SCAN_BACKSTOP_SECONDS,
            )
        if small:
            stage.small_scan_seconds += SCAN_COST_WEIGHT * (took - stage.small_scan_seconds)
        return scan

    async def _hand_on(
        self, stage: Stage, arrival: Arrival, verdict: Verdict | None, *, secure: bool
    ) -> Outcome:
        header = replies.verdict_header(verdict)
        outgoing = Outgoing(arrival.mail_from, arrival.rcpt_tos, arrival.data, header, secure)
        delivery = await self.handoff(stage.config, outgoing)
        action: Action = (
            "delivered" if delivery.delivered else ("failed" if delivery.code >= 500 else "deferred")
        )
        code = 250 if delivery.delivered else delivery.code
        # Lockstep: the next hop's own reply, its 4xx as 451 (delivery maps those), its 5xx as is.
        reply = replies.next_hop_reply(code, delivery.message)
        return Outcome(reply, action, verdict, header=header, route="secure" if secure else "normal")

    async def _quarantine(
        self, stage: Stage, arrival: Arrival, verdict: Verdict, scan: MailScan, scan_seconds: float
    ) -> Outcome:
        loop = asyncio.get_running_loop()
        # fsync'd before the 250: if this raises, the sender gets 451 and keeps the message.
        qid = await loop.run_in_executor(
            None, stage.quarantine.store, arrival.data, arrival.mail_from, list(arrival.rcpt_tos), verdict
        )
        record = _record(
            arrival, scan.mail.message_id, verdict, "quarantined", scan_seconds, quarantine_id=qid
        )
        await self._audit(stage, record)
        self.notices.notify(
            stage.config,
            arrival.data,
            verdict,
            arrival.mail_from,
            list(arrival.rcpt_tos),
            reference=qid,
            redact=stage.redact,
        )
        return Outcome(
            replies.plain(replies.QUARANTINED),
            "quarantined",
            verdict,
            quarantine_id=qid,
            scan_seconds=scan_seconds,
            audited=True,
        )

    # ---- the audit log

    async def _audit(self, stage: Stage, line: AuditLine, action: str | None = None) -> None:
        try:
            await self.audit_writer.write(stage.audit, line)
        except Exception as e:
            # The message's fate is already decided (maybe delivered): answering 451 now would
            # make the sender send it twice. The gap in the audit log is reported loudly instead.
            log("audit_failed", "error", error=type(e).__name__, action=action or line.action)

    async def record(self, event: AuditEvent) -> None:
        """A security or console event, in the same chain as the decisions; a failure is logged."""
        await self._audit(self.stage, event)

    # ---- held messages

    async def release(self, item_id: str, *, actor: str, note: str | None = None) -> Delivery:
        """Send a held message on, through the next hop whatever the door it came by.

        It is removed only after the next hop's 250 and the audit line (with who and why); the
        verdict header says who released it.
        """
        stage = self.stage
        with stage.quarantine.claimed(item_id) as held:
            data = held.verified_message()
            outgoing = Outgoing(
                held.mail_from, tuple(held.rcpt_tos), data, held.release_header(actor), held.secure_route
            )
            delivery = await to_next_hop(stage.config, outgoing)
            if delivery.delivered:
                record = stage.quarantine.audit_record(held, "released", data, actor=actor, note=note)
                try:
                    await self.audit_writer.write(stage.audit, record)
                finally:
                    stage.quarantine.remove(item_id)  # delivered: keeping it would invite a second release
            log("released" if delivery.delivered else "release_failed", code=delivery.code)
            return delivery

    # ---- life cycle

    def reload(self, stage: Stage) -> None:
        self.stage = stage

    def in_flight(self) -> set[asyncio.Task[object]]:
        """Background work a stop lets finish: notices being sent."""
        return set(self.notices.sending)

    def close(self) -> None:
        self.notices.stop()
        self.scan_pool.shutdown(wait=False, cancel_futures=True)
        self.audit_writer.close()


# ---------------------------------------------------------------- helpers


def _record(
    arrival: Arrival,
    message_id: str | None,
    verdict: Verdict,
    action: Action,
    scan_seconds: float,
    quarantine_id: str | None = None,
) -> AuditRecord:
    return AuditRecord.from_decision(
        time=datetime.now(UTC),
        message_id=message_id,
        authenticated_as=arrival.identity.authenticated_as,
        envelope_sender=arrival.mail_from,
        recipients=arrival.rcpt_tos,
        verdict=verdict,
        action=action,
        size=len(arrival.data),
        scan_seconds=scan_seconds,
        quarantine_id=quarantine_id,
    )


def _reason(verdict: Verdict | None) -> str | None:
    # The policy's reason holds a Swedish explanation and no personal data; the log keeps its key.
    return verdict.reason.split(":", 1)[0] if verdict else None


def _why(verdict: Verdict, sender: SenderContext, config: Config) -> str | None:
    """Why the manager exception did not apply, told only to someone who is a manager."""
    if (sender.authenticated_as or sender.envelope_sender) not in config.policy.managers:
        return None
    _, _, why = verdict.reason.partition(": ")
    return why or None


def small_text(data: bytes) -> bool:
    """Whether the message is one text part small enough to scan on the event loop."""
    if len(data) > INLINE_SCAN_BYTES:
        return False
    end = data.find(b"\r\n\r\n")
    match = _TOP_CONTENT_TYPE.search(data, 0, len(data) if end < 0 else end)
    return match is None or match.group(1).lower().startswith(b"text/")


def _message_id(data: bytes) -> str | None:
    """The Message-ID of the header block, without parsing the message (for --no-scan)."""
    end = data.find(b"\r\n\r\n")
    match = _MESSAGE_ID.search(data, 0, len(data) if end < 0 else end)
    return match.group(1).decode("utf-8", "replace").strip() or None if match else None


def _header_limit(data: bytes, max_headers: int) -> str | None:
    end = data.find(b"\r\n\r\n")
    head = data if end < 0 else data[:end]
    for count, _ in enumerate(_HEADER_START.finditer(head), 1):
        if count > max_headers:
            return replies.TOO_MANY_HEADERS
    return None


def _too_deep(unscanned: Sequence[Unscanned], max_depth: int) -> bool:
    reason = too_deep_reason(max_depth)
    return any(u.reason == reason for u in unscanned)
