"""A number labelled as a personnummer is one, whatever reference or phone word stands near it.

Payment references (OCR, faktura, ärende, kundnr, ...) and phone words (tel, ring, sms, ...) clear
an unseparated 10-digit run written near them. A care worker told to write the customer number
writes "Kundnr 10234, personnummer NNNNNNNNNN" or "Ärende: brukaren med pnr NNNNNNNNNN": the label
nearest the run says what it is. The numbers are Skatteverket's test numbers; the young ones are
also valid Swedish phone numbers, as most 10-digit numbers of people born 2000-2009 are.
"""

from __future__ import annotations

import pytest

from rules import identity_numbers
from rules.normalize import normalize
from tests.conftest import TODAY, test_personnummer

# Born 1890: its 10-digit form (no `+`) reads as born 1990, a person all the same.
ADULT = test_personnummer(3)
ADULT_TEN = ADULT[2:]
# Born 2001: its 10-digit form starts with 0 and is a valid Swedish phone number (010-...).
YOUNG = "200101162386"
YOUNG_TEN = YOUNG[2:]


def found(text: str) -> list[str]:
    return [h.canonical[2:] for h in identity_numbers.detect(normalize(text), TODAY)]


def test_the_chosen_numbers_are_what_the_tests_say(personnummer_list: list[str]) -> None:
    import phonenumbers

    assert YOUNG in personnummer_list
    assert phonenumbers.is_valid_number(phonenumbers.parse(YOUNG_TEN, "SE"))
    assert found(f"Brukaren har {ADULT_TEN}.") == [ADULT_TEN]
    assert found(f"Brukaren har {YOUNG_TEN}.") == [YOUNG_TEN]


@pytest.mark.parametrize(
    "template",
    [
        "Kundnr 10234, personnummer {}",
        "Ärende: brukaren med pnr {} behöver hjälp",
        "Faktura gäller pnr {}",
        "Referens: Anna Andersson, pers.nr {}",
        "Avtal för brukaren, personnummer: {}",
        "Personnummer {} (ref)",
        "Konto saknas. Samordningsnummer {}",
        "OCR okänt, p-nr {}",
    ],
)
def test_a_label_nearer_than_a_reference_word_makes_the_run_a_personnummer(template: str) -> None:
    assert found(template.format(ADULT_TEN)) == [ADULT_TEN]


@pytest.mark.parametrize(
    "template",
    [
        "Ring brukaren, pnr {}",
        "Tel 08-123 45 67, pnr {}",
        "Sms om brukaren, personnummer {}",
        "Personnummer {} tel",
    ],
)
def test_a_label_nearer_than_a_phone_word_makes_a_phone_shaped_run_a_personnummer(template: str) -> None:
    assert found(template.format(YOUNG_TEN)) == [YOUNG_TEN]


@pytest.mark.parametrize(
    "text",
    [
        f"Personnummer 19450312-XXXX finns i journalen, OCR {ADULT_TEN}",  # the reference word is nearer
        f"Faktura {ADULT_TEN}",
        f"Pnr saknas. Ring {YOUNG_TEN}",  # not on the same line: "Ring" is nearer
        f"Pnr saknas. Tel: {YOUNG_TEN}",
        f"Pnr finns i journalen\nTel: {YOUNG_TEN}",  # a label on another line says nothing
    ],
)
def test_a_reference_or_phone_word_nearer_than_the_label_still_clears_the_run(text: str) -> None:
    assert found(text) == []
