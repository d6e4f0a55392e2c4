"""Upstream trust: which peers may relay, and the identity Postfix records in its Received header.

Postfix in front of the gateway (before-queue proxy or after-queue content filter) writes its own
Received header at the top of the message, e.g. with `smtpd_sasl_authenticated_header = yes`:

    Received: from pc12.kommun.se (pc12.kommun.se [192.0.2.5])
            (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))
            (No client certificate requested)
            (Authenticated sender: anna.chef@kommun.se)
            by mail.kommun.se (Postfix) with ESMTPSA id 4Mx1Tq0abcz9sWL
            for <mottagare@example.se>; Thu, 26 Nov 2026 10:00:00 +0100 (CET)

Only the top-most Received header is read (lower ones were written by machines the gateway
does not trust), and only when the connection comes from a configured trusted upstream. Parts
the client controls are never read as identity: the HELO name (one token, no spaces), the
recipient after "for", and comments only inside the "from" clause, before "by".
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.errors import UserError

# RFC 3848 and RFC 6531 "with" protocols: S = TLS, A = SMTP AUTH.
TLS_PROTOCOLS = frozenset(
    {"ESMTPS", "ESMTPSA", "UTF8SMTPS", "UTF8SMTPSA", "LMTPS", "LMTPSA", "UTF8LMTPS", "UTF8LMTPSA"}
)
AUTH_PROTOCOLS = frozenset(
    {"ESMTPA", "ESMTPSA", "UTF8SMTPA", "UTF8SMTPSA", "LMTPA", "LMTPSA", "UTF8LMTPA", "UTF8LMTPSA"}
)
AUTH_COMMENT = "authenticated sender:"
TLS_COMMENT = re.compile(r"using\s+(?:TLS|SSL)", re.IGNORECASE)

# A header field's name at the start of a line (continuation lines start with white space),
# and its value with every folded line after it.
_RECEIVED = re.compile(rb"^received[ \t]*:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_FROM = re.compile(r"\s*from\s+\S+\s*", re.IGNORECASE)
_BY_WITH = re.compile(r"by\s+\S+(?:\s+\([^()]*\))?\s+with\s+(?P<protocol>[A-Za-z0-9]+)\b", re.IGNORECASE)


@dataclass(frozen=True)
class UpstreamIdentity:
    """What the trusted upstream vouches for: the SASL login (lower case) and whether TLS was used.

    `readable` is false for a top-most Received header that is not Postfix's: it vouches for
    nobody, and is a security event (someone may be trying to pass as the upstream).
    """

    authenticated_as: str | None = None
    tls: bool = False
    protocol: str | None = None
    readable: bool = True


NOBODY = UpstreamIdentity()  # no Received header at all
UNREADABLE = UpstreamIdentity(readable=False)


def top_received(data: bytes) -> str | None:
    """The first Received header of a message, unfolded, or None.

    A regular expression over the header block rather than the email parser: this runs for every
    message from a trusted upstream, and the parser would read every header to find one.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        end = data.find(b"\n\n")
    match = _RECEIVED.search(data, 0, len(data) if end < 0 else end + 2)
    if match is None:
        return None
    value = match.group(1).decode("utf-8", "replace")
    return re.sub(r"\r?\n[ \t]+", " ", value).strip()


def _comments(text: str) -> tuple[list[str], str]:
    """Leading parenthesised comments (nested and quoted text kept whole) and the rest of the text."""
    comments: list[str] = []
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text) or text[i] != "(":
            return comments, text[i:]
        depth, quoted, start = 0, False, i
        while i < len(text):
            ch = text[i]
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                quoted = not quoted
            elif not quoted and ch == "(":
                depth += 1
            elif not quoted and ch == ")":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        if depth != 0:  # unbalanced: nothing after this can be trusted
            return comments, ""
        comments.append(text[start + 1 : i].strip())
        i += 1


def parse_received(value: str) -> UpstreamIdentity:
    """Identity and TLS from one Received header written by Postfix; UNREADABLE when it is not that."""
    start = _FROM.match(value)
    if start is None:
        return UNREADABLE
    comments, rest = _comments(value[start.end() :])
    by = _BY_WITH.match(rest)
    if by is None:
        return UNREADABLE
    protocol = by.group("protocol").upper()
    # The first comment is Postfix's "(reverse-name [address])" of the client.
    logins = [c[len(AUTH_COMMENT) :].strip() for c in comments[1:] if c.lower().startswith(AUTH_COMMENT)]
    tls = protocol in TLS_PROTOCOLS or any(TLS_COMMENT.match(c) for c in comments[1:])
    login: str | None = None
    # Postfix writes exactly one such comment, and says ESMTPA/ESMTPSA when it does. Anything
    # else (two logins, a login without an AUTH protocol) is not Postfix's doing: no identity.
    if len(logins) == 1 and protocol in AUTH_PROTOCOLS and logins[0] and " " not in logins[0]:
        login = logins[0].lower()
    elif logins:
        return UpstreamIdentity(tls=tls, protocol=protocol, readable=False)
    return UpstreamIdentity(authenticated_as=login, tls=tls, protocol=protocol)


def from_message(data: bytes) -> UpstreamIdentity:
    value = top_received(data)
    return NOBODY if value is None else parse_received(value)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """`auth.trusted_upstreams` as networks; a wrong entry is the operator's error, named."""
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise UserError(
                f"auth.trusted_upstreams: {entry!r} is not an IP address or network "
                "(e.g. 127.0.0.1 or 10.0.0.0/24)"
            ) from None
    return tuple(out)


def is_trusted(trusted: Sequence[Network], peer: Any) -> bool:
    """Whether the connection's peer (aiosmtpd's `session.peer`) is a trusted upstream."""
    if not trusted or not peer:
        return False
    host = peer[0] if isinstance(peer, tuple) else str(peer)
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in trusted)
