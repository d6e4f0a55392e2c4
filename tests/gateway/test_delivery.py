"""Forwarding in lockstep to a real aiosmtpd next hop, and the local Maildir when there is none."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from gateway.delivery import deliver
from models.config import Config, NextHop
from rules import engine
from rules.engine import ScanContext
from tests.conftest import TEST_KEY, TODAY, test_personnummer
from tests.gateway.tls import self_signed

MESSAGE = (
    b"From: anna@kommun.example\r\nTo: bo@example.org\r\nSubject: Hej\r\n"
    b"Message-ID: <1@kommun.example>\r\n\r\nVi ses p\xc3\xa5 m\xc3\xb6tet.\r\n.punkt f\xc3\xb6rst\r\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sink:
    """A next hop that records what it got and answers as told."""

    rcpt_reply: dict[str, str] = field(default_factory=dict)
    data_reply: str = "250 2.0.0 Ok: queued as 4XyZ"
    hang: bool = False  # never answer the end of DATA
    drop: bool = False  # close the connection at the end of DATA
    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    mail_options: list[list[str]] = field(default_factory=list)
    tls_seen: list[bool] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self.rcpt_reply.get(address, "250 OK")
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str | None:
        if self.hang:
            await asyncio.Event().wait()
        if self.drop:
            server.transport.close()
            return None
        self.tls_seen.append(session.ssl is not None)
        self.mail_options.append(list(envelope.mail_options))
        if self.data_reply.startswith("250"):
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return self.data_reply


@dataclass
class Running:
    sink: Sink
    hop: NextHop


@contextlib.contextmanager
def running_sink(**options: Any) -> Iterator[tuple[Sink, int]]:
    """A recording next hop on a free port of 127.0.0.1, for the length of the block."""
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, **options)
    controller.start()  # returns once the server answers on the port
    try:
        yield sink, port
    finally:
        controller.stop()


@pytest.fixture()
def next_hop() -> Iterator[Running]:
    with running_sink() as (sink, port):
        yield Running(sink, NextHop(host="127.0.0.1", port=port, timeout_seconds=2))


def config_with(hop: NextHop | None, tmp_path: Path, **more: Any) -> Config:
    return Config(next_hop=hop, outbox=tmp_path / "outbox", **more)


async def test_clean_mail_gets_the_next_hops_own_250_after_it_accepted(
    next_hop: Running, tmp_path: Path
) -> None:
    result = await deliver(
        config_with(next_hop.hop, tmp_path),
        "anna@kommun.example",
        ["bo@example.org", "cy@example.org"],
        MESSAGE,
    )
    assert (result.code, result.delivered) == (250, True)
    assert result.message == "2.0.0 Ok: queued as 4XyZ"
    assert next_hop.sink.received == [("anna@kommun.example", ["bo@example.org", "cy@example.org"], MESSAGE)]


async def test_the_message_bytes_arrive_unchanged_8bit_and_leading_dots_included(
    next_hop: Running, tmp_path: Path
) -> None:
    await deliver(config_with(next_hop.hop, tmp_path), "anna@kommun.example", ["bo@example.org"], MESSAGE)
    assert next_hop.sink.received[0][2] == MESSAGE


async def test_8bit_content_is_announced_as_body_8bitmime(next_hop: Running, tmp_path: Path) -> None:
    await deliver(config_with(next_hop.hop, tmp_path), "anna@kommun.example", ["bo@example.org"], MESSAGE)
    assert "BODY=8BITMIME" in next_hop.sink.mail_options[0]


async def test_a_non_ascii_address_goes_with_smtputf8_to_a_hop_that_offers_it(
    next_hop: Running, tmp_path: Path
) -> None:
    result = await deliver(
        config_with(next_hop.hop, tmp_path), "åsa@kommun.example", ["örjan@example.org"], MESSAGE
    )
    assert result.delivered
    assert next_hop.sink.received == [("åsa@kommun.example", ["örjan@example.org"], MESSAGE)]
    assert "SMTPUTF8" in next_hop.sink.mail_options[0]


async def test_a_non_ascii_address_to_a_hop_without_smtputf8_is_refused_permanently(tmp_path: Path) -> None:
    with running_sink(enable_SMTPUTF8=False) as (sink, port):
        hop = NextHop(host="127.0.0.1", port=port, timeout_seconds=2)
        result = await deliver(
            config_with(hop, tmp_path), "anna@kommun.example", ["örjan@example.org"], MESSAGE
        )
    assert (result.code, result.message.split()[0], result.delivered) == (550, "5.6.7", False)
    assert sink.received == []


async def test_an_empty_envelope_sender_is_sent_as_mail_from_angle_brackets(
    next_hop: Running, tmp_path: Path
) -> None:
    result = await deliver(config_with(next_hop.hop, tmp_path), "", ["anna@kommun.example"], MESSAGE)
    assert result.delivered
    assert next_hop.sink.received[0][0] == "<>"


async def test_a_4xx_at_the_end_of_data_becomes_451_keeping_the_hops_enhanced_code(
    next_hop: Running, tmp_path: Path
) -> None:
    next_hop.sink.data_reply = "452 4.3.1 Insufficient system storage"
    result = await deliver(
        config_with(next_hop.hop, tmp_path), "anna@kommun.example", ["bo@example.org"], MESSAGE
    )
    assert (result.code, result.delivered) == (451, False)
    assert result.message.startswith("4.3.1 ")
    assert "Insufficient system storage" in result.message


async def test_a_4xx_without_an_enhanced_code_becomes_451_4_4_0(next_hop: Running, tmp_path: Path) -> None:
    next_hop.sink.data_reply = "421 try later"
    result = await deliver(
        config_with(next_hop.hop, tmp_path), "anna@kommun.example", ["bo@example.org"], MESSAGE
    )
    assert result.code == 451
    assert result.message.startswith("4.4.0 ")


async def test_a_5xx_is_passed_on_with_its_text_on_one_line(next_hop: Running, tmp_path: Path) -> None:
    next_hop.sink.data_reply = "554 5.6.0 Message content rejected"
    result = await deliver(
        config_with(next_hop.hop, tmp_path), "anna@kommun.example", ["bo@example.org"], MESSAGE
    )
    assert (result.code, result.message, result.delivered) == (554, "5.6.0 Message content rejected", False)
    assert "\n" not in result.message and "\r" not in result.message


async def test_one_refused_recipient_fails_the_whole_message_and_no_data_is_sent(
    next_hop: Running, tmp_path: Path
) -> None:
    next_hop.sink.rcpt_reply = {"nobody@example.org": "550 5.1.1 <nobody@example.org>: User unknown"}
    result = await deliver(
        config_with(next_hop.hop, tmp_path),
        "anna@kommun.example",
        ["bo@example.org", "nobody@example.org"],
        MESSAGE,
    )
    assert (result.code, result.delivered) == (550, False)
    assert "5.1.1" in result.message and "User unknown" in result.message
    assert next_hop.sink.received == []


async def test_a_permanent_refusal_wins_over_a_temporary_one(next_hop: Running, tmp_path: Path) -> None:
    next_hop.sink.rcpt_reply = {
        "full@example.org": "452 4.2.2 Mailbox full",
        "nobody@example.org": "550 5.1.1 User unknown",
    }
    result = await deliver(
        config_with(next_hop.hop, tmp_path),
        "anna@kommun.example",
        ["full@example.org", "nobody@example.org"],
        MESSAGE,
    )
    assert result.code == 550


async def test_only_temporary_refusals_give_451(next_hop: Running, tmp_path: Path) -> None:
    next_hop.sink.rcpt_reply = {"full@example.org": "452 4.2.2 Mailbox full"}
    result = await deliver(
        config_with(next_hop.hop, tmp_path),
        "anna@kommun.example",
        ["bo@example.org", "full@example.org"],
        MESSAGE,
    )
    assert (result.code, result.message.split()[0]) == (451, "4.2.2")
    assert next_hop.sink.received == []


async def test_a_refused_connection_gives_451_4_4_1(tmp_path: Path) -> None:
    hop = NextHop(host="127.0.0.1", port=free_port(), timeout_seconds=2)
    result = await deliver(config_with(hop, tmp_path), "anna@kommun.example", ["bo@example.org"], MESSAGE)
    assert (result.code, result.message.split()[0], result.delivered) == (451, "4.4.1", False)


async def test_a_next_hop_that_never_answers_gives_451_4_4_1_within_the_timeout(
    next_hop: Running, tmp_path: Path
) -> None:
    next_hop.sink.hang = True
    hop = next_hop.hop.model_copy(update={"timeout_seconds": 0.5})
    result = await asyncio.wait_for(
        deliver(config_with(hop, tmp_path), "anna@kommun.example", ["bo@example.org"], MESSAGE), timeout=10
    )
    assert (result.code, result.message.split()[0], result.delivered) == (451, "4.4.1", False)


async def test_a_connection_dropped_mid_transaction_gives_451_4_4_2(
    next_hop: Running, tmp_path: Path
) -> None:
    next_hop.sink.drop = True
    result = await deliver(
        config_with(next_hop.hop, tmp_path), "anna@kommun.example", ["bo@example.org"], MESSAGE
    )
    assert (result.code, result.message.split()[0], result.delivered) == (451, "4.4.2", False)


async def test_a_hop_reply_quoting_a_personnummer_is_masked(next_hop: Running, tmp_path: Path) -> None:
    pnr = test_personnummer(3)
    next_hop.sink.data_reply = f"554 5.6.0 Rejected: contains {pnr}"
    result = await deliver(
        config_with(next_hop.hop, tmp_path), "anna@kommun.example", ["bo@example.org"], MESSAGE
    )
    assert pnr not in result.message
    assert engine.hits(result.message, ScanContext(fingerprint_key=TEST_KEY, today=TODAY)) == []


async def test_secure_mail_goes_to_the_secure_next_hop(next_hop: Running, tmp_path: Path) -> None:
    unreachable = NextHop(host="127.0.0.1", port=free_port(), timeout_seconds=2)
    config = config_with(unreachable, tmp_path, secure={"next_hop": next_hop.hop.model_dump()})
    result = await deliver(config, "chef@kommun.example", ["bo@example.org"], MESSAGE, secure=True)
    assert result.delivered
    assert len(next_hop.sink.received) == 1


# --- TLS -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    cert, key = self_signed(tmp_path_factory.mktemp("tls"), "next-hop.test", ip="127.0.0.1")
    return Certificate(cert, key)


@pytest.fixture()
def tls_next_hop(certificate: Certificate) -> Iterator[Running]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert, certificate.key)
    with running_sink(tls_context=context, require_starttls=True) as (sink, port):
        yield Running(sink, NextHop(host="127.0.0.1", port=port, timeout_seconds=5))


async def test_starttls_is_used_when_offered(tls_next_hop: Running, tmp_path: Path) -> None:
    hop = tls_next_hop.hop.model_copy(update={"tls": "starttls"})
    result = await deliver(config_with(hop, tmp_path), "anna@kommun.example", ["bo@example.org"], MESSAGE)
    assert result.delivered
    assert tls_next_hop.sink.tls_seen == [True]


async def test_required_tls_with_the_hops_ca_verifies_and_delivers(
    tls_next_hop: Running, certificate: Certificate, tmp_path: Path
) -> None:
    hop = tls_next_hop.hop.model_copy(update={"tls": "required", "ca_file": certificate.cert})
    result = await deliver(config_with(hop, tmp_path), "anna@kommun.example", ["bo@example.org"], MESSAGE)
    assert result.delivered
    assert tls_next_hop.sink.received[0][2] == MESSAGE


async def test_required_tls_with_an_unverifiable_certificate_gives_451_and_sends_nothing(
    tls_next_hop: Running, tmp_path: Path
) -> None:
    hop = tls_next_hop.hop.model_copy(update={"tls": "required"})
    result = await deliver(config_with(hop, tmp_path), "anna@kommun.example", ["bo@example.org"], MESSAGE)
    assert (result.code, result.message.split()[0], result.delivered) == (451, "4.7.5", False)
    assert tls_next_hop.sink.received == []


async def test_required_tls_from_a_hop_without_starttls_gives_451(next_hop: Running, tmp_path: Path) -> None:
    hop = next_hop.hop.model_copy(update={"tls": "required"})
    result = await deliver(config_with(hop, tmp_path), "anna@kommun.example", ["bo@example.org"], MESSAGE)
    assert (result.code, result.message.split()[0]) == (451, "4.7.4")
    assert next_hop.sink.received == []


# --- Maildir ---------------------------------------------------------------------------------


async def test_without_a_next_hop_the_message_is_complete_in_maildir_new_when_250_comes(
    tmp_path: Path,
) -> None:
    config = config_with(None, tmp_path)
    result = await deliver(config, "anna@kommun.example", ["bo@example.org", "cy@example.org"], MESSAGE)
    assert (result.code, result.delivered) == (250, True)
    files = list((tmp_path / "outbox" / "new").iterdir())
    assert len(files) == 1 and files[0].name in result.message
    content = files[0].read_bytes()
    assert content.endswith(MESSAGE)
    assert content.startswith(
        b"Return-Path: <anna@kommun.example>\r\nX-Envelope-To: <bo@example.org>, <cy@example.org>\r\n"
    )
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert list((tmp_path / "outbox" / "tmp").iterdir()) == []


async def test_many_messages_at_once_get_distinct_maildir_files(tmp_path: Path) -> None:
    config = config_with(None, tmp_path)
    results = await asyncio.gather(
        *(
            deliver(config, "a@kommun.example", ["b@example.org"], MESSAGE + bytes([65 + i]))
            for i in range(20)
        )
    )
    assert all(r.delivered for r in results)
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 20


async def test_an_unwritable_outbox_gives_451_never_250(tmp_path: Path) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_text("a file where the folder should be")
    result = await deliver(config_with(None, tmp_path), "anna@kommun.example", ["bo@example.org"], MESSAGE)
    assert (result.code, result.message.split()[0], result.delivered) == (451, "4.3.0", False)


def test_no_recipients_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="recipient"):
        asyncio.run(deliver(config_with(None, tmp_path), "a@kommun.example", [], MESSAGE))


def test_the_maildir_file_and_its_folder_are_fsynced_before_deliver_returns(
    tmp_path: Path, fsynced: list[str]
) -> None:
    asyncio.run(deliver(config_with(None, tmp_path), "a@kommun.example", ["b@example.org"], MESSAGE))
    outbox = tmp_path / "outbox"
    assert any(s.startswith(str(outbox / "tmp") + "/") for s in fsynced)  # the file, before the rename
    assert str(outbox / "new") in fsynced  # the folder, after it
