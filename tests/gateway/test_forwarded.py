"""A forwarded message is read whatever its transfer encoding: base64, quoted-printable, uuencode,
nested, as message/rfc822 or message/global; a message/partial fragment is unscannable.

compat32 parses a message/rfc822 body as a message without undoing its transfer encoding: a
forwarded message sent in base64 was read as base64 text, and a personnummer inside passed. These
messages are made by the email package (EmailMessage.add_attachment) or by hand where it cannot
make them (uuencode); the numbers are Skatteverket's test numbers.
"""

from __future__ import annotations

import binascii
import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway import mail
from gateway.cli import main
from gateway.config import parse
from gateway.scanner import Scanner
from models.config import Limits
from models.findings import SenderContext
from rules.engine import ScanContext, scan
from tests.conftest import TEST_KEY, TODAY, test_personnummer

PNR = test_personnummer(3)
WRITTEN = f"{PNR[:8]}-{PNR[8:]}"
MASKED = f"{PNR[2:8]}-****"
CTX = ScanContext(fingerprint_key=TEST_KEY, today=TODAY)
STAFF = "personal@kommun.example"
# How each transfer encoding is written into a part by hand (uuencode: the email package cannot).
ENCODINGS = ("base64", "quoted-printable", "x-uuencode")


def original(text: str = f"Brukaren med personnummer {WRITTEN} behöver hjälp i morgon.") -> EmailMessage:
    """The message that is forwarded: a care note as a colleague wrote it."""
    inner = EmailMessage()
    inner["From"] = "Kim Kollega <kim@kommun.example>"
    inner["To"] = STAFF
    inner["Subject"] = "Besök i morgon"
    inner.set_content(text)
    return inner


def carrier(subject: str = "Fwd: Besök i morgon") -> EmailMessage:
    outer = EmailMessage()
    outer["From"] = f"Personal <{STAFF}>"
    outer["To"] = "mottagare@example.se"
    outer["Subject"] = subject
    outer.set_content("Se det vidarebefordrade meddelandet.")
    return outer


def uuencoded(data: bytes, name: str) -> str:
    lines = [f"begin 644 {name}"]
    lines += [binascii.b2a_uu(data[i : i + 45]).decode("ascii").rstrip("\n") for i in range(0, len(data), 45)]
    lines += ["`", "end"]
    return "\r\n".join(lines) + "\r\n"


def forwarding(
    inner: bytes,
    encoding: str,
    *,
    subtype: str = "rfc822",
    filename: str | None = "vidarebefordrat.eml",
) -> bytes:
    """A message carrying `inner` as message/<subtype> in the given transfer encoding."""
    outer = carrier()
    if encoding == "x-uuencode":
        outer.add_attachment(
            b"placeholder", maintype="message", subtype=subtype, cte="base64", filename=filename
        )
        part = next(outer.iter_attachments())
        part.set_payload(uuencoded(inner, filename or "meddelande.eml"))
        part.replace_header("Content-Transfer-Encoding", "x-uuencode")
    else:
        outer.add_attachment(inner, maintype="message", subtype=subtype, cte=encoding, filename=filename)
    if filename is None:
        del next(outer.iter_attachments())["Content-Disposition"]
    raw = outer.as_bytes()
    assert f"Content-Transfer-Encoding: {encoding}".encode() in raw
    if encoding != "quoted-printable":  # (which leaves digits as they are, spaces around them not)
        assert WRITTEN.encode() not in raw and PNR.encode() not in raw  # only its encoding travels
    return raw


def found_in(raw: bytes) -> list[tuple[str, str]]:
    text = mail.extract(raw, Limits())
    assert text.unscanned == []
    return [(f.location.part, f.kind) for f in scan(text.segments, CTX)]


# ---- the walk -----------------------------------------------------------------------------------


def test_a_forwarded_message_as_the_email_package_attaches_it_is_read() -> None:
    outer = carrier()
    outer.add_attachment(original())
    assert found_in(outer.as_bytes()) == [("message/body:text/plain", "personnummer")]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_forwarded_message_in_any_transfer_encoding_is_decoded_and_read(encoding: str) -> None:
    raw = forwarding(original().as_bytes(), encoding)
    assert found_in(raw) == [("attachment:vidarebefordrat.eml/body:text/plain", "personnummer")]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_the_forwarded_messages_headers_are_read_too(encoding: str) -> None:
    inner = original("Se ämnesraden.")
    inner.replace_header("Subject", f"Gäller {WRITTEN}")
    raw = forwarding(inner.as_bytes(), encoding)
    assert found_in(raw) == [("attachment:vidarebefordrat.eml/header:Subject", "personnummer")]


def test_without_a_file_name_the_location_says_it_was_a_forwarded_message() -> None:
    raw = forwarding(original().as_bytes(), "base64", filename=None)
    assert found_in(raw) == [("message/body:text/plain", "personnummer")]


@pytest.mark.parametrize("subtype", ["global", "news"])
def test_other_message_types_in_base64_are_read_as_messages(subtype: str) -> None:
    # message/global (RFC 6532) is the UTF-8 form of a forwarded message, and may be sent in base64.
    inner = original(f"Brukaren Åsa med personnummer {WRITTEN}.").as_bytes()
    raw = forwarding(inner, "base64", subtype=subtype)
    assert found_in(raw) == [("attachment:vidarebefordrat.eml/body:text/plain", "personnummer")]


@pytest.mark.parametrize(
    ("outer_encoding", "inner_encoding"), [("base64", "quoted-printable"), ("x-uuencode", "base64")]
)
def test_a_message_forwarded_twice_in_encodings_is_read_through_both(
    outer_encoding: str, inner_encoding: str
) -> None:
    middle = carrier("Fwd: Fwd")
    middle.add_attachment(
        original().as_bytes(), maintype="message", subtype="rfc822", cte=inner_encoding, filename="forsta.eml"
    )
    raw = forwarding(middle.as_bytes(), outer_encoding)
    assert found_in(raw) == [
        ("attachment:vidarebefordrat.eml/attachment:forsta.eml/body:text/plain", "personnummer")
    ]


def test_a_forwarded_message_that_is_the_whole_message_in_base64_is_read() -> None:
    head = "From: a@kommun.example\r\nTo: b@example.se\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\n"
    body = original().as_bytes()
    import base64

    raw = (
        head + "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + base64.encodebytes(body)
    assert found_in(raw) == [("message/body:text/plain", "personnummer")]


def test_a_clean_forwarded_message_in_base64_is_clean() -> None:
    raw = forwarding(original("Kund 10234 behöver hjälp i morgon.").as_bytes(), "base64")
    assert found_in(raw) == []


def test_a_fragment_of_a_message_is_unscannable_and_what_it_shows_is_read() -> None:
    # A message in fragments (RFC 2046 5.2.2) is read whole only once all have come, which no
    # gateway sees: a number may be split between two of them.
    outer = carrier()
    fragment = original().as_bytes()[:220]
    outer.add_attachment(fragment, maintype="message", subtype="partial", cte="7bit")
    next(outer.iter_attachments()).set_param("id", "abc@kommun.example")
    next(outer.iter_attachments()).set_param("number", "1")
    text = mail.extract(outer.as_bytes(), Limits())
    assert [(u.name, u.content_type) for u in text.unscanned] == [("message", "message/partial")]
    assert "message/partial" in text.unscanned[0].reason and not text.unscanned[0].encrypted


def test_a_base64_fragment_is_unscannable_too_and_a_number_it_shows_is_found() -> None:
    raw = forwarding(original().as_bytes(), "base64", subtype="partial", filename=None)
    text = mail.extract(raw, Limits())
    assert [u.content_type for u in text.unscanned] == ["message/partial"]
    assert [(f.location.part, f.kind) for f in scan(text.segments, CTX)] == [
        ("message/body:text/plain", "personnummer")
    ]


# ---- through the linter and the gateway's scanner -----------------------------------------------


@pytest.fixture()
def _in_tmp(key_env: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("policy: {person_name: 'off'}\n", encoding="utf-8")


@pytest.mark.usefixtures("_in_tmp")
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_brukarvakt_lint_blocks_a_forwarded_message_in_any_encoding(
    encoding: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "utkast.eml"
    path.write_bytes(forwarding(original().as_bytes(), encoding))
    code = main(["lint", "--format", "json", str(path)])
    out, err = capsys.readouterr()
    assert (code, err) == (1, "")
    (result,) = json.loads(out)["files"]
    assert result["verdict"] == "block" and result["unscanned"] == []
    assert [(f["location"]["part"], f["masked"]) for f in result["findings"]] == [
        ("attachment:vidarebefordrat.eml/body:text/plain", MASKED)
    ]
    assert PNR not in out and PNR[2:] not in out


@pytest.mark.usefixtures("_in_tmp")
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_the_gateways_scanner_blocks_a_forwarded_message_in_any_encoding(
    encoding: str, tmp_path: Path
) -> None:
    scanner = Scanner(
        parse({"register": {"path": str(tmp_path / "register.db")}, "policy": {"person_name": "off"}})
    )
    scanned = scanner.scan_mail(forwarding(original().as_bytes(), encoding))
    staff = SenderContext(authenticated_as=STAFF, tls=True, envelope_sender=STAFF, from_header=STAFF)
    verdict = scanner.decide(scanned, staff)
    assert verdict.verdict == "block" and verdict.reason.startswith("identifier:")
    assert [f.location.part for f in verdict.findings] == ["attachment:vidarebefordrat.eml/body:text/plain"]
