"""Real mail at the gateway: no message of the corpus is held except for a fair reason.

The corpus (tests/data/mail/, origins in tests/data/README.md) is the public test mail of mail
libraries and tools: S/MIME and PGP, forwarded messages, HTML, attachments, old charsets,
mislabelled parts. None of it holds a personal identity number (checked by eye), so any
personnummer found in it is a false one, and a message held for a part the gateway could have
read is a false hold. Each message goes through the engine as the gateway sees it:
`Scanner.scan_mail`, then `Scanner.decide` with the default configuration and the sender context
the linter gives when nobody is vouched for (`bench/real_mail.py`, which prints the same run).
"""

from __future__ import annotations

import email
import tempfile
from email import policy as email_policy
from email.message import Message
from functools import cache
from pathlib import Path

import pytest

from bench import real_mail
from models.findings import Unscanned, Verdict

ENCRYPTED_REASON = "krypterat meddelande"  # DESIGN: encrypted mail is unscannable with its own reason
# The only reasons a real message may be held: content no one can read at the gateway, by its
# nature. (declared type starts with, gateway's reason starts with, what it is); "" matches all.
FAIR_HOLDS: tuple[tuple[str, str, str], ...] = (
    ("audio/", "", "sound: no text in it"),
    ("video/", "", "video: no text in it"),
    ("", ENCRYPTED_REASON, "encrypted mail (S/MIME enveloped-data, OpenPGP)"),
    ("", "lösenordsskyddad", "a password-protected file"),
    ("application/octet-stream", "filtypen kan inte läsas", "bytes of no known format, declared as such"),
    ("message/partial", "", "one fragment of a message sent in parts: never whole at the gateway"),
)
# Signatures are never content (DESIGN): no part of these types is a reason to hold a message.
SIGNATURE_TYPES = frozenset(
    (
        "application/pkcs7-signature",
        "application/x-pkcs7-signature",
        "application/pgp-signature",
    )
)
PKCS7_MIME = frozenset(("application/pkcs7-mime", "application/x-pkcs7-mime"))
# File names mail programs give signatures and signed data; a part so named is no unknown format.
SIGNATURE_NAMES = (".p7s", ".p7m", ".p7c", ".sig", "signature.asc")
# CMS content types by OID (RFC 5652): what an application/pkcs7-mime part holds when it says not.
ENVELOPED_DATA_OID = bytes.fromhex("06092a864886f70d010703")
SIGNED_DATA_OID = bytes.fromhex("06092a864886f70d010702")
MIN_MESSAGES = 300

SOURCES = sorted(p.name for p in real_mail.CORPUS.iterdir() if p.is_dir())
Outcome = Verdict | str  # a verdict, or the type of the exception the scan raised


@cache
def _outcomes() -> dict[str, Outcome]:
    """Every message's outcome, keyed by its path in the corpus; computed once for all tests."""
    outcomes: dict[str, Outcome] = {}
    with tempfile.TemporaryDirectory() as folder:
        scanner = real_mail.scanner(Path(folder) / "register.db")
        for path in real_mail.messages():
            name = str(path.relative_to(real_mail.CORPUS))
            try:
                outcomes[name] = real_mail.decide(scanner, path.read_bytes())
            except Exception as e:  # named in the failure, not the end of the run
                outcomes[name] = type(e).__name__
    return outcomes


@pytest.fixture()
def outcomes(key_env: bytes) -> dict[str, Outcome]:
    # Every test sets the same test key (key_env), so one scan of the corpus serves them all.
    return _outcomes()


def signature_like(part: Unscanned) -> bool:
    """A signature or signed data, by its type or its name (the gateway may report either differently)."""
    return (
        part.content_type in SIGNATURE_TYPES
        or part.content_type in PKCS7_MIME
        or part.name.lower().endswith(SIGNATURE_NAMES)
    )


def fair(part: Unscanned) -> bool:
    if signature_like(part) and not part.reason.startswith(ENCRYPTED_REASON):
        return False  # a signature is never held fairly; signed data is read
    return any(
        part.content_type.startswith(declared) and part.reason.startswith(reason)
        for declared, reason, _what in FAIR_HOLDS
    )


def unfair(outcome: Outcome) -> list[str]:
    """Why a message is held for no fair reason (nothing when it passes, warns or is held fairly)."""
    if isinstance(outcome, str):
        return [f"the scan raised {outcome}"]
    if outcome.verdict != "block":
        return []
    found = [f"{f.kind} {f.masked} in {f.location.part}" for f in outcome.findings if f.severity == "block"]
    unread = [f"{u.name} [{u.content_type}]: {u.reason}" for u in outcome.unscanned if not fair(u)]
    return found + unread


def report(failures: dict[str, list[str]], what: str) -> str:
    lines = [f"{len(failures)} real messages {what}:"]
    for name, why in sorted(failures.items()):
        lines.append(f"  {name}")
        lines += [f"      {reason}" for reason in why]
    return "\n".join(lines)


def parsed(name: str) -> Message:
    return email.message_from_bytes((real_mail.CORPUS / name).read_bytes(), policy=email_policy.compat32)


def cms_holds(part: Message, oid: bytes) -> bool:
    payload = part.get_payload(decode=True)
    return isinstance(payload, bytes) and oid in payload[:32]


def pgp_ciphertext(part: Message) -> bool:
    """An OpenPGP message, armoured or binary (a packet's first byte has its top bit set)."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return False
    data = payload.lstrip()
    return data.startswith(b"-----BEGIN PGP MESSAGE-----") or (bool(data) and data[0] & 0x80 != 0)


def encrypted(message: Message) -> bool:
    """S/MIME enveloped-data or PGP/MIME ciphertext anywhere in the message, read here independently.

    A multipart/encrypted that holds readable text (Thunderbird's signature-spoofing test) is not.
    """
    for part in message.walk():  # into attached messages too
        ctype = part.get_content_type()
        if ctype == "multipart/encrypted":
            inner = part.get_payload()
            if isinstance(inner, list) and any(pgp_ciphertext(p) for p in inner[1:]):
                return True
        if ctype in PKCS7_MIME:
            smime_type = str(part.get_param("smime-type") or "").lower()
            if smime_type == "enveloped-data" or (not smime_type and cms_holds(part, ENVELOPED_DATA_OID)):
                return True
    return False


def signed(message: Message) -> bool:
    for part in message.walk():  # into attached messages too
        ctype = part.get_content_type()
        if ctype == "multipart/signed":
            return True
        if ctype in PKCS7_MIME:
            smime_type = str(part.get_param("smime-type") or "").lower()
            if smime_type == "signed-data" or (not smime_type and cms_holds(part, SIGNED_DATA_OID)):
                return True
    return False


def test_the_corpus_is_hundreds_of_real_messages_from_many_sources() -> None:
    paths = real_mail.messages()
    assert len(paths) >= MIN_MESSAGES
    assert len(SOURCES) >= 10
    # Each file is a message: it starts with a header field (an mbox would have been split).
    for path in paths:
        head = path.read_bytes()[:200].lstrip(b"\r\n")
        assert head[:5] != b"From " and b":" in head.split(b"\n", 1)[0], path


@pytest.mark.parametrize("source", SOURCES)
def test_no_real_message_is_held_except_for_a_fair_reason(outcomes: dict[str, Outcome], source: str) -> None:
    failures = {
        name: why
        for name, outcome in outcomes.items()
        if name.startswith(f"{source}/") and (why := unfair(outcome))
    }
    assert not failures, report(failures, "held for no fair reason")


def test_a_signed_message_is_never_held_for_its_signature(outcomes: dict[str, Outcome]) -> None:
    signed_names = [name for name in outcomes if signed(parsed(name)) and not encrypted(parsed(name))]
    assert len(signed_names) >= 50  # S/MIME and PGP, detached and opaque: the corpus has plenty
    failures = {}
    for name in signed_names:
        outcome = outcomes[name]
        held_for = (
            [f"the scan raised {outcome}"]
            if isinstance(outcome, str)
            else [
                f"{u.name} [{u.content_type}]: {u.reason}"
                for u in outcome.unscanned
                # Encrypted content inside a signature is held for its encryption, fairly.
                if signature_like(u) and not u.reason.startswith(ENCRYPTED_REASON)
            ]
        )
        if held_for:
            failures[name] = held_for
    assert not failures, report(failures, "held for their signature")


def test_encrypted_messages_are_held_as_encrypted(outcomes: dict[str, Outcome]) -> None:
    encrypted_names = [name for name in outcomes if encrypted(parsed(name))]
    assert len(encrypted_names) >= 50  # PGP/MIME and S/MIME enveloped-data
    failures = {}
    for name in encrypted_names:
        outcome = outcomes[name]
        if isinstance(outcome, str):
            failures[name] = [f"the scan raised {outcome}"]
        elif not any(u.reason == ENCRYPTED_REASON for u in outcome.unscanned):
            failures[name] = [f"verdict {outcome.verdict}, not held as 'krypterat meddelande'"] + [
                f"{u.name} [{u.content_type}]: {u.reason}" for u in outcome.unscanned
            ]
    assert not failures, report(failures, "encrypted but not held as encrypted")
