"""A real Postfix with brukarvakt as its milter (deploy/postfix/milter): smtpd_milters and non_smtpd_milters."""

from __future__ import annotations

import json
import os
import re
import smtplib
import subprocess
import sys

import pytest

from tests.conftest import TEST_KEY
from tests.e2e.conftest import MANAGER, SECURE_DOMAIN, STAFF, Chain
from tests.e2e.postfix import (
    DELIVERY_TIMEOUT,
    REPO,
    marker,
    message,
    recent_personnummer,
    staff_message_with_personnummer,
    submit,
    wait_until,
    written_forms,
)


def audit(chain: Chain) -> list[dict[str, object]]:
    path = chain.postfix.root / "milter-audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def headers_of(text: str) -> str:
    return text.replace("\r\n", "\n").split("\n\n", 1)[0]


def test_a_staff_members_personnummer_is_refused_in_the_session_with_the_guidance(
    milter: Chain, personnummer_list: list[str]
) -> None:
    pnr = recent_personnummer(personnummer_list)
    tag = marker()
    with pytest.raises(smtplib.SMTPDataError) as refused:
        submit(milter.postfix, STAFF, staff_message_with_personnummer(pnr, tag))
    code, text = refused.value.smtp_code, refused.value.smtp_error.decode("ascii")
    assert code == 550
    assert text.startswith("5.7.1 "), text
    assert "kundnummer" in text
    assert f"{pnr[2:8]}-****" in text, "the guidance names what it found, masked"
    assert not any(form in text for form in written_forms(pnr))
    assert milter.sink.holding(tag) == []
    assert not [q for q in milter.postfix.queue() if tag in json.dumps(q)], "nothing was queued"
    assert audit(milter)[-1]["action"] == "rejected"
    assert audit(milter)[-1]["authenticated_as"] == STAFF


def test_clean_mail_is_delivered_by_postfix_with_the_verdict_header(milter: Chain) -> None:
    tag = marker()
    recipient = "samordnare@vardcentral.example"
    submit(
        milter.postfix, STAFF, message(STAFF, recipient, f"Schema {tag}", "Hej!\n\nMötet flyttas.\n\nAnna")
    )
    delivered = milter.sink.wait_for(lambda m: tag in m.text, DELIVERY_TIMEOUT, f"with {tag}")
    assert delivered.rcpt_tos == (recipient,)
    head = headers_of(delivered.text)
    assert re.search(r"^X-Brukarvakt-Verdict: pass$", head, re.MULTILINE), head
    assert head.count("X-Brukarvakt-Verdict") == 1


def test_a_manager_over_tls_may_send_a_personnummer_to_the_secure_domain(
    milter: Chain, personnummer_list: list[str]
) -> None:
    pnr = recent_personnummer(personnummer_list)
    tag = marker()
    recipient = f"handlaggare@{SECURE_DOMAIN}"
    body = f"Hej!\n\nBrukaren med personnummer {written_forms(pnr)[2]} har fått nytt beslut.\n\nKarin"
    submit(milter.postfix, MANAGER, message(MANAGER, recipient, f"Beslut {tag}", body))
    delivered = milter.sink.wait_for(lambda m: tag in m.text, DELIVERY_TIMEOUT, f"with {tag}")
    head = headers_of(delivered.text)
    assert "X-Brukarvakt-Verdict: pass; exception=manager; kinds=personnummer" in head
    assert audit(milter)[-1]["reason"] == "manager-exception"


def test_a_forged_received_header_changes_nothing_the_sasl_login_decides(
    milter: Chain, personnummer_list: list[str]
) -> None:
    pnr = recent_personnummer(personnummer_list)
    tag = marker()
    recipient = f"handlaggare@{SECURE_DOMAIN}"
    msg = message(STAFF, recipient, f"Beslut {tag}", f"Personnummer {written_forms(pnr)[2]}, se beslutet.")
    # What a trusted Postfix would have written for an authenticated manager, written by the client.
    msg["Received"] = (
        "from pc12.hemtjanst.example (pc12.hemtjanst.example [192.0.2.5]) "
        "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)) "
        f"(Authenticated sender: {MANAGER}) by mail.hemtjanst.example (Postfix) with ESMTPSA id 4Mx1Tq0abcz9sWL"
    )
    with pytest.raises(smtplib.SMTPDataError) as refused:
        submit(milter.postfix, STAFF, msg)
    assert refused.value.smtp_code == 550
    assert audit(milter)[-1]["authenticated_as"] == STAFF
    assert milter.sink.holding(tag) == []


def test_with_the_milter_stopped_postfix_answers_4xx_and_the_client_keeps_the_message(milter: Chain) -> None:
    tag = marker()
    recipient = f"{tag}@vardcentral.example"
    msg = message(STAFF, recipient, f"Schema {tag}", "Hej!\n\nHär kommer schemat för december.\n\nAnna")
    milter.gateway.stop()
    try:
        with pytest.raises(smtplib.SMTPResponseException) as deferred:
            submit(milter.postfix, STAFF, msg)
        assert 400 <= deferred.value.smtp_code < 500, deferred.value
        assert not [q for q in milter.postfix.queue() if tag in json.dumps(q)], "Postfix did not take it"
    finally:
        milter.gateway.start()
    submit(milter.postfix, STAFF, msg)  # the mail program sends it again later
    delivered = milter.sink.wait_for(
        lambda m: tag in m.text, DELIVERY_TIMEOUT, f"with {tag} after the restart"
    )
    assert "X-Brukarvakt-Verdict: pass" in headers_of(delivered.text)


def test_mail_submitted_with_the_sendmail_command_is_scanned_too(
    milter: Chain, personnummer_list: list[str]
) -> None:
    clean_tag, leak_tag = marker(), marker()
    recipient = "samordnare@vardcentral.example"
    milter.postfix.sendmail(
        STAFF, [recipient], message(STAFF, recipient, f"Schema {clean_tag}", "Hej!\n\nSchemat.")
    )
    delivered = milter.sink.wait_for(lambda m: clean_tag in m.text, DELIVERY_TIMEOUT, f"with {clean_tag}")
    assert "X-Brukarvakt-Verdict: pass" in headers_of(delivered.text)

    pnr = recent_personnummer(personnummer_list)
    milter.postfix.sendmail(STAFF, [recipient], staff_message_with_personnummer(pnr, leak_tag))
    returned = milter.sink.wait_for(
        lambda m: m.mail_from == "" and leak_tag in m.text, DELIVERY_TIMEOUT, f"the return of {leak_tag}"
    )
    assert returned.rcpt_tos == (STAFF,)
    assert "5.7.1" in returned.text
    assert not any(form in returned.text for form in written_forms(pnr)), "headers only, never the body"
    assert [m for m in milter.sink.holding(leak_tag) if m.mail_from == STAFF] == []
    wait_until(lambda: audit(milter)[-1]["action"] == "rejected", DELIVERY_TIMEOUT, "the audit line")


def test_a_managers_marked_message_goes_to_the_secure_relay_by_milter_header_checks(
    milter: Chain, personnummer_list: list[str]
) -> None:
    pnr = recent_personnummer(personnummer_list)
    tag = marker()
    recipient = "handlaggare@kommun-utanfor.example"
    body = f"Hej!\n\nBrukaren med personnummer {written_forms(pnr)[2]} har fått nytt beslut.\n\nKarin"
    submit(milter.postfix, MANAGER, message(MANAGER, recipient, f"[sekretess] Beslut {tag}", body))
    delivered = milter.sink.wait_for(lambda m: tag in m.text, DELIVERY_TIMEOUT, f"with {tag}")
    assert "X-Brukarvakt-Route: secure" in headers_of(delivered.text)
    # Postfix's cleanup names the header and the FILTER it applied (the relay is the sink here).
    wait_until(
        lambda: re.search(
            r"filter: header X-Brukarvakt-Route: secure .*: smtp:\[127\.0\.0\.1\]", milter.postfix.log()
        ),
        DELIVERY_TIMEOUT,
        "Postfix's log line for the FILTER",
    )


def test_quarantine_holds_the_message_the_notice_and_the_release_go_back_through_postfix_unscanned(
    milter_quarantine: Chain, personnummer_list: list[str]
) -> None:
    chain = milter_quarantine
    pnr = recent_personnummer(personnummer_list)
    tag = marker()
    submit(chain.postfix, STAFF, staff_message_with_personnummer(pnr, tag))  # 250: held, not refused

    notice = chain.sink.wait_for(
        lambda m: m.mail_from == "" and tag in m.text, DELIVERY_TIMEOUT, f"a notice on {tag}"
    )
    assert notice.rcpt_tos == (STAFF,)
    assert "Auto-Submitted: auto-replied" in notice.text
    assert not any(form in notice.text for form in written_forms(pnr))
    assert [m for m in chain.sink.holding(tag) if m.mail_from == STAFF] == [], "held, not delivered"
    line = audit(chain)[-1]
    assert line["action"] == "quarantined"

    # An administrator releases it: through next_hop, Postfix's return listener without the milter.
    config = chain.postfix.root / "brukarvakt-milter.yaml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "quarantine",
            "release",
            str(line["quarantine_id"]),
            "--config",
            str(config),
            "--reason",
            "e2e",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=dict(os.environ, BRUKARVAKT_FINGERPRINT_KEY=TEST_KEY.decode()),
    )
    assert done.returncode == 0, done.stderr
    released = chain.sink.wait_for(
        lambda m: m.mail_from == STAFF and tag in m.text, DELIVERY_TIMEOUT, f"the release of {tag}"
    )
    assert released.rcpt_tos == ("sjukskoterska@vardcentral.example",)
    assert audit(chain)[-1]["action"] == "released", "released once, not held again by the milter"
