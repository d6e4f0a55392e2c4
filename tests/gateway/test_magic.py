"""A file is what its bytes say: the magic numbers decide before the declared type and the file name,
which decide only for formats the bytes do not name (text, HTML, CSV, calendars). A disagreement is
shown beside the attachment's name, never a reason to refuse it."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from functools import cache
from pathlib import Path

import pytest
from PIL import Image

from gateway import attachments
from gateway.extractors.base import Extracted
from tests.gateway.test_attachments import (
    CLEAN,
    PNR,
    docx_file,
    image_file,
    lint_json,
    mail_with,
    parts,
    pdf_file,
    read_attachment,
    xls_file,
)


@pytest.fixture(autouse=True)
def _key(key_env: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@cache
def writer_file(text: str, target: str) -> bytes:
    """`text` saved by LibreOffice Writer as `target` (doc, rtf, pdf, docx, odt): files as an office
    program writes them, not as a test would guess them (scripts/install-system-deps installs it)."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    assert soffice, "LibreOffice Writer is missing: run scripts/install-system-deps"
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "plan.txt"
        source.write_text(f"Genomförandeplan\n\n{text}\n\nInsatser enligt beslut.\n", encoding="utf-8")
        subprocess.run(
            [
                soffice,
                f"-env:UserInstallation=file://{folder}/profil",  # its own profile: runs never collide
                "--headless",
                "--infilter=Text (encoded):UTF8,LF,,,",
                "--convert-to",
                target,
                "--outdir",
                folder,
                str(source),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        return (Path(folder) / f"plan.{target}").read_bytes()


def read(name: str, data: bytes, content_type: str = "application/octet-stream") -> Extracted:
    return read_attachment(name, data, content_type)


# ---- the bytes win ----------------------------------------------------------------------------------


def test_an_rtf_file_sent_as_a_word_97_document_is_read_as_rtf_and_the_disagreement_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rtf = writer_file(f"Brukarens personnummer {PNR[:8]}-{PNR[8:]}", "rtf")
    result = lint_json(mail_with("brev.doc", rtf, "application/msword"), tmp_path, capsys)
    assert result["verdict"] == "block" and result["unscanned"] == []
    assert parts(result) == ["attachment:brev.doc [RTF, deklarerad som application/msword]"]


def test_the_same_rtf_file_without_a_number_passes_fully_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = lint_json(
        mail_with("brev.doc", writer_file(CLEAN, "rtf"), "application/msword"), tmp_path, capsys
    )
    assert result["verdict"] == "pass" and result["unscanned"] == []


def test_a_word_97_document_is_read_with_no_disagreement() -> None:
    out = read("plan.doc", writer_file(CLEAN, "doc"), "application/msword")
    assert out.unscanned == [] and [s.part for s in out.segments] == ["attachment:plan.doc"]


def test_a_word_97_document_named_rtf_is_read_as_what_it_is_and_says_what_it_was_called() -> None:
    out = read("brev.rtf", writer_file(f"Brukarens personnummer {PNR}", "doc"), "application/rtf")
    assert out.unscanned == []
    [segment] = out.segments
    assert segment.part == "attachment:brev.rtf [OLE, deklarerad som application/rtf]" and PNR in segment.text


def test_a_word_document_sent_as_a_pdf_is_read_as_word(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docx = docx_file(f"Brukarens personnummer {PNR}")
    result = lint_json(mail_with("plan.pdf", docx, "application/pdf"), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert parts(result) == ["attachment:plan.pdf [zip, deklarerad som application/pdf]/brödtext"]


def test_a_pdf_named_as_text_is_read_as_a_pdf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = writer_file(f"Brukarens personnummer {PNR[:8]}-{PNR[8:]}", "pdf")
    result = lint_json(mail_with("plan.txt", data, "text/plain"), tmp_path, capsys)
    assert result["verdict"] == "block"
    # text/plain names no format of its own: the name's ending is what disagreed.
    assert parts(result) == ["attachment:plan.txt [PDF, filnamnet slutar på .txt]/sida 1"]


def test_an_excel_97_workbook_sent_as_a_word_document_is_read_as_a_workbook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A Word type on an OLE file is no disagreement: Word 97-2003 files are OLE files too.
    result = lint_json(mail_with("lista.xls", xls_file(int(PNR)), "application/msword"), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert parts(result) == ["attachment:lista.xls/Blad1!C7"]


def test_a_png_named_jpeg_is_read_with_nothing_to_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = image_file(f"Personnummer {PNR[:8]}-{PNR[8:]}", "PNG")
    result = lint_json(mail_with("skannad.jpg", png, "image/jpeg"), tmp_path, capsys)
    assert parts(result) == ["attachment:skannad.jpg"]


def test_a_pdf_after_junk_with_no_name_or_type_is_still_read_as_a_pdf() -> None:
    junk_first = b"\r\n-- mottaget via skrivarens e-post --\r\n" + pdf_file(f"Personnummer {PNR}")
    out = read("bilaga", junk_first)
    assert [s.part for s in out.segments if PNR in s.text] == ["attachment:bilaga/sida 2"]


# ---- the declared type decides what the bytes do not name ----------------------------------------------


def test_an_html_page_sent_as_plain_text_is_read_as_the_text_it_was_declared() -> None:
    page = f"<html><body><p>Brukare {PNR}</p></body></html>".encode()
    out = read("sida.txt", page, "text/plain")
    assert [s.part for s in out.segments] == ["attachment:sida.txt"]
    assert "<p>" in out.segments[0].text  # plain text keeps the tags: it was not read as HTML


def test_a_csv_file_that_is_rtf_inside_is_read_as_rtf() -> None:
    rtf = writer_file(f"Brukarens personnummer {PNR[:8]}-{PNR[8:]}", "rtf")
    out = read("lista.csv", rtf, "text/csv")
    assert [s.part for s in out.segments if PNR[:8] in s.text] == [
        "attachment:lista.csv [RTF, deklarerad som text/csv]"
    ]


def test_a_note_that_starts_like_a_netpbm_header_is_read_as_the_text_it_was_declared() -> None:
    for start in ("P1 12 34 besök hos brukaren\n", "P5 10 20 30 besök\n", "P3\n2 2\n255\nbesök 10234\n"):
        out = read("anteckning.txt", f"{start}Brukare {PNR}".encode(), "text/plain")
        assert out.unscanned == [] and [s.part for s in out.segments] == ["attachment:anteckning.txt"]


@pytest.mark.parametrize(
    "start", ["P1 12 34 besök hos brukaren\n", "P3\n2 2\n255\nbesök 10234\n"], ids=["P1", "P3"]
)
def test_a_note_with_no_type_or_name_that_starts_like_an_ascii_netpbm_header_is_text(start: str) -> None:
    out = read("anteckning", f"{start}Brukare {PNR}".encode())  # words follow: no ASCII picture
    assert out.unscanned == [] and [s.part for s in out.segments] == ["attachment:anteckning"]


# ---- the table: every format it names, from a file a real program wrote ---------------------------------


def pillow(fmt: str, mode: str = "L", **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (64, 48), "white").save(buffer, format=fmt, **options)
    return buffer.getvalue()


def netpbm(magic: str) -> bytes:
    import netpbmfile
    import numpy

    buffer = io.BytesIO()
    shape = (48, 64, 3) if magic in ("P3", "P6", "P7") else (48, 64)
    netpbmfile.imwrite(buffer, numpy.zeros(shape, dtype="uint8") + (magic != "P1"), magicnumber=magic)
    return buffer.getvalue()


def packed(kind: str) -> bytes:
    text = CLEAN.encode() * 20
    if kind == "tar":
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            info = tarfile.TarInfo("plan.txt")
            info.size = len(text)
            archive.addfile(info, io.BytesIO(text))
        return buffer.getvalue()
    if kind == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("plan.txt", text)
        return buffer.getvalue()
    return {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress}[kind](text)


WRITTEN: list[tuple[str, object]] = [
    ("PDF", lambda: writer_file(CLEAN, "pdf")),
    ("RTF", lambda: writer_file(CLEAN, "rtf")),
    ("OLE", lambda: writer_file(CLEAN, "doc")),
    ("zip", lambda: writer_file(CLEAN, "docx")),
    ("zip", lambda: writer_file(CLEAN, "odt")),
    ("zip", lambda: packed("zip")),
    ("OLE", lambda: xls_file(10234)),
    ("PNG", lambda: pillow("PNG")),
    ("JPEG", lambda: pillow("JPEG")),
    ("GIF", lambda: pillow("GIF")),
    ("TIFF", lambda: pillow("TIFF")),
    ("TIFF", lambda: pillow("TIFF", "1", compression="group4")),
    ("BMP", lambda: pillow("BMP")),
    ("BMP", lambda: pillow("BMP", "RGB")),
    ("WebP", lambda: pillow("WEBP", "RGB")),
    ("JPEG 2000", lambda: pillow("JPEG2000", "RGB")),
    ("netpbm", lambda: pillow("PPM", "1")),
    ("netpbm", lambda: pillow("PPM", "L")),
    ("netpbm", lambda: pillow("PPM", "RGB")),
    ("netpbm", lambda: netpbm("P1")),
    ("netpbm", lambda: netpbm("P2")),
    ("netpbm", lambda: netpbm("P3")),
    ("netpbm", lambda: netpbm("P5")),  # netpbmfile writes its header on one line
    ("netpbm", lambda: netpbm("P7")),
    ("gzip", lambda: packed("gzip")),
    ("bzip2", lambda: packed("bzip2")),
    ("xz", lambda: packed("xz")),
    ("tar", lambda: packed("tar")),
]


@pytest.mark.parametrize(
    ("label", "make"), WRITTEN, ids=[f"{label}-{i}" for i, (label, _) in enumerate(WRITTEN)]
)
def test_every_format_in_the_table_is_known_by_the_bytes_its_program_writes(label: str, make: object) -> None:
    data = make()  # type: ignore[operator]
    magic = attachments.magic_of(data)
    assert magic is not None and magic.label == label


@pytest.mark.parametrize(
    "text",
    [b"Hej!\nBesok hos brukaren.", b"<html><body>hej</body></html>", b"kundnummer;namn\n10234;Kim\n", b""],
    ids=["text", "html", "csv", "empty"],
)
def test_text_formats_have_no_magic(text: bytes) -> None:
    assert attachments.magic_of(text) is None


def test_text_sent_as_text_under_a_word_97_name_is_read_as_text() -> None:
    # As in mime4j's test mail: "Список.doc", text/plain, and a line of text inside.
    out = read("Список.doc", f"Salutations, brukare {PNR}\r\n".encode(), "text/plain")
    assert out.unscanned == [] and [s.part for s in out.segments] == ["attachment:Список.doc"]


def test_text_sent_as_a_word_97_document_is_read_as_the_text_it_is() -> None:
    # No magic: Word's own "plain text" or "web page" saved under a .doc name is read as such.
    out = read("plan.doc", f"Salutations, brukare {PNR}\r\n".encode(), "application/msword")
    assert out.unscanned == [] and PNR in out.segments[0].text


@pytest.mark.parametrize("ctype", ["image/png", "application/postscript", "application/pdf"])
def test_an_empty_file_holds_nothing_to_read(ctype: str) -> None:
    # As real mail has them: an empty PNG, an empty PostScript part.
    out = read("tom", b"", ctype)
    assert out.segments == [] and out.unscanned == []
