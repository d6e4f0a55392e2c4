"""A real Postfix with brukarvakt as after-queue content filter (deploy/postfix/after-queue)."""

from __future__ import annotations

import re
import secrets

from tests.e2e.conftest import MANAGER, STAFF, Chain
from tests.e2e.postfix import SECURE_DOMAIN, message, recent_personnummer, submit, wait_until, written_forms

DELIVERY_TIMEOUT = 20.0


def marker() -> str:
    return f"e2e-{secrets.token_hex(4)}"


def unfolded(text: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", text)


def test_a_staff_members_message_with_a_personnummer_bounces_to_the_sender_with_guidance(
    after_queue: Chain, personnummer_list: list[str]
) -> None:
    pnr = recent_personnummer(personnummer_list)
    tag = marker()
    msg = message(
        STAFF,
        "sjukskoterska@vardcentral.example",
        f"Medicinlista {tag}",
        f"Hej!\n\nBrukaren med personnummer {written_forms(pnr)[2]} behöver ny dosett på torsdag.\n"
        "Kan du ringa mig efter lunch?\n\nHälsningar\nAnna",
    )
    submit(after_queue.postfix, STAFF, msg)  # accepted: Postfix queues first, the gateway decides after

    bounce = after_queue.sink.wait_for(
        lambda m: m.mail_from == "" and tag in m.text, DELIVERY_TIMEOUT, f"bouncing {tag}"
    )
    text = unfolded(bounce.text)
    assert bounce.rcpt_tos == (STAFF,)
    assert "report-type=delivery-status" in text
    diagnostic = re.search(r"^Diagnostic-Code: smtp; (.*)$", text, re.MULTILINE)
    assert diagnostic is not None, text
    assert "550" in diagnostic.group(1) and "5.7.1" in diagnostic.group(1)
    assert "kundnummer" in diagnostic.group(1).lower()
    assert f"{pnr[2:8]}-****" in diagnostic.group(1), "the guidance names what it found, masked"
    # The returned message is its headers only: neither the guidance nor the rest holds the number.
    assert not any(form in bounce.text for form in written_forms(pnr))
    assert [m for m in after_queue.sink.holding(tag) if m.mail_from == STAFF] == []


def test_a_clean_message_is_delivered(after_queue: Chain) -> None:
    tag = marker()
    msg = message(
        STAFF,
        "sjukskoterska@vardcentral.example",
        f"Besök i morgon {tag}",
        "Hej!\n\nKundnummer 10234 behöver hjälp med inköp i morgon förmiddag. Nyckeln finns i "
        "nyckelskåpet som vanligt.\n\nHälsningar\nAnna",
    )
    submit(after_queue.postfix, STAFF, msg)

    delivered = after_queue.sink.wait_for(lambda m: tag in m.text, DELIVERY_TIMEOUT, f"with {tag}")
    assert delivered.mail_from == STAFF
    assert delivered.rcpt_tos == ("sjukskoterska@vardcentral.example",)
    assert "Kundnummer 10234" in delivered.text
    assert "X-Brukarvakt-Verdict: pass" in delivered.text, "scanned on the way, not around the gateway"


def test_a_managers_message_with_a_personnummer_to_a_secure_domain_is_delivered(
    after_queue: Chain, personnummer_list: list[str]
) -> None:
    pnr = recent_personnummer(personnummer_list)
    tag = marker()
    recipient = f"handlaggare@{SECURE_DOMAIN}"
    msg = message(
        MANAGER,
        recipient,
        f"Ansökan om korttidsboende {tag}",
        f"Hej!\n\nGäller brukare {written_forms(pnr)[2]}: vi stödjer ansökan om korttidsboende.\n\n"
        "Med vänlig hälsning\nKarin Berg, enhetschef",
    )
    submit(after_queue.postfix, MANAGER, msg)

    delivered = after_queue.sink.wait_for(lambda m: tag in m.text, DELIVERY_TIMEOUT, f"with {tag}")
    assert delivered.mail_from == MANAGER
    assert delivered.rcpt_tos == (recipient,)
    assert written_forms(pnr)[2] in delivered.text
    assert re.search(r"^X-Brukarvakt-Verdict: pass; exception=manager", delivered.text, re.MULTILINE)


def test_with_the_gateway_down_mail_waits_in_the_queue_and_is_delivered_when_it_is_back(
    after_queue: Chain,
) -> None:
    tag = marker()
    recipient = f"{tag}@vardcentral.example"
    msg = message(STAFF, recipient, f"Schema {tag}", "Hej!\n\nHär kommer schemat för december.\n\nAnna")
    postfix = after_queue.postfix

    def waiting() -> list[dict[str, object]]:
        return [q for q in postfix.queue() if any(r["address"] == recipient for r in q["recipients"])]

    after_queue.gateway.stop()
    try:
        submit(postfix, STAFF, msg)
        deferred = wait_until(
            lambda: [q for q in waiting() if q["queue_name"] == "deferred"],
            DELIVERY_TIMEOUT,
            "the message to be deferred while the gateway is down",
        )
        assert len(deferred) == 1
        assert after_queue.sink.holding(tag) == []
    finally:
        after_queue.gateway.start()

    postfix.flush()
    delivered = after_queue.sink.wait_for(
        lambda m: tag in m.text, DELIVERY_TIMEOUT, f"with {tag} after the flush"
    )
    assert delivered.rcpt_tos == (recipient,)
    wait_until(lambda: not waiting(), DELIVERY_TIMEOUT, "the queue to be empty of the message")
