"""Word 97-2003 documents (.doc) are read: their text by catdoc, their pictures by text recognition.

The files are written by LibreOffice Writer, as an office program writes them; the numbers are
Skatteverket's test numbers.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import docx
import olefile
import pytest
from PIL import Image, ImageDraw, ImageFont

from gateway.extractors import office
from gateway.extractors.base import ENCRYPTED, Extracted
from tests.gateway.test_attachments import CLEAN, PNR, lint_json, mail_with, read_attachment
from tests.gateway.test_magic import writer_file

PNR_DASHED = f"{PNR[:8]}-{PNR[8:]}"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


@pytest.fixture(autouse=True)
def _key(key_env: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def read(name: str, data: bytes, content_type: str = "application/msword") -> Extracted:
    return read_attachment(name, data, content_type)


@cache
def doc_with_picture(line: str) -> bytes:
    """A .doc whose only mention of `line` is a picture of it (a pasted scan), saved by LibreOffice."""
    picture = Image.new("RGB", (1100, 120), "white")
    ImageDraw.Draw(picture).text((10, 30), line, fill="black", font=ImageFont.truetype(FONT, 48))
    png = io.BytesIO()
    picture.save(png, "PNG")
    document = docx.Document()
    document.add_paragraph("Genomförandeplan")
    document.add_picture(io.BytesIO(png.getvalue()))
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    assert soffice, "LibreOffice Writer is missing: run scripts/install-system-deps"
    with tempfile.TemporaryDirectory() as folder:
        document.save(Path(folder) / "plan.docx")
        subprocess.run(
            [
                soffice,
                f"-env:UserInstallation=file://{folder}/profil",
                "--headless",
                "--convert-to",
                "doc",
                "--outdir",
                folder,
                str(Path(folder) / "plan.docx"),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        return (Path(folder) / "plan.doc").read_bytes()


def with_encryption_flag(doc: bytes) -> bytes:
    """The same file with the FIB's fEncrypted flag set, as Word's "protect with password" sets it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "plan.doc"
        path.write_bytes(doc)
        with olefile.OleFileIO(str(path), write_mode=True) as ole:
            stream = bytearray(ole.openstream("WordDocument").read())
            flags = int.from_bytes(stream[office.FIB_FLAGS], "little") | office.FIB_ENCRYPTED
            stream[office.FIB_FLAGS] = flags.to_bytes(2, "little")
            ole.write_stream("WordDocument", bytes(stream))
        return path.read_bytes()


def test_a_personnummer_in_a_word_97_document_blocks_the_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = writer_file(f"Brukarens personnummer {PNR_DASHED}", "doc")
    assert doc.startswith(office.OLE_MAGIC)
    result = lint_json(mail_with("plan.doc", doc, "application/msword"), tmp_path, capsys)
    assert result["verdict"] == "block" and result["unscanned"] == []
    assert [f["location"]["part"] for f in result["findings"]] == ["attachment:plan.doc"]


def test_a_clean_word_97_document_passes_fully_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = lint_json(
        mail_with("plan.doc", writer_file(CLEAN, "doc"), "application/msword"), tmp_path, capsys
    )
    assert (result["verdict"], result["findings"], result["unscanned"]) == ("pass", [], [])


def test_a_picture_in_a_word_97_document_is_read_by_text_recognition() -> None:
    out = read("plan.doc", doc_with_picture(f"Personnummer {PNR_DASHED}"))
    assert out.unscanned == []
    pictures = [s for s in out.segments if s.part == "attachment:plan.doc/bild-1"]
    assert len(pictures) == 1 and PNR_DASHED in pictures[0].text
    assert PNR_DASHED not in next(s.text for s in out.segments if s.part == "attachment:plan.doc")


def test_a_password_protected_word_97_document_is_unscannable_as_encrypted() -> None:
    out = read("plan.doc", with_encryption_flag(writer_file(CLEAN, "doc")))
    assert [(u.name, u.reason, u.encrypted) for u in out.unscanned] == [
        ("attachment:plan.doc", ENCRYPTED, False)
    ]


def test_a_web_page_saved_under_a_doc_name_is_read_as_a_web_page() -> None:
    page = f"<html><body><p>Brukare</p><p>{PNR_DASHED}</p></body></html>".encode()
    out = read("plan.doc", page)
    assert out.unscanned == [] and PNR_DASHED in out.segments[0].text and "<p>" not in out.segments[0].text


def test_bytes_that_are_no_word_file_and_no_text_are_unscannable_with_a_reason() -> None:
    out = read("plan.doc", bytes(range(256)) * 4)
    [unread] = out.unscanned
    assert unread.reason.startswith("Word-dokument i ett format som inte kan läsas")


def test_without_catdoc_on_the_server_a_word_97_document_is_unscannable_not_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(office, "CATDOC", ("brukarvakt-no-such-program", "-w"))
    out = read("plan.doc", writer_file(f"Brukarens personnummer {PNR_DASHED}", "doc"))
    [unread] = out.unscanned
    assert "catdoc saknas" in unread.reason and out.segments == []
