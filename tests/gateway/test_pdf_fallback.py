"""A PDF damaged the way files get damaged (cut off in transfer, a wrong stream length, junk before
its header) is read by a second reader when pypdf gives up, its pages rendered for text recognition
where their text layer says nothing: a test number in it is found, not called unscannable. An
encrypted PDF stays unscannable as encrypted, and a file with nothing left is unscannable as damaged."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from gateway.extractors import pdf
from gateway.extractors.base import ENCRYPTED, Extracted
from tests.gateway.test_attachments import (
    CLEAN,
    PNR,
    csv_file,
    lint_json,
    mail_with,
    parts,
    read_attachment,
    typed_page,
)
from tests.gateway.test_attachments_limits import encrypted_pdf
from tests.gateway.test_magic import writer_file

TYPED = f"Brukarens personnummer {PNR[:8]}-{PNR[8:]}"


@pytest.fixture(autouse=True)
def _key(key_env: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def pypdf_refuses(data: bytes) -> bool:
    """Whether pypdf alone fails on the file: the damage is real, and the second reader is needed."""
    from pypdf import PdfReader

    try:
        for page in PdfReader(io.BytesIO(data), strict=False).pages:
            page.extract_text()
    except Exception:
        return True
    return False


def cut_before_xref(data: bytes) -> bytes:
    """The tail lost in transfer: the cross-reference table, the trailer and what follows."""
    return data[: data.rindex(b"\nxref") + 1]


def plan(pages: int = 3, broken_page: int | None = None) -> bytes:
    """A plan of several pages by reportlab (compressed streams), the number on page 1; with
    `broken_page`, that page's stream length is wrong by 37 bytes, as a careless editor leaves it."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    for number in range(1, pages + 1):
        page.drawString(72, 760, f"Genomförandeplan, sida {number}")
        if number == 1:
            page.drawString(72, 740, TYPED)
        for line in range(30):
            page.drawString(72, 700 - 20 * line, f"Rad {line}: insatser enligt beslut, kundnummer 10234.")
        page.showPage()
    page.save()
    data = buffer.getvalue()
    if broken_page is not None:
        length = list(re.finditer(rb"/Length (\d+)", data))[broken_page - 1]
        data = data[: length.start(1)] + str(int(length.group(1)) + 37).encode() + data[length.end(1) :]
    return data


def read(data: bytes, name: str = "plan.pdf") -> Extracted:
    return read_attachment(name, data, "application/pdf")


def found_in(out: Extracted) -> list[str]:
    return [s.part for s in out.segments if f"{PNR[:8]}-{PNR[8:]}" in s.text or PNR in s.text]


# ---- damaged as files get damaged: found ------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        cut_before_xref,
        lambda d: d[: d.rindex(b"trailer")],
        lambda d: d[: d.rindex(b"\nxref") + 120],
    ],
    ids=["xref-and-trailer-lost", "trailer-lost", "cut-in-the-xref-table"],
)
def test_a_writer_pdf_cut_off_at_its_tail_is_read(
    damage: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = damage(writer_file(TYPED, "pdf"))  # type: ignore[operator]
    assert pypdf_refuses(damaged)
    result = lint_json(mail_with("plan.pdf", damaged, "application/pdf"), tmp_path, capsys)
    assert result["verdict"] == "block" and result["unscanned"] == []
    assert parts(result) == ["attachment:plan.pdf/sida 1"]


def test_a_plan_cut_off_in_the_middle_of_a_later_page_is_read_as_far_as_it_goes() -> None:
    whole = plan(pages=10)
    damaged = whole[: int(len(whole) * 0.6)]  # pages 1-6 arrived, and the objects that list them
    assert pypdf_refuses(damaged)
    out = read(damaged)
    assert out.unscanned == [] and found_in(out) == ["attachment:plan.pdf/sida 1"]


def test_a_wrong_stream_length_is_read_by_the_second_reader() -> None:
    damaged = plan(broken_page=1)
    assert pypdf_refuses(damaged)
    out = read(damaged)
    assert out.unscanned == [] and found_in(out) == ["attachment:plan.pdf/sida 1"]


def test_what_pypdf_read_before_it_failed_is_not_counted_twice() -> None:
    damaged = plan(broken_page=2)  # pypdf reads page 1, with the number, then fails on page 2
    assert pypdf_refuses(damaged)
    out = read(damaged)
    assert found_in(out) == ["attachment:plan.pdf/sida 1"]
    assert out.pages == 3


def test_junk_before_the_header_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    damaged = b"\x00\x00Content-Length: 11395\r\n\r\n" + writer_file(TYPED, "pdf")
    result = lint_json(mail_with("plan.pdf", damaged, "application/pdf"), tmp_path, capsys)
    assert result["verdict"] == "block" and parts(result) == ["attachment:plan.pdf/sida 1"]


def test_a_damaged_scan_is_read_by_recognition_of_its_rendered_page() -> None:
    buffer = io.BytesIO()
    typed_page(TYPED).save(buffer, format="PDF", resolution=200)  # a page that is only a picture
    damaged = cut_before_xref(buffer.getvalue())
    assert pypdf_refuses(damaged)
    out = read(damaged, "skannad.pdf")
    assert out.unscanned == [] and found_in(out) == ["attachment:skannad.pdf/sida 1/bild"]


def test_a_damaged_form_keeps_its_filled_in_field_and_its_comment() -> None:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 760, "Ansökan om insats")
    page.acroForm.textfield(name="personnummer", value=PNR, x=72, y=700, width=200, height=20)
    page.textAnnotation(f"Kolla {PNR[:8]}-{PNR[8:]}", Rect=(72, 600, 200, 640))
    page.save()
    damaged = cut_before_xref(buffer.getvalue())
    assert pypdf_refuses(damaged)
    # (The page has little text of its own: its rendering, with the field drawn, is read too.)
    assert {"attachment:blankett.pdf/formulär", "attachment:blankett.pdf/sida 1/kommentarer"} <= set(
        found_in(read(damaged, "blankett.pdf"))
    )


def test_a_file_attached_inside_a_damaged_pdf_is_read() -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(writer_file(CLEAN, "pdf"))))
    writer.add_attachment("lista.csv", csv_file(PNR))
    buffer = io.BytesIO()
    writer.write(buffer)
    damaged = cut_before_xref(buffer.getvalue())
    assert pypdf_refuses(damaged)
    assert found_in(read(damaged)) == ["attachment:plan.pdf/lista.csv"]


# ---- what cannot be read stays unscannable --------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [lambda d: d, cut_before_xref, lambda d: b"\x00JUNK\r\n" + d],
    ids=["whole", "xref-and-trailer-lost", "junk-before-the-header"],
)
def test_an_encrypted_pdf_stays_unscannable_as_encrypted(damage: object) -> None:
    out = read(damage(encrypted_pdf("hemligt")))  # type: ignore[operator]
    assert out.segments == [] or all(not s.text.strip() or PNR not in s.text for s in out.segments)
    assert [(u.name, u.reason) for u in out.unscanned] == [("attachment:plan.pdf", ENCRYPTED)]


@pytest.mark.parametrize(
    "damaged",
    [
        pytest.param(lambda: writer_file(TYPED, "pdf")[:5000], id="cut-before-its-pages"),
        pytest.param(lambda: b"%PDF-1.7\n" + bytes(range(256)), id="header-and-noise"),
    ],
)
def test_a_pdf_with_nothing_readable_left_is_unscannable_as_damaged(damaged: object) -> None:
    out = read(damaged())  # type: ignore[operator]
    assert found_in(out) == []
    assert [(u.name, u.reason) for u in out.unscanned] == [("attachment:plan.pdf", pdf.DAMAGED)]


def test_damaged_pdfs_read_in_several_scan_threads_at_once_are_all_read() -> None:
    from concurrent.futures import ThreadPoolExecutor

    damaged = cut_before_xref(writer_file(TYPED, "pdf"))
    with ThreadPoolExecutor(4) as pool:  # the gateway's scan threads; PDFium itself is not thread-safe
        results = list(pool.map(lambda _: found_in(read(damaged)), range(12)))
    assert results == [["attachment:plan.pdf/sida 1"]] * 12
