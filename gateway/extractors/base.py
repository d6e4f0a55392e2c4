"""What every extractor shares: the attachment, the growing result, limits, and the unscannable."""

from __future__ import annotations

import re
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from models.config import Limits
from models.findings import Segment, Unscanned


class Unreadable(Exception):
    """The attachment cannot be read (encrypted, over a limit, broken); the reason is shown.

    Reasons are Swedish: the sender reads them in the guidance ("En del kunde inte granskas: ...")."""

    # Encrypted mail has a policy of its own (policy.on_encrypted): the unscanned part says so.
    encrypted = False


ENCRYPTED = "lösenordsskyddad (krypterad)"
ENCRYPTED_MESSAGE = "krypterat meddelande"


class EncryptedMessage(Unreadable):
    """Mail encrypted to its recipients (S/MIME enveloped-data, OpenPGP): no one but they can read it."""

    encrypted = True

    def __init__(self) -> None:
        super().__init__(ENCRYPTED_MESSAGE)


@dataclass
class Extracted:
    """Everything taken from one message so far; its counters are the message's budgets."""

    segments: list[Segment] = field(default_factory=list)
    unscanned: list[Unscanned] = field(default_factory=list)
    extracted_bytes: int = 0
    unpacked_bytes: int = 0
    ocr_seconds: float = 0.0
    pages: int = 0
    members: int = 0
    started: float = field(default_factory=time.monotonic)
    # How a message found inside an attachment (an .eml, a signed S/MIME entity) is read: given by
    # gateway.mail, which sits above the extractors and is never imported by them.
    read_message: ReadMessage | None = field(default=None, repr=False, compare=False)

    def add(self, part: str, text: str, limits: Limits) -> None:
        self.extracted_bytes += len(text)
        if self.extracted_bytes > limits.max_extracted_bytes:
            raise Unreadable(f"mer än {limits.max_extracted_bytes} byte text")
        if text:
            self.segments.append(Segment(part=part, text=text))

    def unpack(self, size: int, limits: Limits) -> None:
        """Count bytes about to be unpacked; refuse before reading what would pass the limit."""
        self.unpacked_bytes += size
        if self.unpacked_bytes > limits.max_unpacked_bytes:
            raise Unreadable(f"packar upp till mer än {limits.max_unpacked_bytes} byte")

    def count_pages(self, pages: int, limits: Limits) -> None:
        """Pages of documents and scans, all of the message's together, before any is read."""
        self.pages += pages
        if self.pages > limits.max_pages:
            raise Unreadable(f"fler än {limits.max_pages} sidor i meddelandet")

    def count_members(self, members: int, limits: Limits) -> None:
        """Files in archives, all of the message's archives together (a zip of zips adds up)."""
        self.members += members
        if self.members > limits.max_archive_members:
            raise Unreadable(f"fler än {limits.max_archive_members} filer i arkiven")

    def seconds_left(self, limits: Limits) -> float:
        return limits.scan_timeout_seconds - (time.monotonic() - self.started)

    def check_time(self, limits: Limits) -> None:
        if self.seconds_left(limits) <= 0:
            raise Unreadable(f"granskningen tog längre än {limits.scan_timeout_seconds:g} s")

    def unreadable(self, part: str, content_type: str, reason: str, encrypted: bool = False) -> None:
        self.unscanned.append(
            Unscanned(name=part, content_type=content_type, reason=reason, encrypted=encrypted)
        )

    def message(self, att: Attachment, limits: Limits) -> None:
        """Read the attachment's bytes as a mail message (headers and MIME parts) into this result."""
        if self.read_message is None:  # only a caller outside a message's walk gets here
            raise Unreadable("inbäddat meddelande kan inte läsas här")
        self.read_message(att, self, limits)


@dataclass(frozen=True)
class Attachment:
    part: str  # location prefix, e.g. "attachment:lista.csv"
    name: str
    content_type: str
    data: bytes
    charset: str | None
    depth: int

    def member(
        self,
        name: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        charset: str | None = None,
        label: str | None = None,
    ) -> Attachment:
        """A file inside this one (archive member, embedded file), one level deeper."""
        return Attachment(
            part=f"{self.part}/{label or name}",
            name=name,
            content_type=content_type,
            data=data,
            charset=charset,
            depth=self.depth + 1,
        )


Recurse = Callable[[Attachment, Extracted], None]
# Reads an attachment's bytes as a mail message into `out`, one level below the attachment.
ReadMessage = Callable[[Attachment, Extracted, Limits], None]
# An extractor adds the attachment's text to `out` (or raises Unreadable); `recurse` lets
# container formats hand their members back to the dispatcher.
Extractor = Callable[[Attachment, Extracted, Limits, Recurse], None]


# Spreadsheets and CSV exports write long numbers as floats: 194503121234.0 or 1.94503121234E+11.
_FLOAT_TEXT = re.compile(
    r"(?<![\w.])(\d{1,3}(?:\.\d+)?)[eE]\+?(\d{1,2})(?![\w.])|(?<![\w.])(\d{6,15})\.0+(?![\w.])"
)
_FLOAT_HINT = re.compile(r"\d[eE]\+?\d|\d{6}\.0")
# Beyond this a float no longer holds every digit exactly.
MAX_EXACT_DIGITS = 15


def number_text(value: float | int) -> str:
    """A cell's number as its digits: integral floats without ".0" and without an exponent."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 10**MAX_EXACT_DIGITS:
        return str(int(value))
    return str(value)


def expand_float_text(text: str) -> str:
    """1.94503121234E+11 and 194503121234.0 written as text become 194503121234."""

    def expand(m: re.Match[str]) -> str:
        if m.group(3):
            return m.group(3)
        mantissa, exponent = m.group(1), int(m.group(2))
        digits = mantissa.replace(".", "")
        shift = exponent - (len(mantissa.split(".")[1]) if "." in mantissa else 0)
        if shift < 0 or len(digits) + shift > MAX_EXACT_DIGITS:
            return m.group(0)
        return digits + "0" * shift

    if _FLOAT_HINT.search(text) is None:  # most text has none: skip the slower substitution
        return text
    return _FLOAT_TEXT.sub(expand, text)


# What a digit-only number format may hold besides its placeholders.
_FORMAT_LITERALS = frozenset("-+ \u00a0/")


def format_digits(value: float | int, number_format: str | None) -> str | None:
    """A whole number shown through a digit-only format such as 000000-0000 (how Excel pads a
    leading zero back onto a personnummer); None when the format is not one of those."""
    if not number_format or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    fmt = number_format.split(";")[0].replace("\\", "").replace('"', "")
    if "0" not in fmt or any(ch not in "0#" and ch not in _FORMAT_LITERALS for ch in fmt):
        return None
    digits = str(abs(int(value))).rjust(fmt.count("0"), "0")
    slots = [i for i, ch in enumerate(fmt) if ch in "0#"]
    shown = list(fmt)
    extra = max(0, len(digits) - len(slots))
    padded = [""] * max(0, len(slots) - len(digits)) + list(digits[extra:])
    for i, digit in zip(slots, padded, strict=True):
        shown[i] = digit
    # Excel writes the digits that do not fit before the first placeholder.
    return (digits[:extra] + "".join(shown)).strip()


# ---- zip containers: archives and the Office/OpenDocument formats built on them -------------------

ENCRYPTED_FLAG = 0x1
AES_METHOD = 99
# Below this size a high ratio is ordinary (a page of spaces); above it, a sign of a zip bomb.
RATIO_FLOOR_BYTES = 1024 * 1024
CHUNK = 64 * 1024


def open_zip(att: Attachment, out: Extracted, limits: Limits, check_ratio: bool = True) -> zipfile.ZipFile:
    """The archive, after its directory has been checked against every limit and for encryption.

    Office files skip the ratio (thousands of formatted empty rows differ only in their number and
    pack far better than text); their declared sizes still count against max_unpacked_bytes before
    a library unpacks anything, and no member is read past its declared size."""
    import io

    try:
        zf = zipfile.ZipFile(io.BytesIO(att.data))
    except zipfile.BadZipFile:
        raise Unreadable("inte ett läsbart zip-arkiv") from None
    infos = zf.infolist()
    if len(infos) > limits.max_archive_members:
        raise Unreadable(f"fler än {limits.max_archive_members} filer i arkivet")
    declared = 0
    for info in infos:
        if info.flag_bits & ENCRYPTED_FLAG or info.compress_type == AES_METHOD:
            raise Unreadable(ENCRYPTED)
        packed = max(info.compress_size, 1)
        if check_ratio and info.file_size > max(RATIO_FLOOR_BYTES, limits.max_compression_ratio * packed):
            raise Unreadable(f"packad mer än {limits.max_compression_ratio:g} gånger (zipbomb?)")
        declared += info.file_size
    if declared > limits.max_unpacked_bytes:
        raise Unreadable(f"packar upp till mer än {limits.max_unpacked_bytes} byte")
    return zf


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, out: Extracted, limits: Limits) -> bytes:
    """A member's bytes, read in chunks and never past what its header declares."""
    out.unpack(info.file_size, limits)
    out.check_time(limits)
    chunks: list[bytes] = []
    got = 0
    try:
        with zf.open(info) as stream:
            for chunk in _chunks(stream, info.file_size + 1):
                got += len(chunk)
                if got > info.file_size:  # a header that lies about the size
                    raise Unreadable("en fil i arkivet är större än arkivet anger (zipbomb?)")
                chunks.append(chunk)
    except NotImplementedError:
        raise Unreadable("packningsmetoden kan inte läsas") from None
    except RuntimeError as e:  # zipfile's word for a password it was not given
        if "encrypted" in str(e) or "password" in str(e):
            raise Unreadable(ENCRYPTED) from None
        raise
    return b"".join(chunks)


def _chunks(stream: IO[bytes], limit: int) -> Iterator[bytes]:
    left = limit
    while left > 0:
        chunk = stream.read(min(CHUNK, left))
        if not chunk:
            return
        left -= len(chunk)
        yield chunk
