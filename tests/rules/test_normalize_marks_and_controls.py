"""A name stored as letters and combining marks, and a number with direction controls or variation
selectors inside, are matched as what they show.

macOS keeps file names decomposed (o + U+0308 for ö), and so does text copied from them: a client's
name in a Mac attachment's file name passed unmatched. Teams and Skype wrap copied text in
direction controls; variation selectors and the Hangul fillers show as nothing. The names are the
made-up clients of tests/rules/register_clients.py; the numbers Skatteverket's test numbers.
"""

from __future__ import annotations

import unicodedata

import pytest

from models.findings import Segment
from rules import engine
from rules.engine import ScanContext
from rules.normalize import normalize
from tests.conftest import TEST_KEY, TODAY, test_personnummer
from tests.rules.test_register import index

PNR = test_personnummer(3)


def kinds(text: str) -> list[str]:
    ctx = ScanContext(fingerprint_key=TEST_KEY, today=TODAY, client_register=index())
    return [f.kind for f in engine.scan([Segment(part="p", text=text)], ctx)]


@pytest.mark.parametrize(
    "name", ["Ingegerd Öhrnvall", "Karl-Erik Tjärnlöv", "Sälgström, Eva Gunborg", "fru Öhrnvall"]
)
def test_a_decomposed_name_as_macos_stores_it_is_the_clients_name(name: str) -> None:
    decomposed = unicodedata.normalize("NFD", f"Genomförandeplan {name}.pdf")
    assert decomposed != unicodedata.normalize("NFC", decomposed)
    assert kinds(decomposed) == kinds(unicodedata.normalize("NFC", decomposed))
    assert "client_name" in kinds(decomposed)


def test_the_found_name_covers_its_marks_in_the_original() -> None:
    text = unicodedata.normalize("NFD", "Hej Ingegerd Öhrnvall!")
    ctx = ScanContext(fingerprint_key=TEST_KEY, today=TODAY, client_register=index())
    (finding,) = engine.scan([Segment(part="p", text=text)], ctx)
    assert unicodedata.normalize("NFC", text[finding.start : finding.end]) == "Ingegerd Öhrnvall"


def test_marks_on_digits_compose_nothing_and_change_nothing() -> None:
    text = f"Brukare {PNR[:8]}\u0301-{PNR[8:]}"  # an accent over a digit has no composed form
    assert normalize(text).text == text


@pytest.mark.parametrize(
    "control",
    [
        "\u202a",
        "\u202b",
        "\u202c",
        "\u202d",
        "\u202e",
        "\u2066",
        "\u2067",
        "\u2068",
        "\u2069",
        "\ufe0f",
        "\u180b",
        "\u3164",
    ],
)
def test_a_direction_control_or_variation_selector_inside_a_number_is_ignored(control: str) -> None:
    text = f"Brukare {PNR[:4]}{control}{PNR[4:8]}-{control}{PNR[8:]} idag"
    assert kinds(text) == ["personnummer"]


def test_teams_wrapping_a_copied_number_in_direction_controls_still_finds_it() -> None:
    assert kinds(f"Pnr: \u202a{PNR[:8]}-{PNR[8:]}\u202c") == ["personnummer"]
