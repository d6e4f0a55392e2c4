"""Signatures are not content, signed content is read, encrypted mail is held: S/MIME and OpenPGP.

A signer's certificate can name its holder by personnummer (a Swedish e-ID or SITHS card puts it
in the subject's serialNumber): that is the sender, never a finding. What a signature wraps is
read like any part; what claims to be a signature or ciphertext and is not, is read as what it
is. The messages are made in the test run: S/MIME by the cryptography package (see also
tests/gateway/smime.py and test_smime.py), OpenPGP packets as RFC 4880 writes them, signed with an
Ed25519 key. The numbers are Skatteverket's test numbers.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import random
import struct
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway import mail
from gateway.config import parse
from gateway.extractors import signatures
from gateway.scanner import Scanner
from models.config import Limits
from models.findings import Segment, SenderContext, Verdict
from rules.engine import ScanContext, scan
from tests.conftest import TEST_KEY, TODAY, test_personnummer
from tests.gateway.tls import self_signed

PNR = test_personnummer(3)
WRITTEN = f"{PNR[:8]}-{PNR[8:]}"
SIGNER_PNR = test_personnummer(5)  # the signer's own, in the certificate
CTX = ScanContext(fingerprint_key=TEST_KEY, today=TODAY)
STAFF = "personal@kommun.example"
ENCRYPTED = "krypterat meddelande"
CLEAN = "Hej!\r\nKund 10234 behöver hjälp med duschen på torsdag.\r\n"
LEAKING = f"Hej!\r\nBrukaren med personnummer {WRITTEN} behöver hjälp.\r\n"


def head(extra: str = "") -> bytes:
    return (
        f"From: Personal <{STAFF}>\r\nTo: mottagare@example.se\r\nSubject: Schema\r\n"
        f"Message-ID: <sig.1@kommun.example>\r\n{extra}"
    ).encode()


def findings(raw: bytes) -> list[tuple[str, str]]:
    return [(f.location.part, f.kind) for f in scan(mail.extract(raw, Limits()).segments, CTX)]


def unscanned(raw: bytes) -> list[tuple[str, bool]]:
    return [(u.reason, u.encrypted) for u in mail.extract(raw, Limits()).unscanned]


def decided(tmp_path: Path, raw: bytes, **policy: Any) -> Verdict:
    config = parse(
        {"register": {"path": str(tmp_path / "register.db")}, "policy": {"person_name": "off", **policy}}
    )
    scanner = Scanner(config)
    staff = SenderContext(authenticated_as=STAFF, tls=True, envelope_sender=STAFF, from_header=STAFF)
    return scanner.decide(scanner.scan_mail(raw), staff)


# ---- S/MIME ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def e_id() -> tuple[Any, Any]:
    """A key and a certificate whose subject names its holder by personnummer, as an e-ID's does."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Anna Testsson"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, SIGNER_PNR),
        ]
    )
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def cms_signature(e_id: tuple[Any, Any], content: bytes, *, detached: bool) -> bytes:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    certificate, key = e_id
    options = [pkcs7.PKCS7Options.Binary] + ([pkcs7.PKCS7Options.DetachedSignature] if detached else [])
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content).add_signer(certificate, key, hashes.SHA256())
    return builder.sign(serialization.Encoding.DER, options)


def smime_signed(e_id: tuple[Any, Any], text: str) -> bytes:
    """multipart/signed as the cryptography package writes it (S/MIME, detached smime.p7s)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    certificate, key = e_id
    entity = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + text.encode()
    builder = pkcs7.PKCS7SignatureBuilder().set_data(entity).add_signer(certificate, key, hashes.SHA256())
    return head() + builder.sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature])


def with_attachment(data: bytes, filename: str, ctype: str = "application/octet-stream") -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Personal <{STAFF}>"
    msg["To"] = "mottagare@example.se"
    msg["Subject"] = "Underlag"
    msg.set_content("Se bifogad fil.")
    maintype, subtype = ctype.split("/")
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def test_the_signers_certificate_really_names_a_personnummer(e_id: tuple[Any, Any]) -> None:
    # Read as text, the signature would be a finding: what the next tests rely on not happening.
    signature = cms_signature(e_id, b"Hej", detached=True)
    assert SIGNER_PNR.encode() in signature
    text = signature.decode("latin-1")
    assert [h.kind for h in scan([Segment(part="x", text=text)], CTX)] == ["personnummer"]


def test_a_certificate_naming_the_signer_by_personnummer_is_not_a_finding(
    e_id: tuple[Any, Any], tmp_path: Path, key_env: bytes
) -> None:
    raw = smime_signed(e_id, CLEAN)
    assert findings(raw) == [] and unscanned(raw) == []
    assert decided(tmp_path, raw).verdict == "pass"


def test_the_signed_text_is_read_as_usual(e_id: tuple[Any, Any], tmp_path: Path, key_env: bytes) -> None:
    raw = smime_signed(e_id, LEAKING)
    assert findings(raw) == [("body:text/plain", "personnummer")]
    assert decided(tmp_path, raw).verdict == "block"


@pytest.mark.parametrize("name", ["smime.p7s", "signatur.p7s"])
def test_a_detached_signature_known_by_its_name_under_a_vague_type_is_skipped(
    e_id: tuple[Any, Any], name: str
) -> None:
    raw = with_attachment(cms_signature(e_id, b"Hej", detached=True), name)
    assert findings(raw) == [] and unscanned(raw) == []


def test_a_signed_document_p7m_is_unwrapped_and_its_file_read(e_id: tuple[Any, Any]) -> None:
    signed = cms_signature(e_id, f"namn;pnr\r\nBrukare;{WRITTEN}\r\n".encode(), detached=False)
    raw = with_attachment(signed, "lista.csv.p7m")
    assert findings(raw) == [("attachment:lista.csv.p7m/lista.csv", "personnummer")]


def test_opaque_signed_data_without_smime_type_is_known_by_its_content(e_id: tuple[Any, Any]) -> None:
    entity = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + LEAKING.encode()
    raw = with_attachment(cms_signature(e_id, entity, detached=False), "smime.p7m", "application/pkcs7-mime")
    assert findings(raw) == [("attachment:smime.p7m/body:text/plain", "personnummer")]
    assert unscanned(raw) == []


def test_compressed_smime_is_unpacked_and_read() -> None:
    import zlib

    from asn1crypto import cms

    entity = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + LEAKING.encode()
    compressed = cms.ContentInfo(
        {
            "content_type": "compressed_data",
            "content": {
                "version": "v0",
                "compression_algorithm": {"algorithm": "zlib"},
                "encap_content_info": {"content_type": "data", "content": zlib.compress(entity)},
            },
        }
    ).dump()
    raw = with_attachment(compressed, "smime.p7z", "application/pkcs7-mime")
    assert findings(raw) == [("attachment:smime.p7z/body:text/plain", "personnummer")]


def test_text_sent_as_a_signature_is_read_as_text() -> None:
    raw = with_attachment(LEAKING.encode(), "smime.p7s", "application/pkcs7-signature")
    assert findings(raw) == [("attachment:smime.p7s", "personnummer")]


def test_a_broken_signature_is_unscannable_not_skipped(e_id: tuple[Any, Any]) -> None:
    cut = cms_signature(e_id, b"Hej", detached=True)[:120]
    raw = with_attachment(cut, "smime.p7s", "application/pkcs7-signature")
    [(reason, encrypted)] = unscanned(raw)
    assert "trasig" in reason and not encrypted


def test_bytes_after_a_signature_are_not_hidden_behind_it(e_id: tuple[Any, Any]) -> None:
    padded = cms_signature(e_id, b"Hej", detached=True) + f" {WRITTEN} ".encode()
    raw = with_attachment(padded, "smime.p7s", "application/pkcs7-signature")
    assert unscanned(raw) != [] or findings(raw) != []


def test_smime_encrypted_mail_is_held_as_encrypted_and_on_encrypted_decides(
    e_id: tuple[Any, Any], tmp_path: Path, key_env: bytes
) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    cert_path, _ = self_signed(tmp_path, "mottagare", rsa=True)
    recipient = x509.load_pem_x509_certificate(cert_path.read_bytes())
    enveloped = (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(b"Content-Type: text/plain\r\n\r\n" + LEAKING.encode())
        .add_recipient(recipient)
        .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    raw = with_attachment(enveloped, "smime.p7m", "application/pkcs7-mime")
    assert unscanned(raw) == [(ENCRYPTED, True)] and findings(raw) == []
    assert decided(tmp_path, raw).verdict == "block"
    warned = decided(tmp_path, raw, on_encrypted="warn")
    assert warned.verdict == "warn" and warned.reason == "encrypted"


# ---- OpenPGP --------------------------------------------------------------------------------------


def _crc24(data: bytes) -> bytes:
    """RFC 4880 6.1: the armour's checksum."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return (crc & 0xFFFFFF).to_bytes(3, "big")


def _packet(tag: int, body: bytes) -> bytes:
    """A new-format packet (RFC 4880 4.2.2) with a one- or two-octet length."""
    if len(body) < 192:
        return bytes((0xC0 | tag, len(body))) + body
    length = len(body) - 192
    return bytes((0xC0 | tag, (length >> 8) + 192, length & 0xFF)) + body


def _mpi(value: bytes) -> bytes:
    return struct.pack(">H", int.from_bytes(value, "big").bit_length()) + value


def pgp_signature(data: bytes, *, text: bool = True) -> bytes:
    """A version 4 signature packet over `data`, signed with a fresh Ed25519 key (RFC 4880 5.2.3)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    # version 4, a text or binary document, EdDSA, SHA-256; hashed: the creation time
    fields = struct.pack(">BBBB", 4, 0x01 if text else 0x00, 22, 8)
    created = bytes((5, 2)) + struct.pack(">I", 1_790_000_000)
    hashed = fields + struct.pack(">H", len(created)) + created
    digest = hashlib.sha256(data + hashed + b"\x04\xff" + struct.pack(">I", len(hashed))).digest()
    signature = key.sign(digest)
    issuer = bytes((9, 16)) + bytes(8)
    body = (
        hashed
        + struct.pack(">H", len(issuer))
        + issuer
        + digest[:2]
        + _mpi(signature[:32])
        + _mpi(signature[32:])
    )
    return _packet(2, body)


def armour(kind: str, packets: bytes) -> str:
    lines = [f"-----BEGIN PGP {kind}-----", "Comment: gjord i testet", ""]
    encoded = base64.b64encode(packets).decode()
    lines += [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    lines += ["=" + base64.b64encode(_crc24(packets)).decode(), f"-----END PGP {kind}-----"]
    return "\r\n".join(lines) + "\r\n"


def clear_signed(text: str) -> str:
    """A clear-signed message (RFC 4880 7): the text readable, then its signature block."""
    lines = text.rstrip("\r\n").split("\r\n")
    canonical = "\r\n".join(line.rstrip(" \t") for line in lines).encode()
    escaped = "\r\n".join(("- " + line) if line.startswith("-") else line for line in lines)
    return (
        "-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\n"
        + escaped
        + "\r\n"
        + armour("SIGNATURE", pgp_signature(canonical))
    )


def encrypted_packets(seed: int = 7) -> bytes:
    """An encrypted message's packets: a session key for one recipient, then the encrypted data
    (its bytes random, as ciphertext is)."""
    noise = random.Random(seed)
    session_key = bytes((3,)) + noise.randbytes(8) + bytes((18,)) + _mpi(b"\x40" + noise.randbytes(32))
    return _packet(1, session_key) + _packet(18, bytes((1,)) + noise.randbytes(180))


def text_mail(body: str) -> bytes:
    return head("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n") + body.encode()


def test_a_clear_signed_message_is_read_and_its_signature_is_no_reason_to_refuse(
    tmp_path: Path, key_env: bytes
) -> None:
    raw = text_mail(clear_signed(CLEAN))
    assert findings(raw) == [] and unscanned(raw) == []
    assert decided(tmp_path, raw).verdict == "pass"


def test_a_number_in_clear_signed_text_is_found_on_its_own_line(tmp_path: Path, key_env: bytes) -> None:
    raw = text_mail(clear_signed(LEAKING))
    [found] = scan(mail.extract(raw, Limits()).segments, CTX)
    assert (found.location.part, found.location.line) == ("body:text/plain", 5)
    assert decided(tmp_path, raw).verdict == "block"


def test_a_signature_block_is_blanked_line_for_line_and_its_comment_read() -> None:
    signed = clear_signed(CLEAN)
    readable, encrypted = signatures.readable_text(signed)
    assert not encrypted and readable.count("\n") == signed.count("\n")
    assert "-----BEGIN PGP SIGNATURE-----" not in readable and "Comment: gjord i testet" in readable
    assert "Kund 10234" in readable


def test_digits_between_signature_armour_lines_are_read(tmp_path: Path, key_env: bytes) -> None:
    # Only lines that decode to signature packets are skipped: a number cannot hide there.
    fake = f"Hej\r\n-----BEGIN PGP SIGNATURE-----\r\n\r\n{PNR}\r\n-----END PGP SIGNATURE-----\r\n"
    assert findings(text_mail(fake)) == [("body:text/plain", "personnummer")]


def pgp_mime_signed(text: str) -> bytes:
    entity = f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}".encode()
    signature = armour("SIGNATURE", pgp_signature(entity, text=False)).encode()
    return head(
        'MIME-Version: 1.0\r\nContent-Type: multipart/signed; micalg=pgp-sha256;\r\n protocol="application/pgp-signature"; boundary="s"\r\n\r\n'
    ) + (
        b"--s\r\n" + entity + b"\r\n--s\r\n"
        b'Content-Type: application/pgp-signature; name="signature.asc"\r\n'
        b'Content-Disposition: attachment; filename="signature.asc"\r\n\r\n' + signature + b"--s--\r\n"
    )


def test_a_pgp_mime_signature_is_skipped_and_the_signed_part_read() -> None:
    assert findings(pgp_mime_signed(CLEAN)) == [] and unscanned(pgp_mime_signed(CLEAN)) == []
    assert findings(pgp_mime_signed(LEAKING)) == [("body:text/plain", "personnummer")]


@pytest.mark.parametrize("name", ["signatur.sig", "signatur.asc"])
def test_a_binary_detached_signature_under_a_vague_type_is_skipped(name: str) -> None:
    raw = with_attachment(pgp_signature(b"avtal", text=False), name)
    assert findings(raw) == [] and unscanned(raw) == []


def test_binary_data_dressed_up_as_a_signature_is_not_skipped() -> None:
    # A signature packet header in front of more than the packet holds: not a signature, not skipped.
    fake = pgp_signature(b"avtal", text=False) + f"\x00\x01{WRITTEN}\x00".encode()
    raw = with_attachment(fake, "signatur.sig")
    assert findings(raw) != [] or unscanned(raw) != []


def test_pgp_mime_encrypted_mail_is_held_as_encrypted(tmp_path: Path, key_env: bytes) -> None:
    raw = head(
        'MIME-Version: 1.0\r\nContent-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="e"\r\n\r\n'
    ) + (
        b"--e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--e\r\n"
        b'Content-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n'
        + armour("MESSAGE", encrypted_packets()).encode()
        + b"--e--\r\n"
    )
    assert unscanned(raw) == [(ENCRYPTED, True)]
    verdict = decided(tmp_path, raw)
    assert verdict.verdict == "block" and verdict.reason.startswith("encrypted:")


def test_binary_encrypted_data_with_no_name_is_held_as_encrypted() -> None:
    # Exchange turns PGP/MIME into multipart/mixed with the ciphertext as a nameless binary part.
    raw = head('MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="m"\r\n\r\n') + (
        b"--m\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--m\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(encrypted_packets())
        + b"--m--\r\n"
    )
    assert unscanned(raw) == [(ENCRYPTED, True)]


def test_an_inline_encrypted_message_is_held_and_the_text_around_it_read() -> None:
    body = f"Brukaren {WRITTEN}, se nedan.\r\n\r\n" + armour("MESSAGE", encrypted_packets())
    raw = text_mail(body)
    assert unscanned(raw) == [(ENCRYPTED, True)]
    assert findings(raw) == [("body:text/plain", "personnummer")]


def test_plain_text_dressed_up_as_ciphertext_is_read_even_when_encrypted_mail_may_pass(
    tmp_path: Path, key_env: bytes
) -> None:
    noise = random.Random(3)
    dressed = _packet(1, bytes((3,)) + noise.randbytes(8) + bytes((18,))) + _packet(
        18, bytes((1,)) + f"Brukaren {WRITTEN} behöver hjälp".encode()
    )
    for raw in (with_attachment(dressed, "meddelande.pgp"), text_mail(armour("MESSAGE", dressed))):
        verdict = decided(tmp_path, raw, on_encrypted="warn")
        assert verdict.verdict == "block" and [f.kind for f in verdict.findings] == ["personnummer"]


@pytest.mark.parametrize("hidden", [f"={PNR}", f"={PNR[2:]}"])
def test_a_number_written_as_a_second_checksum_line_of_a_real_signature_is_read(hidden: str) -> None:
    # Lines starting with `=` are left out of the signature's decoding: only the one checksum line
    # of four characters may be, or a number written as one would be blanked with the block.
    signed = clear_signed(CLEAN)
    checksum = signed.rindex("\r\n=") + 2
    tampered = signed[:checksum] + hidden + "\r\n" + signed[checksum:]
    assert findings(text_mail(tampered)) == [("body:text/plain", "personnummer")]
    assert findings(text_mail(signed)) == []


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_text_dressed_up_as_ciphertext_is_read_even_when_encrypted_mail_may_pass(
    codec: str, tmp_path: Path, key_env: bytes
) -> None:
    # Notepad's and Excel's "Unicode" text has a zero byte beside every letter: no UTF-8 run.
    noise = random.Random(3)
    dressed = _packet(1, bytes((3,)) + noise.randbytes(8) + bytes((18,))) + _packet(
        18, bytes((1,)) + f"Brukaren {WRITTEN} behöver hjälp".encode(codec)
    )
    verdict = decided(tmp_path, with_attachment(dressed, "meddelande.pgp"), on_encrypted="warn")
    assert verdict.verdict == "block" and [f.kind for f in verdict.findings] == ["personnummer"]


def test_real_ciphertext_reveals_no_text_in_either_width() -> None:
    assert signatures.revealed(encrypted_packets()).strip() == ""
