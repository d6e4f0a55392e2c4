"""Text recognition: a typed number in a picture is read, within the time limits, or the picture is
unscannable; never silently skipped."""

from __future__ import annotations

import pytest
from PIL import Image

from gateway import ocr
from gateway.extractors.base import Extracted, Unreadable
from models.config import Limits
from tests.gateway.test_attachments import PNR, typed_page


def test_a_typed_personnummer_in_a_scanned_page_is_read_with_its_digits() -> None:
    text = ocr.recognize(typed_page(f"Personnummer {PNR[:8]}-{PNR[8:]}"), Extracted(), Limits())
    assert f"{PNR[:8]}-{PNR[8:]}" in text
    assert "Genomförandeplan" in text  # Swedish letters: the Swedish language data is used


def test_digit_groups_split_by_recognition_are_also_offered_joined() -> None:
    assert ocr.with_joined_digits("pnr 1945 0312-1234\nannat") == "pnr 1945 0312-1234\n19450312-1234\nannat"
    assert ocr.with_joined_digits("450 312-1234 ok") == "450 312-1234 ok\n450312-1234"


@pytest.mark.parametrize(
    "line",
    ["inga siffror", "070 123 45 67", "kl 14 30 den 26 11", "19450312-1234 redan helt", "kund 10234 12 st"],
    ids=["no-digits", "phone", "times", "already-whole", "customer-number"],
)
def test_other_digit_groups_are_left_alone(line: str) -> None:
    assert ocr.with_joined_digits(line) == line


def test_the_time_spent_is_counted_against_the_message() -> None:
    out = Extracted()
    ocr.recognize(typed_page("Insats"), out, Limits())
    assert out.ocr_seconds > 0


def test_a_message_whose_recognition_budget_is_spent_is_unscannable() -> None:
    out = Extracted(ocr_seconds=30.0)
    with pytest.raises(Unreadable, match="textigenkänningen behöver mer än 25 s"):
        ocr.recognize(typed_page("Insats"), out, Limits())


def test_recognition_that_runs_past_its_timeout_is_stopped() -> None:
    noisy = Image.effect_noise((3000, 3000), 120).convert("L")  # far more work than 0.05 s
    with pytest.raises(Unreadable, match="textigenkänningen tog längre än 0.05 s"):
        ocr.recognize(noisy, Extracted(), Limits(ocr_timeout_seconds=0.05))


def test_without_tesseract_a_picture_is_unscannable(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    with pytest.raises(Unreadable, match="tesseract"):
        ocr.recognize(typed_page("Insats"), Extracted(), Limits())


def test_a_picture_too_large_is_refused_before_recognition() -> None:
    with pytest.raises(Unreadable, match="större än 10000 pixlar"):
        ocr.recognize(Image.new("L", (200, 200), 255), Extracted(), Limits(max_image_pixels=10_000))


def test_a_repeated_picture_is_read_once() -> None:
    out, cache = Extracted(), dict[str, str]()
    page = typed_page("Insats")
    first = ocr.recognize(page, out, Limits(), cache)
    spent = out.ocr_seconds
    assert ocr.recognize(page, out, Limits(), cache) == first
    assert out.ocr_seconds == spent


def test_a_thin_line_is_not_sent_to_recognition() -> None:
    out = Extracted()
    assert ocr.recognize(Image.new("L", (800, 3), 0), out, Limits()) == ""
    assert out.ocr_seconds == 0


def test_a_600_dpi_scan_is_read_at_300_dpi() -> None:
    page = Image.new("L", (4960, 7016), 255)  # A4 at 600 dpi
    assert max(ocr._prepared(page).size) == ocr.MAX_OCR_SIDE
    assert ocr._prepared(Image.new("L", (2480, 3508), 255)).size == (2480, 3508)  # 300 dpi: as it is
