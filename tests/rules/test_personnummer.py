"""Identity numbers: every written form of DESIGN is found, with the right kind and value."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import pytest

from rules import identity_numbers, personnummer
from rules.hits import Hit
from rules.normalize import normalize
from rules.personnummer import find, luhn_ok
from tests.conftest import PERSONNUMMER_DATA, TODAY, skatteverket

FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def short_sep(canonical: str) -> str:
    """The separator a 10-digit form needs: `+` from the year the person turns 100."""
    return "+" if int(canonical[:4]) <= TODAY.year - 100 else "-"


def forms(canonical: str) -> Iterator[tuple[str, str]]:
    """(description, written form) for every form DESIGN lists, all meaning `canonical`."""
    date_long, date_short, serial = canonical[:8], canonical[2:8], canonical[8:]
    sep = short_sep(canonical)
    yield "12 digits", canonical
    yield "12 with dash", f"{date_long}-{serial}"
    yield "10 with dash or plus", f"{date_short}{sep}{serial}"
    yield "12 with space", f"{date_long} {serial}"
    yield "12 with NBSP", f"{date_long}\u00a0{serial}"
    yield "12 with narrow NBSP", f"{date_long}\u202f{serial}"
    yield "12 with en dash", f"{date_long}\u2013{serial}"
    yield "12 with em dash", f"{date_long}\u2014{serial}"
    yield "12 with minus sign", f"{date_long}\u2212{serial}"
    yield "12 with non-breaking hyphen", f"{date_long}\u2011{serial}"
    yield "12 with fullwidth hyphen", f"{date_long}\uff0d{serial}"
    yield "12 with spaces around a dash", f"{date_long} - {serial}"
    yield "12 with spaces around an en dash", f"{date_long} \u2013 {serial}"
    yield "12 wrapped", f"{date_long}\n{serial}"
    yield "12 wrapped CRLF", f"{date_long}\r\n{serial}"
    yield "12 wrapped with quote prefix", f"{date_long}\n> {serial}"
    yield "12 wrapped twice quoted", f"{date_long}-\n> > {serial}"
    yield "10 wrapped after the dash", f"{date_short}{sep}\n{serial}"
    yield "12 fullwidth digits", canonical.translate(FULLWIDTH)
    yield "12 arabic-indic digits", f"{date_long.translate(ARABIC_INDIC)}-{serial}"
    yield "12 zero-width space inside", f"{date_long[:4]}\u200b{date_long[4:]}-{serial}"
    yield "12 soft hyphen inside", f"{date_long}\u00ad{serial}"
    yield "12 zero-width joiner between digits", "\u200d".join(canonical)
    yield "12 BOM inside", f"{date_long}\ufeff-{serial}"
    if sep == "-":  # a 10-digit form without `+` means someone under 100
        yield "10 digits", f"{date_short}{serial}"
        yield "10 with space", f"{date_short} {serial}"
        yield "10 with en dash", f"{date_short}\u2013{serial}"
        yield "10 wrapped with quote prefix", f"{date_short}\n> {serial}"


SENTENCES = (
    "Hej! Brukaren med personnummer {} behöver hjälp med dusch på tisdag.",
    "{}",
    "Pnr: {}, kontakta anhöriga.",
    "Se journal_{}.pdf i bilagan",
    "(pnr:{}) åter hem efter sjukhusvistelsen",
    "Gäller {}.",
)


def detect(text: str) -> list[Hit]:
    """The detector as the engine runs it: on normalised text, positions in the original."""
    return list(identity_numbers.detect(normalize(text), TODAY))


def all_numbers() -> list[tuple[str, str]]:
    data = skatteverket()
    return [(n, "personnummer") for n in data["personnummer"]] + [
        (n, "samordningsnummer") for n in data["samordningsnummer"]
    ]


# The forms of a centenarian's number (with `+`) and of a younger person's (all forms).
FORM_NAMES = list(dict.fromkeys(d for n in ("189001079806", "200001121227") for d, _ in forms(n)))


@pytest.mark.parametrize("description", FORM_NAMES)
def test_every_skatteverket_number_is_found_in_this_written_form(description: str) -> None:
    missed = []
    for i, (canonical, kind) in enumerate(all_numbers()):
        written = dict(forms(canonical)).get(description)
        if written is None:
            continue
        sentence = SENTENCES[i % len(SENTENCES)].format(written)
        found = [(h.kind, h.canonical) for h in detect(sentence)]
        if found != [(kind, canonical)]:
            missed.append((canonical, sentence, found))
    assert not missed, f"{len(missed)} missed, e.g. {missed[:3]}"


def test_positions_cover_exactly_the_written_number() -> None:
    text = "Brukaren 19900107-9806 ska ha hjälp."
    (number,) = find(text, TODAY)
    assert text[number.start : number.end] == "19900107-9806"


def test_positions_refer_to_the_original_text_when_invisible_characters_are_dropped() -> None:
    text = "Brukaren \u200b1990\u200b0107\u00ad-9806 ska ha hjälp."
    (hit,) = detect(text)
    assert text[hit.start : hit.end] == "1990\u200b0107\u00ad-9806"


def test_ten_digit_number_takes_the_latest_century_not_in_the_future() -> None:
    (number,) = find("900107-9806", TODAY)
    assert number.canonical == "199001079806"
    (number,) = find("000112-1227", TODAY)
    assert number.canonical == "200001121227"


def test_plus_means_a_hundred_years_earlier() -> None:
    (number,) = find("900107+9806", TODAY)
    assert number.canonical == "189001079806"


def test_birthday_later_this_year_a_century_ago_resolves_to_last_century() -> None:
    # 26 December of the current year has not happened yet: a 10-digit number with that date
    # is someone born a hundred years earlier. Luhn-valid on purpose but never a real person's:
    # the date check alone decides, which is what this test pins.
    today = date(2026, 12, 1)
    candidates = [f"261226{n:03d}{c}" for n in range(1, 30) for c in range(10)]
    ten = next(c for c in candidates if luhn_ok(c))
    (number,) = find(f"{ten[:6]}-{ten[6:]}", today)
    assert number.canonical.startswith("1926")


def test_samordningsnummer_has_day_plus_sixty() -> None:
    (number,) = find("19730288-9931", TODAY)  # personnummer/meta test vector
    assert number.kind == "samordningsnummer"
    assert number.masked == "730288-****"


def test_samordningsnummer_day_is_not_checked_against_the_month() -> None:
    coordination = skatteverket()["samordningsnummer"]
    month_zero = [n for n in coordination if n[4:6] == "00"]
    day_sixty = [n for n in coordination if n[6:8] == "60"]
    assert month_zero and day_sixty, "the sample holds month 00 and day 60 numbers"
    for n in month_zero + day_sixty:
        assert [x.canonical for x in find(n, TODAY)] == [n]


@pytest.mark.parametrize(
    "text",
    [
        "189001079807",  # Luhn wrong
        "18900107-9807",
        "189002309806",  # 30 February
        "189013079806",  # month 13
        "209001079806",  # a 12-digit number with a date in the future (Luhn as a real one)
        "900107-0000",  # serial 000 with any check digit
        "yiv1990010798",
        "a189001079806",
        "1890010798061",
        "9189001079806",
        "x189001079806y",
        "189001079806abc",
        "2024-03-12",
        "20240312",
        "2024-03-12 14:30:00",
        "20240312T143000",
        "556036-0793",  # organisationsnummer: month 60
        "SE556036079301",  # VAT number
        "SE45 5000 0000 0583 9825 7466",  # IBAN
        "Clearing 8327-9, konto 914 338 112-3",
    ],
)
def test_not_an_identity_number(text: str) -> None:
    assert find(text, TODAY) == []


def test_serial_000_is_never_used() -> None:
    assert find("19900107-0000", TODAY) == []
    assert find("900107-0008", TODAY) == []


def test_a_hyphenated_run_after_the_number_does_not_hide_it() -> None:
    assert [n.canonical for n in find("189001079806-1", TODAY)] == ["189001079806"]


def test_personnummer_meta_vectors() -> None:
    """Test vectors of the personnummer organisation; a space separator is valid by DESIGN."""
    vectors = json.loads((PERSONNUMMER_DATA / "list.json").read_text(encoding="utf-8"))
    for v in vectors:
        valid = v["valid"] or " " in v["separated_long"]
        for form in ("long_format", "separated_format", "separated_long"):
            found = find(v[form], TODAY)
            assert bool(found) == valid, (form, v[form], v["valid"])
            if found:
                kind = "samordningsnummer" if v["type"] == "con" else "personnummer"
                assert found[0].kind == kind


def test_interim_numbers() -> None:
    vectors = json.loads((PERSONNUMMER_DATA / "interim.json").read_text(encoding="utf-8"))
    for v in vectors:
        for form in ("long_format", "short_format", "separated_format", "separated_long"):
            found = find(f"Interimsnummer {v[form]} gäller.", TODAY)
            assert bool(found) == v["valid"], (form, v[form])
            if found:
                assert found[0].kind == "interimsnummer"
                assert found[0].canonical == v["long_format"].upper()


def test_interim_letter_is_upper_cased_in_the_canonical_value() -> None:
    (number,) = find("000101-t220", TODAY)
    assert number.canonical == "20000101T220"


def test_canonical_form_is_only_the_single_dash_or_plus() -> None:
    (dashed,) = find("900107-9806", TODAY)
    (spaced,) = find("900107 9806", TODAY)
    (plain,) = find("9001079806", TODAY)
    assert dashed.canonical_form and not spaced.canonical_form and not plain.canonical_form


def test_pattern_is_one_compiled_expression() -> None:
    assert personnummer.PATTERN.groupindex.keys() >= {"cc", "yy", "mm", "dd", "sep", "serial", "check"}
