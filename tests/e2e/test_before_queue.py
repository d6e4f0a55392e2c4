"""A real Postfix with brukarvakt as before-queue proxy on submission (deploy/postfix/before-queue)."""

from __future__ import annotations

import email
import smtplib
from email.policy import default

import pytest

from tests.e2e.conftest import MANAGER, STAFF, Chain
from tests.e2e.postfix import (
    DELIVERY_TIMEOUT,
    SECURE_DOMAIN,
    marker,
    message,
    recent_personnummer,
    staff_message_with_personnummer,
    submit,
    written_forms,
)


def test_a_staff_members_message_with_a_personnummer_is_refused_with_guidance_in_the_session(
    before_queue: Chain, personnummer_list: list[str]
) -> None:
    pnr = recent_personnummer(personnummer_list)
    tag = marker()
    msg = staff_message_with_personnummer(pnr, tag)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        submit(before_queue.postfix, STAFF, msg)

    error = refused.value.smtp_error
    reply = error.decode("ascii", "replace") if isinstance(error, bytes) else error
    assert refused.value.smtp_code == 550
    assert reply.startswith("5.7.1")
    assert "kundnummer" in reply.lower(), reply
    assert f"{pnr[2:8]}-****" in reply, "the guidance names what it found, masked"
    assert not any(form in reply for form in written_forms(pnr)), reply
    assert before_queue.sink.holding(tag) == []


def test_a_managers_message_with_a_personnummer_to_an_ordinary_domain_is_refused(
    before_queue: Chain, personnummer_list: list[str]
) -> None:
    pnr = recent_personnummer(personnummer_list)
    tag = marker()
    msg = message(
        MANAGER,
        "info@foretag.example",
        f"Faktura {tag}",
        f"Hej!\n\nFakturan gäller brukare {written_forms(pnr)[0]}.\n\nKarin Berg",
    )
    with pytest.raises(smtplib.SMTPDataError) as refused:
        submit(before_queue.postfix, MANAGER, msg)

    assert refused.value.smtp_code == 550
    assert before_queue.sink.holding(tag) == []


def test_a_staff_member_cannot_pose_as_a_manager_with_a_received_header_of_their_own(
    before_queue: Chain, personnummer_list: list[str]
) -> None:
    pnr = recent_personnummer(personnummer_list)
    tag = marker()
    msg = message(
        STAFF,
        f"handlaggare@{SECURE_DOMAIN}",
        f"Ansökan {tag}",
        f"Gäller brukare {written_forms(pnr)[2]}.\n\nAnna",
    )
    # Below Postfix's own Received header, this one is just text the client wrote.
    msg["Received"] = (
        "from pc1 (pc1 [127.0.0.1]) (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)) "
        f"(Authenticated sender: {MANAGER}) by mail.hemtjanst.example (Postfix) with ESMTPSA id 1A2B3C; "
        "Thu, 26 Nov 2026 10:00:00 +0100"
    )
    with pytest.raises(smtplib.SMTPDataError) as refused:
        submit(before_queue.postfix, STAFF, msg)

    assert refused.value.smtp_code == 550
    assert before_queue.sink.holding(tag) == []


def test_with_the_gateway_down_the_client_is_told_to_try_again_and_nothing_is_sent(
    before_queue: Chain,
) -> None:
    tag = marker()
    msg = message(STAFF, "sjukskoterska@vardcentral.example", f"Schema {tag}", "Schemat för december.\n")
    before_queue.gateway.stop()
    try:
        with pytest.raises(smtplib.SMTPResponseException) as deferred:
            submit(before_queue.postfix, STAFF, msg)
        # A temporary failure: the message stays in the sender's outbox, nothing is lost or sent.
        assert 400 <= deferred.value.smtp_code < 500
        assert before_queue.sink.holding(tag) == []
    finally:
        before_queue.gateway.start()

    submit(before_queue.postfix, STAFF, msg)
    before_queue.sink.wait_for(lambda m: tag in m.text, DELIVERY_TIMEOUT, f"with {tag} after the restart")


def test_the_submission_service_offers_mail_programs_only_what_the_gateway_accepts(
    before_queue: Chain,
) -> None:
    # Postfix hands MAIL FROM parameters to the gateway as the client typed them: a DSN or
    # SMTPUTF8 parameter would be refused there, so the client must not be invited to use them.
    with smtplib.SMTP("127.0.0.1", before_queue.postfix.submission_port, timeout=30) as client:
        client.ehlo()
        offered = set(client.esmtp_features)
    assert "dsn" not in offered
    assert "smtputf8" not in offered
    assert {"8bitmime", "starttls", "size"} <= offered


def test_a_message_with_swedish_letters_in_its_headers_is_delivered_as_written(before_queue: Chain) -> None:
    tag = marker()
    msg = message(
        STAFF,
        "sjukskoterska@vardcentral.example",
        f"Önskemål om ändrad tid {tag}",
        "Hej!\n\nKundnummer 10871 önskar att besöket på lördag flyttas till eftermiddagen.\n\nAnna",
    )
    submit(before_queue.postfix, STAFF, msg)

    delivered = before_queue.sink.wait_for(lambda m: tag in m.text, DELIVERY_TIMEOUT, f"with {tag}")
    assert "Kundnummer 10871 önskar" in delivered.text
    assert "Önskemål om ändrad tid" in str(
        email.message_from_bytes(delivered.content, policy=default)["Subject"]
    )
