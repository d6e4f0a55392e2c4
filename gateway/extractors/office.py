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
    ("core-properties+xml", "egenskaper"),
    ("drawingml.chart+xml", "diagram"),
    ("drawingml.diagramData+xml", "smartart"),
)
# Parts that hold no text a person wrote: formatting, settings, relationships.
WORD_SKIPPED = (
    "styles+xml",
    "settings+xml",
    "fontTable+xml",
    "webSettings+xml",
    "theme+xml",
    "numbering+xml",
    "relationships+xml",
    "extended-properties+xml",
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


def ooxml_text(xml: bytes) -> str:
    """A part's text, a paragraph a line; Fallback copies of text boxes are skipped (the Choice
    holds the same text)."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    chunks: list[str] = []
    skip_depth = 0
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
        elif local in OOXML_LINE_BREAKS or local in ("tc", "v"):
            chunks.append("\n")
        elif local in ("creator", "title", "subject", "description", "keywords", "lastModifiedBy"):
            chunks.append(f"{el.text or ''}\n")
    return "".join(chunks)


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
        elif ctype.endswith(WORD_SKIPPED) or path.startswith(THUMBNAIL):
            continue  # formatting, or a picture of the first page whose text is read above
        elif ctype.endswith("+xml") or ctype in ("application/xml", "text/xml"):
            out.add(f"{att.part}/{name}", ooxml_text(part.blob), limits)  # custom XML, bound data
        else:  # pictures (text recognition), embedded workbooks and documents
            recurse(att.member(name, part.blob, ctype), out)


pptx = docx
THUMBNAIL = "/docProps/thumbnail."
SLIDE_NUMBER = re.compile(r"/ppt/(slides|notesSlides)/\w+?(\d+)\.xml$")
SLIDE_LABELS = {"slides": "bild", "notesSlides": "anteckningar bild"}


# SpreadsheetML parts besides the cells (read by openpyxl): where else a person's text can be.
XLSX_TEXT_PARTS = (
    (re.compile(r"xl/comments(/comment)?\d*\.xml$"), "kommentarer"),  # Excel, openpyxl
    (re.compile(r"xl/threadedComments/.*\.xml$"), "kommentarer"),
    (re.compile(r"xl/drawings/drawing\d*\.xml$"), "textrutor"),
    (re.compile(r"xl/charts/chart\d*\.xml$"), "diagram"),
    (re.compile(r"docProps/core\.xml$"), "egenskaper"),
    (re.compile(r"customXml/item\d*\.xml$"), "xml"),
)
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
        for sheet in workbook.worksheets:
            for i, cell in enumerate(c for row in sheet.iter_rows() for c in row):
                if i % CELLS_PER_TIME_CHECK == 0:
                    out.check_time(limits)
                if cell.value is None:
                    continue
                text = cell_text(cell.value, getattr(cell, "number_format", None))
                out.add(f"{att.part}/{sheet.title}!{cell.coordinate}", text, limits)
    finally:
        workbook.close()
    for info in zf.infolist():
        label = next((label for pattern, label in XLSX_TEXT_PARTS if pattern.match(info.filename)), None)
        if label is not None:
            out.add(f"{att.part}/{label}", ooxml_text(read_member(zf, info, out, limits)), limits)
        elif XLSX_PIVOT_CACHE.match(info.filename):
            out.add(f"{att.part}/pivottabell", pivot_cache_text(read_member(zf, info, out, limits)), limits)
        elif XLSX_EMBEDDED.match(info.filename):
            name = PurePosixPath(info.filename).name
            recurse(att.member(name, read_member(zf, info, out, limits)), out)


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
    try:
        for index in range(book.nsheets):
            sheet = book.sheet_by_index(index)
            count = 0
            for row in range(sheet.nrows):
                for col in range(sheet.ncols):
                    count += 1
                    if count % CELLS_PER_TIME_CHECK == 0:
                        out.check_time(limits)
                    text = _xls_cell(book, sheet, row, col, xlrd)
                    if text:
                        out.add(f"{att.part}/{sheet.name}!{xlrd.cellname(row, col)}", text, limits)
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


def word97(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    """A Word 97-2003 document: its text by catdoc, its PNG and JPEG pictures by OCR."""
    import olefile

    with olefile.OleFileIO(att.data) as ole:
        fib = ole.openstream("WordDocument").read(0x20)
        data = ole.openstream("Data").read() if ole.exists("Data") else b""
    if len(fib) >= FIB_FLAGS.stop and int.from_bytes(fib[FIB_FLAGS], "little") & FIB_ENCRYPTED:
        raise Unreadable(ENCRYPTED)
    out.add(att.part, _catdoc(att.data, out, limits), limits)
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
ODF_OBJECT_CONTENT = re.compile(r"Object[^/]*/content\.xml$")


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
        if ODF_PICTURES.match(info.filename):
            name = PurePosixPath(info.filename).name
            recurse(att.member(name, read_member(zf, info, out, limits)), out)
        elif ODF_OBJECT_CONTENT.match(info.filename):
            out.add(f"{att.part}/{info.filename}", ooxml_text(read_member(zf, info, out, limits)), limits)


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
        if local in ("p", "h"):
            stack.append("\n")
        stack.extend(reversed(node.childNodes))
    return "".join(chunks)


def odt(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    from odf.opendocument import load

    zf = _odf_container(att, out, limits)
    doc = load(io.BytesIO(att.data))
    out.add(f"{att.part}/brödtext", _odf_text([doc.body]), limits)
    out.add(f"{att.part}/sidhuvud och sidfot", _odf_text([doc.masterstyles]), limits)
    out.add(f"{att.part}/egenskaper", _odf_text([doc.meta]), limits)
    _odf_members(att, zf, out, limits, recurse)


def ods(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    from odf.opendocument import load
    from odf.table import Table

    zf = _odf_container(att, out, limits)
    doc = load(io.BytesIO(att.data))
    for table in doc.spreadsheet.getElementsByType(Table):
        name = _attr(table, "name") or "Blad"
        for i, (coordinate, text) in enumerate(_ods_cells(table)):
            if i % CELLS_PER_TIME_CHECK == 0:
                out.check_time(limits)
            out.add(f"{att.part}/{name}!{coordinate}", text, limits)
    out.add(f"{att.part}/sidhuvud och sidfot", _odf_text([doc.masterstyles]), limits)
    out.add(f"{att.part}/egenskaper", _odf_text([doc.meta]), limits)
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


def _ods_cells(table: Any) -> Iterator[tuple[str, str]]:
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
                yield f"{get_column_letter(min(col_index, 16384))}{row_index}", text
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
