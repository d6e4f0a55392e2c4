"""What holds behind Postfix in both modes: the before-queue proxy and the after-queue filter."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import MANAGER, STAFF, Chain
from tests.e2e.postfix import (
    DELIVERY_TIMEOUT,
    SECURE_DOMAIN,
    marker,
    message,
    recent_personnummer,
    submit,
    written_forms,
)


@pytest.fixture(params=["before_queue", "after_queue"])
def chain(request: pytest.FixtureRequest) -> Chain:
    chain: Chain = request.getfixturevalue(request.param)
    return chain


def test_a_clean_message_is_delivered(chain: Chain) -> None:
    tag = marker()
    msg = message(
        STAFF,
        "sjukskoterska@vardcentral.example",
        f"Besök i morgon {tag}",
        "Hej!\n\nKundnummer 10234 behöver hjälp med inköp i morgon förmiddag. Nyckeln finns i "
        "nyckelskåpet som vanligt.\n\nHälsningar\nAnna",
    )
    submit(chain.postfix, STAFF, msg)

    delivered = chain.sink.wait_for(lambda m: tag in m.text, DELIVERY_TIMEOUT, f"with {tag}")
    assert delivered.mail_from == STAFF
    assert delivered.rcpt_tos == ("sjukskoterska@vardcentral.example",)
    assert "Kundnummer 10234" in delivered.text
    assert "X-Brukarvakt-Verdict: pass" in delivered.text, "scanned on the way, not around the gateway"


def test_a_managers_message_with_a_personnummer_to_a_secure_domain_is_delivered(
    chain: Chain, personnummer_list: list[str]
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
    submit(chain.postfix, MANAGER, msg)

    delivered = chain.sink.wait_for(lambda m: tag in m.text, DELIVERY_TIMEOUT, f"with {tag}")
    assert delivered.mail_from == MANAGER
    assert delivered.rcpt_tos == (recipient,)
    assert written_forms(pnr)[2] in delivered.text
    assert re.search(r"^X-Brukarvakt-Verdict: pass; exception=manager", delivered.text, re.MULTILINE)
