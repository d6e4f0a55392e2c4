"""The engine: segments in, findings out, with location, masked form and fingerprint."""

from __future__ import annotations

import hashlib
import hmac

from models.findings import Segment
from rules.engine import ScanContext, redact, scan
from rules.normalize import normalize
from tests.conftest import TEST_KEY, TODAY

CTX = ScanContext(fingerprint_key=TEST_KEY, today=TODAY)


def test_a_finding_says_where_what_and_whose_fingerprint() -> None:
    text = "Hej,\nbrukaren 900107-9806 behöver hjälp."
    (finding,) = scan([Segment(part="body:text/plain", text=text)], CTX)
    assert finding.kind == "personnummer"
    assert finding.severity == "block"
    assert (finding.location.part, finding.location.line, finding.location.column) == (
        "body:text/plain",
        2,
        10,
    )
    assert finding.masked == "900107-****"
    expected = hmac.new(TEST_KEY, b"199001079806", hashlib.sha256).hexdigest()
    assert finding.fingerprint == expected
    assert "kundnummer" in finding.suggestion
    assert text[finding.start : finding.end] == "900107-9806"


def test_the_fingerprint_is_the_same_whatever_the_written_form() -> None:
    texts = ["199001079806", "900107-9806", "900107 9806", "１９９００１０７９８０６", "900107\n> 9806"]
    prints = {f.fingerprint for t in texts for f in scan([Segment(part="text", text=t)], CTX)}
    assert len(prints) == 1


def test_a_different_key_gives_a_different_fingerprint() -> None:
    other = ScanContext(fingerprint_key=b"another-key-of-enough-length", today=TODAY)
    seg = [Segment(part="text", text="900107-9806")]
    assert next(scan(seg, CTX)).fingerprint != next(scan(seg, other)).fingerprint


def test_a_file_name_holding_an_identifier_is_masked_in_the_location() -> None:
    seg = Segment(part="attachment:journal_199001079806.pdf", text="se 199001079806")
    (finding,) = scan([seg], CTX)
    assert "199001079806" not in finding.location.part
    assert "900107-****" in finding.location.part


def test_redact_masks_every_identifier() -> None:
    assert redact("Re: 900107-9806 och 19000101-0000", CTX) == "Re: 900107-**** och 19000101-0000"


def test_the_customer_number_comes_from_the_register_by_fingerprint() -> None:
    fp = hmac.new(TEST_KEY, b"199001079806", hashlib.sha256).hexdigest()
    ctx = ScanContext(fingerprint_key=TEST_KEY, today=TODAY, customer_by_fingerprint={fp: "10234"})
    (finding,) = scan([Segment(part="text", text="900107-9806")], ctx)
    assert finding.customer_number == "10234"
    assert finding.suggestion == "Skriv kundnummer 10234 i stället för personnumret."


def test_normalisation_keeps_ascii_text_as_it_is() -> None:
    n = normalize("plain text 123")
    assert n.text == n.original and n.origin is None


def test_normalisation_maps_unicode_digits_one_for_one() -> None:
    n = normalize("nr ١٢٣ och ４５６")
    assert n.text == "nr 123 och 456" and n.origin is None


def test_normalisation_drops_invisible_characters_and_remembers_where_they_were() -> None:
    n = normalize("a\u200bb\u00adc")
    assert n.text == "abc"
    assert [n.to_original(i) for i in range(3)] == [0, 2, 4]
