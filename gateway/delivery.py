"""Handing a message on, in lockstep: to the next hop with aiosmtplib, or into the local Maildir.

Lockstep means the gateway's reply is the next hop's reply: 250 only after the next hop's 250.
A temporary failure of any kind (4xx, timeout, refused or dropped connection, TLS failure)
becomes 451 so that the sending MTA keeps the message and retries; a 5xx is passed on.

Recipients are all or nothing: if the next hop refuses any recipient, no DATA is sent and the
refusal is the reply for the whole message (a 5xx before a 4xx, since a retry would not help
that recipient). A partial 250 could not be told to a client that already got 250 for every
RCPT, and the refused recipients would be lost without a word.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Sequence
from datetime import date
from pathlib import Path

import aiosmtplib
from aiosmtplib import SMTP, SMTPHeloError

from models.config import Config, NextHop
from models.delivery import Delivery
from rules.engine import redact_numbers

REPLY_MAX_CHARS = 400
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\s*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_maildir_counter = itertools.count(1)

# Temporary failures by what went wrong (RFC 3463).
NO_ANSWER = "4.4.1"  # refused connection, no answer in time
DROPPED = "4.4.2"  # the connection broke mid-transaction
HOP_TEMPORARY = "4.4.0"  # the next hop's own 4xx without an enhanced code
TLS_MISSING = "4.7.4"  # STARTTLS required but not offered
TLS_FAILED = "4.7.5"  # handshake or certificate check failed
INTERNAL = "4.3.0"


def one_line(text: str) -> str:
    """A reply text made safe to put on one SMTP reply line, identifiers masked."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return redact_numbers(flat, date.today())[:REPLY_MAX_CHARS]


def _temporary(status: str, text: str) -> Delivery:
    return Delivery(code=451, message=f"{status} {one_line(text)}", delivered=False)


def _from_hop(code: int, text: str, stage: str) -> Delivery:
    """The next hop's refusal at `stage` (MAIL, RCPT, DATA, ...) as our reply."""
    text = one_line(text)
    if 500 <= code <= 599:
        return Delivery(code=code, message=text or "5.0.0 Next hop refused the message", delivered=False)
    match = _ENHANCED.match(text)
    status = match.group(0).strip() if match and match.group(1) == "4" else HOP_TEMPORARY
    rest = text[match.end() :] if match else text
    return _temporary(status, f"Next hop answered {code} to {stage}: {rest}".rstrip(": "))


def _tls_context(hop: NextHop) -> ssl.SSLContext:
    if hop.tls == "required":
        return ssl.create_default_context(cafile=str(hop.ca_file) if hop.ca_file else None)
    # Opportunistic STARTTLS protects against a passive listener only; an unchecked
    # certificate is what Postfix's `may` level does too.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _mail_options(smtp: SMTP, mail_from: str, rcpt_tos: Sequence[str], data: bytes) -> tuple[list[str], str]:
    options: list[str] = []
    encoding = "ascii"
    if not data.isascii() and smtp.supports_extension("8bitmime"):
        options.append("BODY=8BITMIME")
    if not all(a.isascii() for a in (mail_from, *rcpt_tos)):
        options.append("SMTPUTF8")
        encoding = "utf-8"
    if smtp.supports_extension("size"):
        options.append(f"SIZE={len(data)}")
    return options, encoding


async def _forward(hop: NextHop, mail_from: str, rcpt_tos: Sequence[str], data: bytes) -> Delivery:
    smtp = aiosmtplib.SMTP(
        hostname=hop.host,
        port=hop.port,
        timeout=hop.timeout_seconds,
        start_tls=False,
        local_hostname=_local_hostname(),
    )
    stage = "connect"
    try:
        await smtp.connect()
        stage = "EHLO"
        await _hello(smtp)
        if hop.tls != "none":
            if smtp.supports_extension("starttls"):
                stage = "STARTTLS"
                await smtp.starttls(tls_context=_tls_context(hop))
                stage = "EHLO"
                await _hello(smtp)
            elif hop.tls == "required":
                return _temporary(TLS_MISSING, "Next hop does not offer STARTTLS, which is required")
        options, encoding = _mail_options(smtp, mail_from, rcpt_tos, data)
        if encoding == "utf-8" and not smtp.supports_extension("smtputf8"):
            return Delivery(
                code=550,
                message="5.6.7 Next hop does not accept non-ASCII addresses (SMTPUTF8)",
                delivered=False,
            )
        stage = "MAIL FROM"
        await smtp.mail(mail_from, options=options, encoding=encoding)
        stage = "RCPT TO"
        refused: list[tuple[int, str]] = []
        for rcpt in rcpt_tos:
            try:
                await smtp.rcpt(rcpt, encoding=encoding)
            except aiosmtplib.SMTPRecipientRefused as e:
                refused.append((e.code, e.message))
        if refused:
            await _quietly(smtp.rset())
            code, text = min(refused, key=lambda r: (r[0] < 500, r[0]))  # a 5xx first
            return _from_hop(code, text, stage)
        stage = "DATA"
        response = await smtp.data(data)
        await _quietly(smtp.quit())
        return Delivery(code=250, message=one_line(response.message) or "2.0.0 Ok", delivered=True)
    except aiosmtplib.SMTPConnectTimeoutError:
        return _temporary(NO_ANSWER, f"Next hop {hop.host}:{hop.port} did not answer in time")
    except aiosmtplib.SMTPConnectResponseError as e:
        return _from_hop(e.code, e.message, "connect")
    except aiosmtplib.SMTPConnectError:
        return _temporary(NO_ANSWER, f"Next hop {hop.host}:{hop.port} refused the connection")
    except aiosmtplib.SMTPTimeoutError:
        return _temporary(NO_ANSWER, f"Next hop did not answer {stage} in time")
    except aiosmtplib.SMTPServerDisconnected:
        return _temporary(DROPPED, f"Next hop closed the connection at {stage}")
    except aiosmtplib.SMTPResponseException as e:
        return _from_hop(e.code, e.message, stage)
    except ssl.SSLError as e:
        return _temporary(TLS_FAILED, f"TLS with next hop failed: {e.reason or type(e).__name__}")
    except ValueError:  # an address aiosmtplib will not put on a command line
        return Delivery(code=553, message="5.1.3 Address cannot be sent to the next hop", delivered=False)
    except (aiosmtplib.SMTPException, OSError) as e:
        return _temporary(
            DROPPED if stage != "connect" else NO_ANSWER, f"Next hop failed at {stage} ({type(e).__name__})"
        )
    finally:
        smtp.close()


async def _hello(smtp: SMTP) -> None:
    try:
        await smtp.ehlo()
    except SMTPHeloError:
        await smtp.helo()


async def _quietly(step: Awaitable[object]) -> None:
    """QUIT and RSET after the outcome is known: their failure changes nothing."""
    with contextlib.suppress(Exception):
        await step


_hostname: str | None = None


def _local_hostname() -> str:
    # socket.getfqdn() may wait on DNS; the host name is enough for EHLO and asked once.
    global _hostname
    if _hostname is None:
        _hostname = socket.gethostname() or "localhost"
    return _hostname


def _envelope_headers(mail_from: str, rcpt_tos: Sequence[str], newline: bytes) -> bytes:
    # A Maildir file has no envelope: Return-Path and X-Envelope-To keep it, as a local MDA does.
    lines = [f"Return-Path: <{mail_from}>", f"X-Envelope-To: {', '.join(f'<{r}>' for r in rcpt_tos)}"]
    return b"".join(line.encode("utf-8") + newline for line in lines)


def maildir_store(outbox: Path, mail_from: str, rcpt_tos: Sequence[str], data: bytes) -> Path:
    """Write the message into the Maildir `outbox` durably: tmp/, fsync, rename into new/, fsync."""
    for sub in ("tmp", "new", "cur"):
        (outbox / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    now = time.time()
    name = (
        f"{int(now)}.M{int(now % 1 * 1_000_000)}P{os.getpid()}Q{next(_maildir_counter)}.{_local_hostname()}"
    )
    tmp, new = outbox / "tmp" / name, outbox / "new" / name
    newline = b"\r\n" if b"\r\n" in data[:4096] else b"\n"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_envelope_headers(mail_from, rcpt_tos, newline))
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, new)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(new.parent)
    return new


def fsync_dir(path: Path) -> None:
    """Make a rename or a new name in `path` survive a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def deliver(
    config: Config, mail_from: str, rcpt_tos: list[str], data: bytes, *, secure: bool = False
) -> Delivery:
    """Hand the message on and return the reply for the client; never raises for a failure.

    `secure` sends it to `secure.next_hop`; without one, a secure route means every recipient
    domain is in `secure.domains`, which the ordinary next hop reaches over enforced TLS.
    With no next hop the message goes into the local Maildir `outbox`.
    """
    if not rcpt_tos:
        raise ValueError("deliver() needs at least one recipient")
    hop = config.secure.next_hop if secure and config.secure.next_hop is not None else config.next_hop
    if hop is not None:
        return await _forward(hop, mail_from, rcpt_tos, data)
    try:
        path = await asyncio.to_thread(maildir_store, config.outbox, mail_from, rcpt_tos, data)
    except OSError as e:
        return _temporary(INTERNAL, f"Cannot write to the local outbox: {e.strerror or type(e).__name__}")
    return Delivery(code=250, message=f"2.0.0 Ok: stored as {path.name}", delivered=True)
