"""Attachments are read like the text: a Skatteverket test number in any supported format blocks the
message, with a location naming the attachment; the same file without it passes, fully read."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tarfile
import zipfile
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from xml.etree import ElementTree

import pytest
from PIL import Image

from gateway import attachments
from gateway.cli import main
from gateway.extractors.base import Attachment, Extracted
from models.config import Limits
from tests.conftest import skatteverket

DATA = Path(__file__).resolve().parent / "data"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
# Skatteverket test numbers: a 12-digit one, and one born in 2000 whose 10-digit form starts with 0.
PNR = next(p for p in skatteverket()["personnummer"] if p.startswith("194"))
PNR_2000 = next(p for p in skatteverket()["personnummer"] if p.startswith("2000"))
MASKED = f"{PNR[2:8]}-****"
CLEAN = "Besök hos brukaren med kundnummer 10234 klockan 14.00, insats enligt plan."


@pytest.fixture(autouse=True)
def _key(key_env: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


# ---- the message around a file, and lint's JSON about it --------------------------------------------


def read_attachment(name: str, data: bytes, content_type: str = "application/octet-stream") -> Extracted:
    """One attachment read by the registry alone, as the mail walk hands it over (default limits)."""
    out = Extracted()
    attachment = Attachment(
        part=f"attachment:{name}", name=name, content_type=content_type, data=data, charset=None, depth=1
    )
    attachments.extract(attachment, out, Limits())
    return out


def mail_with(filename: str, data: bytes, ctype: str = "application/octet-stream") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Kim Personal <personal@hemtjanst.example>"
    msg["To"] = "kollega@hemtjanst.example"
    msg["Subject"] = "Underlag"
    msg.set_content("Hej, se bifogad fil.")
    maintype, subtype = ctype.split("/", 1)
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def lint_json(message: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    path = tmp_path / "utkast.eml"
    path.write_bytes(message)
    config = tmp_path / "config.yaml"
    if not config.exists():  # identity numbers are the subject here: the name model stays out of it
        config.write_text("policy: {person_name: 'off'}\n", encoding="utf-8")
    main(["lint", "--config", str(config), "--format", "json", str(path)])
    out, _ = capsys.readouterr()
    (result,) = json.loads(out)["files"]
    assert PNR not in out and PNR[2:] not in out  # never in clear, whatever the format
    return dict(result)


def parts(result: dict[str, object]) -> list[str]:
    findings = result["findings"]
    assert isinstance(findings, list)
    return [f["location"]["part"] for f in findings]


# ---- files made by the libraries themselves ----------------------------------------------------------


def pdf_file(text: str) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=A4)
    page.drawString(72, 760, "Genomförandeplan, sida 1")
    page.showPage()
    page.drawString(72, 760, "Sida 2")
    page.drawString(72, 740, text)
    page.showPage()
    page.save()
    return buffer.getvalue()


def docx_file(text: str, where: str = "body") -> bytes:
    import docx
    from docx.oxml import parse_xml

    document = docx.Document()
    document.add_paragraph("Genomförandeplan")
    section = document.sections[0]
    if where == "body":
        document.add_paragraph(text)
    elif where == "table":
        table = document.add_table(rows=2, cols=2)
        table.cell(1, 1).text = text
    elif where == "header":
        section.header.paragraphs[0].text = text
    elif where == "footer":
        section.footer.paragraphs[0].text = text
    elif where == "comment":
        run = document.add_paragraph("Se kommentar").runs[0]
        document.add_comment(run, text=text, author="Kim")
    elif where == "textbox":
        # python-docx has no text-box API: its own XML parser puts Word's VML text box in a run.
        paragraph = document.add_paragraph()
        paragraph._p.append(
            parse_xml(
                '<w:r xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
                'xmlns:v="urn:schemas-microsoft-com:vml"><w:pict><v:shape><v:textbox><w:txbxContent>'
                f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>"
                "</w:txbxContent></v:textbox></v:shape></w:pict></w:r>"
            )
        )
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def xlsx_file(value: object, number_format: str | None = None) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    first = book.active
    first.title = "Översikt"
    first["A1"] = "Inget här"
    sheet = book.create_sheet("Blad1")
    sheet["A1"] = "Namn"
    sheet["C7"] = value
    if number_format:
        sheet["C7"].number_format = number_format
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def xls_file(value: object, number_format: str | None = None) -> bytes:
    import xlwt

    book = xlwt.Workbook()
    book.add_sheet("Översikt").write(0, 0, "Inget här")
    sheet = book.add_sheet("Blad1")
    style = xlwt.easyxf(num_format_str=number_format) if number_format else xlwt.Style.default_style
    sheet.write(6, 2, value, style)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def odt_file(text: str) -> bytes:
    from odf.opendocument import OpenDocumentText
    from odf.text import P

    document = OpenDocumentText()
    document.text.addElement(P(text="Genomförandeplan"))
    document.text.addElement(P(text=text))
    buffer = io.BytesIO()
    document.write(buffer)
    return buffer.getvalue()


def ods_file(value: float | str) -> bytes:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    document = OpenDocumentSpreadsheet()
    table = Table(name="Blad1")
    for _ in range(6):
        table.addElement(TableRow())
    row = TableRow()
    row.addElement(TableCell())
    row.addElement(TableCell())
    if isinstance(value, float):  # shown as LibreOffice shows a 12-digit number in a narrow column
        cell = TableCell(valuetype="float", value=value)
        cell.addElement(P(text="1,94503E+11"))
    else:
        cell = TableCell(valuetype="string")
        cell.addElement(P(text=value))
    row.addElement(cell)
    table.addElement(row)
    document.spreadsheet.addElement(table)
    buffer = io.BytesIO()
    document.write(buffer)
    return buffer.getvalue()


def rtf_file(text: str) -> bytes:
    """The RTF body Outlook wrote into the sample message, its word "body" replaced by `text`."""
    import extract_msg

    message = extract_msg.openMsg(str(DATA / "outer.msg"))
    try:
        rtf = message.attachments[0].data.rtfBody  # type: ignore[attr-defined]
    finally:
        message.close()
    assert b"\\htmlrtf0 body" in rtf
    return bytes(rtf.replace(b"\\htmlrtf0 body", b"\\htmlrtf0 " + text.encode("cp1252")))


def xml_file(text: str) -> bytes:
    root = ElementTree.Element("genomforandeplan")
    ElementTree.SubElement(root, "brukare", kundnummer="10234").text = "Insats"
    ElementTree.SubElement(root, "anteckning", uppgift=text)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def csv_file(text: str, encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    writer.writerow(["kundnummer", "anteckning"])
    writer.writerow(["10234", text])
    return buffer.getvalue().encode(encoding)


def zip_file(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tar_gz_file(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def eml_file(text: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "kollega@hemtjanst.example"
    msg["Subject"] = "Vidarebefordrat"
    msg.set_content(text)
    return msg.as_bytes()


def ics_file(text: str) -> bytes:
    description = f"DESCRIPTION:Planering inför besöket hos brukaren. {text}"
    cut = description.find(PNR[:8]) + 4 if PNR[:8] in description else 75
    folded = description[:cut] + "\r\n " + description[cut:]  # the fold cuts through the number
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//brukarvakt//test//SV",
        "BEGIN:VEVENT",
        "UID:1@hemtjanst.example",
        "DTSTART:20261127T090000Z",
        "SUMMARY:Hembesök",
        "ATTENDEE;CN=Kim Personal:mailto:personal@hemtjanst.example",
        folded,
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def vcf_file(text: str) -> bytes:
    """A vCard 2.1 as older phones write it: the note in quoted-printable, soft line breaks and all."""
    import quopri

    encoded = quopri.encodestring(f"Anteckning: {text}".encode()).decode()
    half = (
        encoded.find(PNR[:8]) + 4 if PNR[:8] in encoded else len(encoded) // 2
    )  # a soft break in the number
    lines = [
        "BEGIN:VCARD",
        "VERSION:2.1",
        "N:Personal;Kim",
        "FN:Kim Personal",
        f"NOTE;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:{encoded[:half]}=",
        encoded[half:],
        "END:VCARD",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def msg_file(tmp_path: Path, outer_body: str | None = None, inner_recipient: str | None = None) -> bytes:
    """The sample Outlook message (with a forwarded message inside), text properties overwritten in
    place by olefile (same length: olefile cannot grow a stream)."""
    import olefile

    path = tmp_path / "kopia.msg"
    shutil.copy(DATA / "outer.msg", path)
    with olefile.OleFileIO(str(path), write_mode=True) as ole:
        if outer_body is not None:
            _overwrite(ole, "__substg1.0_1000001F", outer_body)
        if inner_recipient is not None:
            inner = "__attach_version1.0_#00000000/__substg1.0_3701000D/"
            _overwrite(ole, inner + "__recip_version1.0_#00000000/__substg1.0_3001001F", inner_recipient)
            _overwrite(ole, inner + "__substg1.0_0E04001F", inner_recipient)
    return path.read_bytes()


def _overwrite(ole: object, stream: str, text: str) -> None:
    size = ole.get_size(stream)  # type: ignore[attr-defined]
    data = text.encode("utf-16-le")
    assert len(data) <= size, f"{stream} holds {size // 2} characters"
    ole.write_stream(stream, data + " ".encode("utf-16-le") * ((size - len(data)) // 2))  # type: ignore[attr-defined]


def typed_page(text: str) -> Image.Image:
    """A typed page as a scanner sees it: black text on white, 200 dpi-ish."""
    from PIL import ImageDraw, ImageFont

    page = Image.new("L", (1654, 700), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(str(FONT), 40)
    draw.text((100, 100), "Genomförandeplan", font=font, fill="black")
    draw.text((100, 220), text, font=font, fill="black")
    draw.text((100, 340), "Insatser enligt beslut.", font=font, fill="black")
    return page


def image_file(text: str, fmt: str) -> bytes:
    buffer = io.BytesIO()
    typed_page(text).save(buffer, format=fmt)
    return buffer.getvalue()


# ---- each format: the number blocks with the attachment named, the clean file passes -----------------

# name, builder of the file holding `text`, type, the location expected (after the attachment's name)
Builder = Callable[[str], bytes]
FORMATS: list[tuple[str, Builder, str, str]] = [
    ("plan.pdf", pdf_file, "application/pdf", "/sida 2"),
    ("plan.docx", lambda t: docx_file(t, "body"), "application/octet-stream", "/brödtext"),
    ("tabell.docx", lambda t: docx_file(t, "table"), "application/octet-stream", "/brödtext"),
    ("huvud.docx", lambda t: docx_file(t, "header"), "application/octet-stream", "/sidhuvud"),
    ("fot.docx", lambda t: docx_file(t, "footer"), "application/octet-stream", "/sidfot"),
    ("kommentar.docx", lambda t: docx_file(t, "comment"), "application/octet-stream", "/kommentarer"),
    ("textruta.docx", lambda t: docx_file(t, "textbox"), "application/octet-stream", "/brödtext"),
    (
        "lista.xlsx",
        xlsx_file,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "/Blad1!C7",
    ),
    ("lista.xls", xls_file, "application/vnd.ms-excel", "/Blad1!C7"),
    ("plan.odt", odt_file, "application/vnd.oasis.opendocument.text", "/brödtext"),
    ("lista.ods", ods_file, "application/octet-stream", "/Blad1!C7"),
    ("brev.rtf", rtf_file, "application/rtf", ""),
    ("sida.html", lambda t: f"<html><body><p>{t}</p></body></html>".encode(), "text/html", ""),
    ("plan.xml", xml_file, "application/xml", ""),
    ("lista.csv", csv_file, "text/csv", ""),
    ("lista_cp1252.csv", lambda t: csv_file(f"Åsa {t}", "cp1252"), "application/octet-stream", ""),
    ("unicode.txt", lambda t: f"Anteckning för brukaren: {t}".encode("utf-16"), "text/plain", ""),
    ("anteckning.txt", lambda t: f"Ärende {t}".encode("latin-1"), "text/plain", ""),
    (
        "arkiv.zip",
        lambda t: zip_file({"inner.zip": zip_file({"lista.csv": csv_file(t)})}),
        "application/zip",
        "/inner.zip/lista.csv",
    ),
    (
        "arkiv.tar.gz",
        lambda t: tar_gz_file({"plan.txt": t.encode()}),
        "application/gzip",
        "/arkiv.tar/plan.txt",
    ),
    ("vidare.eml", eml_file, "application/octet-stream", "/body:text/plain"),
    ("kallelse.ics", ics_file, "text/calendar", ""),
    ("kontakt.vcf", vcf_file, "text/x-vcard", ""),
    ("skannad.png", lambda t: image_file(t, "PNG"), "image/png", ""),
    ("skannad.jpg", lambda t: image_file(t, "JPEG"), "image/jpeg", ""),
    ("skannad.tif", lambda t: image_file(t, "TIFF"), "image/tiff", ""),
    ("skannad.pdf", lambda t: image_file(t, "PDF"), "application/pdf", "/sida 1/bild"),
]


@pytest.mark.parametrize(("name", "build", "ctype", "where"), FORMATS, ids=[f[0] for f in FORMATS])
def test_a_number_in_the_attachment_blocks_and_names_it(
    name: str, build: Builder, ctype: str, where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = f"Brukarens personnummer {PNR[:8]}-{PNR[8:]}"
    result = lint_json(mail_with(name, build(text), ctype), tmp_path, capsys)
    assert result["verdict"] == "block", result
    assert result["unscanned"] == []
    assert f"attachment:{name}{where}" in parts(result)
    assert all(f["masked"] == MASKED for f in result["findings"])  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "build", "ctype", "where"), FORMATS, ids=[f[0] for f in FORMATS])
def test_the_same_attachment_without_a_number_passes_fully_read(
    name: str, build: Builder, ctype: str, where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = lint_json(mail_with(name, build(CLEAN), ctype), tmp_path, capsys)
    assert result == {
        "path": str(tmp_path / "utkast.eml"),
        "verdict": "pass",
        "findings": [],
        "unscanned": [],
    }


# ---- numbers as spreadsheets keep them -------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [int(PNR), float(PNR), f"{float(PNR):.11E}", f"{PNR}.0"],
    ids=["int", "float", "scientific-text", "float-text"],
)
@pytest.mark.parametrize(("name", "build"), [("lista.xlsx", xlsx_file), ("lista.xls", xls_file)])
def test_a_number_typed_into_excel_is_found_however_excel_stored_it(
    name: str,
    build: Callable[[object], bytes],
    value: object,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = lint_json(mail_with(name, build(value)), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert parts(result) == [f"attachment:{name}/Blad1!C7"]


@pytest.mark.parametrize(("name", "build"), [("lista.xlsx", xlsx_file), ("lista.xls", xls_file)])
def test_a_leading_zero_shown_by_the_cell_format_is_put_back(
    name: str, build: Callable[[object, str], bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 0001121227 typed as a number is 1121227; the format 000000-0000 shows it as Excel's user saw it.
    ten_digits = int(PNR_2000[2:])
    result = lint_json(mail_with(name, build(ten_digits, "000000-0000")), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert [f["masked"] for f in result["findings"]] == [f"{PNR_2000[2:8]}-****"]  # type: ignore[attr-defined]


def test_a_spreadsheet_number_shown_in_scientific_notation_is_read_from_its_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = lint_json(mail_with("lista.ods", ods_file(float(PNR))), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert parts(result) == ["attachment:lista.ods/Blad1!C7"]


def test_a_csv_export_with_the_number_in_scientific_notation_blocks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = lint_json(mail_with("export.csv", csv_file(f"{float(PNR):.11E}"), "text/csv"), tmp_path, capsys)
    assert result["verdict"] == "block"


# ---- containers: names, members and messages inside -------------------------------------------------


def test_an_archive_member_named_after_the_number_blocks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = zip_file({f"journal_{PNR}.txt": CLEAN.encode()})
    result = lint_json(mail_with("arkiv.zip", archive, "application/zip"), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert parts(result) == ["attachment:arkiv.zip/filename"]


def test_a_forwarded_outlook_message_with_the_number_in_its_body_blocks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = msg_file(tmp_path, outer_body=PNR)
    result = lint_json(mail_with("vidare.msg", data, "application/vnd.ms-outlook"), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert parts(result) == ["attachment:vidare.msg/body:text/plain"]


def test_a_message_forwarded_inside_a_forwarded_outlook_message_is_read_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = msg_file(tmp_path, inner_recipient=PNR)
    result = lint_json(mail_with("vidare.msg", data, "application/vnd.ms-outlook"), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert parts(result) and all(
        p.startswith("attachment:vidare.msg/test.msg/header:") for p in parts(result)
    )


def test_the_sample_outlook_message_as_it_is_passes_fully_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = (DATA / "outer.msg").read_bytes()
    result = lint_json(mail_with("vidare.msg", data, "application/vnd.ms-outlook"), tmp_path, capsys)
    assert result["verdict"] == "pass" and result["unscanned"] == []


def test_an_outlook_message_sent_with_no_useful_type_or_name_is_recognised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = lint_json(mail_with("bilaga", msg_file(tmp_path, outer_body=PNR)), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert parts(result) == ["attachment:bilaga/body:text/plain"]


# ---- what else a document holds: pictures, forms, files inside files ---------------------------------


def png_of(text: str) -> io.BytesIO:
    return io.BytesIO(image_file(text, "PNG"))


def test_a_picture_in_a_word_document_is_read_by_text_recognition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import docx
    from docx.shared import Cm

    document = docx.Document()
    document.add_paragraph("Inskannad blankett nedan.")
    document.add_picture(png_of(f"Personnummer {PNR[:8]}-{PNR[8:]}"), width=Cm(16))
    buffer = io.BytesIO()
    document.save(buffer)
    result = lint_json(mail_with("blankett.docx", buffer.getvalue()), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert parts(result) == ["attachment:blankett.docx/image1.png"]


def test_a_picture_in_a_workbook_is_read_by_text_recognition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import openpyxl
    from openpyxl.drawing.image import Image as SheetImage

    book = openpyxl.Workbook()
    book.active.add_image(SheetImage(png_of(f"Personnummer {PNR[:8]}-{PNR[8:]}")), "B2")
    buffer = io.BytesIO()
    book.save(buffer)
    result = lint_json(mail_with("lista.xlsx", buffer.getvalue()), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert parts(result) == ["attachment:lista.xlsx/image1.png"]


def test_a_slide_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pptx import Presentation
    from pptx.util import Cm

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = "Veckans planering"
    slide.shapes.add_textbox(Cm(2), Cm(5), Cm(20), Cm(3)).text_frame.text = f"Brukare {PNR}"
    buffer = io.BytesIO()
    deck.save(buffer)
    result = lint_json(mail_with("möte.pptx", buffer.getvalue()), tmp_path, capsys)
    assert result["verdict"] == "block" and result["unscanned"] == []
    assert parts(result) == ["attachment:möte.pptx/bild 1"]


def test_a_filled_in_pdf_form_field_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 760, "Ansökan om insats")
    page.acroForm.textfield(name="personnummer", value=PNR, x=72, y=700, width=200, height=20)
    page.save()
    result = lint_json(mail_with("blankett.pdf", buffer.getvalue(), "application/pdf"), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert "attachment:blankett.pdf/formulär" in parts(result)


def test_a_file_attached_inside_a_pdf_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_file(CLEAN))))
    writer.add_attachment("lista.csv", csv_file(PNR))
    buffer = io.BytesIO()
    writer.write(buffer)
    result = lint_json(mail_with("plan.pdf", buffer.getvalue(), "application/pdf"), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert parts(result) == ["attachment:plan.pdf/lista.csv"]


def test_a_message_saved_into_a_zip_is_read_as_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = zip_file({"vidare.eml": eml_file(f"Gäller {PNR}")})
    result = lint_json(mail_with("arkiv.zip", archive, "application/zip"), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert parts(result) == ["attachment:arkiv.zip/vidare.eml/body:text/plain"]


def test_a_contact_card_photo_is_read_by_text_recognition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import base64

    photo = base64.b64encode(image_file(f"Personnummer {PNR[:8]}-{PNR[8:]}", "JPEG")).decode()
    card = f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Kim Personal\r\nPHOTO;ENCODING=b;TYPE=JPEG:{photo}\r\nEND:VCARD\r\n"
    result = lint_json(mail_with("kontakt.vcf", card.encode(), "text/vcard"), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert parts(result) == ["attachment:kontakt.vcf/photo-4"]


def test_a_vcard_4_photo_given_as_a_data_uri_is_read_by_text_recognition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import base64

    photo = base64.b64encode(image_file(f"Personnummer {PNR[:8]}-{PNR[8:]}", "PNG")).decode()
    card = f"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Kim Personal\r\nPHOTO:data:image/png;base64,{photo}\r\nEND:VCARD\r\n"
    result = lint_json(mail_with("kontakt.vcf", card.encode(), "text/vcard"), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert parts(result) == ["attachment:kontakt.vcf/photo-4"]


def test_a_picture_written_into_an_html_page_is_read_by_text_recognition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import base64

    picture = base64.b64encode(image_file(f"Personnummer {PNR[:8]}-{PNR[8:]}", "PNG")).decode()
    page = f'<html><body><p>Se bilden.</p><img alt="blankett" src="data:image/png;base64,{picture}"></body></html>'
    result = lint_json(mail_with("sida.html", page.encode(), "text/html"), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert parts(result) == ["attachment:sida.html/bild-1"]


def test_text_in_utf16_without_a_byte_order_mark_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = lint_json(mail_with("export.txt", f"Brukare {PNR}".encode("utf-16-le")), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert parts(result) == ["attachment:export.txt"]


def test_a_text_file_of_no_known_kind_is_read_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = lint_json(mail_with("LASMIG", f"Brukare {PNR}".encode()), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert parts(result) == ["attachment:LASMIG"]


def test_every_page_of_a_scanned_multipage_tiff_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    buffer = io.BytesIO()
    first, second = typed_page("Sida ett, inget nummer"), typed_page(f"Personnummer {PNR[:8]}-{PNR[8:]}")
    first.save(buffer, format="TIFF", save_all=True, append_images=[second])
    result = lint_json(mail_with("fax.tif", buffer.getvalue(), "image/tiff"), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert set(parts(result)) == {"attachment:fax.tif/sida 2"}


def test_a_comment_on_a_cell_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import openpyxl
    from openpyxl.comments import Comment

    book = openpyxl.Workbook()
    book.active["B3"] = "Se kommentar"
    book.active["B3"].comment = Comment(f"Gäller {PNR}", "Kim")
    buffer = io.BytesIO()
    book.save(buffer)
    result = lint_json(mail_with("lista.xlsx", buffer.getvalue()), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert parts(result) == ["attachment:lista.xlsx/kommentarer"]


def test_a_pivot_tables_own_copy_of_the_rows_is_read() -> None:
    from gateway.extractors.office import pivot_cache_text

    # The shape Excel writes: one <r> per source row, each value in an attribute.
    root = ElementTree.Element("pivotCacheRecords", count="1")
    row = ElementTree.SubElement(root, "r")
    ElementTree.SubElement(row, "s", v="Kund")
    ElementTree.SubElement(row, "n", v=f"{float(PNR):.11E}")
    assert pivot_cache_text(ElementTree.tostring(root)) == f"Kund\n{PNR}"


def test_an_xml_entity_is_read_where_it_is_declared_and_never_expanded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A billion-laughs file stays small because nothing is expanded; the declared text is still read.
    xml = (
        f'<?xml version="1.0"?><!DOCTYPE plan [<!ENTITY pnr "{PNR}"><!ENTITY a "&pnr;&pnr;&pnr;">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><plan><!-- utkast -->&b;</plan>'
    )
    result = lint_json(mail_with("plan.xml", xml.encode(), "application/xml"), tmp_path, capsys)
    assert result["verdict"] == "block" and result["unscanned"] == []
    assert parts(result) == ["attachment:plan.xml"]


def pdf_with_picture(picture: Image.Image, text: str, full_page: bool) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=A4)
    if full_page:  # a copier's searchable scan: the page's picture, its recognised text invisible on top
        page.drawImage(ImageReader(picture), 0, 0, width=A4[0], height=A4[1])
        layer = page.beginText(72, 760)
        layer.setTextRenderMode(3)
        layer.textLine(text)
        page.drawText(layer)
    else:  # a typed page with a photographed document pasted in
        page.drawString(72, 760, text)
        page.drawImage(ImageReader(picture), 72, 400, width=450, height=190)
    page.save()
    return buffer.getvalue()


def test_a_picture_on_a_page_with_text_is_read_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = typed_page(f"Personnummer {PNR[:8]}-{PNR[8:]}")
    data = pdf_with_picture(photo, "Genomförandeplan med bifogat foto av blanketten nedan.", full_page=False)
    result = lint_json(mail_with("plan.pdf", data, "application/pdf"), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert set(parts(result)) == {"attachment:plan.pdf/sida 1/bild"}


def test_a_searchable_scan_is_read_from_its_text_layer_without_recognising_it_again() -> None:
    from PIL import Image as PILImage

    from gateway import attachments
    from gateway.extractors.base import Attachment, Extracted
    from models.config import Limits

    scan = PILImage.new("L", (1654, 2339), 255)  # A4 at 200 dpi
    layer = f"Genomförandeplan för brukaren, personnummer {PNR[:8]}-{PNR[8:]}, insatser enligt beslut."
    out = Extracted()
    attachments.extract(
        Attachment(
            part="attachment:skanning.pdf",
            name="skanning.pdf",
            content_type="application/pdf",
            data=pdf_with_picture(scan, layer, full_page=True),
            charset=None,
            depth=1,
        ),
        out,
        Limits(),
    )
    assert out.unscanned == [] and out.ocr_seconds == 0
    assert any(
        f"{PNR[:8]}-{PNR[8:]}" in s.text for s in out.segments if s.part == "attachment:skanning.pdf/sida 1"
    )


def test_a_black_and_white_scan_in_fax_encoding_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Pillow writes a 1-bit page as CCITT group 4, as copiers and fax machines do.
    buffer = io.BytesIO()
    typed_page(f"Personnummer {PNR[:8]}-{PNR[8:]}").convert("1").save(buffer, format="PDF")
    assert b"/CCITTFaxDecode" in buffer.getvalue()
    result = lint_json(mail_with("fax.pdf", buffer.getvalue(), "application/pdf"), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert parts(result) == ["attachment:fax.pdf/sida 1/bild"]


def test_a_file_attached_to_a_calendar_invitation_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import base64

    attached = base64.b64encode(csv_file(PNR)).decode()
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "BEGIN:VEVENT",
        "SUMMARY:Hembesök",
        f"ATTACH;FMTTYPE=text/csv;ENCODING=BASE64;VALUE=BINARY;X-FILENAME=lista.csv:{attached}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    invitation = ("\r\n".join(lines) + "\r\n").encode()
    result = lint_json(mail_with("kallelse.ics", invitation, "text/calendar"), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert parts(result) == ["attachment:kallelse.ics/lista.csv"]
