"""Two shapes of real mail that are not identity numbers: a foreign phone number after a phone
label, and a timestamp in a machine's header field quoted in a body (a bounce)."""

from __future__ import annotations

import pytest

from rules import identity_numbers
from rules.normalize import normalize
from tests.conftest import TODAY, test_personnummer

# A Skatteverket test number whose 10-digit form is no Swedish phone number but a valid one in the
# Netherlands and Finland (as a Dutch order form's "Telefoonnummer : 06..." is); born 2001, so its
# 10-digit form reads as the same person.
ABROAD = test_personnummer(1405)
ABROAD_TEN = ABROAD[2:]
# A test number born 2010, whose 10-digit form starts with 1 as a Unix time of 2010-2019 does.
STAMP = test_personnummer(1686)
STAMP_TEN = STAMP[2:]


def found(text: str) -> list[str]:
    return [h.canonical for h in identity_numbers.detect(normalize(text), TODAY)]


def test_the_chosen_numbers_are_what_the_tests_say() -> None:
    import phonenumbers

    assert not phonenumbers.is_valid_number(phonenumbers.parse(ABROAD_TEN, "SE"))
    assert phonenumbers.is_valid_number(phonenumbers.parse(ABROAD_TEN, "NL"))
    assert found(f"Brukaren har {ABROAD_TEN}.") == [ABROAD]
    assert found(f"Brukaren har {STAMP_TEN}.") == [STAMP]


@pytest.mark.parametrize(
    "label",
    ["Telefoonnummer                        : ", "Phone: ", "Tlf. ", "Mobiel: ", "Handy ", "Telefon: "],
)
def test_a_number_valid_abroad_right_after_a_phone_label_is_a_phone_number(label: str) -> None:
    assert found(f"{label}{ABROAD_TEN}\n") == []


@pytest.mark.parametrize(
    "text",
    [
        f"Ring brukaren, pnr {ABROAD_TEN}",  # a phone word near it, but no label before it
        f"Telefoonnummer: okänt. Personnummer {ABROAD_TEN}",
        f"Phone: {ABROAD[:8]}-{ABROAD[8:]}",  # the 12-digit form is always a personnummer
        f"Phone: {ABROAD_TEN[:6]}-{ABROAD_TEN[6:]}",  # and the canonical 10-digit form too
    ],
)
def test_without_a_label_right_before_it_or_in_a_persons_form_it_is_a_personnummer(text: str) -> None:
    assert found(text) == [ABROAD]


DKIM = (
    "Original message headers:\n\n"
    "Received: from mx.example.com (unknown [192.0.2.1])\n"
    "        by relay.example.eu (Postfix) with ESMTPS id 2D9022EE05E\n"
    "DKIM-Signature: a=rsa-sha256; v=1; c=relaxed/relaxed; d=example.com; q=dns/txt; s=mx;\n"
    " t={stamp}; h=Content-Transfer-Encoding: Mime-Version: Content-Type:\n"
    " Subject: From: To: Message-Id: Date;\n"
    " bh=Z0RRkWGMZ95HQdCnkNkIEgrcz3FH2ScG0r54JXFR3Vw=;\n"
    "X-Spam-Stamp: {stamp}\n"
)


def test_a_timestamp_in_a_quoted_dkim_signature_or_x_header_is_not_a_number() -> None:
    assert found(DKIM.format(stamp=STAMP_TEN)) == []


def test_a_quoted_header_block_behind_quote_marks_is_read_the_same() -> None:
    quoted = "".join(f"> {line}\n" for line in DKIM.format(stamp=STAMP_TEN).splitlines())
    assert found(quoted) == []


def test_separated_and_12_digit_forms_in_a_quoted_machine_header_keep_counting() -> None:
    dashed = f"{STAMP_TEN[:6]}-{STAMP_TEN[6:]}"
    assert found(DKIM.format(stamp=dashed)) == [STAMP, STAMP]
    assert found(DKIM.format(stamp=STAMP)) == [STAMP, STAMP]


@pytest.mark.parametrize(
    "text",
    [
        f"Subject: Brukaren {STAMP_TEN}\n",  # a header a person writes
        f"Hej!\n    Brukaren {STAMP_TEN} behöver hjälp.\n",  # an indented line under prose
        f"Datum för besöket: {STAMP_TEN}\n",  # not a machine field's name
        f"Received: paketet kom i går.\n\nBrukaren {STAMP_TEN}.\n",  # a paragraph after a blank line
    ],
)
def test_a_number_outside_a_quoted_machine_field_counts(text: str) -> None:
    assert found(text) == [STAMP]
