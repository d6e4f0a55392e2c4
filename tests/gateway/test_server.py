"""The SMTP gateway in one process: who may send, the policy, lockstep hand-on, limits, replies.

A real gateway listens on 127.0.0.1 (free port) and a real aiosmtpd server stands in for the
next hop; the client is aiosmtplib. Personal identity numbers are Skatteverket's test numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP as SinkSMTP

from gateway import replies
from gateway.audit import GroupCommit
from gateway.config import parse
from gateway.pipeline import INLINE_SCAN_BYTES, INLINE_SCAN_SECONDS, Stage, small_text
from gateway.smtp.server import SmtpGateway, build
from models.config import Config
from rules.engine import ScanContext, hits
from tests.conftest import TEST_KEY, TODAY, test_personnummer
from tests.gateway.tls import self_signed

PNR = test_personnummer(3)  # a Skatteverket test number, 12 digits
PNR_DASHED = f"{PNR[2:8]}-{PNR[8:]}"
MANAGER = "chef@kommun.example"
STAFF = "personal@kommun.example"
SECURE_DOMAIN = "region.example"


# ---------------------------------------------------------------- helpers


def leaks(text: str) -> list[str]:
    """Identity numbers the engine itself finds in `text` (replies, logs): must be none."""
    return [h.masked for h in hits(text, ScanContext(fingerprint_key=TEST_KEY, today=TODAY))]


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def make_config(tmp_path: Path, **overrides: Any) -> Config:
    raw = {
        "listen": {"host": "127.0.0.1", "port": 0},
        "outbox": str(tmp_path / "outbox"),
        "audit": {"path": str(tmp_path / "audit.jsonl")},
        "quarantine": {"path": str(tmp_path / "quarantine")},
        "register": {"path": str(tmp_path / "register.db")},
        "privacy": {"key_file": str(tmp_path / "fingerprint.key")},
        "auth": {"trusted_upstreams": ["127.0.0.1"]},
        "policy": {"managers": [MANAGER], "person_name": "off"},
        "secure": {"domains": [SECURE_DOMAIN]},
    }
    return parse(merge(raw, overrides))


def message(
    body: str = "Hej! Mötet flyttas till torsdag.",
    *,
    sender: str = STAFF,
    to: str = "mottagare@example.se",
    subject: str = "Schema",
    received: bytes = b"",
    extra_headers: str = "",
) -> bytes:
    head = (
        f"From: Avsändare <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <test.1@kommun.example>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n{extra_headers}\r\n"
    )
    return received + head.encode() + body.encode("utf-8") + b"\r\n"


def received(login: str | None, *, tls: bool = True) -> bytes:
    """The Received header a trusted Postfix writes in front of the gateway."""
    protocol = "ESMTP" + ("S" if tls else "") + ("A" if login else "")
    lines = [b"Received: from pc12.kommun.example (pc12.kommun.example [192.0.2.5])\r\n"]
    if tls:
        lines.append(b"\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n")
    if login:
        lines.append(f"\t(Authenticated sender: {login})\r\n".encode())
    lines.append(f"\tby mail.kommun.example (Postfix) with {protocol} id 4Mx1Tq0abcz9sWL\r\n".encode())
    lines.append(b"\tfor <mottagare@example.se>; Thu, 26 Nov 2026 10:00:00 +0100 (CET)\r\n")
    return b"".join(lines)


@dataclass
class Sink:
    """A next hop that records what it accepted and answers what the test says."""

    reply: str = "250 2.0.0 Ok: queued as SINK1"
    accepted: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    hold: asyncio.Event | None = None
    got_data: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.got_data.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.reply.startswith("250"):
            self.accepted.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return self.reply


async def start_sink(sink: Sink) -> tuple[asyncio.base_events.Server, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SinkSMTP(sink, hostname="sink"), "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def start_gateway(config: Config, *, scan: bool = True) -> SmtpGateway:
    gateway = await build(config, scan=scan)
    await gateway.start()
    return gateway


async def client(port: int) -> aiosmtplib.SMTP:
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=10)
    await smtp.connect()
    await smtp.ehlo()
    return smtp


async def send(smtp: aiosmtplib.SMTP, mail_from: str, rcpt_tos: list[str], data: bytes) -> tuple[int, str]:
    """The reply to the first command that was refused, or to DATA."""
    try:
        await smtp.mail(mail_from)
        for rcpt in rcpt_tos:
            await smtp.rcpt(rcpt)
        response = await smtp.data(data)
        return response.code, response.message
    except aiosmtplib.SMTPResponseException as e:
        await smtp.rset()
        return e.code, e.message


@pytest.fixture()
async def sink() -> AsyncIterator[tuple[Sink, int]]:
    s = Sink()
    server, port = await start_sink(s)
    yield s, port
    server.close()


@pytest.fixture()
def run_gateway(tmp_path: Path, key_env: bytes) -> Callable[..., Any]:
    started: list[SmtpGateway] = []

    async def run(scan: bool = True, **overrides: Any) -> SmtpGateway:
        gateway = await start_gateway(make_config(tmp_path, **overrides), scan=scan)
        started.append(gateway)
        return gateway

    yield run
    for gateway in started:
        if gateway.server is not None:
            gateway.server.close()
        gateway.pipeline.scan_pool.shutdown(wait=False)
        gateway.pipeline.audit_writer.pool.shutdown(wait=False)


def audit_lines(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "audit.jsonl"
    return (
        [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    )


# ---------------------------------------------------------------- who may send


async def test_a_client_neither_authenticated_nor_trusted_cannot_send(run_gateway, sink):
    _, hop = sink
    gateway = await run_gateway(auth={"trusted_upstreams": []}, next_hop={"host": "127.0.0.1", "port": hop})
    smtp = await client(gateway.port)
    code, text = await send(smtp, STAFF, ["x@example.se"], message())
    assert (code, text.split()[0]) == (530, "5.7.0")
    assert sink[0].accepted == []


async def test_a_trusted_upstream_may_relay_clean_mail(run_gateway, sink):
    s, hop = sink
    gateway = await run_gateway(next_hop={"host": "127.0.0.1", "port": hop})
    smtp = await client(gateway.port)
    data = message(received=received(None, tls=False))
    code, text = await send(smtp, STAFF, ["mottagare@example.se"], data)
    assert code == 250
    assert "SINK1" in text  # the next hop's own reply, passed on
    [(mail_from, rcpt_tos, content)] = s.accepted
    assert (mail_from, rcpt_tos) == (STAFF, ["mottagare@example.se"])
    # The bytes are unchanged but for one header on top with the verdict.
    assert content == b"X-Brukarvakt-Verdict: pass\r\n" + data


async def test_without_scanning_a_message_is_relayed_marked_and_audited_as_not_scanned(
    run_gateway, sink, tmp_path
):
    # `serve --no-scan` is the relay benchmark's baseline: the same hand-on, header and audit line
    # as a scanned clean message, so that the difference is the scan. Nothing is read: a
    # personnummer passes, and the audit line says why, with the Message-ID masked.
    s, hop = sink
    gateway = await run_gateway(scan=False, next_hop={"host": "127.0.0.1", "port": hop})
    smtp = await client(gateway.port)
    data = message(body=f"pnr {PNR}", received=received(None, tls=False), extra_headers="").replace(
        b"<test.1@kommun.example>", f"<{PNR}@kommun.example>".encode()
    )
    code, _ = await send(smtp, STAFF, ["mottagare@example.se"], data)
    assert code == 250
    assert s.accepted[0][2] == b"X-Brukarvakt-Verdict: not-scanned\r\n" + data
    [record] = audit_lines(tmp_path)
    assert (record["action"], record["verdict"], record["reason"]) == ("delivered", "pass", "not-scanned")
    assert record["envelope_sender"] == STAFF and record["recipient_domains"] == ["example.se"]
    assert record["message_id"].endswith("@kommun.example>") and PNR not in record["message_id"]
    assert leaks((tmp_path / "audit.jsonl").read_text(encoding="utf-8")) == []


async def test_an_auth_parameter_on_mail_from_is_accepted_and_vouches_for_nobody(run_gateway, sink):
    # RFC 4954 section 5; Postfix's before-queue proxy passes it on as the client typed it.
    s, hop = sink
    gateway = await run_gateway(next_hop={"host": "127.0.0.1", "port": hop})
    smtp = await client(gateway.port)
    code, _ = await smtp.mail(STAFF, options=[f"AUTH=<{MANAGER}>"])
    assert code == 250
    await smtp.rcpt("mottagare@example.se")
    response = await smtp.data(message(received=received(None, tls=False)))
    assert response.code == 250 and len(s.accepted) == 1
    smtp2 = await client(gateway.port)
    # AUTH= claims the manager: the message with a personnummer is blocked all the same.
    code, text = await smtp2.mail(MANAGER, options=[f"AUTH=<{MANAGER}>"])
    assert code == 250
    await smtp2.rcpt(f"vard@{SECURE_DOMAIN}")
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await smtp2.data(message(sender=MANAGER, body=f"pnr {PNR}", received=received(None, tls=True)))
    assert refused.value.code == 550


async def test_a_bounce_from_the_null_sender_is_relayed_with_the_null_sender(run_gateway, sink):
    s, hop = sink
    gateway = await run_gateway(next_hop={"host": "127.0.0.1", "port": hop})
    smtp = await client(gateway.port)
    code, _ = await send(smtp, "", ["m@example.se"], message(sender="mailer-daemon@kommun.example"))
    assert code == 250
    assert s.accepted[0][0] == "<>"


async def test_the_reply_waits_for_the_next_hops_250(run_gateway, sink):
    s, hop = sink
    s.hold = asyncio.Event()
    gateway = await run_gateway(next_hop={"host": "127.0.0.1", "port": hop})
    smtp = await client(gateway.port)
    sending = asyncio.create_task(send(smtp, STAFF, ["m@example.se"], message()))
    await asyncio.wait_for(s.got_data.wait(), 10)
    await asyncio.sleep(0.05)  # give a wrongly early 250 the chance to arrive
    assert not sending.done()
    s.hold.set()
    code, _ = await asyncio.wait_for(sending, 10)
    assert code == 250


async def test_a_client_hanging_up_after_the_final_dot_does_not_cut_the_hand_on_in_half(
    run_gateway, sink, tmp_path
):
    s, hop = sink
    s.hold = asyncio.Event()
    gateway = await run_gateway(next_hop={"host": "127.0.0.1", "port": hop})
    smtp = await client(gateway.port)
    sending = asyncio.create_task(send(smtp, STAFF, ["m@example.se"], message()))
    await asyncio.wait_for(s.got_data.wait(), 10)
    sending.cancel()
    smtp.close()  # gone before the reply
    s.hold.set()
    while gateway.busy():
        await asyncio.wait(gateway.busy(), timeout=10)
    # Delivered and recorded as such: the client will send it again (SMTP is at least once).
    assert len(s.accepted) == 1
    assert audit_lines(tmp_path)[-1]["action"] == "delivered"


@pytest.mark.parametrize(
    ("hop_reply", "code", "status"),
    [
        ("451 4.3.0 Try again later", 451, "4.3.0"),
        ("452 4.3.1 Insufficient system storage", 451, "4.3.1"),
        ("550 5.1.1 No such user", 550, "5.1.1"),
        ("554 5.7.1 Rejected by policy", 554, "5.7.1"),
    ],
)
async def test_the_next_hops_refusal_is_passed_on(run_gateway, sink, tmp_path, hop_reply, code, status):
    s, hop = sink
    s.reply = hop_reply
    gateway = await run_gateway(next_hop={"host": "127.0.0.1", "port": hop})
    smtp = await client(gateway.port)
    got, text = await send(smtp, STAFF, ["m@example.se"], message())
    assert got == code
    assert text.split()[0] == status
    assert audit_lines(tmp_path)[-1]["action"] == ("deferred" if code < 500 else "failed")


async def test_a_next_hop_that_is_down_gives_451_4_4_1(run_gateway, tmp_path):
    down, port = await start_sink(Sink())
    down.close()
    await down.wait_closed()
    gateway = await run_gateway(next_hop={"host": "127.0.0.1", "port": port, "timeout_seconds": 5})
    smtp = await client(gateway.port)
    code, text = await send(smtp, STAFF, ["m@example.se"], message())
    assert (code, text.split()[0]) == (451, "4.4.1")
    assert audit_lines(tmp_path)[-1]["action"] == "deferred"


async def test_without_a_next_hop_mail_goes_into_the_local_maildir(run_gateway, tmp_path):
    gateway = await run_gateway()
    smtp = await client(gateway.port)
    code, _ = await send(smtp, STAFF, ["m@example.se"], message())
    assert code == 250
    [stored] = list((tmp_path / "outbox" / "new").iterdir())
    assert b"X-Brukarvakt-Verdict: pass\r\n" in stored.read_bytes()


async def test_with_no_config_clients_on_this_machine_may_send_into_the_local_maildir(
    tmp_path, key_env, monkeypatch
):
    # `brukarvakt serve` with no config: embedded defaults, relative paths from the current folder.
    from gateway.config import load

    monkeypatch.chdir(tmp_path)
    config = load(None).model_copy(update={"listen": make_config(tmp_path).listen})
    gateway = await start_gateway(config)
    try:
        smtp = await client(gateway.port)
        code, _ = await send(smtp, "vem@example.se", ["m@example.se"], b"Subject: hej\r\n\r\nHej\r\n")
        assert code == 250
        assert len(list((tmp_path / "var" / "outbox" / "new").iterdir())) == 1
        code, text = await send(
            smtp, "vem@example.se", ["m@example.se"], b"Subject: x\r\n\r\npnr " + PNR.encode() + b"\r\n"
        )
        assert (code, text.split()[0]) == (550, "5.7.1")
    finally:
        await gateway.stop(grace=1)


# ---------------------------------------------------------------- policy


async def test_staff_can_never_send_a_personnummer_and_are_told_why_in_swedish(
    run_gateway, sink, tmp_path, capsys
):
    s, hop = sink
    gateway = await run_gateway(next_hop={"host": "127.0.0.1", "port": hop})
    smtp = await client(gateway.port)
    data = message(
        f"Gäller brukaren med personnummer {PNR_DASHED}.", to=f"x@{SECURE_DOMAIN}", received=received(STAFF)
    )
    code, text = await send(smtp, STAFF, [f"x@{SECURE_DOMAIN}"], data)
    assert code == 550
    assert text.startswith("5.7.1 Meddelandet stoppades")
    assert "Personnummer (" in text and "rad 1" in text
    assert "Lifecare meddelande" in text
    assert text.isascii()
    assert leaks(text) == []
    assert s.accepted == []
    [record] = audit_lines(tmp_path)
    assert (record["action"], record["verdict"]) == ("rejected", "block")
    assert leaks(capsys.readouterr().err) == []
    assert leaks((tmp_path / "audit.jsonl").read_text(encoding="utf-8")) == []


async def test_a_next_hops_reply_quoting_an_identifier_is_passed_on_masked(run_gateway, sink):
    s, hop = sink
    s.reply = f"550 5.1.1 <{PNR}@example.se>: Recipient address rejected"
    gateway = await run_gateway(next_hop={"host": "127.0.0.1", "port": hop})
    smtp = await client(gateway.port)
    code, text = await send(smtp, STAFF, ["m@example.se"], message())
    assert (code, text.split()[0]) == (550, "5.1.1")
    assert "Recipient address rejected" in text
    assert leaks(text) == []


def _manager_mail(**kw: Any) -> bytes:
    args = {"sender": MANAGER, "to": f"handlaggare@{SECURE_DOMAIN}", "received": received(MANAGER)}
    args.update(kw)
    return message(f"Personnummer {PNR_DASHED} enligt överenskommelse.", **args)


async def test_a_manager_may_send_authenticated_over_tls_from_own_address_to_a_secure_domain(
    run_gateway, sink
):
    s, hop = sink
    gateway = await run_gateway(next_hop={"host": "127.0.0.1", "port": hop})
    smtp = await client(gateway.port)
    code, _ = await send(smtp, MANAGER, [f"handlaggare@{SECURE_DOMAIN}"], _manager_mail())
    assert code == 250
    [(_, _, content)] = s.accepted
    assert content.startswith(b"X-Brukarvakt-Verdict: pass; exception=manager; kinds=personnummer\r\n")


@pytest.mark.parametrize(
    ("case", "mail_from", "rcpt", "data"),
    [
        ("not a manager", STAFF, f"h@{SECURE_DOMAIN}", _manager_mail(sender=STAFF, received=received(STAFF))),
        ("not authenticated", MANAGER, f"h@{SECURE_DOMAIN}", _manager_mail(received=received(None))),
        ("no TLS", MANAGER, f"h@{SECURE_DOMAIN}", _manager_mail(received=received(MANAGER, tls=False))),
        (
            "From header not the identity",
            MANAGER,
            f"h@{SECURE_DOMAIN}",
            _manager_mail(sender="annan@kommun.example"),
        ),
        ("recipient domain not secure", MANAGER, "h@example.se", _manager_mail(to="h@example.se")),
        ("one recipient of two not secure", MANAGER, f"h@{SECURE_DOMAIN},h@example.se", _manager_mail()),
    ],
)
async def test_the_manager_exception_needs_every_condition(run_gateway, sink, case, mail_from, rcpt, data):
    s, hop = sink
    gateway = await run_gateway(next_hop={"host": "127.0.0.1", "port": hop})
    smtp = await client(gateway.port)
    code, text = await send(smtp, mail_from, rcpt.split(","), data)
    assert (code, text.split()[0]) == (550, "5.7.1"), case
    assert s.accepted == []


async def test_a_manager_envelope_sender_other_than_the_login_is_refused(run_gateway, sink):
    _, hop = sink
    gateway = await run_gateway(next_hop={"host": "127.0.0.1", "port": hop})
    smtp = await client(gateway.port)
    code, text = await send(smtp, "annan@kommun.example", [f"h@{SECURE_DOMAIN}"], _manager_mail())
    assert (code, text.split()[0]) == (550, "5.7.1")
    assert "inloggade" in text


async def test_the_envelope_sender_mismatch_is_still_a_block_when_config_allows_sending(run_gateway, sink):
    s, hop = sink
    gateway = await run_gateway(
        next_hop={"host": "127.0.0.1", "port": hop}, auth={"allow_sender_mismatch": True}
    )
    smtp = await client(gateway.port)
    code, _ = await send(smtp, "annan@kommun.example", [f"h@{SECURE_DOMAIN}"], _manager_mail())
    assert code == 550  # allowed to send, but not under the manager exception
    code, _ = await send(
        smtp, "annan@kommun.example", [f"h@{SECURE_DOMAIN}"], message(sender="annan@kommun.example")
    )
    assert code == 250


async def test_a_marked_message_goes_to_the_secure_next_hop(run_gateway, sink):
    s, hop = sink
    secure = Sink(reply="250 2.0.0 Ok: queued as SECURE1")
    secure_server, secure_port = await start_sink(secure)
    try:
        gateway = await run_gateway(
            next_hop={"host": "127.0.0.1", "port": hop},
            secure={"next_hop": {"host": "127.0.0.1", "port": secure_port}},
        )
        smtp = await client(gateway.port)
        data = _manager_mail(to="h@example.se", subject="[sekretess] Underlag")
        code, text = await send(smtp, MANAGER, ["h@example.se"], data)
        assert code == 250 and "SECURE1" in text
        assert len(secure.accepted) == 1 and s.accepted == []
        # The guidance to a manager who forgot the marker says how to send securely.
        code, text = await send(smtp, MANAGER, ["h@example.se"], _manager_mail(to="h@example.se"))
        assert code == 550
        assert "[sekretess]" in text and "inte via sekretesskyddad e-post" in text
    finally:
        secure_server.close()


# ---------------------------------------------------------------- AUTH and TLS


@pytest.fixture()
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path, "localhost")


@pytest.fixture()
def users_file(tmp_path: Path) -> Path:
    from gateway.users import hash_password, write

    path = tmp_path / "users"
    write(path, {MANAGER: hash_password("chefens-lösenord"), STAFF: hash_password("personalens-lösenord")})
    return path


@pytest.fixture()
async def auth_gateway(run_gateway, sink, tls_files, users_file) -> tuple[SmtpGateway, Sink]:
    s, hop = sink
    cert, key = tls_files
    gateway = await run_gateway(
        next_hop={"host": "127.0.0.1", "port": hop},
        tls={"cert": str(cert), "key": str(key)},
        auth={"users_file": str(users_file), "trusted_upstreams": []},
    )
    return gateway, s


async def test_auth_is_offered_and_accepted_only_after_starttls(auth_gateway):
    gateway, _ = auth_gateway
    smtp = await client(gateway.port)
    assert smtp.supports_extension("starttls")
    assert not smtp.supports_extension("auth")
    response = await smtp.execute_command(b"AUTH", b"PLAIN", b"AGNoZWZAa29tbXVuLmV4YW1wbGUAeA==")
    assert (response.code, response.message.split()[0]) == (538, "5.7.11")
    await smtp.starttls(validate_certs=False)
    await smtp.ehlo()
    assert set(smtp.server_auth_methods) == {"plain", "login"}


@pytest.mark.parametrize("method", ["auth_plain", "auth_login"])
async def test_a_manager_authenticated_after_starttls_may_use_the_exception(auth_gateway, method):
    gateway, s = auth_gateway
    smtp = await client(gateway.port)
    await smtp.starttls(validate_certs=False)
    await smtp.ehlo()
    await getattr(smtp, method)(MANAGER, "chefens-lösenord")
    code, _ = await send(smtp, MANAGER, [f"h@{SECURE_DOMAIN}"], _manager_mail(received=b""))
    assert code == 250
    assert s.accepted[0][2].startswith(b"X-Brukarvakt-Verdict: pass; exception=manager")


async def test_a_wrong_password_is_535_and_sends_nothing(auth_gateway):
    gateway, s = auth_gateway
    smtp = await client(gateway.port)
    await smtp.starttls(validate_certs=False)
    await smtp.ehlo()
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as e:
        await smtp.auth_plain(MANAGER, "fel")
    assert e.value.code == 535
    code, _ = await send(smtp, MANAGER, ["h@example.se"], message(sender=MANAGER))
    assert code == 530


async def test_auth_plain_cannot_act_as_someone_else(auth_gateway):
    import base64

    gateway, _ = auth_gateway
    smtp = await client(gateway.port)
    await smtp.starttls(validate_certs=False)
    await smtp.ehlo()
    blob = base64.b64encode(f"{MANAGER}\0{STAFF}\0personalens-lösenord".encode())
    response = await smtp.execute_command(b"AUTH", b"PLAIN", blob)
    assert response.code == 535
    blob = base64.b64encode(f"{STAFF}\0{STAFF}\0personalens-lösenord".encode())
    assert (await smtp.execute_command(b"AUTH", b"PLAIN", blob)).code == 235


async def test_after_three_auth_attempts_the_connection_is_closed(auth_gateway):
    gateway, _ = auth_gateway
    smtp = await client(gateway.port)
    await smtp.starttls(validate_certs=False)
    await smtp.ehlo()
    for _ in range(3):
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            await smtp.auth_plain(MANAGER, "gissning")
    response = await smtp.execute_command(b"AUTH", b"PLAIN", b"AGNoZWZAa29tbXVuLmV4YW1wbGUAeA==")
    assert (response.code, response.message.split()[0]) == (421, "4.7.0")


async def test_an_authenticated_user_must_send_as_themselves(auth_gateway):
    gateway, s = auth_gateway
    smtp = await client(gateway.port)
    await smtp.starttls(validate_certs=False)
    await smtp.ehlo()
    await smtp.auth_plain(STAFF, "personalens-lösenord")
    code, text = await send(smtp, MANAGER, ["h@example.se"], message(sender=MANAGER))
    assert (code, text.split()[0]) == (553, "5.7.1")
    code, _ = await send(smtp, STAFF.upper(), ["h@example.se"], message())
    assert code == 250


async def test_a_trusted_upstreams_own_auth_is_ignored_identity_comes_from_received(
    run_gateway, sink, tls_files, users_file
):
    s, hop = sink
    cert, key = tls_files
    gateway = await run_gateway(
        next_hop={"host": "127.0.0.1", "port": hop},
        tls={"cert": str(cert), "key": str(key)},
        auth={"users_file": str(users_file)},
    )
    smtp = await client(gateway.port)
    await smtp.starttls(validate_certs=False)
    await smtp.ehlo()
    await smtp.auth_plain(MANAGER, "chefens-lösenord")
    # AUTH and TLS on this hop do not count: the Received header says nobody logged in.
    code, _ = await send(smtp, MANAGER, [f"h@{SECURE_DOMAIN}"], _manager_mail(received=received(None)))
    assert code == 550


# ---------------------------------------------------------------- limits


async def test_too_big_is_552_5_3_4(run_gateway):
    gateway = await run_gateway(limits={"max_message_bytes": 2048})
    smtp = await client(gateway.port)
    assert smtp.esmtp_extensions["size"] == "2048"
    code, text = await send(smtp, STAFF, ["m@example.se"], message(("x" * 78 + "\r\n") * 40))
    assert (code, text.split()[0]) == (552, "5.3.4")
    response = await smtp.execute_command(b"MAIL", b"FROM:<" + STAFF.encode() + b">", b"SIZE=99999")
    assert (response.code, response.message.split()[0]) == (552, "5.3.4")


async def test_too_many_recipients_is_452_4_5_3(run_gateway):
    gateway = await run_gateway(limits={"max_recipients": 2})
    smtp = await client(gateway.port)
    await smtp.mail(STAFF)
    await smtp.rcpt("a@example.se")
    await smtp.rcpt("b@example.se")
    with pytest.raises(aiosmtplib.SMTPRecipientRefused) as e:
        await smtp.rcpt("c@example.se")
    assert (e.value.code, e.value.message.split()[0]) == (452, "4.5.3")
    response = await smtp.data(message())
    assert response.code == 250  # the two accepted recipients are sent


async def test_a_too_long_line_is_554_5_6_0(run_gateway):
    gateway = await run_gateway(limits={"max_line_length": 998})
    smtp = await client(gateway.port)
    code, text = await send(smtp, STAFF, ["m@example.se"], message("y" * 1200))
    assert (code, text.split()[0]) == (554, "5.6.0")
    code, _ = await send(smtp, STAFF, ["m@example.se"], message("y" * 990))
    assert code == 250


async def test_too_many_header_fields_is_554_5_6_0_and_audited(run_gateway, tmp_path):
    gateway = await run_gateway(limits={"max_headers": 10})
    smtp = await client(gateway.port)
    extra = "".join(f"X-Extra-{i}: {i}\r\n" for i in range(5))
    code, text = await send(smtp, STAFF, ["m@example.se"], message(extra_headers=extra))
    assert (code, text.split()[0]) == (554, "5.6.0")
    [record] = audit_lines(tmp_path)
    assert (record["action"], record["reason"]) == ("rejected", "not-decided: max_headers")


def _nested(depth: int) -> bytes:
    inner = b"Content-Type: text/plain\r\n\r\nInnerst.\r\n"
    for level in range(depth):
        boundary = f"b{level}".encode()
        inner = (
            b"Content-Type: multipart/mixed; boundary="
            + boundary
            + b"\r\n\r\n--"
            + boundary
            + b"\r\n"
            + inner
            + b"\r\n--"
            + boundary
            + b"--\r\n"
        )
    return (
        b"From: " + STAFF.encode() + b"\r\nTo: m@example.se\r\nSubject: djup\r\nMIME-Version: 1.0\r\n" + inner
    )


async def test_mime_nested_past_the_limit_is_554_5_6_0(run_gateway):
    gateway = await run_gateway(limits={"max_mime_depth": 2})
    smtp = await client(gateway.port)
    code, text = await send(smtp, STAFF, ["m@example.se"], _nested(5))
    assert (code, text.split()[0]) == (554, "5.6.0")
    code, _ = await send(smtp, STAFF, ["m@example.se"], _nested(1))
    assert code == 250


async def test_a_scan_that_takes_too_long_is_451_never_a_pass(run_gateway, sink, tmp_path):
    s, hop = sink
    gateway = await run_gateway(
        next_hop={"host": "127.0.0.1", "port": hop}, limits={"scan_timeout_seconds": 0.2}
    )
    release = threading.Event()
    real = gateway.pipeline.stage.scanner.scan_mail

    def slow(data: bytes) -> Any:
        release.wait(10)
        return real(data)

    gateway.pipeline.stage.scanner.scan_mail = slow
    try:
        smtp = await client(gateway.port)
        # A message with parts is scanned in a thread (one text part would be scanned inline).
        sending = asyncio.create_task(send(smtp, STAFF, ["m@example.se"], _nested(1)))
        # Meanwhile the event loop serves other sessions.
        other = await client(gateway.port)
        assert (await other.noop()).code == 250
        assert not sending.done()
        code, text = await sending
    finally:
        release.set()
    assert (code, text.split()[0]) == (451, "4.3.0")
    assert s.accepted == []
    [record] = audit_lines(tmp_path)
    assert (record["action"], record["reason"]) == ("deferred", "not-decided: scan_timeout")


async def test_small_text_messages_go_to_a_scan_thread_too_when_their_scans_are_slow(run_gateway, sink):
    # e.g. with the language model for person names, a text message takes milliseconds.
    s, hop = sink
    gateway = await run_gateway(next_hop={"host": "127.0.0.1", "port": hop})
    release = threading.Event()
    real = gateway.pipeline.stage.scanner.scan_mail

    def slow(data: bytes) -> Any:
        release.wait(10)
        return real(data)

    gateway.pipeline.stage.scanner.scan_mail = slow
    gateway.pipeline.stage.small_scan_seconds = 0.05
    smtp = await client(gateway.port)
    try:
        sending = asyncio.create_task(send(smtp, STAFF, ["m@example.se"], message()))
        other = await client(gateway.port)
        assert (await other.noop()).code == 250
        assert not sending.done()
    finally:
        release.set()
    assert (await sending)[0] == 250
    assert gateway.pipeline.stage.small_scan_seconds != 0.05  # the scan counted in the moving average


def test_with_the_language_model_on_small_text_messages_are_scanned_on_the_event_loop_from_the_first(
    tmp_path: Path, key_env: bytes
) -> None:
    # The warm-up message holds a name, so the model runs on it; most mail never reaches the
    # model, and the first estimate of a small scan's cost must not be the model's.
    state = Stage.build(make_config(tmp_path, policy={"person_name": "warn"}), scan=True)
    assert state.small_scan_seconds < INLINE_SCAN_SECONDS / 2


def test_a_scan_costs_its_own_cpu_time_not_the_time_it_waited_for_the_gil(
    tmp_path: Path, key_env: bytes
) -> None:
    state = Stage.build(make_config(tmp_path), scan=True)
    real = state.scanner.scan_mail

    def waits(data: bytes) -> Any:
        threading.Event().wait(0.05)  # as a scan thread waits while the event loop holds the GIL
        return real(data)

    state.scanner.scan_mail = waits
    _, took = state.scan_timed(message())
    assert took < 0.025


def test_only_a_small_single_text_part_message_is_scanned_on_the_event_loop():
    assert small_text(message())
    assert small_text(b"Subject: x\r\n\r\nno content type: text/plain by default\r\n")
    assert not small_text(_nested(1))
    assert not small_text(message("x" * INLINE_SCAN_BYTES))
    assert not small_text(b"Subject: x\r\nContent-Type: image/png\r\n\r\nContent-Type: text/plain\r\n")


async def test_an_exception_in_a_session_is_451_4_3_0_and_the_server_goes_on(run_gateway, sink, capsys):
    s, hop = sink
    gateway = await run_gateway(next_hop={"host": "127.0.0.1", "port": hop})
    scanner = gateway.pipeline.stage.scanner

    def broken(*args: Any) -> Any:
        raise RuntimeError(f"parser died on {PNR}")

    original = scanner.decide
    scanner.decide = broken
    smtp = await client(gateway.port)
    code, text = await send(smtp, STAFF, ["m@example.se"], message())
    assert (code, text.split()[0]) == (451, "4.3.0")
    scanner.decide = original
    code, _ = await send(smtp, STAFF, ["m@example.se"], message())
    assert code == 250
    err = capsys.readouterr().err
    assert '"error": "RuntimeError"' in err
    assert leaks(err) == []


# ---------------------------------------------------------------- replies and logs


async def test_nothing_the_gateway_says_or_logs_holds_an_identifier(run_gateway, sink, capsys):
    s, hop = sink
    gateway = await run_gateway(next_hop={"host": "127.0.0.1", "port": hop})
    smtp = await client(gateway.port)
    said: list[str] = []
    for body, name in [
        (f"pnr {PNR}", "lista.txt"),
        (f"{PNR_DASHED} och {test_personnummer(5)}", f"journal_{PNR}.pdf"),
    ]:
        data = message(
            body,
            extra_headers=f'Content-Disposition: inline; filename="{name}"\r\n',
            subject=f"Ang {PNR_DASHED}",
        )
        code, text = await send(smtp, STAFF, ["m@example.se"], data)
        assert code == 550
        said.append(text)
    logged = capsys.readouterr().err
    assert leaks("\n".join(said)) == []
    assert leaks(logged) == []
    assert STAFF not in logged  # addresses are personal data too: domains only
    for line in logged.splitlines():
        json.loads(line)  # structured: one JSON object per line


async def test_a_recipient_without_a_domain_or_with_a_number_for_one_is_never_logged_in_clear(
    run_gateway, sink, capsys
):
    s, hop = sink
    gateway = await run_gateway(next_hop={"host": "127.0.0.1", "port": hop})
    smtp = await client(gateway.port)
    # A number pasted into the recipient field: the client sends it as an address with no domain.
    code, _ = await send(smtp, STAFF, [PNR, f"bo@{PNR_DASHED}.example", "m@example.se"], message())
    assert code == 250
    logged = capsys.readouterr().err
    assert leaks(logged) == [] and PNR not in logged
    assert "example.se" in logged  # an ordinary domain is still named


def test_a_block_reply_is_a_multi_line_ascii_reply_with_short_lines():
    from models.findings import Finding, Location, Verdict

    finding = Finding(
        rule="personnummer",
        kind="personnummer",
        severity="block",
        location=Location(part="attachment:bilaga-åäö\r\n.txt", line=2, column=1),
        masked="450312-****",
        fingerprint="ab" * 32,
        customer_number="10234",
        suggestion="Skriv kundnummer 10234 i stället för personnumret.",
        start=0,
        end=1,
    )
    reply = replies.block(
        Verdict(verdict="block", reason="identifier: x", findings=(finding,) * 7), marker=None
    )
    lines = reply.split("\r\n")
    assert all(line.startswith("550-5.7.1 ") for line in lines[:-1])
    assert lines[-1].startswith("550 5.7.1 ")
    assert reply.isascii()
    assert all(len(line) <= 220 for line in lines)
    assert "Skriv kundnummer 10234 i stallet for personnumret." in reply
    assert "bilaga-aao .txt" in reply  # transliterated; a CR/LF in a part name cannot end the reply
    assert "och 2 uppgifter till" in reply


def test_the_next_hops_reply_is_passed_on_with_its_own_enhanced_code():
    assert replies.next_hop_reply(250, "2.0.0 Ok: queued as X") == "250 2.0.0 Ok: queued as X"
    assert replies.next_hop_reply(550, "No such user") == "550 5.0.0 No such user"
    assert replies.next_hop_reply(451, "4.4.1 Next hop down") == "451 4.4.1 Next hop down"


# ---------------------------------------------------------------- the audit log


async def test_audit_records_arriving_during_a_write_are_committed_together():
    class SlowLog:
        def __init__(self) -> None:
            self.calls: list[list[int]] = []
            self.started = threading.Event()
            self.gate = threading.Event()

        def append(self, record: int) -> None:
            self.started.set()
            self.gate.wait(10)
            self.calls.append([record])

        def append_many(self, records: list[int]) -> None:
            self.calls.append(list(records))

    writer, audit = GroupCommit(), SlowLog()
    first = asyncio.ensure_future(writer.write(audit, 0))  # type: ignore[arg-type]
    assert await asyncio.to_thread(audit.started.wait, 10)
    rest = [asyncio.ensure_future(writer.write(audit, n)) for n in range(1, 6)]  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert not any(f.done() for f in [first, *rest])  # each decision waits for its own fsync
    audit.gate.set()
    await asyncio.wait_for(asyncio.gather(first, *rest), 10)
    assert audit.calls == [[0], [1, 2, 3, 4, 5]]
    writer.close()


async def test_a_failing_audit_log_is_reported_but_does_not_undo_a_delivery(
    run_gateway, sink, tmp_path, capsys
):
    s, hop = sink
    (tmp_path / "audit-dir").mkdir()
    gateway = await run_gateway(
        next_hop={"host": "127.0.0.1", "port": hop}, audit={"path": str(tmp_path / "audit-dir")}
    )
    smtp = await client(gateway.port)
    code, _ = await send(smtp, STAFF, ["m@example.se"], message())
    # Answering 451 after the next hop took the message would make the sender send it twice.
    assert code == 250 and len(s.accepted) == 1
    assert '"event": "audit_failed"' in capsys.readouterr().err


# ---------------------------------------------------------------- quarantine


async def _settled(gateway: SmtpGateway) -> None:
    """Wait until background work (notices) is done."""
    while gateway.busy():
        await asyncio.wait(gateway.busy(), timeout=10)


async def test_quarantine_holds_the_message_on_disk_answers_250_and_tells_the_sender(
    run_gateway, sink, tmp_path
):
    s, hop = sink
    gateway = await run_gateway(
        next_hop={"host": "127.0.0.1", "port": hop}, policy={"on_block": "quarantine"}
    )
    smtp = await client(gateway.port)
    data = message(f"Brukaren {PNR_DASHED} behöver hjälp.", subject=f"Ang {PNR_DASHED}")
    code, text = await send(smtp, STAFF, ["mottagare@example.se"], data)
    assert (code, text.split()[0]) == (250, "2.0.0")
    await _settled(gateway)
    [item] = [p for p in (tmp_path / "quarantine").iterdir() if not p.name.startswith(".")]
    held = item / "message.eml"
    assert held.read_bytes() == data
    assert oct(held.stat().st_mode & 0o777) == "0o600"
    [record] = audit_lines(tmp_path)
    assert (record["action"], record["quarantine_id"]) == ("quarantined", item.name)
    # The recipient gets nothing; the sender gets a notice from <>, which names no identifier.
    [(mail_from, rcpt_tos, notice)] = s.accepted
    assert (mail_from, rcpt_tos) == ("<>", [STAFF])  # aiosmtpd's way of writing the null sender
    assert b"Auto-Submitted: auto-replied" in notice
    assert leaks(notice.decode("utf-8", "replace")) == []


class ScriptedSink(Sink):
    """A next hop that answers each message with the next reply of its script (the last one repeats)."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__()
        self.replies = replies
        self.attempts = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.reply = self.replies[min(self.attempts, len(self.replies) - 1)]
        self.attempts += 1
        return await super().handle_DATA(server, session, envelope)


async def _quarantine_one(gateway: SmtpGateway) -> None:
    smtp = await client(gateway.port)
    code, _ = await send(smtp, STAFF, ["mottagare@example.se"], message(f"Brukaren {PNR} behöver hjälp."))
    assert code == 250


@contextlib.asynccontextmanager
async def _quarantining(
    run_gateway: Any, replies: list[str]
) -> AsyncIterator[tuple[ScriptedSink, SmtpGateway]]:
    """A gateway in quarantine mode whose next hop answers by the script."""
    s = ScriptedSink(replies)
    hop_server, hop = await start_sink(s)
    try:
        gateway = await run_gateway(
            next_hop={"host": "127.0.0.1", "port": hop}, policy={"on_block": "quarantine"}
        )
        yield s, gateway
    finally:
        hop_server.close()


async def _notices_done(gateway: SmtpGateway) -> None:
    """Wait until every notice is delivered or given up, retries included."""
    while gateway.busy() or gateway.pipeline.notices.retries:
        await asyncio.wait(gateway.busy() | gateway.pipeline.notices.retries, timeout=10)


async def test_a_notice_the_next_hop_defers_is_tried_again(run_gateway, monkeypatch, capsys):
    monkeypatch.setattr("gateway.notice.NOTICE_RETRY_SECONDS", (0.05, 0.05, 0.05))
    async with _quarantining(run_gateway, ["451 4.3.0 try again later", "250 2.0.0 Ok"]) as (s, gateway):
        await _quarantine_one(gateway)
        await _notices_done(gateway)
    assert s.attempts == 2
    [(mail_from, rcpt_tos, _)] = s.accepted
    assert (mail_from, rcpt_tos) == ("<>", [STAFF])
    err = capsys.readouterr().err
    assert '"event": "notice_deferred"' in err and '"delivered": true' in err


async def test_a_notice_is_tried_a_few_times_not_forever(run_gateway, monkeypatch, capsys):
    monkeypatch.setattr("gateway.notice.NOTICE_RETRY_SECONDS", (0.01, 0.01))
    async with _quarantining(run_gateway, ["421 4.3.2 shutting down"]) as (s, gateway):
        await _quarantine_one(gateway)
        await _notices_done(gateway)
    assert (s.attempts, s.accepted) == (3, [])
    assert '"delivered": false' in capsys.readouterr().err


async def test_a_notice_deferred_while_stopping_is_not_tried_again_after_the_stop(
    run_gateway, monkeypatch, capsys
):
    monkeypatch.setattr("gateway.notice.NOTICE_RETRY_SECONDS", (0.05, 0.05, 0.05))
    async with _quarantining(run_gateway, ["451 4.3.0 try again later"]) as (s, gateway):
        s.hold = asyncio.Event()
        await _quarantine_one(gateway)
        await s.got_data.wait()  # the notice's first attempt, held at the next hop
        stopping = asyncio.ensure_future(gateway.stop(grace=10))
        await asyncio.sleep(0.05)
        s.hold.set()  # ... deferred while the gateway stops
        await stopping
        await asyncio.sleep(0.3)
    assert s.attempts == 1 and not gateway.pipeline.notices.retries
    assert '"event": "notices_abandoned"' in capsys.readouterr().err


async def test_a_stop_does_not_wait_for_a_notice_to_be_tried_again(run_gateway, monkeypatch, capsys):
    monkeypatch.setattr("gateway.notice.NOTICE_RETRY_SECONDS", (3600.0,))
    async with _quarantining(run_gateway, ["451 4.3.0 try again later"]) as (s, gateway):
        await _quarantine_one(gateway)
        await _settled(gateway)
        assert len(gateway.pipeline.notices.retries) == 1
        started = time.monotonic()
        await gateway.stop(grace=30)
        assert time.monotonic() - started < 5
    assert not gateway.pipeline.notices.retries
    assert '"event": "notices_abandoned"' in capsys.readouterr().err


@pytest.mark.parametrize(
    ("mail_from", "extra"),
    [("", ""), (STAFF, "Auto-Submitted: auto-replied\r\n"), (STAFF, "Auto-Submitted: auto-generated\r\n")],
)
async def test_no_notice_answers_a_bounce_or_an_automatic_message(
    run_gateway, sink, tmp_path, mail_from, extra
):
    s, hop = sink
    gateway = await run_gateway(
        next_hop={"host": "127.0.0.1", "port": hop}, policy={"on_block": "quarantine"}
    )
    smtp = await client(gateway.port)
    data = message(f"pnr {PNR}", extra_headers=extra)
    try:
        await smtp.mail(mail_from)
        await smtp.rcpt("m@example.se")
        response = await smtp.data(data)
    finally:
        await _settled(gateway)
    assert response.code == 250
    assert s.accepted == []
    assert len(audit_lines(tmp_path)) == 1


async def test_a_quarantine_that_cannot_write_is_451_never_250(run_gateway, sink, tmp_path):
    s, hop = sink
    (tmp_path / "not-a-folder").write_text("x")
    gateway = await run_gateway(
        next_hop={"host": "127.0.0.1", "port": hop},
        policy={"on_block": "quarantine"},
        quarantine={"path": str(tmp_path / "not-a-folder" / "q")},
    )
    smtp = await client(gateway.port)
    code, text = await send(smtp, STAFF, ["m@example.se"], message(f"pnr {PNR}"))
    assert (code, text.split()[0]) == (451, "4.3.0")
    await _settled(gateway)
    assert s.accepted == []


def test_a_part_name_holding_an_identifier_is_masked_in_the_reply():
    from models.findings import Unscanned, Verdict
    from rules.engine import redact_numbers

    def redact(text: str) -> str:
        return redact_numbers(text, TODAY)

    unreadable = Unscanned(
        name=f"attachment:journal_{PNR}.zip", content_type="application/zip", reason="krypterad"
    )
    verdict = Verdict(verdict="block", reason="unscannable: x", unscannable=True, unscanned=(unreadable,))
    reply = replies.block(verdict, marker=None, redact=redact)
    assert "journal_" in reply and "krypterad" in reply
    assert leaks(reply) == []


def _with_broken_zip() -> bytes:
    import base64

    zipped = base64.b64encode(b"PK\x03\x04 this is no zip archive at all").decode()
    return (
        f"From: {STAFF}\r\nTo: m@example.se\r\nSubject: bilaga\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSe bilaga.\r\n'
        '--b\r\nContent-Type: application/zip; name="lista.zip"\r\nContent-Transfer-Encoding: base64\r\n'
        f'Content-Disposition: attachment; filename="lista.zip"\r\n\r\n{zipped}\r\n--b--\r\n'
    ).encode()


async def test_an_unreadable_part_blocks_by_default(run_gateway, sink):
    s, hop = sink
    gateway = await run_gateway(next_hop={"host": "127.0.0.1", "port": hop})
    smtp = await client(gateway.port)
    code, text = await send(smtp, STAFF, ["m@example.se"], _with_broken_zip())
    assert (code, text.split()[0]) == (550, "5.7.1")
    assert "kunde inte granskas" in text
    assert s.accepted == []


async def test_with_on_unscannable_warn_it_passes_marked_and_the_sender_may_be_told(run_gateway, sink):
    s, hop = sink
    gateway = await run_gateway(
        next_hop={"host": "127.0.0.1", "port": hop}, policy={"on_unscannable": "warn", "notify_on_warn": True}
    )
    smtp = await client(gateway.port)
    code, _ = await send(smtp, STAFF, ["m@example.se"], _with_broken_zip())
    await _settled(gateway)
    assert code == 250
    delivered = [m for m in s.accepted if m[1] == ["m@example.se"]]
    notices = [m for m in s.accepted if m[1] == [STAFF]]
    assert delivered[0][2].startswith(b"X-Brukarvakt-Verdict: warn; unscanned=1\r\n")
    assert len(notices) == 1 and notices[0][0] == "<>"


async def test_an_exception_in_any_command_is_451_4_3_0_not_500(run_gateway):
    gateway = await run_gateway()
    smtp = await client(gateway.port)
    door, gateway.door = gateway.door, None  # every hook that reads the config now fails
    try:
        code, text = await send(smtp, STAFF, ["m@example.se"], message())
    finally:
        gateway.door = door
    assert (code, text.split()[0]) == (451, "4.3.0")
    code, _ = await send(smtp, STAFF, ["m@example.se"], message())
    assert code == 250


# ---------------------------------------------------------------- security events in the audit chain


async def test_a_failed_login_is_an_audit_event_with_the_user_name_never_the_password(auth_gateway, tmp_path):
    gateway, _ = auth_gateway
    smtp = await client(gateway.port)
    await smtp.starttls(validate_certs=False)
    await smtp.ehlo()
    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        await smtp.auth_plain(MANAGER, "gissat-lösenord")
    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        await smtp.auth_login("okand@kommun.example", "annat-lösenord")
    events = [e for e in audit_lines(tmp_path) if e["action"] == "auth-failed"]
    assert [(e["login"], e["client_address"], e["result"]) for e in events] == [
        (MANAGER, "127.0.0.1", "refused"),
        ("okand@kommun.example", "127.0.0.1", "refused"),
    ]
    written = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
    assert "gissat" not in written and "annat-l" not in written


async def test_a_number_or_a_password_typed_as_the_user_name_is_never_logged_in_clear(
    auth_gateway, tmp_path, capsys
):
    gateway, _ = auth_gateway
    smtp = await client(gateway.port)
    await smtp.starttls(validate_certs=False)
    await smtp.ehlo()
    for user in (PNR, "Hemligt-Lösen-99"):
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            await smtp.auth_plain(user, "fel")
    logged = capsys.readouterr().err
    assert '"event": "auth"' in logged
    assert leaks(logged) == [] and PNR not in logged
    assert "hemligt-lösen-99" not in logged.lower()
    written = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
    assert leaks(written) == [] and PNR not in written


async def test_a_password_in_auth_plains_authorization_field_is_never_written(auth_gateway, tmp_path, capsys):
    import base64

    gateway, _ = auth_gateway
    smtp = await client(gateway.port)
    await smtp.starttls(validate_certs=False)
    await smtp.ehlo()
    blob = base64.b64encode(f"Hemligt-Lösen-77\0{STAFF}\0Hemligt-Lösen-77".encode())
    assert (await smtp.execute_command(b"AUTH", b"PLAIN", blob)).code == 535
    events = [e for e in audit_lines(tmp_path) if e["action"] == "auth-failed"]
    assert [e["login"] for e in events] == [STAFF]
    written = (tmp_path / "audit.jsonl").read_text(encoding="utf-8") + capsys.readouterr().err
    assert "hemligt-lösen-77" not in written.lower()


async def test_refusals_during_the_session_are_audit_events(auth_gateway, tmp_path):
    gateway, _ = auth_gateway
    anonymous = await client(gateway.port)
    code, _ = await send(anonymous, STAFF, ["m@example.se"], message())
    assert code == 530
    smtp = await client(gateway.port)
    await smtp.starttls(validate_certs=False)
    await smtp.ehlo()
    await smtp.auth_plain(STAFF, "personalens-lösenord")
    code, _ = await send(smtp, MANAGER, ["m@example.se"], message(sender=MANAGER))
    assert code == 553
    refused = [e for e in audit_lines(tmp_path) if e["action"] == "refused"]
    assert [(e["detail"].split()[0], e["client_address"]) for e in refused] == [
        ("530", "127.0.0.1"),
        ("553", "127.0.0.1"),
    ]
    assert refused[0]["envelope_sender"] == STAFF and refused[0]["login"] is None
    assert (refused[1]["login"], refused[1]["envelope_sender"]) == (STAFF, MANAGER)


async def test_a_trusted_upstreams_received_header_that_is_not_postfixs_is_an_audit_event(
    run_gateway, sink, tmp_path
):
    s, hop = sink
    gateway = await run_gateway(next_hop={"host": "127.0.0.1", "port": hop})
    smtp = await client(gateway.port)
    forged = b"Received: by pc12 with ESMTPSA (Authenticated sender: " + MANAGER.encode() + b")\r\n"
    code, _ = await send(smtp, MANAGER, [f"h@{SECURE_DOMAIN}"], _manager_mail(received=forged))
    assert code == 550  # it vouches for nobody: no manager exception
    # A message with no Received header at all (a local client) is not such an event.
    code, _ = await send(smtp, STAFF, ["m@example.se"], message())
    assert code == 250
    events = [e for e in audit_lines(tmp_path) if e["action"] == "upstream-unparsed"]
    assert [(e["client_address"], e["detail"]) for e in events] == [("127.0.0.1", "received-header")]


async def test_events_and_decisions_make_one_chain_that_verifies(auth_gateway, tmp_path):
    from gateway.audit import report, verify

    gateway, _ = auth_gateway
    smtp = await client(gateway.port)
    await smtp.starttls(validate_certs=False)
    await smtp.ehlo()
    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        await smtp.auth_plain(STAFF, "fel-fel-fel")
    await smtp.auth_plain(STAFF, "personalens-lösenord")
    assert (await send(smtp, STAFF, ["m@example.se"], message()))[0] == 250
    count, problems = verify(tmp_path / "audit.jsonl")
    assert (count, problems) == (2, [])
    counts = report(tmp_path / "audit.jsonl", None)
    assert counts["action"] == {"auth-failed": 1, "delivered": 1}
    assert counts["decisions"]["all"] == 1  # an event is not a decision about a message


# ---------------------------------------------------------------- who is trusted by default


async def test_with_a_users_file_loopback_is_no_longer_trusted_by_default(run_gateway, sink, users_file):
    s, hop = sink
    gateway = await run_gateway(
        next_hop={"host": "127.0.0.1", "port": hop},
        auth={"users_file": str(users_file), "trusted_upstreams": None},
    )
    smtp = await client(gateway.port)
    code, _ = await send(smtp, STAFF, ["m@example.se"], message(received=received(STAFF)))
    assert code == 530  # any process on the host could otherwise relay and name any sender
    assert s.accepted == []


async def test_loopback_listed_by_the_operator_is_trusted_with_a_users_file_too(
    run_gateway, sink, users_file
):
    s, hop = sink
    gateway = await run_gateway(
        next_hop={"host": "127.0.0.1", "port": hop},
        auth={"users_file": str(users_file), "trusted_upstreams": ["127.0.0.1"]},
    )
    smtp = await client(gateway.port)
    code, _ = await send(smtp, STAFF, ["m@example.se"], message(received=received(STAFF)))
    assert code == 250


def test_without_a_users_file_the_default_trusts_loopback_only() -> None:
    assert parse({}).auth.upstreams == ("127.0.0.1", "::1")
    assert parse({"auth": {"users_file": "users"}}).auth.upstreams == ()
    assert parse({"auth": {"users_file": "users", "trusted_upstreams": ["10.0.0.0/24"]}}).auth.upstreams == (
        "10.0.0.0/24",
    )


async def test_a_client_repeating_a_refused_command_adds_only_a_few_lines_to_the_audit(
    auth_gateway, tmp_path
):
    gateway, _ = auth_gateway
    smtp = await client(gateway.port)
    for _ in range(20):
        code, _ = await send(smtp, STAFF, ["m@example.se"], message())
        assert code == 530
    refused = [e for e in audit_lines(tmp_path) if e["action"] == "refused"]
    assert 1 <= len(refused) <= 5
