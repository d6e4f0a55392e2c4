"""Attachment extraction: the registry that picks one extractor per format, by type or file name."""

from __future__ import annotations

import logging
from pathlib import PurePosixPath

from gateway.extractors import archives, images, messages, office, pdf, signatures, textual
from gateway.extractors.base import Attachment, Extracted, Extractor, Recurse, Unreadable
from models.config import Limits

__all__ = ["Attachment", "Extracted", "Extractor", "Recurse", "Unreadable", "extract", "extractor_for"]

# Parser libraries log what they meet in a file (attachment names, subjects, damaged objects):
# their messages could carry an identifier into the gateway's log, so only their failures are kept.
QUIET_LIBRARIES = ("extract_msg", "RTFDE", "olefile", "pypdf", "PIL", "openpyxl", "docx", "pytesseract")
for _library in QUIET_LIBRARIES:
    logging.getLogger(_library).setLevel(logging.CRITICAL)

# Formats by MIME type and by file name ending; type before name, except for the vague types below.
BY_TYPE: dict[str, Extractor] = {
    "text/html": textual.html,
    "application/xhtml+xml": textual.html,
    "text/xml": textual.xml,
    "application/xml": textual.xml,
    "image/svg+xml": textual.xml,
    "text/csv": textual.csv,
    "text/tab-separated-values": textual.csv,
    "text/rtf": textual.rtf,
    "application/rtf": textual.rtf,
    "text/calendar": textual.calendar,
    "text/vcard": textual.vcard,
    "text/x-vcard": textual.vcard,
    "text/directory": textual.vcard,
    "application/pdf": pdf.pdf,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": office.docx,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template": office.docx,
    "application/vnd.ms-word.document.macroenabled.12": office.docx,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": office.pptx,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": office.xlsx,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.template": office.xlsx,
    "application/vnd.ms-excel.sheet.macroenabled.12": office.xlsx,
    "application/vnd.ms-excel": office.xls,
    "application/vnd.oasis.opendocument.text": office.odt,
    "application/vnd.oasis.opendocument.spreadsheet": office.ods,
    "application/zip": archives.zip_archive,
    "application/x-zip-compressed": archives.zip_archive,
    "application/x-tar": archives.tar_archive,
    "application/gzip": archives.compressed,
    "application/x-gzip": archives.compressed,
    "application/x-bzip2": archives.compressed,
    "application/x-xz": archives.compressed,
    "application/vnd.ms-outlook": messages.outlook_msg,
    "image/png": images.image,
    "image/jpeg": images.image,
    "image/pjpeg": images.image,
    "image/tiff": images.image,
    "image/gif": images.image,
    "image/bmp": images.image,
    "image/webp": images.image,
    # Signatures and encryption: signed content read, a detached signature skipped, encrypted held.
    "application/pkcs7-mime": signatures.signed_or_encrypted,
    "application/x-pkcs7-mime": signatures.signed_or_encrypted,
    "application/pkcs7-signature": signatures.signed_or_encrypted,
    "application/x-pkcs7-signature": signatures.signed_or_encrypted,
    "application/pgp-signature": signatures.signed_or_encrypted,
    "application/pgp-encrypted": signatures.signed_or_encrypted,
}
BY_EXTENSION: dict[str, Extractor] = {
    ".txt": textual.plain,
    ".text": textual.plain,
    ".log": textual.plain,
    ".md": textual.plain,
    ".csv": textual.csv,
    ".tsv": textual.csv,
    ".htm": textual.html,
    ".html": textual.html,
    ".xhtml": textual.html,
    ".xml": textual.xml,
    ".svg": textual.xml,
    ".rtf": textual.rtf,
    ".ics": textual.calendar,
    ".ical": textual.calendar,
    ".vcs": textual.calendar,
    ".vcf": textual.vcard,
    ".vcard": textual.vcard,
    ".pdf": pdf.pdf,
    ".docx": office.docx,
    ".docm": office.docx,
    ".dotx": office.docx,
    ".pptx": office.pptx,
    ".ppsx": office.pptx,
    ".xlsx": office.xlsx,
    ".xlsm": office.xlsx,
    ".xltx": office.xlsx,
    ".xls": office.xls,
    ".odt": office.odt,
    ".ott": office.odt,
    ".ods": office.ods,
    ".ots": office.ods,
    ".zip": archives.zip_archive,
    ".tar": archives.tar_archive,
    ".tgz": archives.tar_archive,
    ".gz": archives.compressed,
    ".bz2": archives.compressed,
    ".xz": archives.compressed,
    ".eml": messages.eml,
    ".msg": messages.outlook_msg,
    ".png": images.image,
    ".jpg": images.image,
    ".jpeg": images.image,
    ".jfif": images.image,
    ".tif": images.image,
    ".tiff": images.image,
    ".gif": images.image,
    ".bmp": images.image,
    ".webp": images.image,
    ".p7m": signatures.signed_or_encrypted,
    ".p7s": signatures.signed_or_encrypted,
    ".p7c": signatures.signed_or_encrypted,
    ".sig": signatures.signed_or_encrypted,
    ".asc": signatures.signed_or_encrypted,
    ".pgp": signatures.signed_or_encrypted,
    ".gpg": signatures.signed_or_encrypted,
}
# Formats known and not read here, with what the sender can do instead (shown in the guidance).
NOT_READ: dict[str, str] = {
    ".7z": ".7z-arkiv kan inte öppnas: packa filerna som zip",
    ".rar": ".rar-arkiv kan inte öppnas: packa filerna som zip",
    ".emf": "vektorbild (EMF) kan inte läsas: spara bilden som PNG eller dokumentet som PDF",
    ".wmf": "vektorbild (WMF) kan inte läsas: spara bilden som PNG eller dokumentet som PDF",
    "image/x-emf": "vektorbild (EMF) kan inte läsas: spara bilden som PNG eller dokumentet som PDF",
    "image/x-wmf": "vektorbild (WMF) kan inte läsas: spara bilden som PNG eller dokumentet som PDF",
    ".heic": "HEIC-bild kan inte läsas: skicka den som JPEG",
    "image/heic": "HEIC-bild kan inte läsas: skicka den som JPEG",
    ".doc": "Word 97-2003-dokument (.doc) kan inte läsas: spara som .docx eller PDF",
    "application/msword": "Word 97-2003-dokument (.doc) kan inte läsas: spara som .docx eller PDF",
}


def _not_read(reason: str) -> Extractor:
    def extractor(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
        raise Unreadable(reason)

    return extractor


for _key, _reason in NOT_READ.items():
    (BY_EXTENSION if _key.startswith(".") else BY_TYPE).setdefault(_key, _not_read(_reason))

# Types that say little about the content: the file name decides when it names a format.
VAGUE_TYPES = frozenset(
    (
        "application/octet-stream",
        "application/x-download",
        "application/download",
        "application/force-download",
        "application/binary",
        "application/zip",
        "application/x-zip-compressed",
    )
)
# Types whose generic fallback is plain text (any text/* not named above).
TEXT_PREFIX = "text/"


def extractor_for(name: str, content_type: str) -> Extractor | None:
    lower = name.lower()
    by_name = BY_EXTENSION.get(
        ".tar" if lower.endswith((".tar.gz", ".tar.bz2", ".tar.xz")) else PurePosixPath(lower).suffix
    )
    if content_type in VAGUE_TYPES and by_name is not None:
        return by_name
    found = BY_TYPE.get(content_type)
    if found is not None:
        return found
    if by_name is not None:
        return by_name
    if content_type.startswith(TEXT_PREFIX):
        return textual.plain
    if content_type.startswith("message/"):
        return messages.eml
    return None


# Magic numbers: what a file is when neither its type nor its name says so.
MAGIC: tuple[tuple[bytes, Extractor], ...] = (
    (b"%PDF-", pdf.pdf),
    (b"PK\x03\x04", archives.zip_archive),
    (b"PK\x05\x06", archives.zip_archive),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", office.compound_file),
    (b"\x89PNG", images.image),
    (b"\xff\xd8\xff", images.image),
    (b"II*\x00", images.image),
    (b"MM\x00*", images.image),
    (b"GIF8", images.image),
    (b"{\\rtf", textual.rtf),
    (b"\x1f\x8b", archives.compressed),
    (b"BZh", archives.compressed),
    (b"\xfd7zXZ\x00", archives.compressed),
    (signatures.ARMOUR_HINT.encode(), signatures.signed_or_encrypted),
)


# Share of a sample that must be printable for a file of no known kind to be read as text.
TEXT_SHARE = 0.95


def sniff(data: bytes) -> Extractor | None:
    head = data[:16]
    for magic, extractor in MAGIC:
        if head.startswith(magic):
            return extractor
    sample = textual.decode_text(data[:4096], None)
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in sample)
    if sample and printable >= TEXT_SHARE * len(sample):
        return textual.plain
    return None


def extract(att: Attachment, out: Extracted, limits: Limits) -> None:
    """Add the attachment's text to `out`; what cannot be read goes to `out.unscanned`."""

    def recurse(member: Attachment, into: Extracted) -> None:
        if member.depth > limits.max_mime_depth:
            raise Unreadable(f"fler än {limits.max_mime_depth} nivåer inuti varandra")
        extract(member, into, limits)

    extractor = extractor_for(att.name, att.content_type) or sniff(att.data)
    if extractor is None:
        out.unreadable(att.part, att.content_type, "filtypen kan inte läsas")
        return
    try:
        out.check_time(limits)
        extractor(att, out, limits, recurse)
    except Unreadable as e:
        out.unreadable(att.part, att.content_type, str(e), encrypted=e.encrypted)
    except MemoryError:
        out.unreadable(att.part, att.content_type, "för stor för att läsas")
    except Exception as e:  # a parser library's own failure on a broken file
        # Only the exception's type: its message may quote the file's content.
        out.unreadable(att.part, att.content_type, f"kan inte läsas ({type(e).__name__})")
