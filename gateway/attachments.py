"""Attachment extraction: the registry that picks one extractor per format, by its bytes, type or name."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace

from gateway.extractors import archives, images, messages, office, pdf, signatures, textual
from gateway.extractors.base import Attachment, Extracted, Extractor, Recurse, Unreadable
from models.config import Limits

__all__ = ["Attachment", "Extracted", "Extractor", "Recurse", "Unreadable", "extract", "extractor_for"]

# Parser libraries log what they meet in a file (attachment names, subjects, damaged objects):
# their messages could carry an identifier into the gateway's log, so only their failures are kept.
QUIET_LIBRARIES = (
    "extract_msg",
    "RTFDE",
    "olefile",
    "pypdf",
    "pypdfium2",
    "PIL",
    "openpyxl",
    "docx",
    "pytesseract",
)
for _library in QUIET_LIBRARIES:
    logging.getLogger(_library).setLevel(logging.CRITICAL)

# Formats by MIME type and by file name ending, for files whose bytes do not say (MAGIC below);
# type before name, except for the vague types below.
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
    "application/msword": office.legacy_word,
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
    "image/x-ms-bmp": images.image,
    "image/x-portable-bitmap": images.image,
    "image/x-portable-graymap": images.image,
    "image/x-portable-pixmap": images.image,
    "image/x-portable-anymap": images.image,
    "image/x-portable-arbitrarymap": images.image,
    "image/jp2": images.image,
    "image/jpx": images.image,
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
    ".doc": office.legacy_word,
    ".dot": office.legacy_word,
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
    ".pbm": images.image,
    ".pgm": images.image,
    ".ppm": images.image,
    ".pnm": images.image,
    ".pam": images.image,
    ".jp2": images.image,
    ".j2k": images.image,
    ".jpf": images.image,
    ".jpx": images.image,
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
}


_NOT_READ_READERS: dict[str, Extractor] = {}


def _not_read(reason: str) -> Extractor:
    """One reader per reason: the type's and the name's entries for a format are the same reader."""
    if reason not in _NOT_READ_READERS:

        def extractor(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
            raise Unreadable(reason)

        _NOT_READ_READERS[reason] = extractor
    return _NOT_READ_READERS[reason]


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
    """The reader the declared type or the file name names (MAGIC decides before it: see `extract`)."""
    return _declared(name, content_type)[0]


def _declared(name: str, content_type: str) -> tuple[Extractor | None, str]:
    """The reader the type or name names, and which of them named it: the name's ending, or ""
    for the type (a disagreement's note says which)."""
    suffix = _suffix(name.lower())
    by_name = BY_EXTENSION.get(suffix)
    if content_type in VAGUE_TYPES and by_name is not None:
        return by_name, suffix
    found = BY_TYPE.get(content_type)
    if found is not None:
        return found, ""
    if by_name is not None:
        return by_name, suffix
    if content_type.startswith(TEXT_PREFIX):
        return textual.plain, ""
    if content_type.startswith("message/"):
        return messages.eml, ""
    return None, ""


def _suffix(lower: str) -> str:
    """`.csv` of `mapp/lista.csv`, `.tar` of `arkiv.tar.gz`; as PurePosixPath says, at a fifth of
    its cost (every attachment and archive member asks)."""
    if lower.endswith((".tar.gz", ".tar.bz2", ".tar.xz")):
        return ".tar"
    base = lower.rpartition("/")[2]
    dot = base.rfind(".")
    return base[dot:] if 0 < dot < len(base) - 1 else ""


@dataclass(frozen=True)
class Magic:
    """A format known by its first bytes."""

    label: str  # the format as a person names it, shown when the type or name said another
    pattern: bytes  # a regular expression over the file's first SNIFF_BYTES bytes, from the start
    reader: Extractor  # reads any file of the format
    # Declared readers kept for these bytes: they know the flavour (.docx, not any zip).
    keeps: tuple[Extractor, ...] = ()
    # Declared readers these bytes are normal for, though `reader` reads them (an encrypted .docx is
    # an OLE file): no disagreement is noted.
    fits: tuple[Extractor, ...] = ()
    # Text, or bytes a text could start with: a declared text type decides before it.
    weak: bool = False


_ZIP_FORMATS = (office.docx, office.pptx, office.xlsx, office.odt, office.ods)
_COMPRESSED_FORMATS = (archives.tar_archive,)
# The bytes decide before the declared type and the file name (a mail program's type is a guess from
# the name, and a renamed file keeps its bytes); one table, tried in order. Formats that are text
# (HTML, XML, CSV, calendars) have no magic here: their declared type decides.
MAGIC: tuple[Magic, ...] = (
    Magic("PDF", rb"%PDF-", pdf.pdf),
    Magic("RTF", rb"\{\\rtf", textual.rtf),
    Magic("zip", rb"PK(?:\x03\x04|\x05\x06|\x07\x08)", archives.zip_archive, keeps=_ZIP_FORMATS),
    Magic(
        "OLE",  # compound file: Outlook .msg, Excel and Word 97-2003, password-protected Office
        rb"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        office.compound_file,
        keeps=(office.xls, messages.outlook_msg),
        fits=(office.docx, office.pptx, office.xlsx, office.legacy_word),
    ),
    Magic("PNG", rb"\x89PNG\r\n\x1a\n", images.image),
    Magic("JPEG", rb"\xff\xd8\xff", images.image),
    Magic("GIF", rb"GIF8[79]a", images.image),
    Magic("TIFF", rb"II[*+]\x00|MM\x00[*+]", images.image),
    # "BM", file size, reserved, offset, then the size of one of the DIB headers Windows has had.
    Magic("BMP", rb"BM.{12}[\x0c\x28\x34\x38\x40\x6c\x7c]\x00\x00\x00", images.image),
    Magic("WebP", rb"RIFF.{4}WEBP", images.image),
    Magic("JPEG 2000", rb"\x00\x00\x00\x0cjP  \r\n\x87\n|\xff\x4f\xff\x51", images.image),
    # Netpbm: PBM, PGM, PPM with width and height (comments allowed; ASCII ones only digits after),
    # and PAM. A note could start "P5 10 20": a declared text type decides before these.
    Magic("netpbm", rb"P[4-6]\s+(?:#[^\n]*\n\s*)*\d+\s+(?:#[^\n]*\n\s*)*\d+\s", images.image, weak=True),
    Magic("netpbm", rb"P[1-3]\s+(?:#[^\n]*\n\s*)*\d+\s+\d+\s[\d\s]*\Z", images.image, weak=True),
    Magic("netpbm", rb"P7\r?\n(?:#[^\n]*\n)*(?:WIDTH|HEIGHT|DEPTH|MAXVAL|TUPLTYPE)\s", images.image),
    Magic("gzip", rb"\x1f\x8b\x08", archives.compressed, keeps=_COMPRESSED_FORMATS),
    Magic("bzip2", rb"BZh[1-9](?:1AY&SY|\x17rE8P\x90)", archives.compressed, keeps=_COMPRESSED_FORMATS),
    Magic("xz", rb"\xfd7zXZ\x00", archives.compressed, keeps=_COMPRESSED_FORMATS),
    Magic("tar", rb".{257}ustar", archives.tar_archive),
    Magic("7z", rb"7z\xbc\xaf\x27\x1c", _not_read(NOT_READ[".7z"])),
    Magic("rar", rb"Rar!\x1a\x07", _not_read(NOT_READ[".rar"])),
    Magic("EMF", rb"\x01\x00\x00\x00.{36} EMF", _not_read(NOT_READ[".emf"])),
    Magic("WMF", rb"\xd7\xcd\xc6\x9a", _not_read(NOT_READ[".wmf"])),
    Magic("HEIC", rb".{4}ftyp(?:heic|heix|heim|heis|hevc|hevx|mif1|msf1)", _not_read(NOT_READ[".heic"])),
    Magic("PGP", re.escape(signatures.ARMOUR_HINT.encode()), signatures.signed_or_encrypted, weak=True),
    # Binary OpenPGP encrypted to a key (tag 1, version 3 or 6) or a password (tag 3, version 4-6),
    # as Exchange leaves PGP/MIME: a part of no name or type but its bytes.
    Magic(
        "PGP",
        rb"(?:\xc1[\x00-\xbf]|\xc1[\xc0-\xdf].|\x84.|\x85..)[\x03\x06]|(?:\xc3[\x00-\xbf]|\x8c.)[\x04-\x06]",
        signatures.signed_or_encrypted,
        weak=True,
    ),
)
# The readers of text formats: a weak magic does not overrule them.
TEXT_READERS = (
    textual.plain,
    textual.csv,
    textual.html,
    textual.xml,
    textual.calendar,
    textual.vcard,
    messages.eml,
)
# The readers of formats known by their bytes: a file named for one of them, without its magic, is
# not one of them.
BINARY_READERS = frozenset(
    reader for magic in MAGIC if not magic.weak for reader in (magic.reader, *magic.keeps, *magic.fits)
)
# Enough for every pattern above: tar's mark at 257, a netpbm header with a comment or two.
SNIFF_BYTES = 512
# One expression, one group per entry: a file is matched once, not once per format.
_MAGIC = re.compile(
    b"|".join(b"(?P<m%d>%s)" % (i, magic.pattern) for i, magic in enumerate(MAGIC)), re.DOTALL
)
# PDF readers accept a header after some bytes of junk (a mail program's or a web server's).
PDF_HEADER = b"%PDF-"
PDF_HEADER_WITHIN = 1024


def magic_of(data: bytes) -> Magic | None:
    """The format the file's first bytes say, if they say one."""
    found = _MAGIC.match(data, 0, SNIFF_BYTES)
    if found is None or found.lastgroup is None:
        return None
    return MAGIC[int(found.lastgroup[1:])]


# Share of a sample that must be printable for a file of no known kind to be read as text.
TEXT_SHARE = 0.95


def sniff(data: bytes) -> Extractor | None:
    """A reader for a file that neither its bytes' magic, its type nor its name places."""
    if PDF_HEADER in data[:PDF_HEADER_WITHIN]:
        return pdf.pdf
    sample = textual.decode_text(data[:4096], None)
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in sample)
    if sample and printable >= TEXT_SHARE * len(sample):
        return textual.plain
    return None


# Where a format's own bytes end, by its magic's label: what follows is no part of the file, and no
# viewer shows it, but it leaves with it (`copy /b bild.png + lista.txt`, a zip behind a PDF that
# an archive program opens). Each finds the end from the last of its end marks.
def _png_end(data: bytes) -> int:
    at = data.rfind(b"IEND\xaeB`\x82")
    return at + 8 if at >= 0 else -1


def _jpeg_end(data: bytes) -> int:
    at = data.rfind(b"\xff\xd9")
    return at + 2 if at >= 0 else -1


def _pdf_end(data: bytes) -> int:
    at = data.rfind(b"%%EOF")
    return at + 5 if at >= 0 else -1


def _zip_end(data: bytes) -> int:
    at = data.rfind(b"PK\x05\x06")
    if at < 0 or len(data) < at + 22:
        return -1
    return at + 22 + int.from_bytes(data[at + 20 : at + 22], "little")  # the record and its comment


FORMAT_ENDS = {"PNG": _png_end, "JPEG": _jpeg_end, "PDF": _pdf_end, "zip": _zip_end}
# Bytes after the end that are padding (a PDF's line ends, a camera's zero bytes), not a file.
TRAILER_PADDING = b"\x00\r\n\t \x1a"
# Fewer bytes than this cannot hold an identifier (a 10-digit number).
MIN_TRAILER_BYTES = 10
TRAILER_LABEL = "efter filens slut"


def trailer(att: Attachment) -> Attachment | None:
    """What follows the end of a PNG, JPEG, PDF or zip, when it is a file of a known kind or text
    (a camera's own binary trailer is neither, and is left alone: it is not unscannable)."""
    magic = magic_of(att.data)
    find_end = FORMAT_ENDS.get(magic.label) if magic is not None else None
    if find_end is None:
        return None
    end = find_end(att.data)
    rest = att.data[end:].lstrip(TRAILER_PADDING) if end > 0 else b""
    if len(rest.rstrip(TRAILER_PADDING)) < MIN_TRAILER_BYTES:
        return None
    if magic_of(rest) is None and sniff(rest) is not textual.plain:
        return None
    return att.member(TRAILER_LABEL, rest)


def choose(att: Attachment) -> tuple[Extractor | None, str]:
    """The reader for the attachment, and a note when its bytes say another format than its type or
    name (never a reason to refuse: the bytes are read as what they are)."""
    declared, suffix = _declared(att.name, att.content_type)
    magic = magic_of(att.data)
    if magic is None and suffix and declared in BINARY_READERS and att.content_type.startswith(TEXT_PREFIX):
        # A binary format's name on bytes without its magic, sent as text: the type is right.
        return textual.plain, ""
    if magic is None or (magic.weak and declared in TEXT_READERS):
        return declared or sniff(att.data), ""
    if declared is not None and declared in magic.keeps:
        return declared, ""
    if declared is None or declared is magic.reader or declared in magic.fits:
        return magic.reader, ""
    said = f"filnamnet slutar på {suffix}" if suffix else f"deklarerad som {att.content_type}"
    return magic.reader, f"{magic.label}, {said}"


def extract(att: Attachment, out: Extracted, limits: Limits) -> None:
    """Add the attachment's text to `out`; what cannot be read goes to `out.unscanned`."""

    def recurse(member: Attachment, into: Extracted) -> None:
        if member.depth > limits.max_mime_depth:
            raise Unreadable(f"fler än {limits.max_mime_depth} nivåer inuti varandra")
        extract(member, into, limits)

    if not att.data:
        return  # an empty file holds nothing to read (its name is read with the message's)
    extractor, disagreement = choose(att)
    if disagreement:  # shown wherever the attachment is named: its findings and its unscanned entry
        att = replace(att, part=f"{att.part} [{disagreement}]")
    if extractor is None:
        out.unreadable(att.part, att.content_type, "filtypen kan inte läsas")
        return
    try:
        out.check_time(limits)
        extractor(att, out, limits, recurse)
        appended = trailer(att)
        if appended is not None:
            recurse(appended, out)
    except Unreadable as e:
        out.unreadable(att.part, att.content_type, str(e), encrypted=e.encrypted)
    except MemoryError:
        out.unreadable(att.part, att.content_type, "för stor för att läsas")
    except Exception as e:  # a parser library's own failure on a broken file
        # Only the exception's type: its message may quote the file's content.
        out.unreadable(att.part, att.content_type, f"kan inte läsas ({type(e).__name__})")
