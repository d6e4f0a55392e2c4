"""The client register: a whole name in lower case; one part of a hyphenated first name with the surname."""

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
# A name written all in lower case counts when its surname is not a common word.

LOWER_CASE_NAMES = (
    # (customer number, sentence, the name as it stands in the sentence)
    ("30001", "hej, kan någon ringa stig sahlberg i dag?", "stig sahlberg"),
    ("30001", "stig sahlbergs dotter har ringt", "stig sahlbergs"),
    ("30001", "på listan: sahlberg, stig och två till", "sahlberg, stig"),
    ("30001", "(stig sahlberg) vill ha tid på fredag", "stig sahlberg"),
    ("30001", "vi var hos stig sahlberg.", "stig sahlberg"),
    ("30001", "> hälsa till stig\n> sahlberg från oss", "stig\n> sahlberg"),
    ("30001", "ring\tstig\u00a0sahlberg nu", "stig\u00a0sahlberg"),
    ("30001", "stig sahlberg", "stig sahlberg"),
    ("30002", "pär strand-eriksson har fått ny rollator", "pär strand-eriksson"),
    ("30002", "par strand-eriksson har fått ny rollator", "par strand-eriksson"),
    ("30002", "gäller strand-eriksson, pär inför mötet", "strand-eriksson, pär"),
    ("30002", "pär strand-erikssons rollator är trasig", "pär strand-erikssons"),
    ("30006", "per vikander har flyttat", "per vikander"),
    ("30006", "per maj-britt vikander har flyttat", "per maj-britt vikander"),
)


@pytest.mark.parametrize(("customer", "sentence", "written"), LOWER_CASE_NAMES)
def test_a_name_written_all_in_lower_case_is_found_when_its_surname_is_not_a_common_word(
    customer: str, sentence: str, written: str
) -> None:
    hit = one(sentence)
    assert (hit.kind, hit.severity, hit.customer_number) == ("client_name", "block", customer)
    assert sentence[hit.start : hit.end] == written


def test_a_lower_case_surname_after_a_title_is_a_warning_when_it_is_not_a_common_word() -> None:
    for sentence in ("fru strand-eriksson har ringt", "Brukaren strand-eriksson sover."):
        hit = one(sentence)
        assert (hit.kind, hit.severity, hit.customer_number) == ("client_name", "warn", "30002")
        assert sentence[hit.start : hit.end] == "strand-eriksson"


@pytest.mark.parametrize(
    "sentence",
    [
        "bo lind",  # first name and surname both common words: a verb and a tree
        "de vill bo lind och ek i trädgården",
        "stig holm",
        "vi tog en stig till holmen och stig holm",
        "brukaren lind har ringt",  # a common-word surname after a title, in lower case
        "stig holms båt och bo linds hus",  # its genitive: the word's, not the client's
        "Stig holms båt",
        "sten, berg och grus",
    ],
)
def test_a_common_word_surname_in_lower_case_is_not_a_name(sentence: str) -> None:
    assert found(sentence) == []


def test_the_same_names_are_found_when_not_written_in_lower_case() -> None:
    hits = found("Bo Lind och Stig Holm har fått mat. BO LIND ringde. Stig Holms båt.")
    assert [h.customer_number for h in hits] == ["30004", "30005", "30004", "30005"]


@pytest.mark.parametrize(
    "sentence",
    [
        "stig ringde i morse",  # a first name alone, in lower case
        "hälsningar pär",
        "sahlberg ringde",  # a surname alone, without a title
        "ta en stig till sahlbergs gård",  # a common word and a surname that are not next to each other
        "stig. sahlberg",  # a sentence apart
        "stig på, sahlberg är inte hemma",
    ],
)
def test_a_first_name_or_surname_alone_in_lower_case_is_no_finding(sentence: str) -> None:
    assert found(sentence) == []


def test_lower_case_names_among_many_common_words_keep_their_spans_and_customer_numbers() -> None:
    text = (
        "på måndag ska vi hjälpa stig sahlberg med posten och sedan pär strand-eriksson, "
        "men inte bo lind eller stig holm. i dag var stig på plats hos sahlberg, stig."
    )
    hits = found(text)
    assert [(text[h.start : h.end], h.customer_number) for h in hits] == [
        ("stig sahlberg", "30001"),
        ("pär strand-eriksson", "30002"),
        ("sahlberg, stig", "30001"),
    ]


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


def test_the_word_memory_and_the_pass_over_never_lose_a_lower_case_name_or_a_hyphen_part(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    messages = (
        [s for _, s, _ in LOWER_CASE_NAMES]
        + [s for s, _ in HYPHEN_PARTS]
        + ["bo lind och stig holm, stig. sahlberg, ta en stig till sahlbergs gård"]
    )

    def answers(idx: RegisterIndex, text: str) -> list[tuple[int, int, str | None]]:
        return [(h.start, h.end, h.customer_number) for h in idx.detect(normalize(text))]

    fresh = [answers(RegisterIndex(index().tables, TEST_KEY), m) for m in messages]
    shared = RegisterIndex(index().tables, TEST_KEY)
    first_round = [answers(shared, m) for m in messages]
    second_round = [answers(shared, m) for m in reversed(messages)][::-1]
    monkeypatch.setattr(RegisterIndex, "_may_continue", lambda *args: True)
    never_passed_over = [answers(RegisterIndex(index().tables, TEST_KEY), m) for m in messages]
    assert first_round == second_round == fresh == never_passed_over
    assert sum(map(len, fresh)) == len(LOWER_CASE_NAMES) + len(HYPHEN_PARTS)
