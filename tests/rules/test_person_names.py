"""Unknown persons: a name the shipped NER model finds, in a message about care, that is not staff."""

from __future__ import annotations

import hashlib
import hmac

from gateway.ner import person_spans
from models.config import StaffMember
from models.findings import Finding, Segment
from rules import person_names
from rules.engine import ScanContext, hits, scan
from rules.hits import Hit
from rules.normalize import normalize
from rules.words import CARE_WORDS
from tests.conftest import TEST_KEY, TODAY

# Every name here is made up.
CLIENT = "Ingvor Kallesund"
CARE_MESSAGE = f"Hej!\nBrukaren {CLIENT} fick sin medicin kl 8."
STAFF = "Ronja Stålmark"
SIGNED = "Vårdtagaren Tyra Hellsmo vägrade ta läkemedlet i morse.\n\nHälsningar\nRonja Stålmark\n"


def ctx(**fields: object) -> ScanContext:
    """The context the gateway builds: the shipped model, no staff, warn, unless a test says otherwise."""
    given: dict[str, object] = {"person_spans": person_spans, **fields}
    return ScanContext(fingerprint_key=TEST_KEY, today=TODAY, **given)  # type: ignore[arg-type]


def names(findings: list[Finding] | list[Hit], text: str) -> list[str]:
    return [text[f.start : f.end] for f in findings if f.kind == "person_name"]


def scan_text(text: str, context: ScanContext, part: str = "body:text/plain") -> list[Finding]:
    return list(scan([Segment(part=part, text=text)], context))


def test_a_made_up_name_in_a_care_message_is_a_warning() -> None:
    (finding,) = scan_text(CARE_MESSAGE, ctx())
    assert (finding.rule, finding.kind, finding.severity) == ("person-name", "person_name", "warn")
    assert CARE_MESSAGE[finding.start : finding.end] == CLIENT
    assert (finding.location.line, finding.location.column) == (2, 10)
    assert finding.masked == "I***** K********"
    assert finding.fingerprint == hmac.new(TEST_KEY, b"ingvor kallesund", hashlib.sha256).hexdigest()
    assert finding.customer_number is None
    assert "kundnummer" in finding.suggestion


def test_the_fingerprint_keeps_diacritics_and_folds_case() -> None:
    text = "Brukaren Åsa Öhrnvik har fått ny diagnos."
    (finding,) = scan_text(text, ctx())
    expected = hmac.new(TEST_KEY, "åsa öhrnvik".encode(), hashlib.sha256).hexdigest()
    assert finding.fingerprint == expected and finding.masked == "Å** Ö******"


def test_the_same_name_without_care_context_is_no_finding() -> None:
    calls: list[str] = []

    def recording(text: str) -> list[tuple[int, int]]:
        calls.append(text)
        return person_spans(text)

    text = f"Hej!\n{CLIENT} kommer på fredagsfikat kl 8."
    assert person_spans(text), "the model does see the name; only the missing care context clears it"
    assert scan_text(text, ctx(person_spans=recording)) == []
    assert calls == [], "without care context the model is not even asked"


def test_a_care_word_in_the_subject_makes_the_whole_message_about_care() -> None:
    segments = [
        Segment(part="header:Subject", text="Ändrad insats"),
        Segment(part="body:text/plain", text=f"{CLIENT} vill ha besöket på eftermiddagen i stället."),
    ]
    text = segments[1].text
    assert not person_names.has_care_context(text)
    assert person_spans(text)
    found = list(scan(segments, ctx()))
    assert [(f.kind, f.location.part) for f in found] == [("person_name", "body:text/plain")]


def test_correspondents_in_address_headers_are_not_findings() -> None:
    segments = [
        Segment(part="header:From", text="Edvin Lindqvarn edvin@example.org"),
        Segment(part="header:To", text="Ronja Stålmark ronja@example.org"),
        Segment(part="body:text/plain", text="Dosetten är påfylld."),
    ]
    assert list(scan(segments, ctx())) == []


def test_care_words_are_whole_words() -> None:
    assert person_names.has_care_context("Brukaren sov gott.")
    assert person_names.has_care_context("ny MEDICIN i dosetten")
    assert not person_names.has_care_context("Hon kunde inte komma.")  # kund is care, kunde is not
    assert not person_names.has_care_context("Vi ses på fredag.")


def test_every_care_word_in_any_case_is_care_context() -> None:
    for word in CARE_WORDS:
        for written in (word, word.upper(), word.capitalize(), f"({word}),"):
            assert person_names.has_care_context(f"Om {written} i dag"), written


def test_a_staff_name_from_config_is_no_finding() -> None:
    without = scan_text(SIGNED, ctx())
    assert names(without, SIGNED) == ["Tyra Hellsmo", STAFF], "the model finds both names"
    staff = person_names.staff_names([StaffMember(address="ronja@example.org", name=STAFF)])
    assert names(scan_text(SIGNED, ctx(staff_names=staff)), SIGNED) == ["Tyra Hellsmo"]


def test_staff_match_folds_case_and_diacritics_and_accepts_first_or_surname_alone() -> None:
    staff = person_names.staff_names([StaffMember(name="Ronja Stålmark"), "maj-lis.fjordvik@example.org"])
    assert staff == {"ronja stalmark", "maj lis fjordvik"}
    for written in (
        "RONJA STALMARK",
        "Ronja",
        "Stålmarks",
        "Stålmark, Ronja",
        "Maj-Lis Fjordvik",
        "Fjordviks",
    ):
        assert person_names.is_staff(written, staff), written
    for written in ("Ronja Kallesund", "Ingvor", "Tyra Hellsmo"):
        assert not person_names.is_staff(written, staff), written


def test_a_staff_entry_written_as_a_plain_name_is_a_name() -> None:
    assert person_names.staff_names(["Ronja Stålmark", "edvin.lindqvarn@example.org"]) == {
        "ronja stalmark",
        "edvin lindqvarn",
    }


def test_an_address_that_does_not_spell_a_name_gives_no_staff_name() -> None:
    assert person_names.staff_names(["hemtjanst@example.org", "r.s1@example.org"]) == frozenset()


def test_severity_comes_from_config() -> None:
    assert [f.severity for f in scan_text(CARE_MESSAGE, ctx(person_name_severity="block"))] == ["block"]


def test_off_means_the_model_is_never_called() -> None:
    def must_not_run(text: str) -> list[tuple[int, int]]:
        raise AssertionError("NER called with policy.person_name off")

    hits_found = person_names.detect(normalize(CARE_MESSAGE), None, must_not_run, frozenset(), "off")
    assert list(hits_found) == []
    assert scan_text(CARE_MESSAGE, ctx(person_spans=None)) == []


def spans_of(*names: str) -> person_names.PersonSpans:
    """A stand-in for the model that reports exactly these strings: for what the rule does with a span."""

    def find(text: str) -> list[tuple[int, int]]:
        return [(text.index(n), text.index(n) + len(n)) for n in names if n in text]

    return find


def test_a_title_the_model_takes_into_the_name_is_left_out() -> None:
    text = "Fru Kallesund fick fel dos av medicinen. Brukaren Tyra Hellsmo också."
    found = hits(text, ctx(person_spans=spans_of("Fru Kallesund", "Brukaren Tyra Hellsmo")))
    assert names(found, text) == ["Kallesund", "Tyra Hellsmo"]
    assert [h.canonical for h in found] == ["kallesund", "tyra hellsmo"]


def test_the_name_of_a_care_unit_is_not_a_person() -> None:
    text = "Tyra Hellsmo fick sin medicin.\nHälsningar\nHemtjänsten Norr"
    found = hits(text, ctx(person_spans=spans_of("Tyra Hellsmo", "Hemtjänsten Norr")))
    assert names(found, text) == ["Tyra Hellsmo"]


def test_a_span_that_does_not_start_with_a_capital_is_not_a_name() -> None:
    text = "Brukaren fick medicin kl 8 i morse."
    assert hits(text, ctx(person_spans=spans_of("medicin kl", "8"))) == []


def test_a_name_another_detector_reports_is_reported_once() -> None:
    person = Hit("person-name", "person_name", "warn", 9, 25, "ingvor kallesund", "I***** K********")
    client = Hit("client-name", "client_name", "block", 9, 25, "ingvor kallesund", "I***** K********")
    elsewhere = Hit("person-name", "person_name", "warn", 40, 52, "tyra hellsmo", "T*** H******")
    assert person_names.yield_to_other_findings([person, client, elsewhere]) == [client, elsewhere]


def test_positions_refer_to_the_original_text_when_invisible_characters_were_dropped() -> None:
    text = "Brukaren\u200b Ingvor Kallesund fick sin medicin."
    assert names(scan_text(text, ctx()), text) == [CLIENT]
