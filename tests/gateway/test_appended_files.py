"""What follows the end of a picture, a PDF or a zip is read: a file of its own or text.

`copy /b bild.png + lista.txt` (or `cat`) gives a picture every viewer shows as before, with the
list behind it; a zip behind a PDF opens in any archive program. Each passed unread. A camera's
own binary trailer is neither a known file nor text, and makes nothing unscannable. The files are
made by Pillow, reportlab and zipfile; the numbers are Skatteverket's test numbers.
"""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from rules.engine import ScanContext, scan
from tests.conftest import TEST_KEY, TODAY, test_personnummer
from tests.gateway.test_attachments import read_attachment

PNR = test_personnummer(3)
WRITTEN = f"{PNR[:8]}-{PNR[8:]}"
CTX = ScanContext(fingerprint_key=TEST_KEY, today=TODAY)
LIST = f"\r\nAnna {WRITTEN}\r\n".encode()


def found(name: str, data: bytes) -> list[str]:
    out = read_attachment(name, data)
    assert out.unscanned == []
    return [f.location.part for f in scan(out.segments, CTX)]


def picture(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (60, 40), (210, 190, 170)).save(buffer, fmt)
    return buffer.getvalue()


def pdf() -> bytes:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 760, "Genomförandeplan för kund 10234")
    page.showPage()
    page.save()
    return buffer.getvalue()


def zipped(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("lista.txt", text)
    return buffer.getvalue()


CARRIERS = {"bild.png": lambda: picture("PNG"), "bild.jpg": lambda: picture("JPEG"), "plan.pdf": pdf}


@pytest.mark.parametrize("name", CARRIERS)
def test_text_appended_to_a_file_is_read(name: str) -> None:
    assert found(name, CARRIERS[name]() + LIST) == [f"attachment:{name}/efter filens slut"]


@pytest.mark.parametrize("name", CARRIERS)
def test_a_zip_appended_to_a_file_is_read_as_a_zip(name: str) -> None:
    appended = CARRIERS[name]() + zipped(f"Anna {WRITTEN}")
    assert found(name, appended) == [f"attachment:{name}/efter filens slut/lista.txt"]


def test_text_appended_to_a_zip_is_read() -> None:
    assert found("lista.zip", zipped("Kund 10234") + LIST) == ["attachment:lista.zip/efter filens slut"]


@pytest.mark.parametrize("name", CARRIERS)
def test_a_binary_trailer_or_padding_is_no_file_and_nothing_unscannable(name: str) -> None:
    for tail in (bytes(range(256)) * 8, b"\r\n\x00\x00\x00\x00"):  # a camera's data, padding
        assert found(name, CARRIERS[name]() + tail) == []
