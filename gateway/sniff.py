"""Whether a file is a mail message, told by its first bytes without loading the mail reader."""

from __future__ import annotations

import re

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
    # A header line never spans a line break: most plain text is told by its first line alone.
    if not _HEADER_LINE.match(head):
        return False
    block = re.split(rb"\r?\n\r?\n", head, maxsplit=1)[0]
    lines = block.splitlines()
    if not lines or not _HEADER_LINE.match(lines[0]):
        return False
    if not all(_HEADER_LINE.match(line) or line[:1] in (b" ", b"\t") for line in lines[:50]):
        return False
    return _KNOWN_FIRST_HEADERS.search(block) is not None
