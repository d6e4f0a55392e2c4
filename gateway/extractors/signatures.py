"""Signatures and encryption (S/MIME's CMS, OpenPGP): signed content read, signatures skipped, encrypted held.

A signature carries no text a person wrote: a detached one is skipped, never a reason to refuse a
message, and the signer's certificate inside it is never read (an e-ID or SITHS card certificate
names its holder by personnummer: the sender, not a care recipient). What a signature wraps
(S/MIME signed-data, a signed `.p7m` document) is unwrapped and read like any other part.
Encrypted mail cannot be read by anyone but its recipients: it is unscannable as such
(`EncryptedMessage`), and policy.on_encrypted decides about it.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from dataclasses import replace
from typing import Any, NoReturn

from gateway.extractors import textual
from gateway.extractors.base import Attachment, EncryptedMessage, Extracted, Recurse, Unreadable
from models.config import Limits

# CMS content types (RFC 5652, 5083, 3274), by asn1crypto's names.
ENCRYPTED_CMS = frozenset(
    ("enveloped_data", "signed_and_enveloped_data", "encrypted_data", "authenticated_enveloped_data")
)
# Content beside a signature, a digest or a MAC: the content is read, the rest (certificates,
# signed attributes) is not.
WRAPPING_CMS = frozenset(("signed_data", "digested_data", "authenticated_data"))
COMPRESSED_CMS = "compressed_data"
# A signed document sent as `avtal.pdf.p7m` is `avtal.pdf` inside.
SIGNED_FILE_SUFFIX = ".p7m"
# The location of signed content that names no file of its own.
SIGNED_CONTENT_LABEL = "(signerat innehåll)"

# OpenPGP packet tags (RFC 4880 4.3, RFC 9580): signature; encrypted session keys and data; marker.
PGP_SIGNATURE = 2
PGP_ENCRYPTED = frozenset((1, 3, 9, 18, 20))
PGP_MARKER = 10
ARMOUR_HINT = "-----BEGIN PGP "
_ARMOUR_BYTES = ARMOUR_HINT.encode()
_PEM_BYTES = b"-----BEGIN "
# A CMS object in DER or BER starts as a SEQUENCE.
DER_SEQUENCE = b"\x30"
_ENCRYPTED_ARMOUR = re.compile(r"^-----BEGIN PGP MESSAGE-----", re.MULTILINE)
# A signature block as RFC 4880 6.2 writes it: armour headers (kept: a Comment is free text), a
# blank line, base64 lines with an optional checksum, the end line.
_SIGNATURE_ARMOUR = re.compile(
    r"^(?P<begin>-----BEGIN PGP SIGNATURE-----)[ \t]*\r?\n"
    r"(?P<headers>(?:[!-9;-~]+: [^\r\n]*\r?\n)*[ \t]*\r?\n)"
    r"(?P<body>(?:[A-Za-z0-9+/=]+[ \t]*\r?\n)+?)"
    r"(?P<end>-----END PGP SIGNATURE-----)[ \t]*\r?$",
    re.MULTILINE,
)
_MESSAGE_ARMOUR = re.compile(
    r"^-----BEGIN PGP MESSAGE-----[ \t]*\r?\n(?:[!-9;-~]+: [^\r\n]*\r?\n)*[ \t]*\r?\n"
    r"(?P<body>(?:[A-Za-z0-9+/=]+[ \t]*\r?\n)+?)-----END PGP MESSAGE-----",
    re.MULTILINE,
)
_CHECKSUM_LINE = re.compile(r"=[A-Za-z0-9+/]{4}")
_HEADER_LINE = re.compile(rb"[!-9;-~]+:")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
# Printable ASCII and UTF-8's Swedish letters, long enough to hold an identifier's shorter forms.
_READABLE_RUN = re.compile(rb"(?:[\t\n\r\x20-\x7e]|\xc3[\x80-\xbf]){8,}")
# The same in UTF-16, little- and big-endian: printable ASCII and Latin-1's letters.
_READABLE_UTF16_RUNS = (
    (re.compile(rb"(?:[\t\n\r\x20-\x7e\xc0-\xff]\x00){8,}"), "utf-16-le"),
    (re.compile(rb"(?:\x00[\t\n\r\x20-\x7e\xc0-\xff]){8,}"), "utf-16-be"),
)
# DER of a CMS ContentInfo's type: 1.2.840.113549.1.7.x (PKCS #7), the OID's first bytes.
CMS_OID_PREFIX = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07"
# How far into signed content its MIME header block is looked for.
ENTITY_HEAD_BYTES = 8192


def signed_or_encrypted(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    """A part whose type or name says signature, signed or encrypted (.p7m, .p7s, .p7c, .sig, .asc,
    .pgp, .gpg): its bytes decide between CMS and OpenPGP, whatever the label said."""
    if _ARMOUR_BYTES in att.data:
        _pgp_armour(att, out, limits)
        return
    info = _content_info(att.data) if att.data[:1] == DER_SEQUENCE or _PEM_BYTES in att.data[:64] else None
    if info is not None:
        _cms(info, att, out, limits, recurse)
        return
    tags, complete = packet_tags(att.data)
    if complete and set(tags) == {PGP_SIGNATURE}:
        return  # a detached OpenPGP signature: no text a person wrote
    if next((t for t in tags if t != PGP_MARKER), None) in PGP_ENCRYPTED:
        # Encrypted data is streamed: its first packets say what it is.
        _held_encrypted(att, att.data, out, limits)
    if att.data[:1] == DER_SEQUENCE and CMS_OID_PREFIX in att.data[:32]:
        raise Unreadable("trasig S/MIME-del (signatur eller meddelande) som inte kan läsas")
    # Neither (the "Version: 1" control part of PGP/MIME, or a file under a wrong label): the
    # bytes are read as a file of no stated kind, so that nothing passes unread by calling itself
    # a signature.
    recurse(replace(att, name="", content_type="application/octet-stream"), out)


def _cms(info: Any, att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    kind = info["content_type"].native
    if kind in ENCRYPTED_CMS:
        field = (
            "auth_encrypted_content_info"
            if kind == "authenticated_enveloped_data"
            else "encrypted_content_info"
        )
        ciphertext = info["content"][field]["encrypted_content"].native
        _held_encrypted(att, ciphertext if isinstance(ciphertext, bytes) else b"", out, limits)
    if kind == COMPRESSED_CMS:
        packed = info["content"]["encap_content_info"]["content"].native
        content = _inflate(packed, out, limits) if isinstance(packed, bytes) else None
    elif kind in WRAPPING_CMS:
        encap = info["content"]["encap_content_info"]
        content = encap["content"].native
        if encap["content_type"].native in ENCRYPTED_CMS:  # signed, then encrypted without MIME between
            _held_encrypted(att, content if isinstance(content, bytes) else b"", out, limits)
    else:  # "data": the content as is
        content = info["content"].native
    if content is None:
        return  # a detached signature, or certificates only: no text a person wrote
    if not isinstance(content, bytes):
        raise Unreadable("S/MIME-innehållet kan inte läsas")
    _signed_content(content, att, out, limits, recurse)


def _held_encrypted(att: Attachment, ciphertext: bytes, out: Extracted, limits: Limits) -> NoReturn:
    """Encrypted: held as such. What claims to be ciphertext is searched for readable text first:
    real ciphertext has none worth the name, and text in a file dressed up as encrypted (which
    policy.on_encrypted may let pass) is read."""
    out.add(att.part, revealed(ciphertext), limits)
    raise EncryptedMessage()


def revealed(ciphertext: bytes) -> str:
    """The runs of readable text in bytes that should be random, one a line: in UTF-8, and in
    UTF-16 as Windows programs write text ("Unicode" in Notepad and Excel)."""
    runs = [run.decode("utf-8", "replace") for run in _READABLE_RUN.findall(ciphertext)]
    for pattern, codec in _READABLE_UTF16_RUNS:
        wide = pattern.findall(ciphertext)
        if wide:  # (a little-endian run read one byte on is a big-endian one: the same text)
            runs += [run.decode(codec, "replace") for run in wide]
            break
    return "\n".join(runs)


def _content_info(data: bytes) -> Any | None:
    """The CMS ContentInfo the bytes are, end to end (DER, BER or PEM); None when they are not one."""
    from asn1crypto import cms, pem

    if pem.detect(data):
        try:
            _, _, data = pem.unarmor(data)
        except ValueError:
            return None
    try:
        # strict: bytes after the object are not a signature's, and would go unread
        info = cms.ContentInfo.load(data, strict=True)
        kind = info["content_type"].native
    except (ValueError, TypeError):
        return None
    known = ENCRYPTED_CMS | WRAPPING_CMS | {COMPRESSED_CMS, "data"}
    return info if kind in known else None


def _inflate(packed: bytes, out: Extracted, limits: Limits) -> bytes:
    """CMS compressed-data's zlib stream, never unpacked past the message's limit."""
    room = max(0, limits.max_unpacked_bytes - out.unpacked_bytes)
    inflater = zlib.decompressobj()
    try:
        content = inflater.decompress(packed, room + 1)
    except zlib.error:
        raise Unreadable("komprimerat S/MIME-innehåll kan inte packas upp") from None
    out.unpack(len(content), limits)
    return content


def _signed_content(
    content: bytes, att: Attachment, out: Extracted, limits: Limits, recurse: Recurse
) -> None:
    """S/MIME wraps a MIME entity: it is read as a message part; anything else is a file (a signed PDF)."""
    if _is_mime_entity(content):
        out.message(replace(att, data=content), limits)
        return
    name = att.name[: -len(SIGNED_FILE_SUFFIX)] if att.name.lower().endswith(SIGNED_FILE_SUFFIX) else ""
    recurse(att.member(name, content, label=name or SIGNED_CONTENT_LABEL), out)


def _is_mime_entity(content: bytes) -> bool:
    block = _BLANK_LINE.split(content[:ENTITY_HEAD_BYTES], maxsplit=1)[0]
    lines = block.splitlines()
    return (
        bool(lines)
        and all(_HEADER_LINE.match(line) or line[:1] in (b" ", b"\t") for line in lines)
        and any(line[:8].lower() == b"content-" for line in lines)
    )


def _pgp_armour(att: Attachment, out: Extracted, limits: Limits) -> None:
    text = textual.decode_text(att.data, att.charset)
    readable, encrypted = readable_text(text)
    out.add(att.part, readable, limits)
    if encrypted:
        _held_encrypted(att, armoured_ciphertext(text), out, limits)


def armoured_ciphertext(text: str) -> bytes:
    """The bytes inside the text's `PGP MESSAGE` armour blocks (what of them decodes)."""
    out = []
    for block in _MESSAGE_ARMOUR.finditer(text):
        body = "".join(line.strip() for line in block["body"].splitlines() if not line.startswith("="))
        try:
            out.append(base64.b64decode(body + "=" * (-len(body) % 4)))
        except (binascii.Error, ValueError):
            continue
    return b"".join(out)


def readable_text(text: str) -> tuple[str, bool]:
    """Text with its OpenPGP signature blocks blanked (their lines kept, empty), and whether it
    holds an encrypted message (`-----BEGIN PGP MESSAGE-----`).

    A clear-signed message's text is read as written. Only a block whose lines decode to signature
    packets end to end is blanked: anything else between two armour lines is read, so that no
    text can hide there. The armour headers (`Comment:` is free text) are read too.
    """
    encrypted = _ENCRYPTED_ARMOUR.search(text) is not None
    if "-----BEGIN PGP SIGNATURE-----" not in text:
        return text, encrypted

    def blank(m: re.Match[str]) -> str:
        # The checksum is one line of `=` and four base64 characters: any other `=` line is text
        # (it would be left out of the decoding and blanked with the block, unread).
        checksums = [line.strip() for line in m["body"].splitlines() if line.startswith("=")]
        if len(checksums) > 1 or any(_CHECKSUM_LINE.fullmatch(line) is None for line in checksums):
            return m[0]
        body = "".join(line.strip() for line in m["body"].splitlines() if not line.startswith("="))
        try:
            packets = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return m[0]
        tags, complete = packet_tags(packets)
        if not complete or set(tags) != {PGP_SIGNATURE}:
            return m[0]
        return "\n" + m["headers"] + "\n" * m["body"].count("\n")

    return _SIGNATURE_ARMOUR.sub(blank, text), encrypted


def packet_tags(data: bytes) -> tuple[list[int], bool]:
    """The tags of the OpenPGP packets the bytes begin with (RFC 4880 4.2), and whether the packets
    fill the bytes exactly. A packet of partial or indeterminate length (a stream) ends the walk,
    incomplete. Bytes that do not begin with a packet header give no tags."""
    tags: list[int] = []
    at = 0
    while at < len(data):
        first = data[at]
        if not first & 0x80:
            return tags, False
        if first & 0x40:  # new format: 6-bit tag, then a length of 1, 2 or 5 bytes
            tag = first & 0x3F
            size = data[at + 1] if at + 1 < len(data) else 0
            if size < 192:
                header, length = 2, size
            elif size < 224:
                header = 3
                length = ((size - 192) << 8) + (data[at + 2] if at + 2 < len(data) else 0) + 192
            elif size == 255:
                header, length = 6, int.from_bytes(data[at + 2 : at + 6], "big")
            else:
                return [*tags, tag], False
        else:  # old format: 4-bit tag and a length of 1, 2 or 4 bytes, or to the end
            tag, length_type = (first >> 2) & 0x0F, first & 0x03
            if length_type == 3:
                return [*tags, tag], False
            header = 1 + (1, 2, 4)[length_type]
            length = int.from_bytes(data[at + 1 : at + header], "big")
        tags.append(tag)
        at += header + length
    return tags, at == len(data)
