"""S/MIME mail made in the test run: signed (detached and opaque) and encrypted, with test keys.

The messages are built byte by byte (CRLF line ends, the signed entity exactly as signed), so a
real S/MIME client would verify or decrypt them: `openssl cms -verify -noverify` and
`openssl cms -decrypt` read them. The certificates are self-signed by tests/gateway/tls.py.
"""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from tests.gateway.tls import self_signed

CRLF = b"\r\n"
# The signature types a mail program writes; Outlook and old Netscape still write the x- forms.
SIGNATURE_TYPE = "application/pkcs7-signature"
LEGACY_SIGNATURE_TYPE = "application/x-pkcs7-signature"


@dataclass(frozen=True)
class Identity:
    """A certificate and its private key (cryptography objects), as a mail program holds them."""

    certificate: Any
    key: Any


def identity(folder: Path, common_name: str) -> Identity:
    """An RSA key and a self-signed certificate for `common_name`, files kept in `folder`.

    A Swedish e-identity certificate holds its owner's personnummer in its subject: pass one in
    `common_name` to check that a signer's certificate is never read as content.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = self_signed(folder, common_name, rsa=True)
    return Identity(
        certificate=x509.load_pem_x509_certificate(cert_path.read_bytes()),
        key=serialization.load_pem_private_key(key_path.read_bytes(), password=None),
    )


def _join(*lines: bytes) -> bytes:
    """Lines joined by CRLF, as mail travels and as S/MIME signs it."""
    return CRLF.join(lines)


def _base64_lines(data: bytes) -> bytes:
    """Base64 in lines of 76, each ended by CRLF."""
    return base64.encodebytes(data).replace(b"\n", CRLF)


def _boundary(kind: str) -> bytes:
    return f"=_{kind}_{make_msgid()[1:13]}".encode()


def text_entity(text: str) -> bytes:
    """A text/plain MIME entity (headers and body, CRLF): what gets signed or encrypted."""
    header = _join(b'Content-Type: text/plain; charset="utf-8"', b"Content-Transfer-Encoding: base64")
    return header + CRLF + CRLF + _base64_lines(text.encode("utf-8"))


def attachment_entity(text: str, filename: str, data: bytes, content_type: str) -> bytes:
    """A multipart/mixed entity: a text and one attachment (base64), CRLF throughout."""
    boundary = _boundary("mixed")
    attachment = _join(
        f'Content-Type: {content_type}; name="{filename}"'.encode(),
        b"Content-Transfer-Encoding: base64",
        f'Content-Disposition: attachment; filename="{filename}"'.encode(),
        b"",
        _base64_lines(data),
    )
    return _join(
        b'Content-Type: multipart/mixed; boundary="' + boundary + b'"',
        b"",
        b"--" + boundary,
        text_entity(text),
        b"--" + boundary,
        attachment,
        b"--" + boundary + b"--",
        b"",
    )


def _headers(sender: str, recipient: str, subject: str) -> bytes:
    """The message's own header lines, each ended by CRLF; a fixed date keeps runs alike."""
    date = datetime.datetime(2026, 11, 26, 9, 30, tzinfo=datetime.UTC)
    lines = [
        f"From: {sender}",
        f"To: {recipient}",
        f"Subject: {subject}",
        f"Date: {format_datetime(date)}",
        f"Message-ID: {make_msgid(domain=sender.rpartition('@')[2] or 'example.test')}",
        "MIME-Version: 1.0",
    ]
    return _join(*(line.encode() for line in lines)) + CRLF


def _sign(entity: bytes, signer: Identity, detached: bool) -> bytes:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    # Binary: the entity is signed as given (already CRLF), as S/MIME's canonical form requires.
    options = [pkcs7.PKCS7Options.Binary]
    if detached:
        options.append(pkcs7.PKCS7Options.DetachedSignature)
    builder = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(entity)
        .add_signer(signer.certificate, signer.key, hashes.SHA256())
    )
    return builder.sign(serialization.Encoding.DER, options)


def detached_signed(
    entity: bytes,
    signer: Identity,
    *,
    sender: str = "personal@example.test",
    recipient: str = "mottagare@example.org",
    subject: str = "Signerat meddelande",
    signature_type: str = SIGNATURE_TYPE,
) -> bytes:
    """multipart/signed: the entity as sent, then its detached signature (smime.p7s)."""
    boundary = _boundary("signed")
    signature = _sign(entity, signer, detached=True)
    return _headers(sender, recipient, subject) + _join(
        f'Content-Type: multipart/signed; protocol="{signature_type}"; micalg=sha-256;'.encode(),
        b' boundary="' + boundary + b'"',
        b"",
        b"This is a cryptographically signed message in MIME format.",
        b"",
        b"--" + boundary,
        entity,  # exactly the bytes signed; the CRLF after it belongs to the next delimiter
        b"--" + boundary,
        f'Content-Type: {signature_type}; name="smime.p7s"'.encode(),
        b"Content-Transfer-Encoding: base64",
        b'Content-Disposition: attachment; filename="smime.p7s"',
        b"Content-Description: S/MIME Cryptographic Signature",
        b"",
        _base64_lines(signature),
        b"--" + boundary + b"--",
        b"",
    )


# What Thunderbird writes in Content-Description for each kind of application/pkcs7-mime.
DESCRIPTIONS = {
    "signed-data": "S/MIME Cryptographic Signed Data",
    "enveloped-data": "S/MIME Encrypted Message",
}


def _pkcs7_mime(der: bytes, smime_type: str, sender: str, recipient: str, subject: str) -> bytes:
    return _headers(sender, recipient, subject) + _join(
        f'Content-Type: application/pkcs7-mime; smime-type={smime_type}; name="smime.p7m"'.encode(),
        b"Content-Transfer-Encoding: base64",
        b'Content-Disposition: attachment; filename="smime.p7m"',
        f"Content-Description: {DESCRIPTIONS[smime_type]}".encode(),
        b"",
        _base64_lines(der),
    )


def opaque_signed(
    entity: bytes,
    signer: Identity,
    *,
    sender: str = "personal@example.test",
    recipient: str = "mottagare@example.org",
    subject: str = "Signerat meddelande",
) -> bytes:
    """application/pkcs7-mime; smime-type=signed-data: the entity travels inside the signature."""
    return _pkcs7_mime(_sign(entity, signer, detached=False), "signed-data", sender, recipient, subject)


def encrypted(
    entity: bytes,
    recipient_identity: Identity,
    *,
    sender: str = "personal@example.test",
    recipient: str = "mottagare@example.org",
    subject: str = "Krypterat meddelande",
) -> bytes:
    """application/pkcs7-mime; smime-type=enveloped-data: the entity encrypted to the recipient."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    der = (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(entity)
        .add_recipient(recipient_identity.certificate)
        .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    return _pkcs7_mime(der, "enveloped-data", sender, recipient, subject)


def decrypted(message: bytes, recipient_identity: Identity) -> bytes:
    """The entity inside an `encrypted` message, as the recipient's mail program reads it."""
    from cryptography.hazmat.primitives.serialization import pkcs7

    return pkcs7.pkcs7_decrypt_smime(message, recipient_identity.certificate, recipient_identity.key, [])
