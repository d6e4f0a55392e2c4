"""Pictures in every format Tesseract's Leptonica reads are read by text recognition: a Skatteverket
test number typed into the picture is found. A picture cut off in transfer is read as far as it
goes; one of which nothing arrived is unscannable, with a reason a sender understands."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from gateway.extractors import images
from gateway.extractors.base import Extracted
from tests.gateway.test_attachments import FONT, PNR, lint_json, mail_with, parts, read_attachment, typed_page

TYPED = f"Personnummer {PNR[:8]}-{PNR[8:]}"


@pytest.fixture(autouse=True)
def _key(key_env: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def saved(picture: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def netpbm(picture: Image.Image, magic: str, depth: str = "uint8") -> bytes:
    """ASCII netpbm, PAM and 16-bit samples, which Pillow does not write: netpbmfile does."""
    import netpbmfile
    import numpy

    pixels = numpy.asarray(picture)
    if depth == "uint16":
        pixels = pixels.astype("uint16") * 257
    buffer = io.BytesIO()
    netpbmfile.imwrite(buffer, pixels, magicnumber=magic)
    return buffer.getvalue()


def transparent_gif(text: str) -> bytes:
    """Black writing on a transparent background, as a mail program's screenshot tool saves it."""
    page = typed_page(text).convert("P")
    return saved(page, "GIF", transparency=page.getpixel((0, 0)))


def animated_gif(text: str) -> bytes:
    """A banner whose first frame holds the writing; the frames after it are a spinner's."""
    first = typed_page(text).convert("P")
    spinner = [Image.new("P", first.size, 255) for _ in range(3)]
    for i, frame in enumerate(spinner):
        ImageDraw.Draw(frame).ellipse((10 + 20 * i, 10, 30 + 20 * i, 30), fill=0)
    return saved(first, "GIF", save_all=True, append_images=spinner, duration=200, loop=0)


def on_glass(text: str) -> Image.Image:
    """Black writing whose background is fully transparent (an alpha channel, not a colour key)."""
    page = typed_page(text)
    glass = Image.new("RGBA", page.size, (0, 0, 0, 0))
    glass.putalpha(page.point(lambda v: 255 - v))
    return glass


# name, type, the picture's bytes with `text` typed into it
PICTURES: list[tuple[str, str, Callable[[str], bytes]]] = [
    ("skannad.gif", "image/gif", lambda t: saved(typed_page(t), "GIF")),
    ("skärmklipp.gif", "image/gif", transparent_gif),
    ("hälsning.gif", "image/gif", animated_gif),
    ("skannad.bmp", "image/bmp", lambda t: saved(typed_page(t), "BMP")),
    ("skannad.webp", "image/webp", lambda t: saved(typed_page(t).convert("RGB"), "WEBP", lossless=True)),
    ("skannad.jp2", "image/jp2", lambda t: saved(typed_page(t), "JPEG2000")),
    ("skannad.pbm", "image/x-portable-bitmap", lambda t: saved(typed_page(t).convert("1"), "PPM")),
    ("skannad.pgm", "image/x-portable-graymap", lambda t: saved(typed_page(t), "PPM")),
    ("skannad.ppm", "image/x-portable-pixmap", lambda t: saved(typed_page(t).convert("RGB"), "PPM")),
    ("ascii.pbm", "application/octet-stream", lambda t: netpbm(typed_page(t).point(lambda v: v < 128), "P1")),
    ("ascii.pgm", "application/octet-stream", lambda t: netpbm(typed_page(t), "P2")),
    ("ascii.ppm", "application/octet-stream", lambda t: netpbm(typed_page(t).convert("RGB"), "P3")),
    ("skannad.pam", "application/octet-stream", lambda t: netpbm(typed_page(t).convert("RGB"), "P7")),
    ("16bit.pgm", "image/x-portable-graymap", lambda t: netpbm(typed_page(t), "P5", "uint16")),
    ("16bit.png", "image/png", lambda t: saved(typed_page(t).convert("I;16"), "PNG")),
    ("genomskinlig.png", "image/png", lambda t: saved(typed_page(t), "PNG", transparency=255)),
    ("alfa.png", "image/png", lambda t: saved(on_glass(t), "PNG")),
]


@pytest.mark.parametrize(("name", "ctype", "build"), PICTURES, ids=[p[0] for p in PICTURES])
def test_a_number_typed_into_a_picture_is_found_in_every_format(
    name: str, ctype: str, build: Callable[[str], bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = lint_json(mail_with(name, build(TYPED), ctype), tmp_path, capsys)
    assert result["verdict"] == "block", result
    assert result["unscanned"] == []
    assert parts(result) == [f"attachment:{name}"]  # an animation's first frame: no page numbers


@pytest.mark.parametrize(
    ("name", "build"),
    [("skannad", lambda t: saved(typed_page(t), "PPM")), ("skannad", transparent_gif)],
    ids=["binary-pgm", "gif"],
)
def test_a_picture_with_no_type_or_name_is_known_by_its_bytes(
    name: str, build: Callable[[str], bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A white page of PGM is mostly 0xff bytes: printable in cp1252, it was read as text before.
    result = lint_json(mail_with(name, build(TYPED)), tmp_path, capsys)
    assert result["verdict"] == "block" and parts(result) == [f"attachment:{name}"]


# ---- pictures cut off in transfer ---------------------------------------------------------------------


def letter(number_last: bool = False) -> Image.Image:
    """A typed letter of twenty-one lines: the number on its first line (or its last), the others
    other writing."""
    page = Image.new("L", (1654, 1400), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(str(FONT), 40)
    lines = [f"Rad {line}: insatser enligt beslut, kundnummer 10234." for line in range(20)]
    lines.insert(len(lines) if number_last else 0, TYPED)
    for number, line in enumerate(lines):
        draw.text((100, 60 + 62 * number), line, font=font, fill="black")
    return page


def read(name: str, data: bytes, ctype: str) -> Extracted:
    return read_attachment(name, data, ctype)


@pytest.mark.parametrize(
    ("name", "fmt", "options"),
    [
        ("brev.png", "PNG", {}),
        ("brev.jpg", "JPEG", {}),
        ("progressiv.jpg", "JPEG", {"progressive": True}),
        ("brev.tif", "TIFF", {}),
        ("brev.gif", "GIF", {"interlace": False}),
    ],
    ids=["png", "jpeg", "progressive-jpeg", "tiff", "gif"],
)
def test_a_picture_cut_off_below_the_number_is_read_as_far_as_it_goes(
    name: str, fmt: str, options: dict[str, object]
) -> None:
    whole = saved(letter(), fmt, **options)
    cut = whole[: len(whole) // 2]
    with pytest.raises(OSError):  # the cut is real: Pillow alone refuses the file
        Image.open(io.BytesIO(cut)).load()
    out = read(name, cut, "application/octet-stream")
    assert out.unscanned == []
    assert [s.part for s in out.segments if f"{PNR[:8]}-{PNR[8:]}" in s.text] == [f"attachment:{name}"]


@pytest.mark.parametrize(
    ("name", "fmt", "keep"),
    [("brev.png", "PNG", 100), ("brev.jpg", "JPEG", 300), ("brev.webp", "WEBP", 2000)],
    ids=["png-header-only", "jpeg-tables-only", "webp-cut"],
)
def test_a_picture_cut_off_before_anything_of_it_arrived_is_unscannable(
    name: str, fmt: str, keep: int
) -> None:
    whole = saved(letter(), fmt)
    out = read(name, whole[:keep], "application/octet-stream")
    assert out.segments == []
    assert [(u.name, u.reason) for u in out.unscanned] == [(f"attachment:{name}", images.CUT_OFF)]


def test_an_interlaced_picture_cut_off_shows_only_stripes_and_is_unscannable() -> None:
    whole = saved(letter(), "GIF", interlace=True)  # Pillow's default: every 8th row comes first
    out = read("brev.gif", whole[: len(whole) // 3], "image/gif")
    assert out.segments == []
    assert [(u.name, u.reason) for u in out.unscanned] == [("attachment:brev.gif", images.NOTHING_READ)]


def test_a_bitmap_cut_off_keeps_its_bottom_rows_which_come_first() -> None:
    # BMP stores the rows bottom up: what arrived of a cut one is the lower part of the picture.
    whole = saved(letter(number_last=True), "BMP")
    out = read("brev.bmp", whole[: len(whole) // 2], "image/bmp")
    assert [s.part for s in out.segments if f"{PNR[:8]}-{PNR[8:]}" in s.text] == ["attachment:brev.bmp"]


def test_a_multipage_tiff_cut_in_its_second_page_keeps_the_first() -> None:
    first, second = typed_page(TYPED), typed_page("Sida två, inget nummer")
    whole = saved(first, "TIFF", save_all=True, append_images=[second, second])
    out = read("fax.tif", whole[: int(len(whole) * 0.45)], "image/tiff")
    assert [s.part for s in out.segments if f"{PNR[:8]}-{PNR[8:]}" in s.text] == ["attachment:fax.tif/sida 1"]
    assert out.unscanned == []  # the second page is read as far as it arrived, the third was never there
