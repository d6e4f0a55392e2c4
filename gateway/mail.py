"""Mail messages to text segments: headers people read, every body part, every attachment."""

from __future__ import annotations

import base64
import email
import email.policy
import re
from dataclasses import dataclass, field
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses

from gateway import attachments
from gateway.attachments import Attachment, Extracted
from gateway.text import decode_bytes, html_to_text
from models.config import Limits
from models.findings import Segment, Unscanned
from rules.words import ADDRESS_HEADERS, PERSON_HEADERS

# Headers a person writes or sees (rules/words.py). Machine headers (Received, Message-ID,
# DKIM-Signature, ARC-*, X-*) are never scanned: their digit runs are timestamps and queue ids.
MACHINE_HEADER_PREFIXES = (
    "x-",
    "arc-",
    "dkim-",
    "received",
    "message-id",
    "references",
    "in-reply-to",
    "return-path",
    "authentication-results",
    "content-",
    "mime-version",
    "date",
    "delivered-to",
    "list-",
    "thread-index",
)

_SURROGATE = re.compile("[\udc80-\udcff]")
_HEADER_LINE = re.compile(rb"^[!-9;-~]+:")
_KNOWN_FIRST_HEADERS = re.compile(
    rb"^(from|to|cc|subject|date|received|return-path|message-id|mime-version|delivered-to|"
    rb"content-type|reply-to|sender|x-[!-9;-~]*|dkim-signature|arc-[a-z-]+|"
    rb"authentication-results):",
    re.IGNORECASE | re.MULTILINE,
)


def looks_like_mail(head: bytes) -> bool:
    """Whether content starts with RFC 5322 headers (or an mbox "From " line and headers)."""
    if head.startswith(b"From "):
        head = head.split(b"\n", 1)[-1]
    block = re.split(rb"\r?\n\r?\n", head, maxsplit=1)[0]
    lines = block.splitlines()
    if not lines or not _HEADER_LINE.match(lines[0]):
        return False
    if not all(_HEADER_LINE.match(line) or line[:1] in (b" ", b"\t") for line in lines[:50]):
        return False
    return _KNOWN_FIRST_HEADERS.search(block) is not None


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


class _Walker:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.out = Extracted()
        self.bodies = 0
        # Address headers parsed once per message: the scan and the policy's From/To read the same.
        self.parsed: dict[tuple[str, ...], list[tuple[str, str]]] = {}

    def addresses(self, values: list[str]) -> list[tuple[str, str]]:
        key = tuple(values)
        pairs = self.parsed.get(key)
        if pairs is None:
            pairs = self.parsed[key] = getaddresses(values)
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
        payload = msg.get_payload()
        if ctype == "message/rfc822" or (
            msg.is_multipart() and isinstance(payload, list) and ctype.startswith("message/")
        ):
            self.inner_messages(msg, label or f"{prefix}message", depth)
            return
        if msg.is_multipart() and isinstance(payload, list):
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
            text = decode_bytes(data, charset)
            self.out.add(part, html_to_text(text) if ctype == "text/html" else text, self.limits)
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

    def inner_messages(self, msg: Message, label: str, depth: int) -> None:
        payload = msg.get_payload()
        inner = [m for m in payload if isinstance(m, Message)] if isinstance(payload, list) else []
        if not inner:  # not parsed (e.g. encoded): decode and parse it ourselves
            inner = [email.message_from_bytes(self.payload_bytes(msg), policy=email.policy.compat32)]
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
                self.walk(email.message_from_bytes(chunk, policy=email.policy.compat32), prefix, depth + 1)

    @staticmethod
    def payload_bytes(msg: Message) -> bytes:
        raw = msg.get_payload()
        if isinstance(raw, str) and msg.get("Content-Transfer-Encoding", "").strip().lower() == "base64":
            return _lenient_base64(raw)
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
        return (msg.get("Content-Disposition") or "").strip().lower().startswith("attachment")

    def unscanned(self, name: str, ctype: str, reason: str) -> None:
        self.out.unscanned.append(Unscanned(name=name, content_type=ctype, reason=reason))


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


def too_deep_reason(max_depth: int) -> str:
    """The reason given for a part nested past the limit; the gateway answers it with 554 5.6.0."""
    return f"MIME nested deeper than {max_depth} levels"


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
        head = email.message_from_bytes(data[: end + blank], policy=email.policy.compat32)
        if (
            head.get_content_maintype() not in ("multipart", "message")
            and head.get_payload() == ""
            and not head.defects
        ):
            # compat32 reads bytes as ASCII with surrogate escapes, the payload included
            head.set_payload(data[end + blank :].decode("ascii", "surrogateescape"))
            return head
    return email.message_from_bytes(data, policy=email.policy.compat32)


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
    return MailText(
        segments=walker.out.segments,
        unscanned=walker.out.unscanned,
        subject=_header(msg, "Subject"),
        from_address=_first_address(walker.addresses(_headers(msg, "From"))),
        recipients=tuple(a for _, a in walker.addresses(_headers(msg, "To") + _headers(msg, "Cc")) if a),
        message_id=_header(msg, "Message-ID").strip() or None,
    )


def extract_into(data: bytes, out: Extracted, limits: Limits, prefix: str, depth: int) -> None:
    """A message found inside an attachment (an .eml in a zip): same walk, same budgets as its carrier."""
    msg = parse(data)
    walker = _Walker(limits)
    walker.out = out
    walker.headers(msg, prefix)
    walker.walk(msg, prefix, depth)


def _headers(msg: Message, name: str) -> list[str]:
    wanted = name.lower()
    return [decode_header_value(str(v)) for k, v in msg.raw_items() if k.lower() == wanted]


def _header(msg: Message, name: str) -> str:
    values = _headers(msg, name)
    return values[0] if values else ""


def _first_address(pairs: list[tuple[str, str]]) -> str | None:
    return pairs[0][1] if pairs and pairs[0][1] else None
