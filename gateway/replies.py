"""SMTP replies of the gateway, named once, and the Swedish guidance lines of a policy block."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence

from models.findings import Verdict
from rules.guidance import SAFE_WAYS, WHAT, place

# Replies are plain ASCII. The gateway does not offer SMTPUTF8 (it could not pass the option on
# to the next hop), and RFC 6531 allows UTF-8 in replies only to a client that asked for it;
# aiosmtpd encodes replies as ASCII and would fail on "å". Swedish text is therefore
# transliterated the way Swedes write without diacritics: å -> a, ä -> a, ö -> o.
MAX_LINE = 200  # characters of text after "550-5.7.1 "; RFC 5321 allows 512 octets per reply line
MAX_FINDINGS_SHOWN = 5

# Temporary failures: the sender's server keeps the message and tries again.
TEMPORARY_FAILURE = "451 4.3.0 Tillfälligt fel i e-postgranskningen, försök igen senare"
SCAN_TIMEOUT = "451 4.3.0 Granskningen av meddelandet tog för lång tid, försök igen senare"
SHUTTING_DOWN = "421 4.3.2 Tjänsten stängs, försök igen senare"

# Who may send.
AUTH_REQUIRED = "530 5.7.0 Inloggning krävs (AUTH efter STARTTLS)"
SENDER_MISMATCH = "553 5.7.1 Avsändaradressen är inte din inloggade adress"
# The same refusal at the end of DATA (trusted upstream: the identity is known only then);
# 553 is not a reply RFC 5321 lists for DATA, 550 is.
SENDER_MISMATCH_DATA = "550 5.7.1 Avsändaradressen är inte avsändarens inloggade adress"

# Limits (RFC 3463: X.3.4 too big, X.5.3 too many recipients, X.6.0 content cannot be handled).
TOO_BIG = "552 5.3.4 Meddelandet är för stort"
TOO_MANY_RECIPIENTS = "452 4.5.3 För många mottagare, skicka resten i ett nytt meddelande"
LINE_TOO_LONG = "554 5.6.0 Meddelandet har för långa rader"
TOO_MANY_HEADERS = "554 5.6.0 Meddelandet har för många rubrikfält"
MIME_TOO_DEEP = "554 5.6.0 Meddelandets delar är inkapslade i för många nivåer"

QUARANTINED = "250 2.0.0 Meddelandet hålls kvar för granskning; avsändaren får besked"

# aiosmtpd's own replies for the same situations, without enhanced codes or in English, mapped
# to ours (exact text of aiosmtpd 1.4.6, which pyproject requires).
STOCK: dict[str, str] = {
    "500 Line too long (see RFC5321 4.5.3.1.6)": LINE_TOO_LONG,
    "552 Error: Too much mail data": TOO_BIG,
    "552 Error: message size exceeds fixed maximum message size": TOO_BIG,
}

BLOCK_CODE = "550"
BLOCK_STATUS = "5.7.1"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def ascii_text(text: str) -> str:
    """Text that can travel in a plain SMTP reply: no diacritics, no control characters."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    plain = plain.encode("ascii", "replace").decode("ascii")
    return _CONTROL.sub(" ", plain).strip()


def reply(code: int | str, status: str, lines: Sequence[str]) -> str:
    """A (multi-line) SMTP reply: every line but the last has "code-", each repeats the status.

    aiosmtpd writes the returned string and one CRLF, so the lines are joined with CRLF here.
    """
    texts = [_short(ascii_text(line)) for line in lines if ascii_text(line)] or [""]
    out = []
    for i, text in enumerate(texts):
        sep = " " if i == len(texts) - 1 else "-"
        out.append(f"{code}{sep}{status} {text}".rstrip())
    return "\r\n".join(out)


def plain(text: str) -> str:
    """One of the named replies above, made ASCII."""
    return ascii_text(text)


def _short(text: str) -> str:
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 3] + "..."


def next_hop_reply(code: int, message: str) -> str:
    """The next hop's own reply, passed on (lockstep), made safe to send on as one of ours."""
    lines = [ascii_text(line) for line in message.splitlines() if line.strip()] or [
        "OK" if code < 400 else ""
    ]
    status = ""
    first = lines[0].split(" ", 1)
    if re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", first[0]) and first[0][0] == str(code)[0]:
        status = first[0]
    texts = []
    for line in lines:
        head, _, rest = line.partition(" ")
        texts.append(rest if head == status and status else line)
    if not status:
        status = {2: "2.0.0", 4: "4.0.0", 5: "5.0.0"}.get(code // 100, "4.0.0")
    return reply(code, status, texts)


def _where(part: str, line: int) -> str:
    return f"{place(part)}, rad {line}"


def block_lines(
    verdict: Verdict,
    *,
    marker: str | None,
    why: str | None = None,
    redact: Callable[[str], str] | None = None,
) -> list[str]:
    """The guidance a blocked sender reads in their mail program, in Swedish, without identifiers.

    Each finding is named by kind, masked form and location, with the customer number to write
    instead when the register knows it. `marker` is the subject tag for secrecy-protected mail,
    given only when that route exists. A part's name is the sender's text (a file name may be
    `journal_<personnummer>.pdf`): every line goes through `redact` as well.
    """
    lines = ["Meddelandet stoppades: det innehåller uppgifter om en brukare."]
    shown = verdict.findings[:MAX_FINDINGS_SHOWN]
    for f in shown:
        lines.append(
            f"{WHAT[f.kind].capitalize()} ({f.masked}) i {_where(f.location.part, f.location.line)}."
        )
        lines.append(f.suggestion)
    if len(verdict.findings) > len(shown):
        lines.append(f"... och {len(verdict.findings) - len(shown)} uppgifter till.")
    for u in verdict.unscanned[:MAX_FINDINGS_SHOWN]:
        lines.append(f"En del kunde inte granskas: {u.name} ({u.reason}).")
    if why:
        lines.append(f"Undantaget för chefer gäller inte: {why}.")
    lines.extend(SAFE_WAYS)
    if marker:
        lines.append(
            f"Chef som måste skicka uppgifterna: skriv {marker} i ämnesraden (sekretesskyddad e-post)."
        )
    return [redact(line) for line in lines] if redact else lines


def block(
    verdict: Verdict,
    *,
    marker: str | None,
    why: str | None = None,
    redact: Callable[[str], str] | None = None,
) -> str:
    return reply(BLOCK_CODE, BLOCK_STATUS, block_lines(verdict, marker=marker, why=why, redact=redact))


def verdict_header(verdict: Verdict | None) -> bytes:
    """The one header added to forwarded mail: the verdict and the kinds found, no identifiers."""
    if verdict is None:
        return b"X-Brukarvakt-Verdict: not-scanned\r\n"
    parts: list[str] = [verdict.verdict]
    if verdict.manager_exception:
        parts.append("exception=manager")
    kinds = _unique(f.kind for f in verdict.findings)
    if kinds:
        parts.append("kinds=" + ",".join(kinds))
    if verdict.unscanned:
        parts.append(f"unscanned={len(verdict.unscanned)}")
    return ("X-Brukarvakt-Verdict: " + "; ".join(parts) + "\r\n").encode("ascii")


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
