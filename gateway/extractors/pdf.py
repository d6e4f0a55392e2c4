"""PDF: the text layer of every page, form fields, comments, embedded files, and scanned pages by OCR."""

from __future__ import annotations

import io
import re
from typing import Any

from gateway import ocr
from gateway.extractors.base import ENCRYPTED, Attachment, Extracted, Recurse, Unreadable
from models.config import Limits

METADATA_KEYS = ("/Title", "/Subject", "/Author", "/Keywords")


def pdf(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
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
        for data in contents:
            recurse(att.member(name, data), out)


def _properties(att: Attachment, reader: Any, out: Extracted, limits: Limits) -> None:
    info = reader.metadata or {}
    values = [str(info.get(key)) for key in METADATA_KEYS if info.get(key)]
    out.add(f"{att.part}/egenskaper", "\n".join(values), limits)


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
