"""Mail messages to text segments: headers people read, every body part, every attachment."""

from __future__ import annotations

import base64
import binascii
import bisect
import email
import email.policy
import quopri
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses
from typing import Any, cast

from gateway import attachments
from gateway.attachments import Attachment, Extracted
from gateway.extractors import signatures, textual
from gateway.extractors.base import ENCRYPTED_MESSAGE
from gateway.sniff import looks_like_mail
from gateway.text import decode_bytes, html_to_text
from models.config import Limits
from models.findings import Segment, Unscanned
from rules.words import ADDRESS_HEADERS, MACHINE_HEADER_PREFIXES, PERSON_HEADERS

# Headers a person writes or sees (rules/words.py). Machine headers (Received, Message-ID,
# DKIM-Signature, ARC-*, X-*: MACHINE_HEADER_PREFIXES) are never scanned: their digit runs are
# timestamps and queue ids.

_SURROGATE = re.compile("[\udc80-\udcff]")


def decode_header_value(raw: str) -> str:
    """RFC 2047 encoded words and raw 8-bit bytes to text, whatever charset they claim."""
    if _SURROGATE.search(raw):
        # compat32 keeps undeclared 8-bit header bytes as surrogate escapes
        raw = decode_bytes(raw.encode("utf-8", "surrogateescape"))
    if "=?" not in raw:
        return raw
    try:
        chunks = decode_header(raw)
    except Exception:  # malformed encoded words: scan what is written
        return raw
    out = []
    for chunk, charset in chunks:
        out.append(chunk if isinstance(chunk, str) else decode_bytes(chunk, charset))
    return "".join(out)


@dataclass
class MailText:
    """What a message holds, as text, plus the addresses the policy needs."""

    segments: list[Segment] = field(default_factory=list)
    unscanned: list[Unscanned] = field(default_factory=list)
    subject: str = ""
    from_address: str | None = None
    recipients: tuple[str, ...] = ()
    message_id: str | None = None


class _Message(Message):
    """A compat32 message that finds a header by name once, parses it once, and keeps its body as bytes.

    The walk asks for the content type, the file name, the charset, the boundary and the
    transfer encoding, and each of those looks the header up by a scan of all headers and
    re-parses its parameters: together most of the time a small text message took. Here the
    first value of each name is indexed when first asked for (every method that changes the
    headers drops the index), and the content type and a parameter parse are remembered with the
    header value they were made from. Every answer is compat32's own (tests/gateway/test_mail.py)
    but one, on purpose: the main type of a message/* part in a transfer encoding
    (`get_content_maintype`).
    """

    _index: dict[str, tuple[str, str]] | None = None
    # The body's bytes as they came (see `parse`), until something asks for the payload as text:
    # compat32 holds it as ASCII with surrogate escapes, a conversion there and back again that
    # costs more than the whole scan of a large text message. (A property, because the email
    # package reads and writes `_payload` directly too.)
    raw_body: bytes | None = None

    @property
    def _payload(self) -> Any:
        if self.raw_body is not None:
            self.__dict__["_payload_text"] = self.raw_body.decode("ascii", "surrogateescape")
            self.raw_body = None
        return self.__dict__.get("_payload_text")

    @_payload.setter
    def _payload(self, value: Any) -> None:
        self.raw_body = None
        self.__dict__["_payload_text"] = value

    def is_multipart(self) -> bool:
        return self.raw_body is None and super().is_multipart()  # raw bytes are one part's body

    def body_bytes(self) -> bytes | None:
        """What get_payload(decode=True) gives, when that is the body as it came; else None."""
        if self.raw_body is None:
            return None
        if transfer_encoding(self) in _DECODED_TRANSFER_ENCODINGS:
            return None
        return self.raw_body

    def _first(self) -> dict[str, tuple[str, str]]:
        if self._index is None:
            index: dict[str, tuple[str, str]] = {}
            for k, v in self._headers:  # type: ignore[attr-defined]
                index.setdefault(k.lower(), (k, v))
            self._index = index
        return self._index

    def get(self, name: str, failobj: Any = None) -> Any:
        found = self._first().get(name.lower())
        return failobj if found is None else self.policy.header_fetch_parse(*found)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first()

    def get_content_type(self) -> str:
        # The same header value (the very object) and default type give the same answer.
        key = (self.get("content-type"), self.get_default_type())
        memo = self.__dict__.get("_content_type")
        if memo is None or memo[0][0] is not key[0] or memo[0][1] != key[1]:
            memo = self.__dict__["_content_type"] = (key, super().get_content_type())
        return str(memo[1])

    def get_content_maintype(self) -> str:
        # compat32's feed parser reads the body of every message/* part as a message, whatever its
        # transfer encoding: a forwarded message sent in base64 became a message without headers
        # whose text was the base64 itself, and what the forwarded message said passed unread.
        # To the parser (and to everything else that asks for the main type) such a part is not a
        # message: it is held as its encoded body, which the walk decodes and parses as the message
        # it is (`_Walker.inner_messages`). Its full type is still message/...
        maintype = super().get_content_maintype()
        if maintype == "message" and transfer_encoding(self) in _DECODED_TRANSFER_ENCODINGS:
            return ENCODED_MESSAGE_MAINTYPE
        return maintype

    def _get_params_preserve(self, failobj: object, header: str) -> object:
        value = self.get(header)
        if not isinstance(value, str):
            return super()._get_params_preserve(failobj, header)  # type: ignore[misc]
        memo: dict[tuple[str, str], object] = self.__dict__.setdefault("_params_memo", {})
        key = (header.lower(), value)
        if key not in memo:
            memo[key] = super()._get_params_preserve(failobj, header)  # type: ignore[misc]
        params = memo[key]
        return list(params) if isinstance(params, list) else params  # callers may change theirs


# The transfer encodings that get_payload(decode=True) decodes (compat32, as it compares them).
_DECODED_TRANSFER_ENCODINGS = frozenset(
    {"quoted-printable", "base64", "x-uuencode", "uuencode", "uue", "x-uue"}
)
# The main type a message/* part in one of those encodings gives the parser: a body, not a message.
ENCODED_MESSAGE_MAINTYPE = "application"


def transfer_encoding(msg: Message) -> str:
    """The transfer encoding's token, also as mail programs write it besides the plain token:
    `quoted-printable;`, `"base64"`, `base64 (comment)`, `quoted printable`. A reader that takes
    the first word decodes those (Thunderbird does); read as written, a base64 part passed unread."""
    value = str(msg.get("content-transfer-encoding", "")).lower()
    return "-".join(value.split(";", 1)[0].split("(", 1)[0].replace('"', " ").split())


def _drops_index(method: Callable[..., Any]) -> Callable[..., Any]:
    def changed(self: _Message, *args: Any, **kwargs: Any) -> Any:
        self._index = None
        try:
            return method(self, *args, **kwargs)
        finally:
            self._index = None

    return changed


# Every Message method that changes the header list itself (the others go through these).
for _name in ("__setitem__", "__delitem__", "set_raw", "add_header", "replace_header", "set_boundary"):
    setattr(_Message, _name, _drops_index(getattr(Message, _name)))


def _message_from_bytes(data: bytes) -> _Message:
    return cast(_Message, email.message_from_bytes(data, _class=_Message, policy=email.policy.compat32))


# An address header as most mail writes it: `Name <local@domain>` or `local@domain`, with no
# quoting, comments, groups, routes or several addresses. email.utils.getaddresses reads such a
# value to the same pair (tests/gateway/test_mail.py compares the two) at a tenth of its cost.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_ADDRESS = re.compile(
    rf"[ \t]*(?:(?P<name>[^\W_](?:[\w.'-]|[ \t](?=[\w]))*)[ \t]*<(?P<bracketed>{_ATOM}(?:\.{_ATOM})*@"
    rf"{_ATOM}(?:\.{_ATOM})*)>|(?P<bare>{_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*))[ \t]*"
)


def parse_addresses(values: list[str]) -> list[tuple[str, str]]:
    """(display name, address) pairs of address header values, as email.utils.getaddresses gives them."""
    if len(values) == 1 and (m := _SIMPLE_ADDRESS.fullmatch(values[0])):
        if m["bare"]:
            return [("", m["bare"])]
        return [(" ".join(m["name"].split()), m["bracketed"])]
    return getaddresses(values)


class _Walker:
    def __init__(self, limits: Limits, out: Extracted | None = None) -> None:
        self.limits = limits
        self.out = Extracted(read_message=read_message) if out is None else out
        self.bodies = 0
        # Address headers parsed once per message: the scan and the policy's From/To read the same.
        self.parsed: dict[tuple[str, ...], list[tuple[str, str]]] = {}

    def addresses(self, values: list[str]) -> list[tuple[str, str]]:
        key = tuple(values)
        pairs = self.parsed.get(key)
        if pairs is None:
            try:
                pairs = parse_addresses(values)
            except RecursionError:
                # Comments nested thousands deep (a crafted From) exhaust the parser's recursion:
                # no address is known (the policy trusts none), and the header is still read raw.
                pairs = []
            self.parsed[key] = pairs
        return pairs

    def headers(self, msg: Message, prefix: str) -> None:
        for name, value in msg.raw_items():  # raw: compat32 would replace undeclared 8-bit
            lname = name.lower()
            if lname not in PERSON_HEADERS and (
                "=?" not in str(value) or lname.startswith(MACHINE_HEADER_PREFIXES)
            ):
                continue
            text = decode_header_value(str(value))
            if lname in ADDRESS_HEADERS:
                # scan display names and addresses, one per line so that they do not run together
                pairs = self.addresses([text])
                text = "\n".join(f"{decode_header_value(n)} {a}".strip() for n, a in pairs) or text
            self.out.add(f"{prefix}header:{name}", text, self.limits)

    def walk(self, msg: Message, prefix: str, depth: int) -> None:
        if depth > self.limits.max_mime_depth:
            self.unscanned(
                prefix or "message",
                msg.get_content_type(),
                too_deep_reason(self.limits.max_mime_depth),
            )
            return
        ctype = msg.get_content_type()
        name = self.filename(msg)
        label = f"{prefix}attachment:{name}" if name else None
        if name:
            self.out.add(f"{prefix}filename", name, self.limits)
        # (Only a multipart's payload is read here: a single part's would be decoded to text in vain.)
        payload = msg.get_payload() if msg.is_multipart() else None
        if ctype.startswith("message/"):
            self.inner_messages(msg, label or f"{prefix}message", depth)
            if ctype == "message/partial":
                self.unscanned(label or f"{prefix}message", ctype, PARTIAL_REASON)
            return
        if isinstance(payload, list):
            self.outside_parts(msg, prefix)
            for sub in payload:
                if isinstance(sub, Message):
                    self.walk(sub, prefix, depth + 1)
            return
        if ctype.startswith("multipart/"):
            self.broken_multipart(msg, prefix, depth)
            return
        data = self.payload_bytes(msg)
        charset = msg.get_content_charset()
        if ctype in ("text/plain", "text/html") and not (name and self.is_attachment(msg)):
            self.bodies += 1
            part = (
                f"{prefix}body:{ctype}"
                if self.bodies == 1 or prefix
                else f"{prefix}body[{self.bodies}]:{ctype}"
            )
            # A text file sent inline (Apple Mail's way with attachments) may be UTF-16, as
            # Excel's "Unicode text" and Notepad write it, under no charset or a wrong one.
            text = textual.decode_text(data, charset)
            if ctype == "text/html":
                text = html_to_text(text)
            if signatures.ARMOUR_HINT in text:  # PGP inline: signed text is read, encrypted held
                text, encrypted = signatures.readable_text(text)
                if encrypted:
                    inside = signatures.revealed(signatures.armoured_ciphertext(text))
                    self.out.add(part, inside, self.limits)
                    self.out.unreadable(part, ctype, ENCRYPTED_MESSAGE, encrypted=True)
            self.out.add(part, text, self.limits)
            if ctype == "text/plain" and UUENCODE_HINT in text:
                self.inline_uuencoded(text, part, depth)
            return
        attachments.extract(
            Attachment(
                part=label or f"{prefix}attachment:({ctype})",
                name=name or "",
                content_type=ctype,
                data=data,
                charset=charset,
                depth=depth,
            ),
            self.out,
            self.limits,
        )

    def inline_uuencoded(self, text: str, part: str, depth: int) -> None:
        """Files uuencoded into a plain-text body (`begin 644 lista.txt` ... `end`), as older mail
        programs and the `uuencode` command attach them and as Thunderbird and Outlook show them:
        read as the attachments they are."""
        begins = list(_UU_BEGIN.finditer(text))
        if not begins:
            return
        ends = [m.start() for m in _UU_END.finditer(text)]
        for begin, following in zip(begins, [*begins[1:], None], strict=True):
            # The next end line after the begin line, looked up once (thousands of begin lines must
            # cost one pass); one before the next begin line, or this begin has no block.
            after = bisect.bisect_left(ends, begin.end())
            if after == len(ends):
                break
            if following is not None and following.start() < ends[after]:
                continue
            name, lines = begin["name"].strip(), text[begin.end() : ends[after]]
            attachments.extract(
                Attachment(
                    part=f"{part}/attachment:{name}",
                    name=name,
                    content_type="application/octet-stream",
                    data=_uudecoded(lines),
                    charset=None,
                    depth=depth + 1,
                ),
                self.out,
                self.limits,
            )

    def outside_parts(self, msg: Message, prefix: str) -> None:
        """The text before a multipart's first part and after its last (preamble and epilogue):
        a MIME reader hides it, and it leaves with the message all the same; a plain reader or
        the message's source shows it (a signature written after the closing boundary)."""
        for where, text in (("preamble", msg.preamble), ("epilogue", msg.epilogue)):
            if text and not text.isspace():
                self.out.add(f"{prefix}body:{where}", decode_header_value(text), self.limits)

    def inner_messages(self, msg: Message, label: str, depth: int) -> None:
        """A message inside this one (forwarded as message/rfc822 or message/global, or a
        delivery report's parts): its headers and parts, located under `label`."""
        payload = msg.get_payload()
        inner = [m for m in payload if isinstance(m, Message)] if isinstance(payload, list) else []
        if not inner:  # held as its encoded body (see _Message.get_content_maintype): decoded here
            inner = [_message_from_bytes(self.payload_bytes(msg))]
        for i, sub in enumerate(inner, 1):
            prefix = f"{label}/" if len(inner) == 1 else f"{label}[{i}]/"
            self.headers(sub, prefix)
            self.walk(sub, prefix, depth + 1)

    def broken_multipart(self, msg: Message, prefix: str, depth: int) -> None:
        """A multipart whose boundary is missing or wrong: scan it raw, and each part we can find."""
        raw = self.payload_bytes(msg)
        self.out.add(f"{prefix}body:raw", decode_bytes(raw), self.limits)
        chunks = re.split(rb"(?m)^--[^\r\n]*\r?\n", raw)
        for chunk in chunks[1:]:
            if looks_like_mail(chunk.lstrip()) or chunk.lower().startswith(b"content-"):
                self.walk(_message_from_bytes(chunk), prefix, depth + 1)

    @staticmethod
    def payload_bytes(msg: Message) -> bytes:
        if isinstance(msg, _Message) and (body := msg.body_bytes()) is not None:
            return body
        encoding = transfer_encoding(msg)
        if encoding in ("base64", "quoted-printable"):
            raw = msg.get_payload()
            if isinstance(raw, str):  # (compat32 decodes neither when the name has spaces around it)
                if encoding == "base64":
                    return _lenient_base64(raw)
                try:
                    encoded = raw.encode("ascii", "surrogateescape")
                except UnicodeEncodeError:  # a message made in memory, not parsed from bytes
                    encoded = raw.encode("utf-8")
                return quopri.decodestring(encoded)
        try:
            data = msg.get_payload(decode=True)
        except Exception:
            data = None
        if isinstance(data, bytes):
            return data
        raw = msg.get_payload()
        if isinstance(raw, str):
            return raw.encode("utf-8", "surrogateescape")
        return b""

    @staticmethod
    def filename(msg: Message) -> str | None:
        try:
            name = msg.get_filename() or msg.get_param("name")
        except Exception:
            name = None
        if isinstance(name, tuple):  # RFC 2231 triple left undecoded
            name = name[2]
        return decode_header_value(str(name)) if name else None

    @staticmethod
    def is_attachment(msg: Message) -> bool:
        # (str: compat32 gives a Header object for a value with undeclared 8-bit bytes)
        return str(msg.get("Content-Disposition") or "").strip().lower().startswith("attachment")

    def unscanned(self, name: str, ctype: str, reason: str) -> None:
        self.out.unscanned.append(Unscanned(name=name, content_type=ctype, reason=reason))


# A message sent in fragments (RFC 2046 5.2.2) cannot be read whole from one of them: a number
# can be split between two fragments, or a fragment can end inside a base64 line. What the
# fragment shows is read; the message is unscannable all the same.
PARTIAL_REASON = "del av ett meddelande som skickats i flera delar (message/partial)"


_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/]")


def _lenient_base64(text: str) -> bytes:
    """Decode what can be decoded: stray characters dropped, a broken tail padded or cut off."""
    try:
        return base64.b64decode(text)
    except ValueError:
        pass
    clean = _NOT_BASE64.sub("", text)
    rest = len(clean) % 4
    clean = clean[:-1] if rest == 1 else clean + "=" * ((4 - rest) % 4)
    try:
        return base64.b64decode(clean)
    except ValueError:
        return b""


UUENCODE_HINT = "begin "
_UU_BEGIN = re.compile(r"^begin [0-7]{3,4} (?P<name>[^\r\n]+)\r?\n", re.MULTILINE)
_UU_END = re.compile(r"^end[ \t]*\r?$", re.MULTILINE)


def _uudecoded(lines: str) -> bytes:
    """The bytes of a uuencoded block, each line decoded on its own, as far as it goes (a mail
    program's trailing spaces cut, a damaged line read as its length byte says)."""
    out = []
    for line in lines.splitlines():
        if not line.strip() or line.strip() == "`":
            continue
        data = line.encode("latin-1", "replace")
        try:
            out.append(binascii.a2b_uu(data))
        except binascii.Error:
            # Lines whose trailing spaces a program dropped: padded to what the length byte says.
            length = ((data[0] - 32) & 63) * 4 // 3 + 4
            try:
                out.append(binascii.a2b_uu(data.ljust(length, b" ")[:length]))
            except binascii.Error:
                continue
    return b"".join(out)


def too_deep_reason(max_depth: int) -> str:
    """The reason given for a part nested past the limit; the gateway answers it with 554 5.6.0."""
    return f"MIME nested deeper than {max_depth} levels"


# A header line as the feed parser takes it without a defect: a field name and a colon, or the
# white space of a continuation.
_PLAIN_HEADER_LINE = re.compile(r"[!-9;-~]+:|[ \t]")


def _plain_head(block: bytes, newline: str) -> _Message | None:
    """The header block (without its blank line), parsed as compat32 does, when every line is plain.

    The feed parser reads a header block line by line through a generator, about a third of the
    time a small message takes to scan. A block whose lines all end alike and each begin a field
    or continue one (no envelope `From ` line, no stray line ending) is split here and each field
    given to the policy's own header_source_parse, as the feed parser does; anything else, and
    a multipart message, is left to the feed parser (tests/gateway/test_mail.py compares the two).
    """
    text = block.decode("ascii", "surrogateescape")
    unbroken = text.replace(newline, "")
    if "\r" in unbroken or "\n" in unbroken:
        return None
    lines = text.split(newline)
    if lines[0][:1] in (" ", "\t") or text.startswith("From "):
        return None
    message = _Message()
    field: list[str] = []
    for line in lines:
        if not _PLAIN_HEADER_LINE.match(line):
            return None
        if line[0] in " \t":
            field.append(line + newline)
            continue
        if field:
            message.set_raw(*message.policy.header_source_parse(field))
        field = [line + newline]
    message.set_raw(*message.policy.header_source_parse(field))
    if message.get_content_maintype() in ("multipart", "message"):
        return None
    message.set_payload("")
    return message


def parse(data: bytes) -> Message:
    """The message as compat32 parses it; a body of one part without its line-by-line walk.

    The feed parser takes a single-part message's body (text/plain, a lone attachment) line by
    line only to join the lines again as the payload: most of the time a large message takes to
    scan. Here the header block is parsed alone and the body set as that same payload; when the
    headers do not end cleanly at the first blank line, or the message has parts, the parser
    reads all of it as before (tests/gateway/test_mail.py compares the two).
    """
    end, blank = data.find(b"\r\n\r\n"), 4
    if end < 0 or (lf := data.find(b"\n\n", 0, end)) >= 0:  # files on disk end lines with LF
        end, blank = (lf, 2) if end >= 0 else (data.find(b"\n\n"), 2)
    if end > 0:
        head = _plain_head(data[:end], "\r\n" if blank == 4 else "\n") or _message_from_bytes(
            data[: end + blank]
        )
        if (
            head.get_content_maintype() not in ("multipart", "message")
            and head.get_payload() == ""
            and not head.defects
        ):
            # compat32 reads bytes as ASCII with surrogate escapes, the payload included: so
            # does the head, when asked for its payload as text
            head.raw_body = data[end + blank :]
            return head
    return _message_from_bytes(data)


def extract(data: bytes, limits: Limits, prefix: str = "") -> MailText:
    """Every readable text of a message; what cannot be read is listed, never dropped."""
    msg = parse(data)
    walker = _Walker(limits)
    try:
        walker.headers(msg, prefix)
        walker.walk(msg, prefix, 0)
    except attachments.Unreadable as e:
        walker.unscanned(prefix or "message", msg.get_content_type(), str(e))
    except Exception as e:  # whatever a broken message does to the parser: held, not passed
        walker.unscanned(
            prefix or "message", msg.get_content_type(), f"cannot be parsed ({type(e).__name__})"
        )
    policy = _decoded_headers(msg, ("subject", "from", "to", "cc", "message-id"))
    return MailText(
        segments=walker.out.segments,
        unscanned=walker.out.unscanned,
        subject=next(iter(policy["subject"]), ""),
        from_address=_first_address(walker.addresses(policy["from"])),
        recipients=tuple(a for _, a in walker.addresses(policy["to"] + policy["cc"]) if a),
        message_id=next(iter(policy["message-id"]), "").strip() or None,
    )


def extract_file(name: str, data: bytes, limits: Limits) -> MailText:
    """A file that is no mail message (a document given to the linter), read as an attachment of
    that name is: its bytes decide its format."""
    out = Extracted(read_message=read_message)
    file = Attachment(
        part=name, name=name, content_type="application/octet-stream", data=data, charset=None, depth=0
    )
    attachments.extract(file, out, limits)
    return MailText(segments=out.segments, unscanned=out.unscanned)


def read_message(att: Attachment, out: Extracted, limits: Limits) -> None:
    """A message found inside an attachment (an .eml in a zip, a signed S/MIME entity): the same
    walk under the attachment's location, one level deeper, within the same budgets as its carrier.

    The extractors are given this (Extracted.read_message) rather than importing this module:
    they sit below mail parsing."""
    msg = parse(att.data)
    walker = _Walker(limits, out)
    prefix = f"{att.part}/"
    walker.headers(msg, prefix)
    walker.walk(msg, prefix, att.depth + 1)


def _decoded_headers(msg: Message, names: tuple[str, ...]) -> dict[str, list[str]]:
    """The decoded values of each of the (lower-case) names, in order, read in one pass."""
    found: dict[str, list[str]] = {name: [] for name in names}
    for k, v in msg.raw_items():
        values = found.get(k.lower())
        if values is not None:
            values.append(decode_header_value(str(v)))
    return found


def _first_address(pairs: list[tuple[str, str]]) -> str | None:
    return pairs[0][1] if pairs and pairs[0][1] else None
