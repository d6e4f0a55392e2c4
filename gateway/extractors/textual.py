"""Text formats: plain text and CSV in any charset, HTML, XML, RTF, calendar invitations, contact cards."""

from __future__ import annotations

import base64
import binascii
import codecs
import csv as csv_module  # (`csv` is the reader below)
import io
import quopri
import re

from gateway.extractors.base import Attachment, Extracted, Recurse, Unreadable, expand_float_text
from gateway.text import decode_bytes, html_to_text
from models.config import Limits

# Byte order marks, longest first (UTF-32 LE starts like UTF-16 LE).
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Share of NUL bytes at odd (or even) positions above which text is UTF-16 without a mark.
UTF16_NUL_SHARE = 0.3


def decode_text(data: bytes, charset: str | None) -> str:
    """Any charset: a byte order mark first, then UTF-16 without a mark, then the declared
    charset with UTF-8 and cp1252 after it (Excel's "Unicode text" export is UTF-16 LE)."""
    for bom, codec in BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(codec, errors="replace")
    sample = data[:4096]
    if len(sample) >= 4 and b"\x00" in sample:
        odd, even = sample[1::2].count(0), sample[0::2].count(0)
        half = len(sample) / 2
        if odd > UTF16_NUL_SHARE * half and even < odd / 4:
            return data.decode("utf-16-le", errors="replace")
        if even > UTF16_NUL_SHARE * half and odd < even / 4:
            return data.decode("utf-16-be", errors="replace")
    if charset and charset.strip().strip('"').lower().replace("_", "-") in ("utf-16", "utf-32", "ucs-2"):
        try:
            return data.decode(charset.strip().strip('"'))
        except (UnicodeDecodeError, LookupError):
            pass
    return decode_bytes(data, charset)


def plain(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    out.add(att.part, decode_text(att.data, att.charset), limits)


def csv(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    # Exports from spreadsheets write long numbers as 1.94503121234E+11 or 194503121234.0.
    out.add(att.part, expand_float_text(tab_separated(decode_text(att.data, att.charset))), limits)


# The separators spreadsheet exports use, in the order a tie is settled (a tab needs no change).
CSV_DELIMITERS = ";,|"
CSV_SNIFF_LINES = 20
CSV_SNIFF_CHARS = 8192


def _delimiter(text: str) -> str | None:
    """The separator every one of the first lines holds, most times at the least; None when none is.

    csv.Sniffer answers the same for exports but cost most of a CSV file's read (0.8 of 1 ms for
    16 KB): a count per line is enough to tell `;` from `,`.
    """
    lines = [line for line in text[:CSV_SNIFF_CHARS].splitlines()[:CSV_SNIFF_LINES] if line.strip()]
    if len(lines) > 1 and len(text) > CSV_SNIFF_CHARS:
        lines.pop()  # cut off by the sample
    best, most = None, 0
    for delimiter in CSV_DELIMITERS:
        least = min((line.count(delimiter) for line in lines), default=0)
        if least > most:
            best, most = delimiter, least
    return best


def tab_separated(text: str) -> str:
    """The fields of each row joined by tabs, quotes undone: first name and surname in columns of
    their own (`Ingegerd;Öhrnvall`) are read as a name is written beside another. Text with no
    separator on every line is left as it is."""
    delimiter = _delimiter(text)
    if delimiter is None:
        return text
    if '"' not in text:
        return text.replace(delimiter, "\t")
    try:
        rows = list(csv_module.reader(io.StringIO(text), delimiter=delimiter))
    except csv_module.Error:
        return text
    return "\n".join("\t".join(row) for row in rows) + "\n"


def html(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    page = decode_text(att.data, att.charset)
    out.add(att.part, html_to_text(page), limits)
    # Pictures written into the page itself (<img src="data:image/png;base64,...">) are read too.
    for number, match in enumerate(_HTML_DATA_IMAGE.finditer(page), 1):
        try:
            data = base64.b64decode(re.sub(r"\s+", "", match.group(2)), validate=False)
        except (binascii.Error, ValueError):
            raise Unreadable(f"bild {number} i sidan: trasig base64") from None
        recurse(att.member(f"bild-{number}", data, match.group(1).lower()), out)


def xml(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    """Every element's text and every attribute value, one per line; entities are never expanded."""
    from lxml import etree

    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=False,
        recover=False,
    )
    try:
        root = etree.fromstring(att.data, parser)
    except etree.XMLSyntaxError:
        # Not well-formed: the raw text still holds every character a reader could see.
        out.add(att.part, decode_text(att.data, att.charset), limits)
        return
    lines: list[str] = []
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None:  # entities are not expanded, so their declared text is read where declared
        lines.extend(str(entity.content) for entity in dtd.iterentities() if entity.content)
    for node in root.iter():
        for value in node.attrib.values():
            lines.append(value)
        if node.text and node.text.strip():
            lines.append(node.text)
        if node.tail and node.tail.strip():
            lines.append(node.tail)
    out.add(att.part, "\n".join(lines), limits)


def rtf(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    from striprtf.striprtf import rtf_to_text

    raw = att.data.decode("latin-1")  # RTF is 7-bit; \'hh escapes carry the code page's bytes
    codepage = re.search(r"\\ansicpg(\d+)", raw[:2048])
    encoding = f"cp{codepage.group(1)}" if codepage else "cp1252"
    try:
        codecs.lookup(encoding)
    except LookupError:
        encoding = "cp1252"
    out.add(att.part, rtf_to_text(raw, encoding=encoding, errors="replace"), limits)
    # Pictures and embedded objects are skipped by the text conversion: the policy decides about them.
    embedded = _RTF_EMBEDDED.search(raw)
    if embedded is not None:
        what = "bild" if embedded.group(1) == "pict" else "inbäddat objekt"
        out.unreadable(
            f"{att.part}/{what}",
            att.content_type,
            f"{what} i RTF-dokumentet kan inte läsas: spara dokumentet som PDF eller .docx",
        )


_RTF_EMBEDDED = re.compile(r"\\(pict|object)(?![a-z])")


# ---- calendar invitations (RFC 5545) and contact cards (RFC 6350, vCard 2.1) ------------------------

_FOLD = re.compile(r"\r?\n[ \t]")
# vCard 2.1 quoted-printable: a line ending in "=" goes on at the next line.
_QP_SOFT_BREAK = re.compile(r"=\r?\n")
_ESCAPE = re.compile(r"\\([nN,;:\\])")
_HTML_DATA_IMAGE = re.compile(r"data:(image/[\w.+-]+)[^,\"']*;base64,([A-Za-z0-9+/=\s]+)", re.IGNORECASE)
_DATA_URI = re.compile(r"data:([\w.+-]+/[\w.+-]+)?[^,]*;base64,", re.IGNORECASE)
# Properties whose value is a binary file in base64: handed on as an attachment of their own.
BINARY_PROPERTIES = {"PHOTO": "image", "LOGO": "image", "ATTACH": "file", "SOUND": "audio", "KEY": "key"}
# Properties that are machinery, not something a person wrote.
SKIPPED_PROPERTIES = frozenset(
    (
        "BEGIN",
        "END",
        "VERSION",
        "PRODID",
        "UID",
        "DTSTAMP",
        "CREATED",
        "LAST-MODIFIED",
        "SEQUENCE",
        "CALSCALE",
        "METHOD",
        "REV",
        "TZID",
        "TZOFFSETFROM",
        "TZOFFSETTO",
        "X-MS-OLK-CONFTYPE",
    )
)


def _unfold(text: str) -> list[str]:
    return _FOLD.sub("", text).splitlines()


def _params(head: str) -> tuple[str, dict[str, str]]:
    """NAME;PARAM=VALUE;... (and vCard 2.1's bare TYPE values such as ;QUOTED-PRINTABLE)."""
    pieces = head.split(";")
    name = pieces[0].rpartition(".")[2].upper()  # drop a vCard group prefix such as item1.
    params: dict[str, str] = {}
    for piece in pieces[1:]:
        key, eq, value = piece.partition("=")
        if eq:
            params[key.strip().upper()] = value.strip().strip('"')
        elif piece.strip().upper() in ("QUOTED-PRINTABLE", "BASE64", "B"):
            params["ENCODING"] = piece.strip().upper()
    return name, params


def _lines_with_qp(text: str) -> list[str]:
    # A quoted-printable value's soft line breaks are not folding: join them before unfolding.
    joined: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = pending + raw
        if "QUOTED-PRINTABLE" in line.upper().split(":", 1)[0] and line.endswith("="):
            pending = line[:-1]
            continue
        pending = ""
        joined.append(line)
    if pending:
        joined.append(pending)
    return _unfold("\n".join(joined))


def _card_text(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    text = decode_text(att.data, att.charset)
    lines: list[str] = []
    for number, line in enumerate(_lines_with_qp(text), 1):
        head, colon, value = line.partition(":")
        if not colon:
            lines.append(line)
            continue
        name, params = _params(head)
        encoding = params.get("ENCODING", "").upper()
        if encoding in ("B", "BASE64") or (name in BINARY_PROPERTIES and params.get("VALUE") == "BINARY"):
            _binary_property(att, recurse, out, name, params, value, number)
            continue
        data_uri = _DATA_URI.match(value)
        if data_uri is not None:  # vCard 4: PHOTO:data:image/jpeg;base64,...
            params = {**params, "FMTTYPE": data_uri.group(1)}
            _binary_property(att, recurse, out, name, params, value[data_uri.end() :], number)
            continue
        if name in SKIPPED_PROPERTIES:
            continue
        if encoding == "QUOTED-PRINTABLE":
            charset = params.get("CHARSET", "utf-8")
            value = decode_bytes(quopri.decodestring(value.encode("latin-1", "replace")), charset)
        value = _ESCAPE.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)
        # Parameters can hold text too (CN= of an attendee is a person's name).
        shown = [v for k, v in params.items() if k in ("CN", "LABEL")]
        lines.append(" ".join([*shown, value]))
    out.add(att.part, "\n".join(lines), limits)


def _binary_property(
    att: Attachment,
    recurse: Recurse,
    out: Extracted,
    name: str,
    params: dict[str, str],
    value: str,
    number: int,
) -> None:
    try:
        data = base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        raise Unreadable(f"{name} på rad {number}: trasig base64") from None
    media = params.get("FMTTYPE") or params.get("MEDIATYPE") or ""
    kind = params.get("TYPE", "").lower()
    if not media and BINARY_PROPERTIES.get(name) == "image" and kind:
        media = f"image/{kind}"
    filename = params.get("X-FILENAME") or params.get("FILENAME") or f"{name.lower()}-{number}"
    recurse(att.member(filename, data, media or "application/octet-stream"), out)


def calendar(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    _card_text(att, out, limits, recurse)


def vcard(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    _card_text(att, out, limits, recurse)
