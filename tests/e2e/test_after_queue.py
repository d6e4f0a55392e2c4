"""A real Postfix with brukarvakt as after-queue content filter (deploy/postfix/after-queue)."""

from __future__ import annotations

import re

from tests.e2e.conftest import STAFF, Chain
from tests.e2e.postfix import (
    DELIVERY_TIMEOUT,
    marker,
    message,
    recent_personnummer,
    staff_message_with_personnummer,
    submit,
    wait_until,
    written_forms,
)


def unfolded(text: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", text)


def test_a_staff_members_message_with_a_personnummer_bounces_to_the_sender_with_guidance(
    after_queue: Chain, personnummer_list: list[str]
) -> None:
    pnr = recent_personnummer(personnummer_list)
    tag = marker()
    msg = staff_message_with_personnummer(pnr, tag)
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
