"""What a person writes about a picture is read with its pixels: a photo's title, comment or
description in its EXIF (as Windows' Properties > Details writes them), a JPEG comment, a PNG's
text chunks, XMP's description.

A photo of a care situation carries no text to recognise; the client's name in its properties
passed unread. The pictures are made by Pillow; the numbers are Skatteverket's test numbers.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image, PngImagePlugin

from rules.engine import ScanContext, scan
from tests.conftest import TEST_KEY, TODAY, test_personnummer
from tests.gateway.test_attachments import read_attachment

PNR = test_personnummer(3)
WRITTEN = f"{PNR[:8]}-{PNR[8:]}"
CTX = ScanContext(fingerprint_key=TEST_KEY, today=TODAY)


def found(name: str, data: bytes) -> list[str]:
    out = read_attachment(name, data, "image/jpeg")
    assert out.unscanned == []
    return [f.location.part for f in scan(out.segments, CTX)]


def photo() -> Image.Image:
    return Image.new("RGB", (64, 48), (200, 180, 160))  # no writing to recognise


def jpeg(exif: Image.Exif | None = None, comment: bytes | None = None) -> bytes:
    buffer = io.BytesIO()
    options: dict[str, object] = {}
    if exif is not None:
        options["exif"] = exif
    if comment is not None:
        options["comment"] = comment
    photo().save(buffer, "JPEG", **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        (0x010E, f"Såret hos {WRITTEN}"),  # ImageDescription
        (0x9C9B, f"{WRITTEN}\0".encode("utf-16-le")),  # XPTitle, as Windows writes it
        (0x9C9C, f"Brukare {WRITTEN}\0".encode("utf-16-le")),  # XPComment
        (0x9C9F, f"{WRITTEN}\0".encode("utf-16-le")),  # XPSubject
    ],
    ids=["description", "windows title", "windows comment", "windows subject"],
)
def test_a_photos_exif_text_is_read(tag: int, value: object) -> None:
    exif = Image.Exif()
    exif[tag] = value
    assert found("foto.jpg", jpeg(exif)) == ["attachment:foto.jpg/egenskaper"]


def test_a_photos_exif_user_comment_is_read() -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + f"Brukare {WRITTEN}".encode("utf-16-le")
    assert found("foto.jpg", jpeg(exif)) == ["attachment:foto.jpg/egenskaper"]


def test_a_jpeg_comment_is_read() -> None:
    assert found("foto.jpg", jpeg(comment=f"Brukare {WRITTEN}".encode())) == [
        "attachment:foto.jpg/egenskaper"
    ]


def test_a_pngs_text_chunks_are_read() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Description", f"Brukare {WRITTEN}")
    info.add_itxt("Title", "Sår, vänster fot")
    buffer = io.BytesIO()
    photo().save(buffer, "PNG", pnginfo=info)
    assert found("foto.png", buffer.getvalue()) == ["attachment:foto.png/egenskaper"]


def test_an_xmp_description_is_read() -> None:
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"'
        ' xmpMM:DocumentID="xmp.did:0180117407206811"><dc:description><rdf:Alt>'
        f'<rdf:li xml:lang="x-default">Brukare {WRITTEN}</rdf:li></rdf:Alt></dc:description>'
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    buffer = io.BytesIO()
    photo().save(buffer, "JPEG", xmp=xmp.encode())
    assert found("foto.jpg", buffer.getvalue()) == ["attachment:foto.jpg/egenskaper"]


def test_a_plain_photo_has_nothing_to_find() -> None:
    exif = Image.Exif()
    exif[0x010F] = "Apple"  # the camera's make: machine text, no finding either way
    exif[0x0132] = "2026:11:26 10:15:30"
    assert found("foto.jpg", jpeg(exif)) == []
