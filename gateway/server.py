"""`brukarvakt serve`: the SMTP gateway: who may send, the scan, the policy and the lockstep hand-on."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import functools
import gc
import ipaddress
import json
import os
import re
import secrets
import signal
import socket
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from gateway import identity, replies
from gateway.config import load
from gateway.errors import UserError
from gateway.users import Users
from models.audit import Action
from models.config import Config
from models.findings import SenderContext, Unscanned, Verdict
from rules.policy import domain_of

# Loopback as a trusted upstream: the config's default too (models/config.py), so that README's
# first command works on a fresh machine (e.g. `swaks --server 127.0.0.1:10025`). It is no open
# relay: it listens on 127.0.0.1 only; a loopback client vouches for nobody, so a block finding
# is blocked as for any staff member.
DEFAULT_TRUSTED = ("127.0.0.1/32", "::1/128")
SCAN_THREADS = 4
AUTH_ATTEMPTS = 3
PR_SET_PDEATHSIG = 1  # prctl(2)
UNLIMITED_CALLS = 2**31
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
_TOP_CONTENT_TYPE = re.compile(rb"^content-type:[ \t]*([!-~]+)", re.IGNORECASE | re.MULTILINE)
NOTICE_MAIL_FROM = ""
# Waits before a notice is tried again after a temporary failure of the next hop.
NOTICE_RETRY_SECONDS = (30.0, 120.0, 600.0)
NOTICE_RETRIES_HELD = 1000  # notices waiting at most (each holds a few KB: the original's headers)
_HEADER_START = re.compile(rb"^[^ \t\r\n]", re.MULTILINE)
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*([^\r\n]*)", re.IGNORECASE | re.MULTILINE)
# The audit line's verdict for a message relayed by `serve --no-scan`.
NOT_SCANNED = Verdict(verdict="pass", reason="not-scanned")


# ---------------------------------------------------------------- structured logs on stderr


def log(event: str, level: str = "info", **fields: Any) -> None:
    """One JSON line on stderr. Callers pass no addresses and no identifiers: domains, kinds, codes."""
    record = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "event": event,
        "pid": os.getpid(),
        **fields,
    }
    try:
        sys.stderr.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # a closed stderr must not stop mail


def _domains(addresses: Sequence[str]) -> list[str]:
    return sorted({domain_of(a) for a in addresses if a})


# ---------------------------------------------------------------- what a config makes


def _tls_context(config: Config) -> ssl.SSLContext | None:
    if not (config.tls.cert and config.tls.key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(config.tls.cert), str(config.tls.key))
    except (OSError, ssl.SSLError) as e:
        raise UserError(f"cannot load tls.cert {config.tls.cert} / tls.key {config.tls.key}: {e}") from None
    return context


def _networks(entries: Sequence[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise UserError(
                f"auth.trusted_upstreams: {entry!r} is not an IP address or network "
                "(e.g. 127.0.0.1 or 10.0.0.0/24)"
            ) from None
    return tuple(out)


@dataclass
class State:
    """Everything a config makes; swapped whole on SIGHUP, so a transaction sees one config."""

    config: Config
    scanner: Any  # gateway.scanner.Scanner, or None with --no-scan
    users: Users
    tls_context: ssl.SSLContext | None
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    audit: Any  # gateway.audit.AuditLog
    # Moving average of how long a small one-text-part message takes to scan (see INLINE_SCAN_*).
    small_scan_seconds: float = 0.0

    @functools.cached_property
    def quarantine(self) -> Any:  # gateway.quarantine.QuarantineStore, made when first needed
        from gateway.quarantine import QuarantineStore

        return QuarantineStore(self.config)

    @classmethod
    def build(cls, config: Config, *, scan: bool, default_trusted: Sequence[str] = ()) -> State:
        from gateway.audit import AuditLog
        from gateway.scanner import Scanner

        # The scanner's redaction masks client names from the register too, not only numbers; the
        # audit lines of --no-scan are masked the same way (that scanner reads no mail).
        redactor = Scanner(config)
        scanner = redactor if scan else None
        state = cls(
            config=config,
            scanner=scanner,
            users=Users(config.auth.users_file),
            tls_context=_tls_context(config),
            trusted=_networks(config.auth.trusted_upstreams or default_trusted),
            audit=AuditLog(config.audit.path, redact=redactor.redact),
        )
        if scanner is not None:
            try:
                state.scan_timed(WARM_UP)  # loads what loads lazily
                # The first estimate from a plain message: the warm-up's own name sends it
                # through the language model, which most mail is spared (see ner.py).
                state.small_scan_seconds = state.scan_timed(PLAIN_WARM_UP)[1]
            except Exception as e:
                raise UserError(f"the scanner fails on a test message ({type(e).__name__}: {e})") from None
        return state

    def scan_timed(self, data: bytes, on_loop: bool = False) -> tuple[Any, float]:
        """The scan and what it cost the event loop, or would have cost it.

        On the loop, its whole time: the loop waited for all of it (the language model's lock
        too). In a scan thread, its CPU time: the thread's waits for the GIL are the loop's work.
        """
        clock = time.perf_counter if on_loop else time.thread_time
        started = clock()
        scan = self.scanner.scan_mail(data)
        return scan, clock() - started

    def is_trusted(self, peer: Any) -> bool:
        if not self.trusted or not peer:
            return False
        host = peer[0] if isinstance(peer, tuple) else str(peer)
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.trusted)


# ---------------------------------------------------------------- the SMTP protocol


_AUTH_PARAMETER = re.compile(r"[ \t]+AUTH=[^ \t]*", re.IGNORECASE)


class GatewaySMTP(SMTP):
    """aiosmtpd's SMTP with our replies for its stock errors, and graceful shutdown."""

    def __init__(self, handler: Gateway, state: State) -> None:
        limits = state.config.limits
        # aiosmtpd reads lines with this limit; longer lines end in our LINE_TOO_LONG (554 5.6.0).
        # +2 for CRLF, +1 for a transparency dot.
        self.line_length_limit = limits.max_line_length + 3
        super().__init__(
            handler,
            data_size_limit=limits.max_message_bytes,
            enable_SMTPUTF8=False,
            decode_data=False,
            hostname=handler.hostname,
            ident="brukarvakt",
            tls_context=state.tls_context,
            timeout=limits.session_timeout_seconds,
            auth_require_tls=True,
            # A few password guesses per connection, then 421 and the connection closes.
            command_call_limit={"AUTH": AUTH_ATTEMPTS, "*": UNLIMITED_CALLS},
        )
        self.gateway = handler
        self.connection_id = secrets.token_hex(4)
        self.in_data = False
        # Commands are wrapped so that a connection closes after its transaction once a
        # SIGTERM came (aiosmtpd has no hook after a command).
        self._smtp_methods = {name: self._then_maybe_close(m) for name, m in self._smtp_methods.items()}

    def _then_maybe_close(self, method: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        async def wrapped(arg: Any) -> None:
            await method(arg)
            if self.gateway.closing and self.idle and self.transport is not None:
                await self.say_goodbye()

        return wrapped

    @property
    def idle(self) -> bool:
        """Not inside a transaction: no MAIL given, or it ended with DATA's reply or RSET."""
        return not self.in_data and (self.envelope is None or not self.envelope.mail_from)

    async def say_goodbye(self) -> None:
        with contextlib.suppress(Exception):
            await self.push(replies.plain(replies.SHUTTING_DOWN))
        if self.transport is not None:
            self.transport.close()

    async def push(self, status: Any) -> None:
        if isinstance(status, str):
            status = replies.plain(replies.STOCK[status]) if status in replies.STOCK else status
        await super().push(status)

    async def smtp_MAIL(self, arg: str) -> None:
        # RFC 4954 lets a client add AUTH=<address> to MAIL FROM, and Postfix's before-queue proxy
        # passes the client's words on as typed; aiosmtpd answers 555 to any parameter it does not
        # know, a permanent refusal of clean mail. The identity comes from SMTP AUTH or the trusted
        # Received header, never from this parameter: it is dropped unread.
        await super().smtp_MAIL(_AUTH_PARAMETER.sub("", arg) if arg else arg)

    async def smtp_DATA(self, arg: str) -> None:
        self.in_data = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self.in_data = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.gateway.connections.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.gateway.connections.discard(self)
        super().connection_lost(error)


# ---------------------------------------------------------------- the handler


@dataclass
class Outcome:
    reply: str
    action: Action
    verdict: Verdict | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    audited: bool = False


class Gateway:
    """The aiosmtpd handler: who may send (MAIL), limits (RCPT), and the decision (DATA)."""

    def __init__(
        self,
        state: State,
        *,
        config_path: Path | None = None,
        scan: bool = True,
        default_trusted: Sequence[str] = (),
    ) -> None:
        self.state = state
        self.config_path = config_path
        self.scan = scan
        self.default_trusted = tuple(default_trusted)
        self.hostname = socket.gethostname() or "localhost"
        self.connections: set[GatewaySMTP] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        # Notices waiting to be tried again (see _send_notice); a stop does not wait for them.
        self.notice_retries: set[asyncio.Task[Any]] = set()
        self.closing = False
        self.scan_pool = ThreadPoolExecutor(SCAN_THREADS, thread_name_prefix="scan")
        self.audit_writer = AuditWriter()
        self.server: asyncio.base_events.Server | None = None
        # A plain attribute, not a property: aiosmtpd reads every attribute of its handler.
        self.port = 0

    # ---- life cycle

    def protocol(self) -> GatewaySMTP:
        return GatewaySMTP(self, self.state)

    async def start(self, sock: socket.socket | None = None) -> None:
        loop = asyncio.get_running_loop()
        listen = self.state.config.listen
        if sock is None:
            self.server = await loop.create_server(self.protocol, host=listen.host, port=listen.port)
        else:
            self.server = await loop.create_server(self.protocol, sock=sock)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let every transaction in flight finish, then close the idle connections."""
        self.closing = True
        if self.server is not None:
            self.server.close()
        if self.notice_retries:
            # Their messages are safe in quarantine (or delivered); only the guidance is lost.
            log("notices_abandoned", "warning", count=len(self.notice_retries))
            for task in list(self.notice_retries):
                task.cancel()
        for conn in list(self.connections):
            if conn.idle:
                await conn.say_goodbye()
        grace = self.state.config.limits.session_timeout_seconds if grace is None else grace
        deadline = time.monotonic() + grace
        while (self.connections or self.tasks) and time.monotonic() < deadline:
            if self.tasks:
                await asyncio.wait(set(self.tasks), timeout=max(0.0, deadline - time.monotonic()))
            else:
                await asyncio.sleep(0.05)  # connections mid-DATA close themselves after their reply
        for conn in list(self.connections):
            log("shutdown_cut", "warning", connection=conn.connection_id)
            await conn.say_goodbye()
        if self.server is not None:
            await self.server.wait_closed()
        self.scan_pool.shutdown(wait=False, cancel_futures=True)
        self.audit_writer.close()

    async def reload(self) -> None:
        """SIGHUP: read the config again; open connections keep going, new ones get the new config."""
        try:
            config = load(self.config_path)
            state = await asyncio.to_thread(
                State.build, config, scan=self.scan, default_trusted=self.default_trusted
            )
        except UserError as e:
            log("reload_failed", "error", error=str(e))
            return
        except Exception as e:
            log("reload_failed", "error", error=type(e).__name__)
            return
        if config.listen != self.state.config.listen:
            log("reload_listen_ignored", "warning", detail="listen changes need a restart")
        self.state = state
        log("reloaded", config=str(self.config_path or "embedded defaults"))

    def _track(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # ---- AUTH (our own mechanisms, so that argon2 runs off the event loop)

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        blob = await _initial_response(server, args, "")
        if blob is None:
            return AuthResult(success=False)  # already answered
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await server.push("501 5.5.2 Can't split auth value")
            return AuthResult(success=False)
        authzid, login, password = parts
        if authzid and authzid.strip().lower() != login.strip().lower():
            # RFC 4616: acting as someone else. Nobody may, here.
            return AuthResult(
                success=False, handled=False, message="535 5.7.8 Authentication credentials invalid"
            )
        return await self._check(login, password)

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        login = await _initial_response(server, args, SMTP.AuthLoginUsernameChallenge)
        if login is None:
            return AuthResult(success=False)
        password = await server.challenge_auth(SMTP.AuthLoginPasswordChallenge)
        if not isinstance(password, bytes):
            return AuthResult(success=False)
        return await self._check(login, password)

    async def _check(self, login: bytes, password: bytes) -> AuthResult:
        user = login.decode("utf-8", "replace").strip().lower()
        users = self.state.users
        ok = await asyncio.get_running_loop().run_in_executor(
            None, users.verify, user, password.decode("utf-8", "replace")
        )
        log("auth", result="ok" if ok else "failed", domain=domain_of(user))
        if not ok:
            return AuthResult(
                success=False, handled=False, message="535 5.7.8 Authentication credentials invalid"
            )
        return AuthResult(success=True, auth_data=user)

    # ---- envelope

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        state = self.state
        if self.closing:
            return replies.plain(replies.SHUTTING_DOWN)
        trusted = state.is_trusted(session.peer)
        if not trusted and not session.authenticated:
            log("refused", reason="not-authenticated", peer=_peer(session))
            return replies.plain(replies.AUTH_REQUIRED)
        if not trusted and not state.config.auth.allow_sender_mismatch and address.lower() != _login(session):
            log("refused", reason="sender-mismatch", peer=_peer(session))
            return replies.plain(replies.SENDER_MISMATCH)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self.state.config.limits.max_recipients:
            return replies.plain(replies.TOO_MANY_RECIPIENTS)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_exception(self, error: Exception) -> str:
        # aiosmtpd would answer "500 Error: ..." (permanent, and with the exception's text).
        log("session_error", "error", error=type(error).__name__)
        return replies.plain(replies.TEMPORARY_FAILURE)

    # ---- the message

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # Shielded: a client that hangs up after "." does not cut a hand-on or a quarantine write
        # in half; the task is also what SIGTERM waits for.
        task = self._track(self._decide(server, session, envelope))
        return str(await asyncio.shield(task))

    async def _decide(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        state = self.state
        started = time.monotonic()
        conn_id = getattr(server, "connection_id", "")
        data = envelope.original_content or b""
        # aiosmtpd keeps the null sender of a bounce as "<>"; everywhere else it is "".
        mail_from = "" if envelope.mail_from in (None, "<>") else str(envelope.mail_from)
        rcpt_tos = list(envelope.rcpt_tos)
        try:
            outcome = await self._process(state, session, data, mail_from, rcpt_tos)
        except Exception as e:  # whatever happened, the sender keeps the message and retries
            outcome = Outcome(
                replies.plain(replies.TEMPORARY_FAILURE), "deferred", extra={"error": type(e).__name__}
            )
        if not outcome.audited:
            # Refused or deferred before the policy spoke (a limit, an error): still a decision
            # about a message that did not leave, so compliance sees it too.
            why = outcome.extra.get("limit") or outcome.extra.get("error") or "unknown"
            fields = {
                "message_id": None,
                "authenticated_as": _login(session) or None,
                "envelope_sender": mail_from,
                "recipients": rcpt_tos,
                "verdict": Verdict(verdict="block", reason=f"not-decided: {why}"),
                "size": len(data),
                "scan_seconds": 0.0,
            }
            await self._audit(state, fields, outcome.action)
        log(
            "message",
            connection=conn_id,
            peer=_peer(session),
            action=outcome.action,
            code=int(outcome.reply[:3]),
            verdict=outcome.verdict.verdict if outcome.verdict else None,
            reason=_reason(outcome.verdict),
            kinds=sorted({f.kind for f in outcome.verdict.findings}) if outcome.verdict else [],
            findings=len(outcome.verdict.findings) if outcome.verdict else 0,
            recipient_domains=_domains(rcpt_tos),
            recipients=len(rcpt_tos),
            size=len(data),
            ms=round((time.monotonic() - started) * 1000, 1),
            **outcome.extra,
        )
        return outcome.reply

    async def _process(
        self, state: State, session: Session, data: bytes, mail_from: str, rcpt_tos: list[str]
    ) -> Outcome:
        config = state.config
        limit = _header_limit(data, config.limits.max_headers)
        if limit:
            return Outcome(replies.plain(limit), "rejected", extra={"limit": "max_headers"})

        trusted = state.is_trusted(session.peer)
        if trusted:
            # Identity and TLS from the top-most Received header that Postfix wrote, and from
            # nowhere else (not our own hop's TLS, not an AUTH on this connection).
            upstream = identity.from_message(data)
            login, tls = upstream.authenticated_as, upstream.tls
            if login and not config.auth.allow_sender_mismatch and mail_from.lower() != login:
                return Outcome(
                    replies.plain(replies.SENDER_MISMATCH_DATA),
                    "rejected",
                    extra={"limit": "sender_mismatch"},
                )
        else:
            login, tls = _login(session) or None, session.ssl is not None

        if state.scanner is None:
            # --no-scan (benchmarks only): everything a scanned clean message costs but the scan
            # and the policy (the same hand-on, verdict header and audit line), so that the relay
            # benchmark's passthrough differs from scanning by the scan alone. The line says the
            # message was not scanned.
            outcome = await self._hand_on(state, None, mail_from, rcpt_tos, data, secure=False)
            not_scanned = {
                "message_id": _message_id(data),
                "authenticated_as": login,
                "envelope_sender": mail_from,
                "recipients": rcpt_tos,
                "verdict": NOT_SCANNED,
                "size": len(data),
                "scan_seconds": 0.0,
            }
            await self._audit(state, not_scanned, outcome.action)
            outcome.audited = True
            return outcome

        scanner = state.scanner
        scan_started = time.monotonic()
        loop = asyncio.get_running_loop()
        try:
            small = _small_text(data)
            if small and state.small_scan_seconds < INLINE_SCAN_SECONDS:
                scan, took = state.scan_timed(data, on_loop=True)
            else:
                scan, took = await asyncio.wait_for(
                    loop.run_in_executor(self.scan_pool, state.scan_timed, data),
                    timeout=config.limits.scan_timeout_seconds + SCAN_BACKSTOP_SECONDS,
                )
            if small:
                state.small_scan_seconds += SCAN_COST_WEIGHT * (took - state.small_scan_seconds)
        except TimeoutError:
            # A timeout depends on the load of the moment: a temporary failure makes the sender's
            # server try again later, where a permanent one would bounce a clean message. Never
            # a pass: the message was not read.
            return Outcome(replies.plain(replies.SCAN_TIMEOUT), "deferred", extra={"limit": "scan_timeout"})
        scan_seconds = time.monotonic() - scan_started
        if _too_deep(scan.mail.unscanned, config.limits.max_mime_depth):
            return Outcome(
                replies.plain(replies.MIME_TOO_DEEP), "rejected", extra={"limit": "max_mime_depth"}
            )

        sender = SenderContext(
            authenticated_as=login,
            tls=tls,
            envelope_sender=mail_from.lower(),
            from_header=(scan.mail.from_address or "").lower() or None,
            recipients=tuple(r.lower() for r in rcpt_tos),
            marked_secure=scanner.marked_secure(scan.mail.subject),
        )
        verdict: Verdict = scanner.decide(scan, sender)
        secure = sender.marked_secure and config.secure.next_hop is not None
        audit = {
            "message_id": scan.mail.message_id,
            "authenticated_as": login,
            "envelope_sender": mail_from,
            "recipients": rcpt_tos,
            "verdict": verdict,
            "size": len(data),
            "scan_seconds": scan_seconds,
        }

        if verdict.verdict == "block":
            if config.policy.on_block == "quarantine":
                return await self._quarantine(state, verdict, data, mail_from, rcpt_tos, audit)
            why = _why(verdict, sender, config)
            marker = config.secure.marker.subject_tag if config.secure.next_hop is not None else None
            await self._audit(state, audit, "rejected")
            reply = replies.block(verdict, marker=marker, why=why, redact=scanner.redact)
            return Outcome(reply, "rejected", verdict, audited=True)

        outcome = await self._hand_on(state, verdict, mail_from, rcpt_tos, data, secure=secure)
        # The line is fsync'd before the sender hears 250 (a failed write is reported, see _audit):
        # a compliance log that misses a message that left is worth little. The group commit keeps
        # that to one fsync per batch of decisions.
        await self._audit(state, audit, outcome.action)
        outcome.audited = True
        if outcome.action == "delivered" and verdict.verdict == "warn" and config.policy.notify_on_warn:
            self._track(self._notify(state, data, verdict, mail_from, rcpt_tos))
        return outcome

    async def _hand_on(
        self,
        state: State,
        verdict: Verdict | None,
        mail_from: str,
        rcpt_tos: list[str],
        data: bytes,
        *,
        secure: bool,
    ) -> Outcome:
        from gateway.delivery import deliver

        delivery = await deliver(
            state.config, mail_from, rcpt_tos, replies.verdict_header(verdict) + data, secure=secure
        )
        action: Action = (
            "delivered" if delivery.delivered else ("failed" if delivery.code >= 500 else "deferred")
        )
        code = 250 if delivery.delivered else delivery.code
        # Lockstep: the next hop's own reply, its 4xx as 451 (delivery maps those), its 5xx as is.
        reply = replies.next_hop_reply(code, delivery.message)
        return Outcome(reply, action, verdict, extra={"route": "secure" if secure else "normal"})

    async def _quarantine(
        self,
        state: State,
        verdict: Verdict,
        data: bytes,
        mail_from: str,
        rcpt_tos: list[str],
        audit: dict[str, Any],
    ) -> Outcome:
        loop = asyncio.get_running_loop()
        # fsync'd before the 250: if this raises, the sender gets 451 and keeps the message.
        qid = await loop.run_in_executor(None, state.quarantine.store, data, mail_from, rcpt_tos, verdict)
        await self._audit(state, audit, "quarantined", quarantine_id=qid)
        self._track(self._notify(state, data, verdict, mail_from, rcpt_tos, reference=qid))
        return Outcome(
            replies.plain(replies.QUARANTINED),
            "quarantined",
            verdict,
            extra={"quarantine_id": qid},
            audited=True,
        )

    async def _audit(
        self, state: State, fields: dict[str, Any], action: Action, quarantine_id: str | None = None
    ) -> None:
        from models.audit import AuditRecord

        try:
            record = AuditRecord.from_decision(
                time=datetime.now(UTC), action=action, quarantine_id=quarantine_id, **fields
            )
            await self.audit_writer.write(state.audit, record)
        except Exception as e:
            # The message's fate is already decided (maybe delivered): answering 451 now would
            # make the sender send it twice. The gap in the audit log is reported loudly instead.
            log("audit_failed", "error", error=type(e).__name__, action=action)

    async def _notify(
        self,
        state: State,
        data: bytes,
        verdict: Verdict,
        mail_from: str,
        rcpt_tos: list[str],
        reference: str | None = None,
    ) -> None:
        """The sender's guidance notice, sent straight to the next hop: never scanned by us, no loop."""
        try:
            from gateway.notice import build_notice, should_notify

            if not should_notify(data, mail_from):
                return  # RFC 3834: never answer a notice, a bounce or an auto-reply
            redact = state.scanner.redact if state.scanner is not None else None
            notice = build_notice(
                data,
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
        await self._send_notice(notice, mail_from, attempt=1)

    async def _send_notice(self, notice: bytes, mail_from: str, attempt: int) -> None:
        """One attempt; after a temporary failure the notice is tried again later, a few times.

        In quarantine mode the notice is the sender's only word of why the mail did not arrive:
        a next hop that is briefly down must not swallow it.
        """
        try:
            from gateway.delivery import deliver

            delivery = await deliver(self.state.config, NOTICE_MAIL_FROM, [mail_from], notice)
        except Exception as e:
            log("notice_failed", "error", error=type(e).__name__, attempt=attempt)
            return
        domain = domain_of(mail_from)
        if delivery.delivered or delivery.code >= 500 or attempt > len(NOTICE_RETRY_SECONDS):
            log("notice", code=delivery.code, delivered=delivery.delivered, domain=domain, attempt=attempt)
            return
        if self.closing or len(self.notice_retries) >= NOTICE_RETRIES_HELD:
            # Stopping, or the next hop has been refusing for long: the held message is on disk.
            log("notices_abandoned", "warning", count=1, code=delivery.code, domain=domain, attempt=attempt)
            return
        delay = NOTICE_RETRY_SECONDS[attempt - 1]
        log("notice_deferred", "warning", code=delivery.code, domain=domain, attempt=attempt, retry_in=delay)
        retry = asyncio.ensure_future(self._retry_notice(notice, mail_from, attempt + 1, delay))
        self.notice_retries.add(retry)
        retry.add_done_callback(self.notice_retries.discard)
        retry.add_done_callback(self.tasks.discard)

    async def _retry_notice(self, notice: bytes, mail_from: str, attempt: int, delay: float) -> None:
        await asyncio.sleep(delay)  # a stop cancels the wait
        # From here on an attempt under way, which a stop lets finish like any other.
        this = asyncio.current_task()
        if this is not None:
            self.notice_retries.discard(this)
            self.tasks.add(this)
        await self._send_notice(notice, mail_from, attempt)


# ---------------------------------------------------------------- the audit log, group-committed


class AuditWriter:
    """Audit lines written by one thread, in decision order, each decision waiting for its fsync.

    An fsync'd append costs milliseconds; one at a time it would cap the gateway at a few hundred
    decisions a second. Records that arrive while a write is under way are handed over together,
    to `append_many` (one fsync for the batch) when the audit log offers it, else one by one.
    """

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="audit")
        self.pending: list[tuple[Any, Any, asyncio.Future[None]]] = []
        self.draining = False

    async def write(self, audit: Any, record: Any) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((audit, record, future))
        if not self.draining:
            self.draining = True
            asyncio.ensure_future(self._drain())
        await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                # A reload may have switched the log in between: one call per log, order kept.
                while batch:
                    audit = batch[0][0]
                    same = [item for item in batch if item[0] is audit]
                    batch = [item for item in batch if item[0] is not audit]
                    try:
                        errors = await loop.run_in_executor(
                            self.pool, _append_batch, audit, [r for _, r, _ in same]
                        )
                    except Exception as e:
                        errors = [e] * len(same)
                    for (_, _, future), error in zip(same, errors, strict=True):
                        if future.done():
                            continue
                        if error is None:
                            future.set_result(None)
                        else:
                            future.set_exception(error)
        finally:
            self.draining = False

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _append_batch(audit: Any, records: list[Any]) -> list[Exception | None]:
    many = getattr(audit, "append_many", None)
    if many is not None and len(records) > 1:
        try:
            many(records)
            return [None] * len(records)
        except Exception as e:
            return [e] * len(records)
    errors: list[Exception | None] = []
    for record in records:
        try:
            audit.append(record)
            errors.append(None)
        except Exception as e:
            errors.append(e)
    return errors


# ---------------------------------------------------------------- helpers


async def _initial_response(server: SMTP, args: list[str], challenge: str) -> bytes | None:
    """The credentials given with AUTH, or asked for with a 334 challenge; None when answered already."""
    if len(args) == 1:
        answer = await server.challenge_auth(challenge)
        return answer if isinstance(answer, bytes) else None
    blob = _b64(args[1])
    if blob is None:
        await server.push("501 5.5.2 Can't decode base64")
    return blob


def _b64(text: str) -> bytes | None:
    import base64
    import binascii

    try:
        return base64.b64decode(text.encode(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _login(session: Session) -> str:
    return str(session.auth_data) if session.authenticated and session.auth_data else ""


def _peer(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


def _reason(verdict: Verdict | None) -> str | None:
    # The policy's reason holds a Swedish explanation and no personal data; the log keeps its key.
    return verdict.reason.split(":", 1)[0] if verdict else None


def _why(verdict: Verdict, sender: SenderContext, config: Config) -> str | None:
    """Why the manager exception did not apply, told only to someone who is a manager."""
    managers = config.policy.managers
    if (sender.authenticated_as or sender.envelope_sender) not in managers:
        return None
    _, _, why = verdict.reason.partition(": ")
    return why or None


def _small_text(data: bytes) -> bool:
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
    from gateway.mail import too_deep_reason

    reason = too_deep_reason(max_depth)
    return any(u.reason == reason for u in unscanned)


# ---------------------------------------------------------------- running it


async def serve(
    config: Config,
    *,
    config_path: Path | None,
    scan: bool,
    default_trusted: Sequence[str] = (),
    sock: socket.socket | None = None,
) -> int:
    state = await asyncio.to_thread(State.build, config, scan=scan, default_trusted=default_trusted)
    gateway = Gateway(state, config_path=config_path, scan=scan, default_trusted=default_trusted)
    await gateway.start(sock)
    # What start-up made (modules, the register's index, the rules) lives as long as the process:
    # kept out of the cyclic garbage collector, whose full passes would otherwise walk all of it
    # again and again while parsing mail makes short-lived objects.
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_loop_error)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: gateway._track(gateway.reload()))
    log(
        "listening",
        host=config.listen.host,
        port=gateway.port,
        tls=state.tls_context is not None,
        scan=scan,
        next_hop=f"{config.next_hop.host}:{config.next_hop.port}" if config.next_hop else "maildir",
    )
    await stop.wait()
    log("stopping", connections=len(gateway.connections), in_flight=len(gateway.tasks))
    await gateway.stop()
    log("stopped")
    return 0


def _loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # asyncio's own handler prints a traceback (with the exception's text, which may quote mail)
    # for, e.g., a client that breaks off a TLS handshake: one structured line instead.
    error = context.get("exception")
    log(
        "loop_error",
        "warning",
        message=str(context.get("message", ""))[:200],
        error=type(error).__name__ if error else None,
    )


def _quiet_aiosmtpd() -> None:
    import logging

    # aiosmtpd logs every sender and recipient address at INFO and whole lines at DEBUG: none of
    # that may reach the logs. Its errors still do.
    logging.getLogger("mail.log").setLevel(logging.ERROR)


def _bind(host: str, port: int) -> socket.socket:
    try:
        return socket.create_server((host, port), backlog=512, reuse_port=False)
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port} (listen.host/listen.port): {e.strerror}") from None


def _run_worker(
    config: Config, args: argparse.Namespace, sock: socket.socket, default_trusted: Sequence[str]
) -> int:
    return asyncio.run(
        serve(
            config, config_path=args.config, scan=not args.no_scan, default_trusted=default_trusted, sock=sock
        )
    )


def _stop_with_parent(parent: int) -> None:
    """Ask Linux for SIGTERM when the parent dies, so that a killed master leaves no workers.

    A worker then stops as on any SIGTERM: transactions in flight are finished first. Elsewhere
    (no prctl) workers still stop with a living parent's SIGTERM, as before.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


def _prefork(
    config: Config,
    args: argparse.Namespace,
    sock: socket.socket,
    default_trusted: Sequence[str],
    workers: int,
) -> int:
    """Several processes accepting on one socket, to use every core; signals go to all of them."""
    children: set[int] = set()

    parent = os.getpid()

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            _stop_with_parent(parent)
            code = 1
            try:
                code = _run_worker(config, args, sock, default_trusted)
            except UserError as e:
                log("worker_failed", "error", error=str(e))
                code = 2
            finally:
                os._exit(code)
        children.add(pid)

    stopping = False

    def forward(sig: int, _frame: Any) -> None:
        nonlocal stopping
        if sig in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    for _ in range(workers):
        spawn()
    status = 0
    while children:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        children.discard(pid)
        exit_code = os.waitstatus_to_exitcode(code)
        if not stopping and exit_code != 2:
            log("worker_died", "error", exit_code=exit_code)
            spawn()  # a crashed worker is replaced; its acknowledged mail was already handed on
        elif exit_code:
            status = exit_code
    return status


def run(args: argparse.Namespace) -> int:
    _quiet_aiosmtpd()
    config = load(args.config)
    # Loopback is trusted by the config's own default (models/config.py), file or no file.
    default_trusted: tuple[str, ...] = ()
    scan = not getattr(args, "no_scan", False)
    args.no_scan = not scan
    if not scan:
        log("no_scan", "warning", detail="--no-scan: mail is relayed WITHOUT scanning; for benchmarks only")
    # Fail early, with one clear line, on what a worker would fail on.
    _tls_context(config)
    _networks(config.auth.trusted_upstreams or default_trusted)
    sock = _bind(config.listen.host, config.listen.port)
    workers = max(1, int(getattr(args, "workers", 1) or 1))
    if workers == 1:
        return _run_worker(config, args, sock, default_trusted)
    return _prefork(config, args, sock, default_trusted, workers)
