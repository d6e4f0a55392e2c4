"""The client register: one part of a hyphenated first name with the surname."""

from __future__ import annotations

from functools import cache

import pytest

from models.register import Client
from rules.fingerprint import mask_name
from rules.hits import Hit
from rules.normalize import normalize
from rules.register.keys import build
from rules.register.matcher import RegisterIndex
from tests.conftest import TEST_KEY, test_personnummer

# Made-up clients. Stig and Pär are also ordinary words (a path; a pair), Strand begins a
# surname and is a word too; Bo Lind and Stig Holm are names made of common words only.
CLIENTS = (
    ("30001", "Stig", "Sahlberg", 130),
    ("30002", "Pär", "Strand-Eriksson", 131),
    ("30003", "Cecilia-Monica", "Johansson", 132),
    ("30004", "Bo", "Lind", 133),
    ("30005", "Stig", "Holm", 134),
    ("30006", "Per Maj-Britt", "Vikander", 135),
)


@cache
def index() -> RegisterIndex:
    clients = [
        Client(
            customer_number=number,
            first_names=first,
            last_name=last,
            personnummer=test_personnummer(i),
            phones=(),
            address=None,
        )
        for number, first, last, i in CLIENTS
    ]
    return RegisterIndex(build(clients, TEST_KEY), TEST_KEY)


def found(text: str) -> list[Hit]:
    return list(index().detect(normalize(text)))


def one(text: str) -> Hit:
    hits = found(text)
    assert len(hits) == 1, f"{text!r}: {hits}"
    return hits[0]


# ---------------------------------------------------------------------------------------------
# One part of a hyphenated first name, with the surname.

HYPHEN_PARTS = (
    ("Monica Johansson ska till tandläkaren.", "Monica Johansson"),
    ("Cecilia Johansson ska till tandläkaren.", "Cecilia Johansson"),
    ("Gäller Johansson, Monica inför mötet.", "Johansson, Monica"),
    ("På listan står Johansson Cecilia överst.", "Johansson Cecilia"),
    ("Monica Johanssons rollator är trasig.", "Monica Johanssons"),
    ("monica johansson ringde", "monica johansson"),
    ("Cecilia-Monica Johansson ska till tandläkaren.", "Cecilia-Monica Johansson"),
    ("Cecilia Monica Johansson ska till tandläkaren.", "Cecilia Monica Johansson"),
    ("Johansson, Cecilia-Monica ska till tandläkaren.", "Johansson, Cecilia-Monica"),
)


@pytest.mark.parametrize(("sentence", "written"), HYPHEN_PARTS)
def test_one_part_of_a_hyphenated_first_name_with_the_surname_is_the_clients_name(
    sentence: str, written: str
) -> None:
    hit = one(sentence)
    assert (hit.kind, hit.severity, hit.customer_number) == ("client_name", "block", "30003")
    assert sentence[hit.start : hit.end] == written


def test_a_hyphen_part_finding_is_fingerprinted_and_masked_as_found() -> None:
    hit = one("Johansson, Monica har ringt.")
    assert hit.canonical == "monica johansson"
    assert hit.masked == mask_name("Monica Johansson") == "M***** J********"


def test_a_part_of_a_hyphenated_first_name_in_a_longer_first_name_field_counts_too() -> None:
    assert one("Britt Vikander har flyttat.").customer_number == "30006"
    assert one("Maj Vikander har flyttat.").customer_number == "30006"


@pytest.mark.parametrize(
    "sentence",
    [
        "Monica ringde i morse.",  # a first name alone, whole or in part
        "Hej Cecilia-Monica! Hälsningar Cecilia",
        "Maria Johansson och Monica Lindgren",  # another first name with the surname; the part with another
        "Moni Johansson",  # a part of a part
    ],
)
def test_a_hyphen_part_alone_or_with_another_surname_is_no_finding(sentence: str) -> None:
    assert found(sentence) == []
