"""The milter door: the milter protocol as Postfix speaks it, identity from macros, and the pipeline's answers.

`brukarvakt milter` runs as its own process (libmilter is one per process); a scripted MTA
(tests/gateway/milter_mta.py, miltertest's codec) plays Postfix's side of protocol version 6.
Personal identity numbers are Skatteverket's test numbers.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from miltertest import constants as C

from gateway import replies
from gateway.config import parse
from gateway.milter import door as milter_door
from gateway.milter import libmilter
from gateway.milter.libmilter import MACROS, answer_from_reply, libmilter_address
from gateway.notice import build_notice, should_notify
from gateway.pipeline import Arrival, Identity, Outcome, Pipeline, Stage
from models.findings import Verdict
from tests.conftest import TEST_KEY, test_personnummer
from tests.e2e.postfix import Sink, free_port
from tests.gateway.milter_mta import REPO, MilterProcess, ScriptedMTA

PNR = test_personnummer(3)
PNR_DASHED = f"{PNR[2:8]}-{PNR[8:]}"
MANAGER = "chef@kommun.example"
STAFF = "personal@kommun.example"
SECURE_DOMAIN = "region.example"
OUTSIDE = "mottagare@example.se"
MAX_RECIPIENTS = 3
MAX_BYTES = 20_000


def message(
    body: str, *, sender: str = STAFF, to: str = OUTSIDE, subject: str = "Schema", head: str = ""
) -> bytes:
    return (
        f"{head}From: Avsändare <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <milter.1@kommun.example>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    ).encode()


CLEAN = "Hej! Mötet flyttas till torsdag."
LEAK = f"Brukaren med personnummer {PNR_DASHED} behöver ny dosett."


def login(address: str, *, tls: bool = True) -> dict[str, str]:
    """The macros Postfix sends at MAIL FROM for a SASL login (and TLS) on its smtpd."""
    macros = {"{auth_authen}": address, "{auth_type}": "PLAIN", "{client_addr}": "192.0.2.5", "i": "4Mx1Tq"}
    if tls:
        macros["{tls_version}"] = "TLSv1.3"
    return macros


def write_config(folder: Path, name: str, **sections: Any) -> Path:
    raw: dict[str, Any] = {
        "milter": {"listen": f"inet:127.0.0.1:{free_port()}"},
        "outbox": str(folder / "outbox"),
        "audit": {"path": str(folder / f"{name}-audit.jsonl")},
        "quarantine": {"path": str(folder / f"{name}-quarantine")},
        "register": {"path": str(folder / "register.db")},
        "privacy": {"key_file": str(folder / "fingerprint.key")},
        "policy": {
            "managers": [MANAGER],
            "person_name": "off",
            "staff": [{"address": STAFF, "name": "Anna Lind"}],
        },
        "secure": {"domains": [SECURE_DOMAIN]},
        "limits": {"max_recipients": MAX_RECIPIENTS, "max_message_bytes": MAX_BYTES},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    parse(raw)  # a mistake in a test's config shows here, not as a milter that will not start
    path = folder / f"{name}.yaml"
    path.write_text(json.dumps(raw), encoding="utf-8")  # YAML is a superset of JSON
    return path


def env() -> dict[str, str]:
    return dict(os.environ, BRUKARVAKT_FINGERPRINT_KEY=TEST_KEY.decode())


def address(config_path: Path) -> tuple[str, int]:
    listen = json.loads(config_path.read_text())["milter"]["listen"]
    host, _, port = listen.removeprefix("inet:").rpartition(":")
    return host, int(port)


def audit(config_path: Path) -> list[dict[str, Any]]:
    path = Path(json.loads(config_path.read_text())["audit"]["path"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("milter")


@pytest.fixture(scope="module")
def rejecting(folder: Path) -> Iterator[Path]:
    """A milter with the default on_block (reject) and a secure relay for marked mail."""
    config = write_config(
        folder,
        "rejecting",
        secure={"next_hop": {"host": "127.0.0.1", "port": 1}},
        policy={"on_block": "reject"},
    )
    milter = MilterProcess(config, env())
    milter.start()
    yield config
    assert milter.stop() == 0, milter.log()


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    sink = Sink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def quarantining(folder: Path, sink: Sink) -> Iterator[Path]:
    """A milter with on_block: quarantine; next_hop (where notices go) is the sink."""
    config = write_config(
        folder,
        "quarantining",
        policy={"on_block": "quarantine"},
        next_hop={"host": "127.0.0.1", "port": sink.port, "tls": "none"},
    )
    milter = MilterProcess(config, env())
    milter.start()
    yield config
    assert milter.stop() == 0, milter.log()


def send(config: Path, body: str, *, macros: dict[str, str] | None = None, **kw: Any):  # type: ignore[no-untyped-def]
    sender = kw.pop("sender", STAFF)
    recipients = kw.pop("recipients", [OUTSIDE])
    with ScriptedMTA(address(config)) as mta:
        return mta.send_message(sender, recipients, message(body, sender=sender, **kw), macros)


# ---------------------------------------------------------------- negotiation


def test_the_milter_negotiates_version_6_asks_for_the_login_macros_and_skips_what_it_does_not_need(rejecting):
    with ScriptedMTA(address(rejecting)) as mta:
        negotiated = mta.negotiated
    assert negotiated is not None
    assert negotiated.version == 6
    assert negotiated.actions == C.SMFIF_ADDHDRS | C.SMFIF_SETSYMLIST, "it changes nothing but its header"
    for step in (C.SMFIP_NOCONNECT, C.SMFIP_NOHELO, C.SMFIP_NODATA, C.SMFIP_NOEOH, C.SMFIP_NOUNKNOWN):
        assert negotiated.protocol & step
    for no_reply in (C.SMFIP_NR_MAIL, C.SMFIP_NR_HDR, C.SMFIP_NR_BODY):
        assert negotiated.protocol & no_reply, "Postfix need not wait for an answer that is always 'go on'"
    assert not negotiated.protocol & (C.SMFIP_NOMAIL | C.SMFIP_NORCPT | C.SMFIP_NOHDRS | C.SMFIP_NOBODY)
    assert not negotiated.protocol & C.SMFIP_NR_RCPT, "a recipient over the limit is refused on its own"
    macros_at_mail = 2  # SMFIM_ENVFROM
    assert negotiated.macros == {macros_at_mail: " ".join(MACROS)}
    assert {"{auth_authen}", "{auth_type}", "{tls_version}"} <= set(MACROS)


# ---------------------------------------------------------------- decisions


def test_clean_mail_is_accepted_with_the_verdict_header_inserted_at_the_top(rejecting):
    reply = send(rejecting, CLEAN, macros=login(STAFF))
    assert reply.command == C.SMFIR_ACCEPT
    assert reply.headers == [(0, "X-Brukarvakt-Verdict", " pass")]
    assert audit(rejecting)[-1]["action"] == "delivered"
    assert audit(rejecting)[-1]["authenticated_as"] == STAFF


def test_a_staff_members_personnummer_is_refused_in_the_session_with_the_swedish_guidance(rejecting):
    reply = send(rejecting, LEAK, macros=login(STAFF))
    assert reply.command == C.SMFIR_REPLYCODE
    assert reply.code == "550"
    text = reply.text
    assert all(line.startswith(("550-5.7.1 ", "550 5.7.1 ")) for line in text.split("\r\n")), text
    assert len(reply.lines) > 3, "the guidance is several lines (SMFIR_REPLYCODE, multi-line)"
    assert "kundnummer" in text
    assert f"{PNR[2:8]}-****" in text, "what was found, masked"
    assert PNR_DASHED not in text and PNR not in text and PNR[2:] not in text
    assert "[sekretess]" in text, "with a secure relay, managers are told how to mark their mail"
    assert audit(rejecting)[-1]["action"] == "rejected"


def test_a_received_header_written_by_the_client_changes_nothing_the_login_macro_decides(rejecting):
    forged = (
        "Received: from pc12.kommun.example (pc12.kommun.example [192.0.2.5])\r\n"
        "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n"
        f"\t(Authenticated sender: {MANAGER})\r\n"
        "\tby mail.kommun.example (Postfix) with ESMTPSA id 4Mx1Tq0abcz9sWL\r\n"
    )
    to = f"handlaggare@{SECURE_DOMAIN}"
    without_login = send(rejecting, LEAK, sender=MANAGER, recipients=[to], to=to, head=forged, macros=None)
    assert (without_login.command, without_login.code) == (C.SMFIR_REPLYCODE, "550")
    as_staff = send(rejecting, LEAK, sender=MANAGER, recipients=[to], to=to, head=forged, macros=login(STAFF))
    assert as_staff.code == "550", "logged in as staff, whatever the header says"
    assert audit(rejecting)[-1]["authenticated_as"] == STAFF


def test_a_manager_logged_in_over_tls_may_send_to_a_secure_domain(rejecting):
    to = f"handlaggare@{SECURE_DOMAIN}"
    reply = send(rejecting, LEAK, sender=MANAGER, recipients=[to], to=to, macros=login(MANAGER))
    assert reply.command == C.SMFIR_ACCEPT
    assert reply.headers == [(0, "X-Brukarvakt-Verdict", " pass; exception=manager; kinds=personnummer")]
    assert audit(rejecting)[-1]["reason"] == "manager-exception"


def test_a_manager_without_tls_is_refused_and_told_why(rejecting):
    to = f"handlaggare@{SECURE_DOMAIN}"
    reply = send(rejecting, LEAK, sender=MANAGER, recipients=[to], to=to, macros=login(MANAGER, tls=False))
    assert reply.code == "550"
    assert "Undantaget for chefer galler inte" in reply.text


def test_a_managers_marked_message_is_accepted_with_the_header_that_routes_it_to_the_secure_relay(rejecting):
    reply = send(rejecting, LEAK, sender=MANAGER, subject="[sekretess] Dosett", macros=login(MANAGER))
    assert reply.command == C.SMFIR_ACCEPT
    names = [(name, value.strip()) for _, name, value in reply.headers]
    assert ("X-Brukarvakt-Route", "secure") in names
    clean = send(rejecting, CLEAN, sender=MANAGER, macros=login(MANAGER))
    assert all(name != "X-Brukarvakt-Route" for _, name, _ in clean.headers), (
        "unmarked mail takes the normal route"
    )


def test_an_envelope_sender_that_is_not_the_login_is_refused(rejecting):
    reply = send(rejecting, CLEAN, sender=MANAGER, macros=login(STAFF))
    assert (reply.code, reply.lines[0].split()[0]) == ("550", "Avsandaradressen")
    assert reply.text.startswith("550 5.7.1 ")


def test_a_recipient_over_the_limit_is_refused_for_now_and_the_others_are_taken(rejecting):
    recipients = [f"r{i}@example.se" for i in range(MAX_RECIPIENTS + 1)]
    with ScriptedMTA(address(rejecting)) as mta:
        refused = mta.refused_recipient(STAFF, recipients)
    assert refused is not None
    assert refused.text.startswith("452 4.5.3 ")


def test_a_message_over_the_size_limit_is_refused_with_552(rejecting):
    reply = send(rejecting, "Hej! " * (MAX_BYTES // 5), macros=login(STAFF))
    assert reply.text.startswith("552 5.3.4 ")


def test_a_connection_carries_several_messages_each_decided_on_its_own(rejecting):
    with ScriptedMTA(address(rejecting)) as mta:
        first = mta.send_message(STAFF, [OUTSIDE], message(LEAK), login(STAFF))
        second = mta.send_message(STAFF, [OUTSIDE], message(CLEAN), login(STAFF))
    assert (first.code, second.command) == ("550", C.SMFIR_ACCEPT)


def test_a_sender_address_that_is_not_utf8_is_decided_and_audited_like_any_other(quarantining, sink):
    before = len(audit(quarantining))
    with ScriptedMTA(address(quarantining)) as mta:
        clean = mta.send_message(b"anna\xff@kommun.example", [OUTSIDE], message(CLEAN))
        held = mta.send_message(b"anna\xff@kommun.example", [OUTSIDE], message(LEAK))
    assert clean.command == C.SMFIR_ACCEPT
    assert held.command == C.SMFIR_DISCARD  # held in the quarantine, not refused for ever with 451
    lines = audit(quarantining)[before:]
    assert [(line["action"], line["envelope_sender"]) for line in lines] == [
        ("delivered", "anna\ufffd@kommun.example"),
        ("quarantined", "anna\ufffd@kommun.example"),
    ]


def test_mail_without_a_login_is_scanned_as_from_nobody(rejecting):
    assert send(rejecting, CLEAN, macros=None).command == C.SMFIR_ACCEPT
    assert audit(rejecting)[-1]["authenticated_as"] is None
    assert send(rejecting, LEAK, sender=MANAGER, macros=None).code == "550"


# ---------------------------------------------------------------- quarantine


def test_quarantine_discards_the_message_from_the_mta_holds_it_and_notifies_the_sender(quarantining, sink):
    tag = "karantan-1"
    reply = send(quarantining, LEAK, subject=f"Dosett {tag}", macros=login(STAFF))
    assert reply.command == C.SMFIR_DISCARD, (
        "held by brukarvakt: Postfix drops its copy, the client hears 250"
    )
    line = audit(quarantining)[-1]
    assert line["action"] == "quarantined"
    held = Path(json.loads(quarantining.read_text())["quarantine"]["path"]) / line["quarantine_id"]
    assert held.is_dir()
    notice = sink.wait_for(lambda m: tag in m.text, 20, f"the notice about {tag}")
    assert notice.mail_from == "" and notice.rcpt_tos == (STAFF,)
    assert "Auto-Submitted: auto-replied" in notice.text
    assert PNR_DASHED not in notice.text


def test_a_quarantine_that_cannot_be_written_is_a_temporary_failure_never_an_accept(folder, sink):
    blocker = folder / "not-a-folder"
    blocker.write_text("a file where the quarantine folder should be")
    config = write_config(
        folder,
        "broken",
        policy={"on_block": "quarantine"},
        quarantine={"path": str(blocker)},
        next_hop={"host": "127.0.0.1", "port": sink.port, "tls": "none"},
    )
    milter = MilterProcess(config, env())
    milter.start()
    try:
        reply = send(config, LEAK, macros=login(STAFF))
        clean = send(config, CLEAN, macros=login(STAFF))
    finally:
        assert milter.stop() == 0
    assert reply.text.startswith("451 4.3.0 ")
    assert reply.command == C.SMFIR_REPLYCODE
    assert clean.command == C.SMFIR_ACCEPT


# ---------------------------------------------------------------- the door without a socket


def test_the_mtas_own_guidance_notice_passes_the_pipeline_it_would_meet_in_postfix(tmp_path, key_env):
    """A notice goes back into Postfix: if it met the milter there, it must not be blocked."""
    config = parse(
        {
            "audit": {"path": str(tmp_path / "audit.jsonl")},
            "quarantine": {"path": str(tmp_path / "q")},
            "register": {"path": str(tmp_path / "register.db")},
            "privacy": {"key_file": str(tmp_path / "key")},
            "policy": {"person_name": "off"},
        }
    )
    stage = Stage.build(config)
    original = message(LEAK, subject=f"Dosett for {PNR_DASHED}")
    blocked = stage.scanner.scan_mail(original) if stage.scanner else None
    assert blocked is not None and blocked.findings
    verdict = Verdict(verdict="block", reason="identifier", findings=blocked.findings)
    notice = build_notice(original, verdict, STAFF, [OUTSIDE], "mail.kommun.example", datetime.now(UTC))
    pipeline = Pipeline(stage, handoff=milter_door.back_to_the_mta)

    async def decide() -> Outcome:
        try:
            return await pipeline.process(Arrival(notice, "", (STAFF,), Identity()))
        finally:
            pipeline.close()

    outcome = asyncio.run(decide())
    assert outcome.action == "delivered", outcome.reply
    assert milter_door.answer(outcome).kind == "accept"
    # ... and a notice is never answered with another (RFC 3834): from <>, Auto-Submitted.
    assert not should_notify(notice, "")
    assert not should_notify(notice, STAFF)


def test_identity_comes_from_the_login_macros_only():
    assert milter_door.identity_from(login("Anna.Lind@Kommun.Example")) == Identity(
        authenticated_as="anna.lind@kommun.example", tls=True, client_address="192.0.2.5"
    )
    assert milter_door.identity_from({"{auth_authen}": STAFF}).authenticated_as is None, (
        "a login has a mechanism"
    )
    assert milter_door.identity_from({}) == Identity()


def test_every_outcome_becomes_one_instruction_and_never_an_accept_unless_handed_on():
    header = b"X-Brukarvakt-Verdict: warn; kinds=person_name\r\n"
    delivered = Outcome("250 2.0.0 Ok", "delivered", header=header, route="normal")
    assert milter_door.answer(delivered).headers == (("X-Brukarvakt-Verdict", "warn; kinds=person_name"),)
    assert milter_door.answer(Outcome(replies.plain(replies.QUARANTINED), "quarantined")).kind == "discard"
    deferred = milter_door.answer(Outcome(replies.plain(replies.SCAN_TIMEOUT), "deferred"))
    assert (deferred.kind, deferred.code, deferred.status) == ("tempfail", "451", "4.3.0")
    rejected = milter_door.answer(Outcome(replies.plain(replies.TOO_MANY_HEADERS), "rejected"))
    assert (rejected.kind, rejected.code, rejected.status) == ("reject", "554", "5.6.0")
    odd = milter_door.answer(Outcome("250 2.0.0 Ok", "failed"))
    assert (odd.kind, odd.code) == ("tempfail", "451"), "a failure without a refusal code is temporary"


def test_a_multi_line_reply_is_split_into_code_status_and_lines():
    answer = answer_from_reply("reject", "550-5.7.1 Rad ett\r\n550-5.7.1 Rad tva\r\n550 5.7.1 Sista")
    assert (answer.code, answer.status, answer.lines) == ("550", "5.7.1", ("Rad ett", "Rad tva", "Sista"))


def test_postfix_notation_is_given_to_libmilter_in_its_own():
    assert libmilter_address("inet:127.0.0.1:8891") == "inet:8891@127.0.0.1"
    assert libmilter_address("inet:[::1]:8891".replace("inet", "inet6")) == "inet6:8891@::1"
    assert libmilter_address("unix:/run/brukarvakt/milter.sock") == "unix:/run/brukarvakt/milter.sock"


# ---------------------------------------------------------------- the socket


def test_a_unix_socket_is_made_with_its_mode_and_replaces_a_stale_one(folder):
    path = folder / "milter.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))  # left behind, as by a killed milter
    stale.close()
    config = write_config(folder, "unix", milter={"listen": f"unix:{path}", "socket_mode": "600"})
    milter = MilterProcess(config, env())
    milter.start()
    try:
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        with ScriptedMTA(str(path)) as mta:
            reply = mta.send_message(STAFF, [OUTSIDE], message(CLEAN), login(STAFF))
        assert reply.command == C.SMFIR_ACCEPT
    finally:
        assert milter.stop() == 0


def test_a_file_that_is_not_a_socket_is_never_removed_and_the_error_names_the_key(folder):
    path = folder / "important.txt"
    path.write_text("not a socket")
    config = write_config(folder, "notsock", milter={"listen": f"unix:{path}"})
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "milter", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env(),
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"brukarvakt: error: cannot listen on {path} (milter.listen): it exists and is not a socket"
    ]
    assert path.read_text() == "not a socket"


def test_a_port_in_use_is_one_clear_line(folder):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        config = write_config(folder, "taken", milter={"listen": f"inet:127.0.0.1:{port}"})
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "milter", "--config", str(config)],
            capture_output=True,
            text=True,
            env=env(),
            cwd=REPO,
            timeout=60,
        )
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == f"brukarvakt: error: cannot listen on 127.0.0.1:{port} (milter.listen): Address already in use"
    )


class RecordingDoor:
    """Stands in for the door: the session's limits, and the arrivals it would decide."""

    def __init__(self, **limits: int) -> None:
        self.config = parse({"limits": limits})
        self.closing = False
        self.arrivals: list[Arrival] = []

    def decide(self, arrival: Arrival) -> Outcome:
        self.arrivals.append(arrival)
        return Outcome("250 2.0.0 Ok", "delivered", header=b"X-Brukarvakt-Verdict: pass\r\n")


def test_the_pipeline_reads_the_message_as_the_mta_sent_it_folded_headers_and_all():
    door = RecordingDoor()
    session = milter_door.MilterSession(door)  # type: ignore[arg-type]
    session.mail("anna@kommun.example", login("anna@kommun.example"))
    session.rcpt("b@example.se")
    session.header("Subject", b" Schema\n\tvecka 49")  # Postfix: a folded value's lines joined by LF
    session.header("To", b" b@example.se")
    session.body(b"Rad ett\r\nRad tv\xc3\xa5\r\n")
    assert session.end().kind == "accept"
    arrival = door.arrivals[0]
    assert (
        arrival.data
        == b"Subject: Schema\r\n\tvecka 49\r\nTo: b@example.se\r\n\r\nRad ett\r\nRad tv\xc3\xa5\r\n"
    )
    assert (arrival.mail_from, arrival.rcpt_tos, arrival.connection) == (
        "anna@kommun.example",
        ("b@example.se",),
        "4Mx1Tq",
    )
    assert arrival.identity.authenticated_as == "anna@kommun.example"


def test_a_message_over_the_limit_is_not_kept_in_memory_and_never_reaches_the_pipeline():
    door = RecordingDoor(max_message_bytes=2048)
    session = milter_door.MilterSession(door)  # type: ignore[arg-type]
    session.mail("anna@kommun.example", {})
    session.rcpt("b@example.se")
    session.header("Subject", b" Stort")
    for _ in range(10):
        session.body(b"x" * 1000)
    assert session.parts == []
    answer = session.end()
    assert (answer.kind, answer.code, answer.status) == ("reject", "552", "5.3.4")
    assert door.arrivals == []


def test_a_stopping_milter_defers_new_messages():
    door = RecordingDoor()
    door.closing = True
    session = milter_door.MilterSession(door)  # type: ignore[arg-type]
    session.mail("anna@kommun.example", {})
    session.rcpt("b@example.se")
    session.body(b"Hej\r\n")
    answer = session.end()
    assert (answer.kind, answer.code[0]) == ("tempfail", "4")
    assert door.arrivals == []


class FakeContext:
    """libmilter's per-connection context as the callbacks use it."""

    def __init__(self) -> None:
        self.priv: object = None
        self.replies: list[tuple[str, ...]] = []

    def getpriv(self) -> object:
        return self.priv

    def setpriv(self, priv: object) -> None:
        self.priv = priv

    def getsymval(self, name: str) -> None:
        return None

    def setsymlist(self, *args: object) -> None:
        pass

    def addheader(self, *args: object) -> None:
        raise AssertionError("nothing is added to a message that is not accepted")

    def setreply(self, *args: str) -> None:
        self.replies.append(args)


class FailingSession:
    """A session that fails in one step and would accept at the end if asked."""

    def __init__(self, step: str) -> None:
        self.step = step

    def _maybe_fail(self, step: str) -> None:
        if step == self.step:
            raise RuntimeError(step)

    def mail(self, sender: str, macros: dict[str, str]) -> None:
        self._maybe_fail("mail")

    def rcpt(self, recipient: str):  # type: ignore[no-untyped-def]
        return libmilter.CONTINUE

    def header(self, name: str, value: bytes) -> None:
        self._maybe_fail("header")

    def body(self, chunk: bytes) -> None:
        self._maybe_fail("body")

    def end(self):  # type: ignore[no-untyped-def]
        return libmilter.Answer("accept")

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.parametrize("step", ["mail", "header", "body"])
def test_a_step_that_fails_without_an_answer_ends_the_message_in_451_never_an_accept(
    step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import milter

    monkeypatch.setattr(libmilter, "_factory", lambda: FailingSession(step))
    ctx = FakeContext()
    libmilter._negotiate(ctx, [milter.ADDHDRS | milter.SETSYMLIST, 0x1FFFFF, 0, 0])
    libmilter._envfrom(ctx, b"<anna@kommun.example>")
    libmilter._envrcpt(ctx, b"<m@example.se>")
    libmilter._header(ctx, "Subject", b" Schema")
    libmilter._body(ctx, b"Hej\r\n")
    assert libmilter._eom(ctx) == milter.TEMPFAIL
    assert [reply[:2] for reply in ctx.replies] == [("451", "4.3.0")]


def test_the_milter_serves_the_same_prometheus_metrics_as_serve(folder):
    import urllib.request

    port = free_port()
    config = write_config(folder, "metered", metrics={"listen": {"host": "127.0.0.1", "port": port}})
    milter = MilterProcess(config, env())
    milter.start()
    try:
        assert send(config, LEAK, macros=login(STAFF)).code == "550"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            scraped = response.read().decode()
    finally:
        assert milter.stop() == 0, milter.log()
    counted = [line for line in scraped.splitlines() if line.startswith("brukarvakt_messages_total{")]
    assert any('verdict="block"' in line and line.endswith(" 1.0") for line in counted), counted
    assert PNR_DASHED not in scraped and PNR_DASHED[:6] not in scraped
