"""The guidance notice: an RFC 3464 report in Swedish, the original's headers masked, never its body."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from pathlib import Path

import pytest

from gateway.delivery import deliver
from gateway.notice import build_notice, should_notify
from models.config import Config, NextHop, Policy, Secure
from models.findings import Finding, Segment, SenderContext, Unscanned, Verdict
from rules import engine, policy
from rules.engine import ScanContext
from rules.guidance import SAFE_WAYS, suggestion
from tests.conftest import TEST_KEY, TODAY, test_personnummer
from tests.gateway.test_delivery import Sink, running_sink

CTX = ScanContext(fingerprint_key=TEST_KEY, today=TODAY)
ARRIVAL = datetime(2026, 11, 26, 8, 15, tzinfo=UTC)
P = [test_personnummer(i) for i in (30, 400, 900, 1300, 1700, 1999)]
BODY_MARKER = "Kroppstexten som aldrig får synas"
ORIGINAL = (
    f"From: =?utf-8?q?Anna_{P[0]}?= <anna@kommun.example>\r\n"
    f"To: Bo <bo@example.org>, cy@annan.example\r\n"
    f"Subject: =?utf-8?b?"
    + __import__("base64").b64encode(f"Gällande brukare {P[1][2:8]}-{P[1][8:]}".encode()).decode()
    + "?=\r\n"
    f"Message-ID: <{P[2]}.x@kommun.example>\r\n"
    f"X-Arende: {P[3]}\r\n"
    f"Comments: rå åäö {P[4]}\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    f"{BODY_MARKER}: {P[5]}\r\n"
).encode("utf-8")


def blocked(customer_number: str | None = None) -> Verdict:
    segments = [
        Segment(part="header:Subject", text=f"Gällande brukare {P[1][2:8]}-{P[1][8:]}"),
        Segment(part="body:text/plain", text=f"{BODY_MARKER}:\n{P[5]}"),
        Segment(part=f"attachment:journal_{P[4]}.txt", text=P[4]),
    ]
    findings = list(engine.scan(segments, CTX))
    if customer_number:
        findings = [
            f.model_copy(
                update={"customer_number": customer_number, "suggestion": suggestion(f.kind, customer_number)}
            )
            for f in findings
        ]
    unread = [Unscanned(name=f"attachment:{P[3]}.zip", content_type="application/zip", reason="encrypted")]
    return policy.decide(
        findings,
        unread,
        SenderContext(envelope_sender="anna@kommun.example", recipients=("bo@example.org",)),
        Policy(),
        Secure(),
    )


def notice(verdict: Verdict | None = None, **kwargs: object) -> bytes:
    return build_notice(
        ORIGINAL,
        verdict or blocked(),
        "anna@kommun.example",
        ["bo@example.org", "cy@annan.example"],
        "gw.kommun.example",
        ARRIVAL,
        **kwargs,
    )  # type: ignore[arg-type]


def parsed(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def parts(msg: EmailMessage) -> list[Message]:
    payload = msg.get_payload()
    assert isinstance(payload, list)
    return payload


def human_text(msg: EmailMessage) -> str:
    text = parts(msg)[0]
    assert isinstance(text, EmailMessage)
    return str(text.get_content())


# --- structure -------------------------------------------------------------------------------


def test_it_is_a_multipart_report_of_delivery_status_with_three_parts_in_order() -> None:
    msg = parsed(notice())
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert [p.get_content_type() for p in parts(msg)] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]


def test_it_goes_to_the_sender_from_postmaster_marked_as_an_automatic_reply() -> None:
    msg = parsed(notice())
    assert msg["To"] == "anna@kommun.example"
    assert msg["From"] == "postmaster@gw.kommun.example"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Subject"].startswith("Inte skickat")
    assert msg["Message-ID"].endswith("@gw.kommun.example>")
    assert parsed(notice(from_address="brukarvakt@kommun.example"))["From"] == "brukarvakt@kommun.example"


def test_the_delivery_status_names_the_mta_the_arrival_and_each_recipient_as_failed_5_7_1() -> None:
    status = parts(parsed(notice()))[1]
    groups = status.get_payload()
    assert isinstance(groups, list) and len(groups) == 3
    per_message, *per_recipient = groups
    assert per_message["Reporting-MTA"] == "dns; gw.kommun.example"
    assert email.utils.parsedate_to_datetime(str(per_message["Arrival-Date"])) == ARRIVAL
    assert [str(r["Final-Recipient"]) for r in per_recipient] == [
        "rfc822; bo@example.org",
        "rfc822; cy@annan.example",
    ]
    for r in per_recipient:
        assert (str(r["Action"]), str(r["Status"])) == ("failed", "5.7.1")
        assert " ".join(str(r["Diagnostic-Code"]).split()).startswith("smtp; 550 5.7.1 ")


def test_the_text_says_in_swedish_what_was_found_masked_where_and_the_two_safe_ways() -> None:
    text = human_text(parsed(notice(reference="20261126T081500000000Z-abcdef12")))
    assert "Ditt e-postmeddelande har inte skickats" in text
    masked_subject = f"{P[1][2:8]}-****"
    assert f"Ämne: Gällande brukare {masked_subject}" in text
    assert f"- Personnummer ({masked_subject}) i ämnesraden." in text
    assert f"- Personnummer ({P[5][2:8]}-****) i meddelandetexten, rad 2." in text
    assert f"i bilagan journal_{P[4][2:8]}-****.txt, rad 1" in text
    assert "En del kunde inte granskas: bilagan" in text and "(encrypted)" in text
    for way in SAFE_WAYS:
        assert way in text
    assert "Lifecare meddelande" in text and "kundnummer" in text
    assert "Ärende: 20261126T081500000000Z-abcdef12" in text


def test_the_customer_number_to_write_instead_is_given_when_known() -> None:
    text = human_text(parsed(notice(blocked(customer_number="10234"))))
    assert "Skriv kundnummer 10234 i stället för personnumret." in text
    assert "Brukarens kundnummer: 10234." in text


def test_a_warning_notice_says_the_message_was_sent_and_reports_relayed() -> None:
    warn = Verdict(verdict="warn", reason="warning", findings=blocked().findings[:1])
    msg = parsed(notice(warn))
    assert msg["Subject"].startswith("Skickat, men kontrollera")
    assert "har skickats" in human_text(msg)
    groups = parts(msg)[1].get_payload()
    assert isinstance(groups, list)
    assert (str(groups[1]["Action"]), str(groups[1]["Status"])) == ("relayed", "2.0.0")


# --- the original's headers, never its body --------------------------------------------------


def test_the_originals_headers_are_included_and_its_body_is_not() -> None:
    data = notice()
    headers_part = parts(parsed(data))[2]
    headers_text = headers_part.get_payload()
    assert isinstance(headers_text, str)
    assert "To: Bo <bo@example.org>, cy@annan.example" in headers_text
    assert "Content-Type: text/plain; charset=utf-8" in headers_text
    assert BODY_MARKER.encode() not in data and BODY_MARKER not in human_text(parsed(data))


def test_every_identifier_in_the_originals_headers_is_masked_encoded_or_not() -> None:
    headers_part = parts(parsed(notice()))[2]
    headers_text = str(headers_part.get_payload())
    assert headers_text.isascii()
    reparsed = email.message_from_string(headers_text, policy=email.policy.default)
    assert f"{P[1][2:8]}-****" in str(reparsed["Subject"])
    assert f"{P[0][2:8]}-****" in str(reparsed["From"])
    assert str(reparsed["Message-ID"]).startswith(f"<{P[2][2:8]}-****")
    assert str(reparsed["X-Arende"]) == f"{P[3][2:8]}-****"
    assert str(reparsed["Comments"]) == f"rå åäö {P[4][2:8]}-****"


def test_the_notice_does_not_thread_on_a_message_id_that_held_an_identifier() -> None:
    msg = parsed(notice())
    assert msg["In-Reply-To"] is None
    clean = ORIGINAL.replace(f"<{P[2]}.x@kommun.example>".encode(), b"<plain.id@kommun.example>")
    threaded = parsed(
        build_notice(clean, blocked(), "anna@kommun.example", ["bo@example.org"], "gw", ARRIVAL)
    )
    assert threaded["In-Reply-To"] == "<plain.id@kommun.example>"


def test_no_identifier_anywhere_in_the_notice_raw_or_decoded() -> None:
    data = notice(blocked(customer_number="10234"))
    msg = parsed(data)
    human, status, headers_part = parts(msg)
    headers_text = str(headers_part.get_payload())
    decoded_headers = email.message_from_string(headers_text, policy=email.policy.default)
    texts = [
        data.decode("ascii"),
        human_text(msg),
        status.as_string(),
        headers_text,
        "\n".join(f"{k}: {v}" for k, v in decoded_headers.items()),  # inside RFC 2047 words too
        "\n".join(f"{k}: {v}" for k, v in msg.items()),
    ]
    for text in texts:
        assert engine.hits(text, CTX) == [], text
        for number in P:
            assert number not in text and number[2:] not in text


# --- when to send ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mail_from", "auto_submitted", "expected"),
    [
        ("anna@kommun.example", None, True),
        ("anna@kommun.example", "no", True),
        ("anna@kommun.example", "No (ordinary mail)", True),
        ("anna@kommun.example", "auto-replied", False),
        ("anna@kommun.example", "auto-generated; owner-email=x@y", False),
        ("", None, False),
        ("<>", None, False),
    ],
)
def test_should_notify_follows_rfc_3834(mail_from: str, auto_submitted: str | None, expected: bool) -> None:
    head = "From: anna@kommun.example\r\n" + (
        f"Auto-Submitted: {auto_submitted}\r\n" if auto_submitted else ""
    )
    assert should_notify((head + "\r\nbody\r\n").encode(), mail_from) is expected


def test_a_notice_never_gets_a_notice_itself() -> None:
    assert should_notify(notice(), "") is False
    assert should_notify(notice(), "postmaster@gw.kommun.example") is False


# --- sent as RFC 3834 asks -------------------------------------------------------------------


@pytest.fixture()
def sink() -> Iterator[tuple[Sink, int]]:
    with running_sink() as running:
        yield running


async def test_a_notice_is_delivered_with_an_empty_envelope_sender(
    sink: tuple[Sink, int], tmp_path: Path
) -> None:
    handler, port = sink
    config = Config(next_hop=NextHop(host="127.0.0.1", port=port), outbox=tmp_path / "outbox")
    result = await deliver(config, "", ["anna@kommun.example"], notice())
    assert result.delivered
    [(mail_from, rcpt_tos, data)] = handler.received
    assert (mail_from, rcpt_tos) == ("<>", ["anna@kommun.example"])
    assert parsed(data)["Auto-Submitted"] == "auto-replied"


def test_findings_shown_are_capped_with_a_count_of_the_rest() -> None:
    one = blocked().findings[0]
    many: tuple[Finding, ...] = tuple(one for _ in range(25))
    text = human_text(parsed(notice(Verdict(verdict="block", reason="identifier", findings=many))))
    assert text.count("- Personnummer") == 20
    assert "... och 5 uppgifter till" in text
