"""The SMTP door: aiosmtpd's protocol, who may send (AUTH, trusted upstreams), and DATA handed to the pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from gateway import replies
from gateway.errors import UserError
from gateway.logs import log
from gateway.pipeline import Arrival, Identity, Pipeline, Stage
from gateway.smtp import auth, upstream
from gateway.users import Users
from models.audit import AuditEvent
from models.config import Config

AUTH_ATTEMPTS = 3
UNLIMITED_CALLS = 2**31
# Security events a connection may add to the audit log: enough to show the attempt, not so many
# that a client repeating a refused MAIL FROM could fill the log with fsync'd lines.
EVENTS_PER_CONNECTION = 5


# ---------------------------------------------------------------- what a config makes for the door


def tls_context(config: Config) -> ssl.SSLContext | None:
    """STARTTLS's context when `tls.cert` and `tls.key` are set; a file that will not load is named."""
    if not (config.tls.cert and config.tls.key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(config.tls.cert), str(config.tls.key))
    except (OSError, ssl.SSLError) as e:
        raise UserError(f"cannot load tls.cert {config.tls.cert} / tls.key {config.tls.key}: {e}") from None
    return context


@dataclass(frozen=True)
class Door:
    """Who may send, as a config says; swapped whole with the pipeline's stage on reload."""

    config: Config
    users: Users
    tls_context: ssl.SSLContext | None
    trusted: tuple[upstream.Network, ...]

    @classmethod
    def build(cls, config: Config) -> Door:
        return cls(
            config=config,
            users=Users(config.auth.users_file),
            tls_context=tls_context(config),
            trusted=upstream.networks(config.auth.upstreams),
        )


def quiet_aiosmtpd() -> None:
    # aiosmtpd logs every sender and recipient address at INFO and whole lines at DEBUG: none of
    # that may reach the logs. Its errors still do.
    logging.getLogger("mail.log").setLevel(logging.ERROR)


# ---------------------------------------------------------------- the protocol


_AUTH_PARAMETER = re.compile(r"[ \t]+AUTH=[^ \t]*", re.IGNORECASE)


class GatewaySMTP(SMTP):
    """aiosmtpd's SMTP with our replies for its stock errors, and graceful shutdown."""

    def __init__(self, handler: SmtpGateway, door: Door) -> None:
        limits = door.config.limits
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
            tls_context=door.tls_context,
            timeout=limits.session_timeout_seconds,
            auth_require_tls=True,
            # A few password guesses per connection, then 421 and the connection closes.
            command_call_limit={"AUTH": AUTH_ATTEMPTS, "*": UNLIMITED_CALLS},
        )
        self.gateway = handler
        self.connection_id = secrets.token_hex(4)
        self.in_data = False
        self.events = 0  # security events recorded for this connection
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


class SmtpGateway:
    """The aiosmtpd handler: who may send (AUTH, MAIL), limits (RCPT), and DATA given to the pipeline."""

    def __init__(self, pipeline: Pipeline, door: Door) -> None:
        self.pipeline = pipeline
        self.door = door
        self.hostname = pipeline.hostname
        self.connections: set[GatewaySMTP] = set()
        self.tasks: set[asyncio.Task[Any]] = set()  # DATA being decided: a stop waits for them
        self.closing = False
        self.server: asyncio.base_events.Server | None = None
        # A plain attribute, not a property: aiosmtpd reads every attribute of its handler.
        self.port = 0

    # ---- life cycle

    def protocol(self) -> GatewaySMTP:
        return GatewaySMTP(self, self.door)

    async def start(self, sock: socket.socket | None = None) -> None:
        loop = asyncio.get_running_loop()
        listen = self.door.config.listen
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
        self.pipeline.notices.stop()
        for conn in list(self.connections):
            if conn.idle:
                await conn.say_goodbye()
        grace = self.door.config.limits.session_timeout_seconds if grace is None else grace
        deadline = time.monotonic() + grace
        while (self.connections or self.busy()) and time.monotonic() < deadline:
            busy = self.busy()
            if busy:
                await asyncio.wait(busy, timeout=max(0.0, deadline - time.monotonic()))
            else:
                await asyncio.sleep(0.05)  # connections mid-DATA close themselves after their reply
        for conn in list(self.connections):
            log("shutdown_cut", "warning", connection=conn.connection_id)
            await conn.say_goodbye()
        if self.server is not None:
            await self.server.wait_closed()
        self.pipeline.close()

    def busy(self) -> set[asyncio.Task[Any]]:
        """Work a stop waits for: messages being decided and notices being sent."""
        return self.tasks | self.pipeline.in_flight()

    async def reload(self, config: Config) -> None:
        """SIGHUP: open connections keep going; new transactions get the new config.

        Everything is built before anything is swapped: a config with a mistake (UserError)
        leaves the old one in force.
        """
        scan = self.pipeline.stage.scanner is not None
        stage = await asyncio.to_thread(Stage.build, config, scan=scan)
        door = Door.build(config)
        if config.listen != self.door.config.listen:
            log("reload_listen_ignored", "warning", detail="listen changes need a restart")
        self.pipeline.reload(stage)
        self.door = door

    def describe(self) -> dict[str, Any]:
        config = self.door.config
        hop = config.next_hop
        return {
            "host": config.listen.host,
            "port": self.port,
            "tls": self.door.tls_context is not None,
            "scan": self.pipeline.stage.scanner is not None,
            "next_hop": f"{hop.host}:{hop.port}" if hop else "maildir",
        }

    def _track(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _event(self, server: SMTP, action: Any, **fields: Any) -> None:
        """A security event for the audit chain, with the client's address; a few per connection."""
        session = server.session
        peer = _peer(session) if session is not None else None
        if isinstance(server, GatewaySMTP):
            server.events += 1
            if server.events > EVENTS_PER_CONNECTION:
                log("event_not_audited", "warning", action=action, connection=server.connection_id)
                return
        await self.pipeline.record(
            AuditEvent(time=datetime.now(UTC), action=action, client_address=peer, **fields)
        )

    # ---- AUTH (our own mechanisms, so that argon2 runs off the event loop)

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        return await auth.plain(server, args, self.door.users, self._auth_failed(server))

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        return await auth.login(server, args, self.door.users, self._auth_failed(server))

    def _auth_failed(self, server: SMTP) -> auth.OnFailure:
        async def failed(user: str) -> None:
            await self._event(server, "auth-failed", login=user, detail="535")

        return failed

    # ---- envelope

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        door = self.door
        if self.closing:
            return replies.plain(replies.SHUTTING_DOWN)
        trusted = upstream.is_trusted(door.trusted, session.peer)
        if not trusted and not session.authenticated:
            log("refused", reason="not-authenticated", peer=_peer(session))
            await self._event(server, "refused", envelope_sender=address, detail="530 not-authenticated")
            return replies.plain(replies.AUTH_REQUIRED)
        if not trusted and not door.config.auth.allow_sender_mismatch and address.lower() != _login(session):
            log("refused", reason="sender-mismatch", peer=_peer(session))
            await self._event(
                server,
                "refused",
                login=_login(session),
                envelope_sender=address,
                detail="553 sender-mismatch",
            )
            return replies.plain(replies.SENDER_MISMATCH)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self.door.config.limits.max_recipients:
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
        task = self._track(self._data(server, session, envelope))
        return str(await asyncio.shield(task))

    async def _data(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        # aiosmtpd keeps the null sender of a bounce as "<>"; everywhere else it is "".
        mail_from = "" if envelope.mail_from in (None, "<>") else str(envelope.mail_from)
        identity = await self._identity(server, session, data)
        arrival = Arrival(
            data=data,
            mail_from=mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            identity=identity,
            connection=getattr(server, "connection_id", ""),
        )
        outcome = await self.pipeline.process(arrival)
        return outcome.reply

    async def _identity(self, server: SMTP, session: Session, data: bytes) -> Identity:
        """Who sent it: from the trusted upstream's Received header, else this session's AUTH and TLS."""
        if upstream.is_trusted(self.door.trusted, session.peer):
            # Identity and TLS from the top-most Received header that Postfix wrote, and from
            # nowhere else (not our own hop's TLS, not an AUTH on this connection).
            found = upstream.from_message(data)
            if not found.readable:
                log("upstream_unparsed", "warning", peer=_peer(session))
                await self._event(server, "upstream-unparsed", detail="received-header")
            return Identity(
                authenticated_as=found.authenticated_as, tls=found.tls, client_address=_peer(session)
            )
        return Identity(
            authenticated_as=_login(session) or None,
            tls=session.ssl is not None,
            client_address=_peer(session),
        )


def _login(session: Session) -> str:
    return str(session.auth_data) if session.authenticated and session.auth_data else ""


def _peer(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


async def build(config: Config, *, scan: bool = True) -> SmtpGateway:
    """The SMTP gateway for a config, its scanner warmed up (in a thread: it may take seconds)."""
    stage = await asyncio.to_thread(Stage.build, config, scan=scan)
    return SmtpGateway(Pipeline(stage), Door.build(config))
