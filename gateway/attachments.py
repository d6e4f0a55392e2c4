"""Attachment extraction: one extractor per format, chosen by type or file name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from gateway.text import decode_bytes, html_to_text
from models.config import Limits
from models.findings import Segment, Unscanned


class Unreadable(Exception):
    """The attachment cannot be read (encrypted, over a limit, broken); the reason is shown."""


@dataclass
class Extracted:
    segments: list[Segment] = field(default_factory=list)
    unscanned: list[Unscanned] = field(default_factory=list)
    extracted_bytes: int = 0

    def add(self, part: str, text: str, limits: Limits) -> None:
        self.extracted_bytes += len(text)
        if self.extracted_bytes > limits.max_extracted_bytes:
            raise Unreadable(f"more than {limits.max_extracted_bytes} bytes of text extracted")
        if text:
            self.segments.append(Segment(part=part, text=text))


@dataclass(frozen=True)
class Attachment:
    part: str  # location prefix, e.g. "attachment:lista.csv"
    name: str
    content_type: str
    data: bytes
    charset: str | None
    depth: int


# An extractor adds the attachment's text to `out` (or raises Unreadable); `recurse` lets
# container formats hand their members back to the dispatcher.
Extractor = Callable[[Attachment, Extracted, Limits, "Recurse"], None]
Recurse = Callable[[Attachment, Extracted], None]


def _text(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    out.add(att.part, decode_bytes(att.data, att.charset), limits)


def _html(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    out.add(att.part, html_to_text(decode_bytes(att.data, att.charset)), limits)


# Formats by MIME type and by file name ending; the first match wins, type before name.
BY_TYPE: dict[str, Extractor] = {
    "text/html": _html,
}
BY_EXTENSION: dict[str, Extractor] = {
    ".txt": _text,
    ".csv": _text,
    ".tsv": _text,
    ".htm": _html,
    ".html": _html,
}
# Types whose generic fallback is plain text (any text/* not named above).
TEXT_PREFIX = "text/"


def extractor_for(name: str, content_type: str) -> Extractor | None:
    found = BY_TYPE.get(content_type)
    if found is not None:
        return found
    found = BY_EXTENSION.get(PurePosixPath(name.lower()).suffix)
    if found is not None:
        return found
    if content_type.startswith(TEXT_PREFIX):
        return _text
    return None


def extract(att: Attachment, out: Extracted, limits: Limits) -> None:
    """Add the attachment's text to `out`; what cannot be read goes to `out.unscanned`."""

    def recurse(member: Attachment, into: Extracted) -> None:
        if member.depth > limits.max_mime_depth:
            raise Unreadable(f"nested deeper than {limits.max_mime_depth} levels")
        extract(member, into, limits)

    extractor = extractor_for(att.name, att.content_type)
    if extractor is None:
        out.unscanned.append(Unscanned(name=att.part, content_type=att.content_type,
                                       reason="format not supported"))
        return
    try:
        extractor(att, out, limits, recurse)
    except Unreadable as e:
        out.unscanned.append(Unscanned(name=att.part, content_type=att.content_type, reason=str(e)))
    except Exception as e:  # a parser library's own failure on a broken file
        # Only the exception's type: its message may quote the file's content.
        reason = f"cannot be read ({type(e).__name__})"
        out.unscanned.append(Unscanned(name=att.part, content_type=att.content_type, reason=reason))
