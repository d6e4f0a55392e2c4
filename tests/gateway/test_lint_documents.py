"""`brukarvakt lint` reads a document as the gateway reads the same file attached to a message.

Read as plain text, a Word file, a workbook, a PDF or a text file saved as "Unicode" (UTF-16)
showed nothing and linted clean (exit 0): a care worker who checked an attachment before sending
it was told it was fine. The files are made by their formats' libraries; the numbers are
Skatteverket's test numbers.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import docx
import openpyxl
import pytest

from gateway.cli import main
from gateway.lint import is_document
from tests.conftest import test_personnummer

PNR = test_personnummer(3)
WRITTEN = f"{PNR[:8]}-{PNR[8:]}"
CLEAN = "Genomförandeplan för kund 10234."


@pytest.fixture(autouse=True)
def _key(key_env: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("policy: {person_name: 'off'}\n", encoding="utf-8")


def lint_json(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = main(["lint", "--format", "json", str(path)])
    out, _ = capsys.readouterr()
    (result,) = json.loads(out)["files"]
    assert PNR not in out and PNR[2:] not in out
    return code, result


def word(text: str) -> bytes:
    document = docx.Document()
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def workbook(text: str) -> bytes:
    book = openpyxl.Workbook()
    book.active["C7"] = text
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def pdf(text: str) -> bytes:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 760, text)
    page.showPage()
    page.save()
    return buffer.getvalue()


def unicode_text(text: str) -> bytes:
    return text.encode("utf-16")  # Notepad's and Excel's "Unicode text"


MAKERS = {"plan.docx": word, "lista.xlsx": workbook, "plan.pdf": pdf, "lista.txt": unicode_text}


@pytest.mark.parametrize("name", MAKERS)
def test_a_document_with_a_number_lints_as_blocked_and_names_where(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_bytes(MAKERS[name](f"Brukaren {WRITTEN} behöver hjälp."))
    code, result = lint_json(path, capsys)
    assert code == 1 and result["verdict"] == "block"
    findings = result["findings"]
    assert isinstance(findings, list) and [f["kind"] for f in findings] == ["personnummer"]
    assert findings[0]["location"]["part"].startswith(name)


@pytest.mark.parametrize("name", MAKERS)
def test_the_same_document_without_it_lints_clean(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_bytes(MAKERS[name](CLEAN))
    code, result = lint_json(path, capsys)
    assert code == 0 and result["verdict"] == "pass" and result["unscanned"] == []


def test_a_document_that_cannot_be_read_is_unscannable_not_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("lista.txt", "Kund 10234")
    locked = bytearray(buffer.getvalue())
    central = bytes(locked).index(b"PK\x01\x02")
    locked[6] |= 0x1  # the member's "encrypted" flag, as a password-protected zip has it,
    locked[central + 8] |= 0x1  # in its local header and in the directory
    path = tmp_path / "lista.zip"
    path.write_bytes(bytes(locked))
    code, result = lint_json(path, capsys)
    assert code == 1 and result["verdict"] == "block" and result["unscanned"]


@pytest.mark.parametrize(
    ("data", "document"),
    [
        ("Hej, brukaren mår bra.\n".encode(), False),
        ("Hej, brukaren mår bra.\n".encode("cp1252"), False),
        (b"%PDF-1.4\n", True),
        (b"{\\rtf1\\ansi Hej}", True),
        ("Hej".encode("utf-16-le"), True),
    ],
    ids=["utf-8 text", "cp1252 text", "pdf", "rtf", "utf-16 text"],
)
def test_text_stays_text_and_a_documents_bytes_make_it_a_document(data: bytes, document: bool) -> None:
    assert is_document(data) is document
