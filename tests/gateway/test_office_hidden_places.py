"""Office documents and PDFs are read wherever a person's text is kept, not only in the body.

A care worker names a sheet tab after a client, puts the client in the printed page's header,
fills in a template's custom property, comments a document in LibreOffice starting with the
number, embeds a workbook in a letter: each of these passed unread. The files are written by the
libraries of the formats (openpyxl, python-docx, pypdf), by LibreOffice, or put together from the
parts those programs write; the numbers are Skatteverket's test numbers.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import docx
import openpyxl
import pytest

from rules.engine import ScanContext, scan
from tests.conftest import TEST_KEY, TODAY, test_personnummer
from tests.gateway.test_attachments import read_attachment

PNR = test_personnummer(3)
WRITTEN = f"{PNR[:8]}-{PNR[8:]}"
TEN = f"{PNR[2:8]}-{PNR[8:]}"
CTX = ScanContext(fingerprint_key=TEST_KEY, today=TODAY)


def found(name: str, data: bytes) -> list[str]:
    """The parts of the file in which the number is found; nothing may be left unread."""
    out = read_attachment(name, data)
    assert out.unscanned == []
    return [f.location.part for f in scan(out.segments, CTX) if f.kind == "personnummer"]


# ---- Excel ------------------------------------------------------------------------------------------


def workbook(change: Callable[[openpyxl.Workbook], object]) -> bytes:
    book = openpyxl.Workbook()
    book.active["A1"] = "Insats"
    book.active["B1"] = "Tid"
    change(book)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_a_sheet_named_after_a_client_is_read() -> None:
    def rename(book: openpyxl.Workbook) -> None:
        book.active.title = TEN

    assert found("lista.xlsx", workbook(rename)) == ["attachment:lista.xlsx/bladnamn"]


@pytest.mark.parametrize(
    "place", ["oddHeader.center", "oddFooter.left", "evenHeader.right", "firstFooter.center"]
)
def test_the_printed_pages_header_and_footer_are_read(place: str) -> None:
    def header(book: openpyxl.Workbook) -> None:
        book.active.differentFirst = True
        book.active.differentOddEven = True
        field, section = place.split(".")
        part = getattr(getattr(book.active, field), section)
        part.text = f"Genomförandeplan {WRITTEN}"
        part.size = 12  # written `&12 ` before the text: the code is no part of the number
        part.font = "Arial,Fet"

    assert found("lista.xlsx", workbook(header)) == ["attachment:lista.xlsx/sidhuvud och listor"]


def test_the_choices_of_a_drop_down_list_are_read() -> None:
    def choices(book: openpyxl.Workbook) -> None:
        from openpyxl.worksheet.datavalidation import DataValidation

        validation = DataValidation(type="list", formula1=f'"{WRITTEN},Kund 10234"')
        book.active.add_data_validation(validation)
        validation.add("C2")

    assert found("lista.xlsx", workbook(choices)) == ["attachment:lista.xlsx/sidhuvud och listor"]


def test_a_named_constant_is_read() -> None:
    def name(book: openpyxl.Workbook) -> None:
        from openpyxl.workbook.defined_name import DefinedName

        book.defined_names["brukare"] = DefinedName("brukare", attr_text=f'"{WRITTEN}"')

    assert found("lista.xlsx", workbook(name)) == ["attachment:lista.xlsx/namn"]


def test_a_custom_document_property_of_a_workbook_is_read() -> None:
    def prop(book: openpyxl.Workbook) -> None:
        from openpyxl.packaging.custom import StringProperty

        book.custom_doc_props.append(StringProperty(name="Personnummer", value=WRITTEN))

    assert found("lista.xlsx", workbook(prop)) == ["attachment:lista.xlsx/egenskaper"]


def test_a_workbooks_category_property_is_read() -> None:
    def category(book: openpyxl.Workbook) -> None:
        book.properties.category = WRITTEN

    assert found("lista.xlsx", workbook(category)) == ["attachment:lista.xlsx/egenskaper"]


def test_a_plain_workbook_has_nothing_to_find_in_those_places() -> None:
    def plain(book: openpyxl.Workbook) -> None:
        book.active.oddHeader.center.text = "Sida &P av &N, utskrift &D"
        book.active.title = "Kund 10234"

    assert found("lista.xlsx", workbook(plain)) == []


# ---- Word (OOXML) -----------------------------------------------------------------------------------


def document(*changes: Callable[[dict[str, bytes]], None]) -> bytes:
    """A Word document by python-docx, its parts then changed as Word or SharePoint writes them."""
    made = docx.Document()
    made.add_paragraph("Genomförandeplan för kund 10234.")
    buffer = io.BytesIO()
    made.save(buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as package:
        parts = {info.filename: package.read(info) for info in package.infolist()}
    for change in changes:
        change(parts)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for name, data in parts.items():
            package.writestr(name, data)
    return out.getvalue()


def _add_part(
    parts: dict[str, bytes], name: str, content_type: str, rel_type: str, source: str, data: str
) -> None:
    parts[name] = data.encode("utf-8")
    parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(
        b"</Types>", f'<Override PartName="/{name}" ContentType="{content_type}"/></Types>'.encode()
    )
    rels = "_rels/.rels" if source == "" else f"{source}/_rels/document.xml.rels"
    target = name if source == "" else f"../{name}"
    parts[rels] = parts[rels].replace(
        b"</Relationships>",
        f'<Relationship Id="rId900" Type="{rel_type}" Target="{target}"/></Relationships>'.encode(),
    )


RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def custom_property(parts: dict[str, bytes]) -> None:
    _add_part(
        parts,
        "docProps/custom.xml",
        "application/vnd.openxmlformats-officedocument.custom-properties+xml",
        f"{RELS}/custom-properties",
        "",
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"'
        ' xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
        '<property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="2" name="Personnummer">'
        f"<vt:lpwstr>{WRITTEN}</vt:lpwstr></property></Properties>",
    )


def sharepoint_metadata(doc_id: str = "KOMMUN-1234-17") -> Callable[[dict[str, bytes]], None]:
    def change(parts: dict[str, bytes]) -> None:
        _add_part(
            parts,
            "customXml/item1.xml",
            "application/xml",
            f"{RELS}/customXml",
            "word",
            '<?xml version="1.0" encoding="utf-8"?><p:properties'
            ' xmlns:p="http://schemas.microsoft.com/office/2006/metadata/properties"><documentManagement>'
            f'<Brukare xmlns="http://example/lista">{WRITTEN}</Brukare>'
            f'<_dlc_DocId xmlns="http://schemas.microsoft.com/sharepoint/v3">{doc_id}</_dlc_DocId>'
            "</documentManagement></p:properties>",
        )

    return change


def in_body(xml: str) -> Callable[[dict[str, bytes]], None]:
    def change(parts: dict[str, bytes]) -> None:
        body = parts["word/document.xml"]
        parts["word/document.xml"] = body.replace(b"<w:sectPr", xml.encode() + b"<w:sectPr", 1)

    return change


def test_a_custom_document_property_of_a_word_document_is_read() -> None:
    assert found("plan.docx", document(custom_property)) == ["attachment:plan.docx/egenskaper"]


def test_a_document_librarys_metadata_kept_in_custom_xml_is_read() -> None:
    assert found("plan.docx", document(sharepoint_metadata())) == ["attachment:plan.docx/item1.xml"]


def test_a_document_librarys_own_document_id_is_not_read_as_a_number() -> None:
    # SharePoint's id: the library's random number between letters, the same on all its files.
    clean = sharepoint_metadata(doc_id=f"KOMMUN-{PNR[2:]}-17")

    def only_the_id(parts: dict[str, bytes]) -> None:
        clean(parts)
        parts["customXml/item1.xml"] = parts["customXml/item1.xml"].replace(WRITTEN.encode(), b"Kund 10234")

    assert found("plan.docx", document(only_the_id)) == []


def test_a_pictures_alternative_text_is_read() -> None:
    picture = (
        '<w:p><w:r><w:drawing><wp:inline xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/'
        f'wordprocessingDrawing"><wp:extent cx="1" cy="1"/><wp:docPr id="1" name="Bild 1" descr="Foto, {WRITTEN}"/>'
        "</wp:inline></w:drawing></w:r></w:p>"
    )
    assert found("plan.docx", document(in_body(picture))) == ["attachment:plan.docx/brödtext"]


def test_the_choices_of_a_drop_down_content_control_are_read() -> None:
    control = (
        "<w:p><w:sdt><w:sdtPr><w:dropDownList>"
        f'<w:listItem w:displayText="{WRITTEN}" w:value="1"/><w:listItem w:displayText="Kund 10234" w:value="2"/>'
        "</w:dropDownList></w:sdtPr><w:sdtContent><w:r><w:t>Välj brukare</w:t></w:r></w:sdtContent></w:sdt></w:p>"
    )
    assert found("plan.docx", document(in_body(control))) == ["attachment:plan.docx/brödtext"]


# ---- OpenDocument -----------------------------------------------------------------------------------

ODF_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
    'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
    'xmlns:xlink="http://www.w3.org/1999/xlink" '
    'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"'
)


def odf_package(kind: str, body: str, members: dict[str, bytes] | None = None, meta: str = "") -> bytes:
    """An OpenDocument file as LibreOffice lays it out: mimetype first, content, meta, manifest."""
    mimetype = f"application/vnd.oasis.opendocument.{kind}"
    members = members or {}
    entries = "".join(
        f'<manifest:file-entry manifest:full-path="{name}" manifest:media-type="application/vnd.sun.star.oleobject"/>'
        for name in members
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr(zipfile.ZipInfo("mimetype"), mimetype)
        package.writestr(
            "content.xml",
            f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ODF_NS} office:version="1.2">'
            f"<office:body>{body}</office:body></office:document-content>",
        )
        package.writestr(
            "meta.xml",
            f'<?xml version="1.0" encoding="UTF-8"?><office:document-meta {ODF_NS} office:version="1.2">'
            f"<office:meta>{meta}<meta:generator>LibreOffice/7.4.7.2$Linux_X86_64</meta:generator>"
            "</office:meta></office:document-meta>",
        )
        for name, data in members.items():
            package.writestr(name, data)
        package.writestr(
            "META-INF/manifest.xml",
            f'<?xml version="1.0" encoding="UTF-8"?><manifest:manifest {ODF_NS} manifest:version="1.2">'
            f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{mimetype}"/>'
            '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
            f'<manifest:file-entry manifest:full-path="meta.xml" manifest:media-type="text/xml"/>{entries}'
            "</manifest:manifest>",
        )
    return buffer.getvalue()


def text_body(*paragraphs: str) -> str:
    return "<office:text>" + "".join(f"<text:p>{p}</text:p>" for p in paragraphs) + "</office:text>"


def test_an_opendocument_comment_that_opens_with_the_number_is_read() -> None:
    # The comment's author and date stood right before its text: "...T10:15:30" + the number.
    comment = (
        "Se kommentaren<office:annotation><dc:creator>Kim Personal</dc:creator>"
        f"<dc:date>2026-11-26T10:15:30</dc:date><text:p>{WRITTEN} ska ha stöd</text:p></office:annotation>"
    )
    assert found("plan.odt", odf_package("text", text_body(comment))) == ["attachment:plan.odt/brödtext"]


def test_an_opendocument_footnote_that_opens_with_the_number_is_read() -> None:
    note = (
        'Not<text:note text:id="n1" text:note-class="footnote"><text:note-citation>1</text:note-citation>'
        f"<text:note-body><text:p>{WRITTEN} enligt journalen</text:p></text:note-body></text:note>"
    )
    assert found("plan.odt", odf_package("text", text_body(note))) == ["attachment:plan.odt/brödtext"]


@pytest.mark.parametrize(
    "meta",
    [
        f"<dc:title>Plan {WRITTEN}</dc:title>",
        f'<meta:user-defined meta:name="Pnr">{WRITTEN}</meta:user-defined>',
    ],
    ids=["title", "custom property"],
)
def test_an_opendocument_property_is_read_apart_from_the_next_one(meta: str) -> None:
    document = odf_package("text", text_body("Plan för kund 10234."), meta=meta)
    assert found("plan.odt", document) == ["attachment:plan.odt/egenskaper"]


def test_a_libreoffice_table_embedded_in_a_text_is_read() -> None:
    table = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ODF_NS} office:version="1.2"><office:body>'
        '<office:spreadsheet><table:table table:name="Blad1"><table:table-row><table:table-cell '
        f'office:value-type="string"><text:p>{WRITTEN}</text:p></table:table-cell></table:table-row>'
        "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    frame = (
        '<draw:frame draw:name="Objekt1" svg:width="8cm" svg:height="3cm"><draw:object xlink:href="./Object 1"'
        ' xlink:type="simple" xlink:show="embed" xlink:actuate="onLoad"/></draw:frame>'
    )
    document = odf_package("text", text_body("Se tabellen.", frame), {"Object 1/content.xml": table.encode()})
    assert found("plan.odt", document) == ["attachment:plan.odt/Object 1/content.xml"]


def test_a_workbook_embedded_from_word_and_kept_by_libreoffice_as_it_came_is_read() -> None:
    # LibreOffice keeps an object of another program as its own file (Obj100): here a workbook.
    book = workbook(lambda b: b.active.__setitem__("A2", WRITTEN))
    document = odf_package("text", text_body("Se tabellen."), {"Obj100": book})
    assert found("plan.odt", document) == ["attachment:plan.odt/Obj100/Sheet!A2"]


def test_a_sheet_of_an_opendocument_spreadsheet_named_after_a_client_is_read() -> None:
    sheet = (
        f'<office:spreadsheet><table:table table:name="{TEN}"><table:table-row><table:table-cell '
        'office:value-type="string"><text:p>Insats</text:p></table:table-cell></table:table-row>'
        "</table:table></office:spreadsheet>"
    )
    assert found("lista.ods", odf_package("spreadsheet", sheet)) == ["attachment:lista.ods/bladnamn"]


# ---- Word 97-2003 and PDF ---------------------------------------------------------------------------


def converted(document: docx.document.Document, to: str) -> bytes:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    assert soffice, "LibreOffice Writer is missing: run scripts/install-system-deps"
    with tempfile.TemporaryDirectory() as folder:
        document.save(str(Path(folder) / "plan.docx"))
        subprocess.run(
            [soffice, f"-env:UserInstallation=file://{folder}/profil", "--headless", "--convert-to", to]
            + ["--outdir", folder, str(Path(folder) / "plan.docx")],
            check=True,
            capture_output=True,
            timeout=120,
        )
        return (Path(folder) / f"plan.{to}").read_bytes()


def test_the_properties_of_a_word_97_document_are_read() -> None:
    made = docx.Document()
    made.add_paragraph("Genomförandeplan för kund 10234.")
    made.core_properties.title = f"Plan {WRITTEN}"
    made.core_properties.keywords = "hemtjänst"
    assert found("plan.doc", converted(made, "doc")) == ["attachment:plan.doc/egenskaper"]


def pdf(change: Callable[[object], object]) -> bytes:
    from pypdf import PdfWriter
    from reportlab.pdfgen import canvas

    page = io.BytesIO()
    drawing = canvas.Canvas(page)
    drawing.drawString(72, 760, "Genomförandeplan för kund 10234")
    drawing.showPage()
    drawing.save()
    writer = PdfWriter(clone_from=io.BytesIO(page.getvalue()))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_pdf_property_a_program_added_is_read() -> None:
    document = pdf(lambda w: w.add_metadata({"/Personnummer": WRITTEN}))  # type: ignore[attr-defined]
    assert found("plan.pdf", document) == ["attachment:plan.pdf/egenskaper"]


def test_a_pdf_bookmark_is_read() -> None:
    document = pdf(lambda w: w.add_outline_item(title=f"Plan för {WRITTEN}", page_number=0))  # type: ignore[attr-defined]
    assert found("plan.pdf", document) == ["attachment:plan.pdf/bokmärken"]


def test_the_name_of_a_file_attached_inside_a_pdf_is_read() -> None:
    document = pdf(lambda w: w.add_attachment(f"journal_{PNR}.txt", b"Kund 10234"))  # type: ignore[attr-defined]
    assert found("plan.pdf", document) == ["attachment:plan.pdf/filename"]
