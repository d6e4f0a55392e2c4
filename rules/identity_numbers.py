"""Detector: personnummer, samordningsnummer and interim numbers, less phones and references."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from rules import personnummer, phones
from rules.hits import Hit
from rules.normalize import NormalizedText

RULE = "id-number"


def detect(
    text: NormalizedText,
    today: date,
    customer_numbers: frozenset[str] = frozenset(),
) -> Iterator[Hit]:
    """Identity numbers in text, less phone numbers, references and known customer numbers."""
    for number in personnummer.find(text.text, today, text.one_byte):
        if customer_numbers and text.text[number.start : number.end] in customer_numbers:
            continue
        if phones.is_payment_reference(text.text, number) or phones.is_phone(text.text, number):
            continue
        start, end = text.span_to_original(number.start, number.end)
        yield Hit(
            rule=RULE,
            kind=number.kind,
            severity="block",
            start=start,
            end=end,
            canonical=number.canonical,
            masked=number.masked,
        )
