"""S/MIME mail at the gateway: a signature is not content, signed content is read, encrypted mail is held.

DESIGN: "a detached S/MIME or PGP signature is skipped (the signer's certificate is the sender's,
not a care recipient's), opaque signed-data is unwrapped and its content scanned, encrypted mail
is unscannable with its own reason and its own policy (`policy.on_encrypted`, default the same as
`on_unscannable`)". The messages are made in the test run (tests/gateway/smime.py) with
self-signed test keys; the only identity numbers are Skatteverket's test numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import real_mail
from gateway.config import parse
from gateway.scanner import Scanner
from models.findings import Verdict
from tests.conftest import test_personnummer
from tests.gateway import smime

ENCRYPTED_REASON = "krypterat meddelande"
SIGNATURE_TYPES = (smime.SIGNATURE_TYPE, smime.LEGACY_SIGNATURE_TYPE)
# Care context and a customer number, but no identifier and no person's name.
CLEAN_TEXT = "Hej!\n\nKund 10234 behöver hjälp med duschen på torsdag. Kan du ta det passet?\n\nHälsningar\n"


def written(personnummer: str) -> str:
    """Skatteverket's 12-digit test number as people write it: 19450312-1234."""
    return f"{personnummer[:8]}-{personnummer[8:]}"


def leaking_text() -> str:
    return f"Hej!\n\nBrukaren med personnummer {written(test_personnummer(3))} behöver hjälp i morgon.\n"


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> smime.Identity:
    return smime.identity(tmp_path_factory.mktemp("signer"), "Anna Testsson")


@pytest.fixture(scope="module")
def e_id_signer(tmp_path_factory: pytest.TempPathFactory) -> smime.Identity:
    """A certificate like a Swedish e-ID's: its subject names the holder by personnummer."""
    return smime.identity(tmp_path_factory.mktemp("e_id"), f"Anna Testsson {test_personnummer(5)}")


def decided(tmp_path: Path, message: bytes, **policy: Any) -> Verdict:
    """The gateway's verdict with the default config (and `policy` keys), for a sender nobody vouched for."""
    config = parse({"register": {"path": str(tmp_path / "register.db")}, "policy": policy})
    return real_mail.decide(Scanner(config), message)


def kinds(verdict: Verdict) -> set[str]:
    return {f.kind for f in verdict.findings}


def reasons(verdict: Verdict) -> list[str]:
    return [u.reason for u in verdict.unscanned]


# The builders themselves: real S/MIME, or the tests below would prove nothing.


def test_an_encrypted_message_decrypts_to_the_entity_it_was_made_from(signer: smime.Identity) -> None:
    entity = smime.text_entity(CLEAN_TEXT)
    assert smime.decrypted(smime.encrypted(entity, signer), signer) == entity


def test_a_detached_signature_carries_the_signers_certificate(signer: smime.Identity) -> None:
    import email

    from cryptography.hazmat.primitives.serialization import pkcs7

    message = email.message_from_bytes(smime.detached_signed(smime.text_entity(CLEAN_TEXT), signer))
    (signature,) = [p for p in message.walk() if p.get_content_type() == smime.SIGNATURE_TYPE]
    der = signature.get_payload(decode=True)
    assert isinstance(der, bytes)
    certificates = pkcs7.load_der_pkcs7_certificates(der)
    assert certificates == [signer.certificate]


# Detached signatures (multipart/signed): never content, never a reason to hold a message.


@pytest.mark.parametrize("signature_type", SIGNATURE_TYPES)
def test_a_clean_message_with_a_detached_signature_passes(
    tmp_path: Path, key_env: bytes, signer: smime.Identity, signature_type: str
) -> None:
    message = smime.detached_signed(smime.text_entity(CLEAN_TEXT), signer, signature_type=signature_type)
    verdict = decided(tmp_path, message)
    assert verdict.unscanned == ()
    assert verdict.verdict == "pass"


def test_a_detached_signature_beside_an_attachment_is_no_reason_to_hold_the_message(
    tmp_path: Path, key_env: bytes, signer: smime.Identity
) -> None:
    entity = smime.attachment_entity(CLEAN_TEXT, "schema.txt", "Måndag: Kund 10234\n".encode(), "text/plain")
    verdict = decided(tmp_path, smime.detached_signed(entity, signer))
    assert verdict.unscanned == ()
    assert verdict.verdict == "pass"


def test_a_signers_certificate_that_names_a_personnummer_is_not_read(
    tmp_path: Path, key_env: bytes, e_id_signer: smime.Identity
) -> None:
    verdict = decided(tmp_path, smime.detached_signed(smime.text_entity(CLEAN_TEXT), e_id_signer))
    assert verdict.findings == ()
    assert verdict.verdict == "pass"


def test_a_personnummer_in_the_signed_text_is_blocked(
    tmp_path: Path, key_env: bytes, signer: smime.Identity
) -> None:
    verdict = decided(tmp_path, smime.detached_signed(smime.text_entity(leaking_text()), signer))
    assert "personnummer" in kinds(verdict)
    assert verdict.verdict == "block"


# Opaque signed-data (application/pkcs7-mime; smime-type=signed-data): unwrapped and read.


def test_opaque_signed_data_with_a_personnummer_inside_is_unwrapped_and_blocked(
    tmp_path: Path, key_env: bytes, signer: smime.Identity
) -> None:
    verdict = decided(tmp_path, smime.opaque_signed(smime.text_entity(leaking_text()), signer))
    assert "personnummer" in kinds(verdict)
    assert verdict.unscanned == ()
    assert verdict.verdict == "block"


def test_opaque_signed_data_with_clean_text_passes(
    tmp_path: Path, key_env: bytes, signer: smime.Identity
) -> None:
    verdict = decided(tmp_path, smime.opaque_signed(smime.text_entity(CLEAN_TEXT), signer))
    assert verdict.unscanned == ()
    assert verdict.verdict == "pass"


def test_opaque_signed_data_is_read_without_its_signers_certificate(
    tmp_path: Path, key_env: bytes, e_id_signer: smime.Identity
) -> None:
    verdict = decided(tmp_path, smime.opaque_signed(smime.text_entity(CLEAN_TEXT), e_id_signer))
    assert verdict.findings == ()
    assert verdict.verdict == "pass"


def test_a_personnummer_in_an_attachment_inside_opaque_signed_data_is_blocked(
    tmp_path: Path, key_env: bytes, signer: smime.Identity
) -> None:
    entity = smime.attachment_entity(CLEAN_TEXT, "anteckning.txt", leaking_text().encode(), "text/plain")
    verdict = decided(tmp_path, smime.opaque_signed(entity, signer))
    assert "personnummer" in kinds(verdict)
    assert verdict.verdict == "block"


# Encrypted mail (application/pkcs7-mime; smime-type=enveloped-data): held for its own reason.


def test_encrypted_mail_is_unscannable_as_an_encrypted_message(
    tmp_path: Path, key_env: bytes, signer: smime.Identity
) -> None:
    verdict = decided(tmp_path, smime.encrypted(smime.text_entity(CLEAN_TEXT), signer))
    assert reasons(verdict) == [ENCRYPTED_REASON]
    assert verdict.verdict == "block"  # on_encrypted unset: as on_unscannable, block by default


def test_nothing_inside_encrypted_mail_is_read_or_claimed(
    tmp_path: Path, key_env: bytes, signer: smime.Identity
) -> None:
    verdict = decided(tmp_path, smime.encrypted(smime.text_entity(leaking_text()), signer))
    assert verdict.findings == ()
    assert reasons(verdict) == [ENCRYPTED_REASON]


def test_on_encrypted_warn_lets_encrypted_mail_pass_with_a_warning(
    tmp_path: Path, key_env: bytes, signer: smime.Identity
) -> None:
    message = smime.encrypted(smime.text_entity(CLEAN_TEXT), signer)
    assert decided(tmp_path, message, on_encrypted="warn").verdict == "warn"


def test_on_encrypted_unset_follows_on_unscannable(
    tmp_path: Path, key_env: bytes, signer: smime.Identity
) -> None:
    message = smime.encrypted(smime.text_entity(CLEAN_TEXT), signer)
    assert decided(tmp_path, message, on_unscannable="warn").verdict == "warn"
    assert decided(tmp_path, message, on_unscannable="warn", on_encrypted="block").verdict == "block"


def test_a_signed_then_encrypted_message_is_held_as_encrypted(
    tmp_path: Path, key_env: bytes, signer: smime.Identity
) -> None:
    # Outlook and Thunderbird sign first, then encrypt the signed message to the recipient.
    signed = smime.opaque_signed(smime.text_entity(CLEAN_TEXT), signer)
    inner = signed[signed.index(b"Content-Type: application/pkcs7-mime") :]
    verdict = decided(tmp_path, smime.encrypted(inner, signer))
    assert reasons(verdict) == [ENCRYPTED_REASON]
    assert verdict.verdict == "block"
