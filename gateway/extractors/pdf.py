"""PDF: the text layer of every page, form fields, comments, embedded files, and scanned pages by OCR;
a damaged file through a second reader and the recognition of its rendered pages."""

from __future__ import annotations

import ctypes
import io
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway import ocr
from gateway.extractors.base import ENCRYPTED, Attachment, Extracted, Recurse, Unreadable
from models.config import Limits

METADATA_KEYS = ("/Title", "/Subject", "/Author", "/Keywords")


def pdf(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    """pypdf first (form fields, comments, embedded files, pictures); a file it cannot parse (cut off,
    a wrong stream length, a broken cross-reference table) goes to PDFium, which rebuilds what it can."""
    before = _Progress.of(out)
    try:
        _pypdf(att, out, limits, recurse)
    except (Unreadable, MemoryError):
        raise
    except Exception:  # pypdf's PdfStreamError, PdfReadError, ValueError ... on a damaged file
        before.restore(out)  # what pypdf read before it failed is read again, whole, by PDFium
        _pdfium(att, out, limits, recurse)


def _pypdf(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    reader = PdfReader(io.BytesIO(att.data), strict=False)
    if reader.is_encrypted:
        # An owner password alone (printing or copying refused) still opens with an empty one.
        try:
            opened = bool(reader.decrypt(""))
        except (DependencyError, NotImplementedError):
            opened = False
        if not opened:
            raise Unreadable(ENCRYPTED)
    try:
        pages = len(reader.pages)
    except FileNotDecryptedError:
        raise Unreadable(ENCRYPTED) from None
    out.count_pages(pages, limits)
    _properties(att, reader, out, limits)
    cache: dict[str, str] = {}
    for number, page in enumerate(reader.pages, 1):
        out.check_time(limits)
        part = f"{att.part}/sida {number}"
        text = page.extract_text() or ""
        out.add(part, text, limits)
        out.add(f"{part}/kommentarer", _annotations(page), limits)
        _page_images(page, part, text, out, limits, cache)
    fields = reader.get_fields() or {}
    values = [_field_text(f.get("/V")) for f in fields.values() if isinstance(f, dict)]
    out.add(f"{att.part}/formulär", "\n".join(v for v in values if v), limits)
    for name, contents in (reader.attachments or {}).items():
        out.add(f"{att.part}/filename", name, limits)  # a file's name can be the identifier
        for data in contents:
            recurse(att.member(name, data), out)


def _properties(att: Attachment, reader: Any, out: Extracted, limits: Limits) -> None:
    """The document's properties, the four known ones first and any other a program added
    (`/Personnummer` from a care system's export), and its bookmarks (a scan's table of contents)."""
    info = reader.metadata or {}
    keys = [*METADATA_KEYS, *(key for key in info if key not in METADATA_KEYS)]
    values = [str(info.get(key)) for key in keys if isinstance(info.get(key), str) and info.get(key)]
    out.add(f"{att.part}/egenskaper", "\n".join(values), limits)
    try:
        outline = reader.outline
    except Exception:  # a broken bookmark tree, which no viewer shows either: the pages still count
        outline = []
    out.add(f"{att.part}/bokmärken", "\n".join(_outline_titles(outline, limits)), limits)


def _outline_titles(items: Any, limits: Limits) -> list[str]:
    """Every bookmark's title, nested ones too, no more of them than a document has pages to read."""
    titles: list[str] = []
    stack = [items]
    while stack and len(titles) <= limits.max_pages:
        for item in stack.pop():
            if isinstance(item, list):
                stack.append(item)
            elif getattr(item, "title", None):
                titles.append(str(item.title))
    return titles


def _annotations(page: Any) -> str:
    texts: list[str] = []
    for ref in page.get("/Annots") or []:
        annot = ref.get_object()
        for key in ("/Contents", "/T", "/RC"):
            value = annot.get(key)
            if value:
                texts.append(str(value))
    return "\n".join(texts)


def _field_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "\n".join(str(v) for v in value)
    return str(value).lstrip("/")


def _page_images(
    page: Any, part: str, text: str, out: Extracted, limits: Limits, cache: dict[str, str]
) -> None:
    """Scanned pages are pictures: each image on the page is read by text recognition."""
    declared, forms = _declared_xobjects(page)
    for width, height in declared:
        if width * height > limits.max_image_pixels:
            raise Unreadable(f"en bild är större än {limits.max_image_pixels} pixlar")
    if not declared and not forms and not _may_hold_inline_images(page):
        return  # page.images parses the whole content stream again: not for a page of text only
    if not forms and _searchable_scan(page, text, declared):
        return  # the scanner's own recognition is the text layer just read
    for picture in page.images:
        out.check_time(limits)
        out.add(f"{part}/bild", ocr.recognize(picture.image, out, limits, cache), limits)


# A "searchable PDF" from a copier: one picture of the whole page under an invisible text layer.
SEARCHABLE_TEXT_CHARS = 50
SAME_SHAPE = 0.03


def _searchable_scan(page: Any, text: str, declared: list[tuple[int, int]]) -> bool:
    if len(declared) != 1 or sum(not ch.isspace() for ch in text) < SEARCHABLE_TEXT_CHARS:
        return False
    width, height = declared[0]
    box = page.mediabox
    if not width or not height or not box.width or not box.height:
        return False
    page_shape = float(box.width) / float(box.height)
    if int(page.get("/Rotate", 0) or 0) % 180:
        page_shape = 1 / page_shape
    return abs(width / height - page_shape) <= SAME_SHAPE * page_shape


def _declared_xobjects(page: Any) -> tuple[list[tuple[int, int]], int]:
    """Width and height of the page's images as their dictionaries declare them, before any is
    decoded, and how many form objects (which may hold more images) the page has."""
    sizes: list[tuple[int, int]] = []
    forms = 0
    resources = page.get("/Resources")
    xobjects = resources.get_object().get("/XObject") if resources else None
    for ref in xobjects.get_object().values() if xobjects else []:
        obj = ref.get_object()
        if obj.get("/Subtype") == "/Image":
            sizes.append((int(obj.get("/Width", 0)), int(obj.get("/Height", 0))))
        elif obj.get("/Subtype") == "/Form":
            forms += 1
    return sizes, forms


# An inline image is written BI ... ID <data> EI in the content stream.
_INLINE_IMAGE = re.compile(rb"(?:^|\s)BI\s")


def _may_hold_inline_images(page: Any) -> bool:
    contents = page.get_contents()
    return contents is not None and _INLINE_IMAGE.search(contents.get_data()) is not None


# ---- the second reader: PDFium --------------------------------------------------------------------
#
# Chosen by measurement (`python3 -m bench.pdf_readers`, 2026-12-05: 10-page plans by reportlab,
# compressed and not, a test number on page 1, cut at 50/75/90/99% and before the xref table, a wrong
# /Length, junk before the header; 16 files). No reader opens a file cut before its trailer, which
# names the catalog; retried with a trailer naming it, pypdfium2 found the number in 16 of 16 files,
# pdfminer.six in 14 (not the compressed file cut at 99%, nor the one with a wrong /Length, which
# pypdf refuses too). pypdfium2 took 6-28 ms a file, pdfminer.six 210-910 ms (pypdf: 50-130 ms on
# those it reads). pypdfium2 also renders pages for text recognition, which pdfminer.six cannot.

# PDFium must never run in two threads at once, whichever documents they read (its documentation:
# "not thread-safe ... not even with different documents"); the gateway scans in several threads.
# Reentrant: an embedded file may be another damaged PDF.
PDFIUM_LOCK = threading.RLock()
DAMAGED = "PDF-filen är trasig och kan inte läsas: skicka den igen eller spara den på nytt"
# PDFium's FPDF_ERR_PASSWORD.
PDFIUM_PASSWORD_ERROR = 4
# Pages rendered for text recognition: 300 dpi, as a scanner would; larger pages are made smaller
# to ocr.MAX_OCR_SIDE, which recognition would do anyway.
RENDER_DPI = 300
POINTS_PER_INCH = 72
# A page whose text layer has fewer visible characters than this is read from its rendering too.
TEXT_LAYER_CHARS = 20
ANNOTATION_KEYS = (b"Contents", b"T")
METADATA_NAMES = ("Title", "Subject", "Author", "Keywords")
_OBJECT_HEAD = re.compile(rb"(\d+)\s+(\d+)\s+obj\b")
_CATALOG = re.compile(rb"/Type\s*/Catalog\b")
# An encryption dictionary (password or certificate), or the trailer's reference to one.
_ENCRYPTION = re.compile(rb"/Encrypt\s+\d+\s+\d+\s+R|/Filter\s*/(?:Standard|Adobe\.PubSec)\b")
# How far before "/Type /Catalog" the object's own "N G obj" is looked for.
CATALOG_OBJECT_REACH = 2048


@dataclass(frozen=True)
class _Progress:
    """How far the result had come: what a failed reader added is taken back before the next one."""

    segments: int
    unscanned: int
    extracted_bytes: int
    unpacked_bytes: int
    pages: int
    members: int

    @classmethod
    def of(cls, out: Extracted) -> _Progress:
        return cls(
            len(out.segments),
            len(out.unscanned),
            out.extracted_bytes,
            out.unpacked_bytes,
            out.pages,
            out.members,
        )

    def restore(self, out: Extracted) -> None:
        del out.segments[self.segments :]
        del out.unscanned[self.unscanned :]
        out.extracted_bytes, out.unpacked_bytes = self.extracted_bytes, self.unpacked_bytes
        out.pages, out.members = self.pages, self.members


def _pdfium(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    if not PDFIUM_LOCK.acquire(timeout=max(0.0, out.seconds_left(limits))):
        raise Unreadable(f"granskningen tog längre än {limits.scan_timeout_seconds:g} s")
    try:
        document = _pdfium_document(att.data)
        try:
            _pdfium_read(document, att, out, limits, recurse)
        finally:
            document.close()
    finally:
        PDFIUM_LOCK.release()


def _pdfium_document(data: bytes) -> Any:
    """The document as PDFium opens it, or as it opens it with a trailer naming the catalog."""
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as e:
        if e.err_code == PDFIUM_PASSWORD_ERROR:
            raise Unreadable(ENCRYPTED) from None
    if _ENCRYPTION.search(data):
        # The lost trailer named the encryption: a trailer of ours would open ciphertext as pages.
        raise Unreadable(ENCRYPTED)
    trailer = _catalog_trailer(data)
    if trailer:
        try:
            return pdfium.PdfDocument(data + trailer)
        except pdfium.PdfiumError:
            pass
    raise Unreadable(DAMAGED)


def _catalog_trailer(data: bytes) -> bytes:
    """A trailer for a file cut off before its own: it names the last catalog object written (an
    object cut in the middle of its stream is closed first)."""
    head = None
    for catalog in _CATALOG.finditer(data):
        before = data[max(0, catalog.start() - CATALOG_OBJECT_REACH) : catalog.start()]
        heads = list(_OBJECT_HEAD.finditer(before))
        if heads:
            head = heads[-1]
    if head is None:
        return b""
    return b"\nendstream\nendobj\ntrailer\n<< /Root %s %s R >>\n%%%%EOF\n" % (head.group(1), head.group(2))


def _pdfium_read(document: Any, att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    import pypdfium2.raw as pdfium_c

    pages = len(document)
    out.count_pages(pages, limits)
    metadata = document.get_metadata_dict(skip_empty=True)
    out.add(f"{att.part}/egenskaper", "\n".join(metadata[k] for k in METADATA_NAMES if k in metadata), limits)
    document.init_forms()  # before any page is loaded: filled-in fields are drawn when rendered
    fields: list[str] = []
    cache: dict[str, str] = {}
    read = len(out.segments)
    for number in range(1, pages + 1):
        out.check_time(limits)
        part = f"{att.part}/sida {number}"
        page = document[number - 1]
        try:
            textpage = page.get_textpage()
            try:
                text = textpage.get_text_bounded()
            finally:
                textpage.close()
            out.add(part, text, limits)
            comments, values = _pdfium_annotations(page, document.formenv, pdfium_c)
            out.add(f"{part}/kommentarer", comments, limits)
            fields.extend(values)
            if _holds_pictures(page, pdfium_c) or sum(not ch.isspace() for ch in text) < TEXT_LAYER_CHARS:
                out.add(f"{part}/bild", _recognized_page(page, out, limits, cache), limits)
        finally:
            page.close()
    out.add(f"{att.part}/formulär", "\n".join(fields), limits)
    for index in range(document.count_attachments()):
        embedded = document.get_attachment(index)
        recurse(att.member(embedded.get_name(), bytes(embedded.get_data())), out)
    if not any(not ch.isspace() for segment in out.segments[read:] for ch in segment.text):
        # Blank pages from a damaged file (ciphertext whose encryption was cut off, contents lost):
        # nothing to vouch for.
        raise Unreadable(DAMAGED)


# How deep form objects (pictures inside drawings) are looked into for a picture.
FORM_DEPTH = 3


def _holds_pictures(page: Any, pdfium_c: Any) -> bool:
    """Whether the page draws a picture. Through the raw calls: pypdfium2's object wrappers close
    themselves when collected, which could happen in another thread, outside PDFIUM_LOCK."""

    def any_picture(objects: list[Any], depth: int) -> bool:
        for obj in objects:
            kind = pdfium_c.FPDFPageObj_GetType(obj)
            if kind == pdfium_c.FPDF_PAGEOBJ_IMAGE:
                return True
            if kind == pdfium_c.FPDF_PAGEOBJ_FORM and depth < FORM_DEPTH:
                inner = range(pdfium_c.FPDFFormObj_CountObjects(obj))
                if any_picture([pdfium_c.FPDFFormObj_GetObject(obj, i) for i in inner], depth + 1):
                    return True
        return False

    return any_picture(
        [pdfium_c.FPDFPage_GetObject(page, i) for i in range(pdfium_c.FPDFPage_CountObjects(page))], 0
    )


def _recognized_page(page: Any, out: Extracted, limits: Limits, cache: dict[str, str]) -> str:
    width, height = page.get_size()
    scale = min(RENDER_DPI / POINTS_PER_INCH, ocr.MAX_OCR_SIDE / max(width, height, 1))
    bitmap = page.render(scale=scale, grayscale=True, may_draw_forms=True)
    try:
        return ocr.recognize(bitmap.to_pil(), out, limits, cache)
    finally:
        bitmap.close()


def _pdfium_annotations(page: Any, formenv: Any, pdfium_c: Any) -> tuple[str, list[str]]:
    """The page's comments (their text and author) and its form fields' values."""
    comments: list[str] = []
    values: list[str] = []
    for index in range(pdfium_c.FPDFPage_GetAnnotCount(page)):
        annot = pdfium_c.FPDFPage_GetAnnot(page, index)
        try:
            for key in ANNOTATION_KEYS:
                comments.append(_utf16(pdfium_c.FPDFAnnot_GetStringValue, annot, key))
            if formenv is not None and pdfium_c.FPDFAnnot_GetSubtype(annot) == pdfium_c.FPDF_ANNOT_WIDGET:
                values.append(_utf16(pdfium_c.FPDFAnnot_GetFormFieldValue, formenv, annot))
        finally:
            pdfium_c.FPDFPage_CloseAnnot(annot)
    return "\n".join(c for c in comments if c), [v for v in values if v]


def _utf16(function: Callable[..., int], *args: Any) -> str:
    """A PDFium string: its length asked first (in bytes, with the ending NUL), then its text."""
    size = int(function(*args, None, 0))
    if size <= 2:
        return ""
    buffer = ctypes.create_string_buffer(size)
    function(*args, ctypes.cast(buffer, ctypes.POINTER(ctypes.c_ushort)), size)
    return buffer.raw[: size - 2].decode("utf-16-le", errors="replace")
