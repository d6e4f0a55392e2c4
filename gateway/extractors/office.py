"""Office documents: Word (DOCX), Excel (XLSX, XLS), OpenDocument (ODT, ODS), and OLE compound files."""

from __future__ import annotations

import io
import re
import subprocess
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from gateway.extractors import messages, textual
from gateway.extractors.base import (
    ENCRYPTED,
    Attachment,
    Extracted,
    Recurse,
    Unreadable,
    expand_float_text,
    format_digits,
    number_text,
    open_zip,
    read_member,
)
from gateway.text import WordRun, decode_bytes
from models.config import Limits

# How often (in cells) a long sheet checks the message's time limit.
CELLS_PER_TIME_CHECK = 2000

# ---- OOXML: the text inside WordprocessingML / SpreadsheetML / DrawingML parts ----------------------

# Elements whose text is what a reader sees (w:t, a:t), deleted text still in the file (w:delText),
# field codes (w:instrText), cached chart values (c:v).
OOXML_TEXT = frozenset(("t", "delText", "instrText", "v"))
OOXML_LINE_BREAKS = frozenset(("br", "cr", "p"))
MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
# Word's parts, by the end of their content type, with the name a finding's location shows.
WORD_PARTS = (
    ("document.main+xml", "brödtext"),
    ("document.macroEnabled.main+xml", "brödtext"),
    ("template.main+xml", "brödtext"),
    ("header+xml", "sidhuvud"),
    ("footer+xml", "sidfot"),
    ("comments+xml", "kommentarer"),
    ("footnotes+xml", "fotnoter"),
    ("endnotes+xml", "slutnoter"),
    ("document.glossary+xml", "dokumentdelar"),
    ("drawingml.chart+xml", "diagram"),
    ("drawingml.diagramData+xml", "smartart"),
)
# Document properties (title, author, company, manager and the custom ones): any element's text.
PROPERTY_PARTS = ("core-properties+xml", "extended-properties+xml", "custom-properties+xml")
# Parts that hold no text a person wrote: formatting, settings, relationships.
WORD_SKIPPED = (
    "styles+xml",
    "settings+xml",
    "fontTable+xml",
    "webSettings+xml",
    "theme+xml",
    "numbering+xml",
    "relationships+xml",
    "customXmlProperties+xml",
    "commentsExtended+xml",
    "commentsIds+xml",
    "commentsExtensible+xml",
    "people+xml",
    "stylesWithEffects+xml",
    "drawingml.chartshapes+xml",
    "chartStyle+xml",
    "chartColorStyle+xml",
    "diagramLayout+xml",
    "diagramStyle+xml",
    "diagramColors+xml",
    "diagramDrawing+xml",
    "vbaProject",
    "vbaData+xml",
    "keymap+xml",
)


# Attributes that hold text a person wrote: a picture's or shape's alternative text (docPr in
# Word, cNvPr in Excel and PowerPoint drawings) and the choices of a drop-down list in a form.
OOXML_TEXT_ATTRIBUTES = {
    "docPr": ("descr", "title"),
    "cNvPr": ("descr", "title"),
    "listItem": ("displayText", "value"),
}


def ooxml_text(xml: bytes) -> str:
    """A part's text, a paragraph a line; Fallback copies of text boxes are skipped (the Choice
    holds the same text)."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    chunks: list[str] = []
    skip_depth = 0
    # Table rows being read (nested tables, innermost last): their cells' texts, and where the open
    # cell's text starts. A row's cells of words only are read once more as one line (WordRun).
    rows: list[tuple[list[str], list[int]]] = []
    for event, el in etree.iterwalk(etree.fromstring(xml, parser), events=("start", "end")):
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag == MC_FALLBACK:
            skip_depth += 1 if event == "start" else -1
            continue
        if skip_depth:
            continue
        local = tag.rpartition("}")[2]
        if event == "start":
            if local in OOXML_TEXT and el.text:
                chunks.append(el.text)
            elif local == "tab":
                chunks.append("\t")
            elif local in OOXML_TEXT_ATTRIBUTES:
                chunks.extend(_attribute_text(el, OOXML_TEXT_ATTRIBUTES[local]))
            elif local == "tr":
                rows.append(([], []))
            elif local == "tc" and rows:
                rows[-1][1].append(len(chunks))
        elif local == "tr" and rows:
            cells, _ = rows.pop()
            run = WordRun()
            found = [run.cell(column, str(column), text) for column, text in enumerate(cells)]
            chunks.extend(f"{line[1]}\n" for line in [*found, run.end()] if line is not None)
        elif local in OOXML_LINE_BREAKS or local in ("tc", "v"):
            if local == "tc" and rows and rows[-1][1]:
                rows[-1][0].append("".join(chunks[rows[-1][1].pop() :]))
            chunks.append("\n")
        elif local in ("creator", "title", "subject", "description", "keywords", "lastModifiedBy"):
            chunks.append(f"{el.text or ''}\n")
    return "".join(chunks)


def _attribute_text(el: Any, names: tuple[str, ...]) -> list[str]:
    """The values of the named attributes (in any namespace), a line each."""
    values = []
    for key, value in el.attrib.items():
        if key.rpartition("}")[2] in names and value.strip():
            values.append(f"\n{value}\n")
    return values


# Elements of a custom XML part whose text a machine wrote: SharePoint's document id fields
# (`_dlc_DocId`: a library's random number between letters, the same on every file from it).
MACHINE_ELEMENT_PREFIXES = ("_dlc_",)


def element_text(xml: bytes) -> str:
    """The text of every element, a line each: document properties (the custom ones a template or
    a document library fills in: `Brukare`, `Personnummer`) and custom XML data, whose element
    names are anybody's."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    lines = []
    for el in etree.fromstring(xml, parser).iter():
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag.rpartition("}")[2].startswith(MACHINE_ELEMENT_PREFIXES):
            continue
        if el.text and el.text.strip():
            lines.append(el.text.strip())
    return "\n".join(lines)


def _checked_container(att: Attachment, out: Extracted, limits: Limits) -> zipfile.ZipFile:
    """The zip inside an Office file, checked like any archive before a library unpacks it."""
    if att.data.startswith(OLE_MAGIC):  # a password-protected Office file is an OLE file
        if _ole_streams(att.data) & ENCRYPTED_STREAMS:
            raise Unreadable(ENCRYPTED)
        raise Unreadable("ett äldre Office-format under ett nyare namn")
    zf = open_zip(att, out, limits, check_ratio=False)
    out.unpack(sum(i.file_size for i in zf.infolist()), limits)
    return zf


def docx(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    """Word, PowerPoint and any other OPC package: every part that can hold text, pictures by OCR."""
    from docx.opc.package import OpcPackage

    _checked_container(att, out, limits)
    # The package, not docx.Document: templates (.dotx), macro documents (.docm) and PowerPoint
    # files are packages of the same kind that Document() refuses by their content type.
    package = OpcPackage.open(io.BytesIO(att.data))
    for part in package.iter_parts():
        out.check_time(limits)
        ctype = part.content_type
        path = str(part.partname)
        name = PurePosixPath(path).name
        label = next((label for suffix, label in WORD_PARTS if ctype.endswith(suffix)), None)
        slide = SLIDE_NUMBER.search(path)
        if slide is not None:
            label = f"{SLIDE_LABELS[slide.group(1)]} {slide.group(2)}"
        if label is not None:
            out.add(f"{att.part}/{label}", ooxml_text(part.blob), limits)
        elif ctype.endswith(PROPERTY_PARTS):
            out.add(f"{att.part}/egenskaper", element_text(part.blob), limits)
        elif ctype.endswith(WORD_SKIPPED) or path.startswith(THUMBNAIL):
            continue  # formatting, or a picture of the first page whose text is read above
        elif ctype in ("application/xml", "text/xml"):
            out.add(f"{att.part}/{name}", element_text(part.blob), limits)  # custom XML, bound data
        elif ctype.endswith("+xml"):
            out.add(f"{att.part}/{name}", ooxml_text(part.blob), limits)
        else:  # pictures (text recognition), embedded workbooks and documents
            recurse(att.member(name, part.blob, ctype), out)


pptx = docx
THUMBNAIL = "/docProps/thumbnail."
SLIDE_NUMBER = re.compile(r"/ppt/(slides|notesSlides)/\w+?(\d+)\.xml$")
SLIDE_LABELS = {"slides": "bild", "notesSlides": "anteckningar bild"}


# SpreadsheetML parts besides the cells (read by openpyxl): where else a person's text can be.
XLSX_TEXT_PARTS = (
    (re.compile(r"xl/comments(/comment)?\d*\.xml$"), "kommentarer", ooxml_text),  # Excel, openpyxl
    (re.compile(r"xl/threadedComments/.*\.xml$"), "kommentarer", ooxml_text),
    (re.compile(r"xl/drawings/drawing\d*\.xml$"), "textrutor", ooxml_text),
    (re.compile(r"xl/charts/chart\d*\.xml$"), "diagram", ooxml_text),
    (re.compile(r"docProps/(core|app|custom)\.xml$"), "egenskaper", element_text),
    (re.compile(r"customXml/item\d*\.xml$"), "xml", element_text),
)
# A worksheet's own text outside its cells: the printed page's header and footer, and the choices
# of a drop-down list typed into its data validation (Excel's and its x14 extension's form).
XLSX_SHEET = re.compile(r"xl/worksheets/sheet\d*\.xml$")
_SHEET_TEXT = re.compile(
    rb"<(?:\w+:)?(oddHeader|oddFooter|evenHeader|evenFooter|firstHeader|firstFooter|formula1|formula2)"
    rb"(?:\s[^>]*)?>(.*?)</(?:\w+:)?\1>",
    re.DOTALL,
)
_SHEET_TEXT_HINT = re.compile(rb"<(?:\w+:)?(?:odd|even|first)(?:Header|Footer)|<(?:\w+:)?formula[12]")
_TAG = re.compile(r"<[^>]*>")
# Codes in a header or footer (ECMA-376 18.3.1.46): a section (&L &C &R) starts a line; the
# others (font "&\"Arial,Bold\"", size "&12 ", colour, page number, file name ...) are dropped, so
# that a change of font inside a number does not split it; "&&" is an ampersand.
_HEADER_SECTION = re.compile(r"&[LCR]")
_HEADER_CODE = re.compile(r'&"[^"]*"|&K(?:[0-9A-Fa-f]{6}|\d\d[+-]\d{3})|&\d+ ?|&[A-Za-z]')
XLSX_EMBEDDED = re.compile(r"xl/(media|embeddings)/[^/]+$")
# A pivot table keeps its own copy of the source rows, in attributes (<s v="..."/>, <n v="..."/>),
# still there after the source sheet was deleted.
XLSX_PIVOT_CACHE = re.compile(r"xl/pivotCache/pivotCache(Records|Definition)\d*\.xml$")


def pivot_cache_text(xml: bytes) -> str:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    values = (el.get("v") for el in etree.fromstring(xml, parser).iter() if el.get("v"))
    return expand_float_text("\n".join(v for v in values if v is not None))


def xlsx(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    import openpyxl

    zf = _checked_container(att, out, limits)
    workbook = openpyxl.load_workbook(io.BytesIO(att.data), read_only=True, data_only=True)
    try:
        # A sheet's name (a tab per client) and the workbook's named ranges and constants.
        out.add(f"{att.part}/bladnamn", "\n".join(workbook.sheetnames), limits)
        names = workbook.defined_names.values()
        out.add(f"{att.part}/namn", "\n".join(f"{d.name}\n{d.attr_text or ''}" for d in names), limits)
        for sheet in workbook.worksheets:
            i = 0
            for row in sheet.iter_rows():
                run = WordRun()
                for cell in row:
                    i += 1
                    if i % CELLS_PER_TIME_CHECK == 0:
                        out.check_time(limits)
                    if cell.value is None:
                        continue
                    text = cell_text(cell.value, getattr(cell, "number_format", None))
                    out.add(f"{att.part}/{sheet.title}!{cell.coordinate}", text, limits)
                    _add_run(
                        out, f"{att.part}/{sheet.title}", run.cell(cell.column, cell.coordinate, text), limits
                    )
                _add_run(out, f"{att.part}/{sheet.title}", run.end(), limits)
    finally:
        workbook.close()
    for info in zf.infolist():
        found = next((entry for entry in XLSX_TEXT_PARTS if entry[0].match(info.filename)), None)
        if found is not None:
            _, label, reader = found
            out.add(f"{att.part}/{label}", reader(read_member(zf, info, out, limits)), limits)
        elif XLSX_SHEET.match(info.filename):
            out.add(f"{att.part}/sidhuvud och listor", _sheet_text(zf, info, out, limits), limits)
        elif XLSX_PIVOT_CACHE.match(info.filename):
            out.add(f"{att.part}/pivottabell", pivot_cache_text(read_member(zf, info, out, limits)), limits)
        elif XLSX_EMBEDDED.match(info.filename):
            name = PurePosixPath(info.filename).name
            recurse(att.member(name, read_member(zf, info, out, limits)), out)


def _sheet_text(zf: zipfile.ZipFile, info: zipfile.ZipInfo, out: Extracted, limits: Limits) -> str:
    """A worksheet's header, footer and drop-down choices (openpyxl's read-only sheets skip them).

    The sheet's bytes were counted against the limits with the whole file; they are read again
    here, not counted twice, and never past their declared size."""
    import html

    out.check_time(limits)
    with zf.open(info) as stream:
        xml = stream.read(info.file_size + 1)[: info.file_size]
    if _SHEET_TEXT_HINT.search(xml) is None:
        return ""
    lines = []
    for match in _SHEET_TEXT.finditer(xml):
        text = html.unescape(_TAG.sub("", match.group(2).decode("utf-8", "replace")))
        if match.group(1).startswith(b"formula"):
            lines.append(text)
            continue
        text = _HEADER_SECTION.sub("\n", text.replace("&&", "\x00"))
        lines.append(_HEADER_CODE.sub("", text).replace("\x00", "&"))
    return "\n".join(lines)


def _add_run(out: Extracted, sheet: str, run: tuple[str, str] | None, limits: Limits) -> None:
    if run is not None:
        out.add(f"{sheet}!{run[0]}", run[1], limits)


def cell_text(value: Any, number_format: str | None = None) -> str:
    """What the engine sees of a cell: digits as shown by a digit-only format, or all the digits."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return format_digits(value, number_format) or number_text(value)
    if isinstance(value, str):
        return expand_float_text(value)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def xls(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=att.data, formatting_info=True, on_demand=True)
    except xlrd.XLRDError as e:
        if "encrypted" in str(e).lower():
            raise Unreadable(ENCRYPTED) from None
        raise
    if att.data.startswith(OLE_MAGIC):
        import olefile

        with olefile.OleFileIO(att.data) as ole:
            out.add(f"{att.part}/egenskaper", ole_properties(ole), limits)
    try:
        out.add(f"{att.part}/bladnamn", "\n".join(book.sheet_names()), limits)
        for index in range(book.nsheets):
            sheet = book.sheet_by_index(index)
            count = 0
            for row in range(sheet.nrows):
                run = WordRun()
                for col in range(sheet.ncols):
                    count += 1
                    if count % CELLS_PER_TIME_CHECK == 0:
                        out.check_time(limits)
                    text = _xls_cell(book, sheet, row, col, xlrd)
                    if text:
                        out.add(f"{att.part}/{sheet.name}!{xlrd.cellname(row, col)}", text, limits)
                        _add_run(
                            out,
                            f"{att.part}/{sheet.name}",
                            run.cell(col, xlrd.cellname(row, col), text),
                            limits,
                        )
                _add_run(out, f"{att.part}/{sheet.name}", run.end(), limits)
            for (row, col), note in getattr(sheet, "cell_note_map", {}).items():
                out.add(f"{att.part}/{sheet.name}!{xlrd.cellname(row, col)}/kommentar", note.text, limits)
            book.unload_sheet(index)
    finally:
        book.release_resources()


def _xls_cell(book: Any, sheet: Any, row: int, col: int, xlrd: Any) -> str:
    cell = sheet.cell(row, col)
    if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK, xlrd.XL_CELL_ERROR):
        return ""
    if cell.ctype == xlrd.XL_CELL_DATE:
        try:
            return xlrd.xldate_as_datetime(cell.value, book.datemode).isoformat()
        except (ValueError, OverflowError, xlrd.xldate.XLDateError):
            return number_text(cell.value)
    if cell.ctype == xlrd.XL_CELL_NUMBER:
        fmt = None
        xf = book.xf_list[cell.xf_index] if book.xf_list and cell.xf_index is not None else None
        if xf is not None and xf.format_key in book.format_map:
            fmt = book.format_map[xf.format_key].format_str
        return cell_text(cell.value, fmt)
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return str(bool(cell.value))
    return cell_text(str(cell.value))


# ---- OLE compound files: Outlook .msg, Excel 97-2003, and encrypted OOXML --------------------------

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ENCRYPTED_STREAMS = frozenset(("EncryptedPackage", "EncryptionInfo"))


def _ole_streams(data: bytes) -> set[str]:
    import olefile

    with olefile.OleFileIO(data) as ole:
        return {"/".join(entry) for entry in ole.listdir(streams=True, storages=False)}


def compound_file(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    """An OLE file whose type was not said: what its streams show it to be decides the reader."""
    streams = _ole_streams(att.data)
    if streams & ENCRYPTED_STREAMS:
        raise Unreadable(ENCRYPTED)
    if any(s.startswith("__substg1.0_") for s in streams):
        messages.outlook_msg(att, out, limits, recurse)
    elif "Workbook" in streams or "Book" in streams:
        xls(att, out, limits, recurse)
    elif "WordDocument" in streams:
        word97(att, out, limits, recurse)
    else:
        raise Unreadable("okänd sorts Office-fil")


# ---- Word 97-2003 (.doc) ---------------------------------------------------------------------------

# catdoc (a Debian package) reads the text of a Word 97-2003 file, main text, notes and headers, in
# milliseconds; nothing on PyPI reads the binary format. antiword, the other such program, refuses
# the .doc files LibreOffice writes ("text stream too small"). The bytes go to a private folder
# first. -w: no line wrapping (a number must not be split by it); -d utf-8: the output's charset.
CATDOC = ("catdoc", "-w", "-d", "utf-8")
# Share of a sample that must be printable for a `.doc` that is no Word file to be read as text.
TEXT_SHARE = 0.95
# FIB: fEncrypted is bit 0x0100 of the flags word at offset 0x0A of the WordDocument stream.
FIB_FLAGS = slice(0x0A, 0x0C)
FIB_ENCRYPTED = 0x0100
# Pictures in a .doc are raw PNG or JPEG bytes inside its Data stream (OfficeArt BLIPs): carved out
# by their signatures and read like any picture. Vector pictures (EMF/WMF) cannot be read.
PICTURE_STARTS = re.compile(rb"\x89PNG\r\n\x1a\n|\xff\xd8\xff[\xc0-\xfe]")
VECTOR_PICTURE = re.compile(rb"\x01\x00\x00\x00.{36} EMF|\xd7\xcd\xc6\x9a", re.DOTALL)


def legacy_word(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    """What a `.doc` name or `application/msword` type may hold: a Word 97-2003 file (an OLE file),
    or a web page or text that Word saved under that name, which is read as what it is."""
    if att.data.startswith(OLE_MAGIC):
        compound_file(att, out, limits, recurse)
        return
    text = textual.decode_text(att.data[:4096], att.charset)
    if "<html" in text.lower() or text.lstrip().lower().startswith(("<!doctype", "<?xml")):
        textual.html(att, out, limits, recurse)
    elif text and sum(ch.isprintable() or ch in "\r\n\t" for ch in text) >= TEXT_SHARE * len(text):
        textual.plain(att, out, limits, recurse)
    else:
        raise Unreadable("Word-dokument i ett format som inte kan läsas: spara som .docx eller PDF")


# The properties an OLE file keeps in its summary streams that a person writes (File > Properties),
# by olefile's names; code page 1200 is UTF-16, any other a Windows code page.
OLE_PROPERTIES = (
    "title",
    "subject",
    "author",
    "keywords",
    "comments",
    "last_saved_by",
    "category",
    "manager",
    "company",
)
OLE_USER_PROPERTIES = "\x05DocumentSummaryInformation"


def ole_properties(ole: Any) -> str:
    """Title, subject, keywords, comments, ... and the custom properties of a Word or Excel 97-2003
    file, a line each."""
    meta = ole.get_metadata()
    codepage = meta.codepage if isinstance(meta.codepage, int) else None
    charset = "utf-16-le" if codepage == 1200 else f"cp{codepage % 65536}" if codepage else None
    values: list[object] = [getattr(meta, name, None) for name in OLE_PROPERTIES]
    if ole.exists(OLE_USER_PROPERTIES):
        try:
            custom = ole.get_userdefined_properties(OLE_USER_PROPERTIES)
        except Exception:  # a damaged property set: the document's text is still read
            custom = []
        values += [item for prop in custom for item in (prop.get("property_name"), prop.get("value"))]
    lines = []
    for value in values:
        if isinstance(value, bytes):
            value = decode_bytes(value.rstrip(b"\x00"), charset)
        if isinstance(value, str) and value.strip():
            lines.append(value.strip())
    return "\n".join(lines)


def word97(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    """A Word 97-2003 document: its text by catdoc, its properties, its PNG and JPEG pictures by OCR."""
    import olefile

    with olefile.OleFileIO(att.data) as ole:
        fib = ole.openstream("WordDocument").read(0x20)
        data = ole.openstream("Data").read() if ole.exists("Data") else b""
        properties = ole_properties(ole)
    if len(fib) >= FIB_FLAGS.stop and int.from_bytes(fib[FIB_FLAGS], "little") & FIB_ENCRYPTED:
        raise Unreadable(ENCRYPTED)
    out.add(att.part, _catdoc(att.data, out, limits), limits)
    out.add(f"{att.part}/egenskaper", properties, limits)
    starts = [m.start() for m in PICTURE_STARTS.finditer(data)]
    ends = [*starts[1:], len(data)] if starts else []
    for number, (start, end) in enumerate(zip(starts, ends, strict=True), 1):
        recurse(att.member(f"bild-{number}", data[start:end]), out)
    if VECTOR_PICTURE.search(data):
        out.unreadable(
            f"{att.part}/bild",
            att.content_type,
            "vektorbild (EMF/WMF) i Word-dokumentet kan inte läsas: spara dokumentet som PDF eller .docx",
        )


def _catdoc(data: bytes, out: Extracted, limits: Limits) -> str:
    timeout = out.seconds_left(limits)
    if timeout <= 0:
        raise Unreadable(f"granskningen tog längre än {limits.scan_timeout_seconds:g} s")
    with tempfile.TemporaryDirectory(prefix="brukarvakt-doc-") as folder:
        path = Path(folder) / "document.doc"
        path.write_bytes(data)
        path.chmod(0o600)
        try:
            done = subprocess.run([*CATDOC, str(path)], capture_output=True, timeout=timeout, check=False)
        except FileNotFoundError:
            raise Unreadable(
                "Word 97-2003-dokument (.doc) kan inte läsas: catdoc saknas på servern"
            ) from None
        except subprocess.TimeoutExpired:
            raise Unreadable(f"Word-dokumentet tog längre än {timeout:g} s att läsa") from None
    if done.returncode != 0:
        # Only the exit code: catdoc's message names the file and may quote it.
        raise Unreadable(f"Word 97-2003-dokumentet kan inte läsas (catdoc {done.returncode})")
    return done.stdout.decode("utf-8", "replace")


# ---- OpenDocument ----------------------------------------------------------------------------------

ODF_PICTURES = re.compile(r"Pictures/[^/]+$")
# An embedded object of LibreOffice's own (a Calc table, a chart, a formula): a folder of its own
# whose content.xml holds its text (in text:p, table cells, chart titles, not in OOXML's elements).
ODF_OBJECT_CONTENT = re.compile(r"Object[^/]*/content\.xml$")
# The rest of such a folder, and the package's own parts (read by odfpy above, or no text a person
# wrote); a picture of an embedded object (ObjectReplacements/) shows what its object holds.
ODF_SKIPPED = re.compile(
    r"(?:mimetype|content\.xml|styles\.xml|meta\.xml|settings\.xml|manifest\.rdf|layout-cache"
    r"|Object[^/]*/(?:styles|meta|settings)\.xml|(?:META-INF|Thumbnails|Configurations2|ObjectReplacements)/.*"
    r"|.*/)$"
)


def _odf_container(att: Attachment, out: Extracted, limits: Limits) -> zipfile.ZipFile:
    zf = _checked_container(att, out, limits)
    try:
        manifest = read_member(zf, zf.getinfo("META-INF/manifest.xml"), out, limits)
    except KeyError:
        manifest = b""
    if b"encryption-data" in manifest:
        raise Unreadable(ENCRYPTED)
    return zf


def _odf_members(
    att: Attachment, zf: zipfile.ZipFile, out: Extracted, limits: Limits, recurse: Recurse
) -> None:
    for info in zf.infolist():
        if ODF_OBJECT_CONTENT.match(info.filename):
            out.add(f"{att.part}/{info.filename}", element_text(read_member(zf, info, out, limits)), limits)
        elif ODF_PICTURES.match(info.filename) or not ODF_SKIPPED.match(info.filename):
            # Pictures, and any other file kept in the package: an object from another program that
            # LibreOffice keeps as it came (`Obj100`: an embedded Excel workbook), macros ...
            name = PurePosixPath(info.filename).name
            recurse(att.member(name, read_member(zf, info, out, limits)), out)


def _odf_meta(zf: zipfile.ZipFile, out: Extracted, limits: Limits) -> str:
    """The document's properties, a line each: odfpy's text of them runs one into the next
    (a title's last digit against the generator's name), which hides a number at either end."""
    try:
        info = zf.getinfo("meta.xml")
    except KeyError:
        return ""
    return element_text(read_member(zf, info, out, limits))


# Elements whose text is a line of its own: paragraphs and headings, and what stands before a note's
# or a comment's text (the note's number, the comment's author and date), which would otherwise run
# into a number that opens it.
ODF_LINES = frozenset(("p", "h", "note-citation", "creator", "date"))


def _odf_text(nodes: Iterable[Any]) -> str:
    """Text of odfpy nodes, paragraphs and headings a line each; text:s and text:tab as spaces."""
    chunks: list[str] = []
    stack: list[Any] = list(reversed(list(nodes)))
    while stack:
        node = stack.pop()
        if node is None:
            continue
        if isinstance(node, str):  # a marker pushed below: the end of a paragraph
            chunks.append(node)
            continue
        if node.nodeType == node.TEXT_NODE:
            chunks.append(node.data)
            continue
        local = node.qname[1] if getattr(node, "qname", None) else ""
        if local == "s":
            count = node.attributes.get(("urn:oasis:names:tc:opendocument:xmlns:text:1.0", "c"), "1")
            chunks.append(" " * min(int(count) if str(count).isdigit() else 1, 100))
        elif local == "tab":
            chunks.append("\t")
        elif local == "line-break":
            chunks.append("\n")
        if local in ODF_LINES:
            chunks.append("\n")
            stack.append("\n")
        stack.extend(reversed(node.childNodes))
    return "".join(chunks)


def odt(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    from odf.opendocument import load

    zf = _odf_container(att, out, limits)
    doc = load(io.BytesIO(att.data))
    out.add(f"{att.part}/brödtext", _odf_text([doc.body]), limits)
    out.add(f"{att.part}/sidhuvud och sidfot", _odf_text([doc.masterstyles]), limits)
    out.add(f"{att.part}/egenskaper", _odf_meta(zf, out, limits), limits)
    _odf_members(att, zf, out, limits, recurse)


def ods(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    from odf.opendocument import load
    from odf.table import Table

    zf = _odf_container(att, out, limits)
    doc = load(io.BytesIO(att.data))
    tables = doc.spreadsheet.getElementsByType(Table)
    # A sheet's name (a tab per client) is shown on its tab.
    out.add(f"{att.part}/bladnamn", "\n".join(_attr(table, "name") or "" for table in tables), limits)
    for table in tables:
        name = _attr(table, "name") or "Blad"
        run, row = WordRun(), 0
        for i, (coordinate, text, row_index, col_index) in enumerate(_ods_cells(table)):
            if i % CELLS_PER_TIME_CHECK == 0:
                out.check_time(limits)
            out.add(f"{att.part}/{name}!{coordinate}", text, limits)
            if row_index != row:
                _add_run(out, f"{att.part}/{name}", run.end(), limits)
                row = row_index
            _add_run(out, f"{att.part}/{name}", run.cell(col_index, coordinate, text), limits)
        _add_run(out, f"{att.part}/{name}", run.end(), limits)
    out.add(f"{att.part}/sidhuvud och sidfot", _odf_text([doc.masterstyles]), limits)
    out.add(f"{att.part}/egenskaper", _odf_meta(zf, out, limits), limits)
    _odf_members(att, zf, out, limits, recurse)


TABLE_NS = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
OFFICE_NS = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
# Repeats are counted, never expanded: an empty row repeated a million times is one element.
MAX_REPEAT = 1 << 20


def _attr(node: Any, name: str, ns: str = TABLE_NS) -> str | None:
    value = node.attributes.get((ns, name))
    return str(value) if value is not None else None


def _repeat(node: Any, name: str) -> int:
    value = _attr(node, name) or "1"
    return min(int(value), MAX_REPEAT) if value.isdigit() else 1


def _ods_cells(table: Any) -> Iterator[tuple[str, str, int, int]]:
    """Each cell with text: its coordinate, its text, its row and column numbers."""
    from openpyxl.utils import get_column_letter

    row_index = 1
    for row in _descendants(table, "table-row", stop=("table",)):
        col_index = 1
        for cell in row.childNodes:
            local = cell.qname[1] if getattr(cell, "qname", None) else ""
            if local not in ("table-cell", "covered-table-cell"):
                continue
            text = _ods_cell_text(cell)
            if text.strip():
                yield f"{get_column_letter(min(col_index, 16384))}{row_index}", text, row_index, col_index
            col_index += _repeat(cell, "number-columns-repeated")
        row_index += _repeat(row, "number-rows-repeated")


def _descendants(node: Any, local: str, stop: tuple[str, ...]) -> Iterator[Any]:
    """Elements named `local` below `node`, in document order, not entering nested `stop` elements."""
    stack = list(reversed(node.childNodes))
    while stack:
        child = stack.pop()
        name = child.qname[1] if getattr(child, "qname", None) else ""
        if name == local:
            yield child
        elif name not in stop and child.nodeType == child.ELEMENT_NODE:
            stack.extend(reversed(child.childNodes))


def _ods_cell_text(cell: Any) -> str:
    shown = _odf_text(cell.childNodes).strip()
    if _attr(cell, "value-type", OFFICE_NS) in ("float", "percentage", "currency"):
        raw = _attr(cell, "value", OFFICE_NS)
        try:
            digits = number_text(float(raw)) if raw is not None else ""
        except ValueError:
            digits = ""
        # The shown text is what a reader sees; when it has lost digits (1,95E+11) the value has them.
        if digits and re.sub(r"\D", "", shown) != digits.lstrip("-").replace(".", ""):
            return f"{shown}\n{digits}" if shown else digits
    return shown
