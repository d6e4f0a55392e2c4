"""Phone numbers and payment references are not identity numbers; the canonical form always is."""

from __future__ import annotations

import pytest

from rules import identity_numbers
from rules.normalize import normalize
from tests.conftest import TODAY

# 190101049807 is a Skatteverket test number whose 10-digit form 0101049807 is also a valid
# Swedish phone number (010-104 98 07): the hard case.
TEN = "0101049807"


def kinds(text: str) -> list[str]:
    return [h.kind for h in identity_numbers.detect(normalize(text), TODAY)]


@pytest.mark.parametrize(
    "text",
    [
        "Ring mig på 070-123 45 67 efter lunch.",
        "Mobil: +46 70 123 45 67",
        "Tel 08-465 004 10",
        "+46701740605",
        "0046 70 174 06 05",
        "Växel 031-390 06 00, fax 031-390 06 01",
        f"Ring {TEN} i morgon.",
        f"tel: {TEN}",
        f"Mobilnummer {TEN}",
        f"sms till {TEN}",
        f"+46 {TEN[1:]}",
    ],
)
def test_phone_numbers_are_not_identity_numbers(text: str) -> None:
    assert kinds(text) == []


def test_the_same_digits_without_a_phone_word_are_a_personnummer() -> None:
    assert kinds(f"Gäller {TEN}, se journalen.") == ["personnummer"]


def test_a_phone_word_never_clears_the_canonical_dashed_form() -> None:
    assert kinds(f"Ring {TEN[:6]}-{TEN[6:]}") == ["personnummer"]


def test_a_bare_run_without_trunk_zero_is_not_taken_for_a_phone_number() -> None:
    # phonenumbers calls 9001079806 valid because it supplies the 0 itself; written like this
    # it is a personnummer even next to "ring".
    assert kinds("ring 9001079806") == ["personnummer"]


@pytest.mark.parametrize(
    "text",
    [
        "OCR: 9001079806",
        "Fakturanummer 9001079806 förfaller 30/11",
        "Betala till bankgiro 5050-1055 med OCR 9001079806.",
        "Ordernummer 9001079806",
        "Ärende 9001079806 är avslutat.",
        "Kontonummer 9001079806",
        "orgnr 9001079806",
        "9001079806 (OCR)",
    ],
)
def test_negative_context_clears_an_unseparated_ten_digit_run(text: str) -> None:
    assert kinds(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "OCR: 900107-9806",
        "Faktura till 900107-9806",
        "Ärende gällande 19900107-9806",
        "Fakturanummer 199001079806",  # twelve digits: not a payment reference
    ],
)
def test_negative_context_never_clears_the_canonical_form_or_twelve_digits(text: str) -> None:
    assert kinds(text) == ["personnummer"]


def test_context_on_another_line_does_not_count() -> None:
    assert kinds("OCR-nummer finns på fakturan.\nBrukaren 9001079806 ringde.") == ["personnummer"]


def test_a_known_customer_number_is_never_a_finding() -> None:
    found = identity_numbers.detect(normalize("Kund 9001079806"), TODAY, frozenset({"9001079806"}))
    assert list(found) == []


def test_a_phone_number_at_the_start_of_a_line_is_still_a_phone_number() -> None:
    assert kinds(f"Hej\n{TEN} (mobil)") == []
    assert kinds(f"Hej\nmobil: {TEN}") == []
