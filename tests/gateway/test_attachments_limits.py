"""What cannot be read is never passed silently: encrypted files, zip bombs, files past a limit and
unknown types make the message unscannable, quickly and with bounded memory, and policy.on_unscannable
decides."""

from __future__ import annotations

import gzip
import io
import subprocess
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway import attachments, mail
from gateway.extractors.base import Attachment, Extracted
from models.config import Limits, Policy, Secure
from models.findings import SenderContext
from rules import policy
from tests.gateway.test_attachments import (
    CLEAN,
    FORMATS,
    PNR,
    docx_file,
    lint_json,
    mail_with,
    pdf_file,
    xlsx_file,
    zip_file,
)

MIB = 1024 * 1024
# Reading an encrypted or oversized file must be refused, not attempted: well within these.
QUICK_SECONDS = 3.0
BOUNDED_PEAK_BYTES = 40 * MIB


@pytest.fixture(autouse=True)
def _key(key_env: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def zeros_zip(size: int, name: str = "nollor.txt") -> bytes:
    """A zip bomb of the plainest kind: one member of zeros, written in chunks (never whole in memory)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, archive.open(name, "w") as member:
        chunk = bytes(MIB)
        for _ in range(size // MIB):
            member.write(chunk)
    return buffer.getvalue()


def encrypted_zip(tmp_path: Path) -> bytes:
    """Made by Debian's zip, as a person would (zip -P: the password given on the command line)."""
    (tmp_path / "lista.txt").write_text(f"personnummer {PNR}\n", encoding="utf-8")
    subprocess.run(["zip", "-q", "-P", "hemligt", "skyddad.zip", "lista.txt"], cwd=tmp_path, check=True)
    return (tmp_path / "skyddad.zip").read_bytes()


def encrypted_pdf(user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_file(f"Personnummer {PNR}"))))
    writer.encrypt(user_password=user_password, owner_password="chefens-losenord", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def scan_measured(message: bytes, limits: Limits | None = None) -> tuple[mail.MailText, float, int]:
    tracemalloc.start()
    started = time.monotonic()
    try:
        text = mail.extract(message, limits or Limits())
        return text, time.monotonic() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def unscannable_reasons(text: mail.MailText) -> dict[str, str]:
    return {u.name: u.reason for u in text.unscanned}


# ---- the three cases the issue names ---------------------------------------------------------------


def test_a_password_protected_zip_is_unscannable_quickly(tmp_path: Path) -> None:
    text, seconds, peak = scan_measured(mail_with("skyddad.zip", encrypted_zip(tmp_path), "application/zip"))
    assert unscannable_reasons(text) == {"attachment:skyddad.zip": "lösenordsskyddad (krypterad)"}
    assert seconds < QUICK_SECONDS and peak < BOUNDED_PEAK_BYTES
    # Its member's name is still read (it is in the clear in the archive's directory).
    assert not any(PNR in s.text for s in text.segments)


def test_a_password_protected_pdf_is_unscannable_quickly() -> None:
    text, seconds, peak = scan_measured(mail_with("plan.pdf", encrypted_pdf("hemligt"), "application/pdf"))
    assert unscannable_reasons(text) == {"attachment:plan.pdf": "lösenordsskyddad (krypterad)"}
    assert seconds < QUICK_SECONDS and peak < BOUNDED_PEAK_BYTES


def test_a_pdf_locked_only_against_editing_is_read_like_any_other() -> None:
    # An owner password alone (no password to open it) protects nothing a reader cannot see.
    text, _, _ = scan_measured(mail_with("plan.pdf", encrypted_pdf(""), "application/pdf"))
    assert text.unscanned == []
    assert any(PNR in s.text for s in text.segments if s.part == "attachment:plan.pdf/sida 2")


def test_a_zip_bomb_is_unscannable_quickly_with_bounded_memory() -> None:
    bomb = zeros_zip(200 * MIB)
    assert len(bomb) < MIB  # what the gateway receives is small
    text, seconds, peak = scan_measured(mail_with("bomb.zip", bomb, "application/zip"))
    assert unscannable_reasons(text) == {"attachment:bomb.zip": "packad mer än 100 gånger (zipbomb?)"}
    assert seconds < QUICK_SECONDS and peak < BOUNDED_PEAK_BYTES


def test_zips_of_zip_bombs_are_refused_member_by_member_within_the_budget() -> None:
    inner = zeros_zip(8 * MIB)
    nested = zip_file({f"del{i}.zip": inner for i in range(30)})
    text, seconds, peak = scan_measured(mail_with("arkiv.zip", nested, "application/zip"))
    reasons = unscannable_reasons(text)
    assert reasons and all(r == "packad mer än 100 gånger (zipbomb?)" for r in reasons.values())
    assert "attachment:arkiv.zip/del0.zip" in reasons
    assert seconds < QUICK_SECONDS and peak < BOUNDED_PEAK_BYTES


def test_a_gzip_bomb_is_stopped_while_unpacking() -> None:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as packed:
        for _ in range(100):
            packed.write(bytes(MIB))
    text, seconds, peak = scan_measured(mail_with("logg.txt.gz", buffer.getvalue(), "application/gzip"))
    assert unscannable_reasons(text) == {"attachment:logg.txt.gz": "packad mer än 100 gånger (zipbomb?)"}
    assert seconds < QUICK_SECONDS and peak < BOUNDED_PEAK_BYTES


def encrypted_office(data: bytes) -> bytes:
    """Word's and Excel's "protect with password": the package encrypted inside an OLE file."""
    from msoffcrypto.format.ooxml import OOXMLFile

    encrypted = io.BytesIO()
    OOXMLFile(io.BytesIO(data)).encrypt("hemligt", encrypted)
    return encrypted.getvalue()


@pytest.mark.parametrize(
    ("name", "data"),
    [("plan.docx", lambda: docx_file(f"Personnummer {PNR}")), ("lista.xlsx", lambda: xlsx_file(int(PNR)))],
    ids=["docx", "xlsx"],
)
def test_a_password_protected_word_or_excel_file_is_unscannable(name: str, data: Callable[[], bytes]) -> None:
    text, seconds, _ = scan_measured(mail_with(name, encrypted_office(data())))
    assert unscannable_reasons(text) == {f"attachment:{name}": "lösenordsskyddad (krypterad)"}
    assert seconds < QUICK_SECONDS


def test_a_password_protected_office_file_without_a_name_is_recognised_as_such() -> None:
    text, _, _ = scan_measured(mail_with("bilaga", encrypted_office(docx_file(CLEAN))))
    assert unscannable_reasons(text) == {"attachment:bilaga": "lösenordsskyddad (krypterad)"}


# ---- the other limits ------------------------------------------------------------------------------


def test_an_archive_with_more_members_than_allowed_is_unscannable() -> None:
    archive = zip_file({f"fil{i}.txt": CLEAN.encode() for i in range(6)})
    text, _, _ = scan_measured(
        mail_with("arkiv.zip", archive, "application/zip"), Limits(max_archive_members=5)
    )
    assert unscannable_reasons(text) == {"attachment:arkiv.zip": "fler än 5 filer i arkivet"}


def test_archive_members_are_counted_over_the_whole_message() -> None:
    inner = zip_file({f"fil{i}.txt": CLEAN.encode() for i in range(3)})
    archive = zip_file({"a.zip": inner, "b.zip": inner})  # 2 + 3 + 3 files
    text, _, _ = scan_measured(
        mail_with("arkiv.zip", archive, "application/zip"), Limits(max_archive_members=6)
    )
    assert unscannable_reasons(text) == {"attachment:arkiv.zip/b.zip": "fler än 6 filer i arkiven"}


def test_archives_nested_past_the_depth_limit_are_unscannable() -> None:
    data = CLEAN.encode()
    for level in range(6):
        data = zip_file({f"niva{level}.zip" if level else "plan.txt": data})
    text, _, _ = scan_measured(mail_with("arkiv.zip", data, "application/zip"), Limits(max_mime_depth=3))
    reasons = list(unscannable_reasons(text).values())
    assert reasons == ["fler än 3 nivåer inuti varandra"]


def test_more_unpacked_bytes_than_the_budget_is_unscannable() -> None:
    archive = zip_file({f"fil{i}.txt": bytes(range(256)) * 40 for i in range(20)})  # 200 KiB in all
    text, _, _ = scan_measured(
        mail_with("arkiv.zip", archive, "application/zip"), Limits(max_unpacked_bytes=100_000)
    )
    assert unscannable_reasons(text) == {"attachment:arkiv.zip": "packar upp till mer än 100000 byte"}


def test_an_office_file_that_would_unpack_past_the_budget_is_refused_before_unpacking() -> None:
    buffer = io.BytesIO(docx_file(CLEAN))
    with (
        zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as package,
        package.open("word/media/x.bin", "w") as member,
    ):
        for _ in range(4):
            member.write(bytes(MIB))
    limits = Limits(max_unpacked_bytes=2 * MIB)
    text, seconds, peak = scan_measured(mail_with("plan.docx", buffer.getvalue()), limits)
    assert unscannable_reasons(text) == {"attachment:plan.docx": f"packar upp till mer än {2 * MIB} byte"}
    assert seconds < QUICK_SECONDS and peak < BOUNDED_PEAK_BYTES


def test_reading_past_the_message_time_limit_makes_the_rest_unscannable() -> None:
    out = Extracted(started=time.monotonic() - 31)  # the message has used its 30 s already
    attachments.extract(
        Attachment(
            part="attachment:plan.txt",
            name="plan.txt",
            content_type="text/plain",
            data=CLEAN.encode(),
            charset=None,
            depth=1,
        ),
        out,
        Limits(),
    )
    assert [(u.name, u.reason) for u in out.unscanned] == [
        ("attachment:plan.txt", "granskningen tog längre än 30 s")
    ]
    assert out.segments == []


def test_a_pdf_with_more_pages_than_allowed_is_unscannable() -> None:
    text, _, _ = scan_measured(mail_with("plan.pdf", pdf_file(CLEAN), "application/pdf"), Limits(max_pages=1))
    assert unscannable_reasons(text) == {"attachment:plan.pdf": "fler än 1 sidor i meddelandet"}


def test_pages_are_counted_over_the_whole_message() -> None:
    archive = zip_file(
        {"plan1.pdf": pdf_file(CLEAN), "plan2.pdf": pdf_file(CLEAN), "plan3.pdf": pdf_file(CLEAN)}
    )
    text, _, _ = scan_measured(mail_with("arkiv.zip", archive, "application/zip"), Limits(max_pages=5))
    # Two pages each: the first two documents fit in five pages, the third does not.
    assert unscannable_reasons(text) == {"attachment:arkiv.zip/plan3.pdf": "fler än 5 sidor i meddelandet"}


def test_an_image_larger_than_allowed_is_refused_before_it_is_decoded() -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (12_000, 12_000), 1).save(buffer, format="PNG")  # 144 Mpixel, a few KiB as PNG
    text, seconds, peak = scan_measured(mail_with("affisch.png", buffer.getvalue(), "image/png"))
    assert unscannable_reasons(text) == {
        "attachment:affisch.png": "bilden (12000x12000) är större än 40000000 pixlar"
    }
    assert seconds < QUICK_SECONDS and peak < BOUNDED_PEAK_BYTES


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("paket.7z", b"7z\xbc\xaf\x27\x1c\x00\x04", ".7z-arkiv kan inte öppnas: packa filerna som zip"),
        ("data.bin", bytes(range(256)) * 4, "filtypen kan inte läsas"),
        ("logga.emf", bytes(range(256)), "vektorbild (EMF) kan inte läsas: spara bilden som PNG"),
        ("IMG_0001.heic", bytes(range(256)), "HEIC-bild kan inte läsas: skicka den som JPEG"),
        ("trasig.pdf", b"%PDF-1.7\n" + bytes(range(256)), "PDF-filen är trasig och kan inte läsas"),
    ],
    ids=["7z", "unknown-binary", "emf", "heic", "broken-pdf"],
)
def test_a_type_that_cannot_be_read_is_unscannable_with_its_reason(
    name: str, data: bytes, reason: str
) -> None:
    text, _, _ = scan_measured(mail_with(name, data))
    ((where, why),) = unscannable_reasons(text).items()
    assert where == f"attachment:{name}" and why.startswith(reason)


def test_a_picture_in_an_rtf_document_is_listed_as_unread_beside_the_text_that_was_read() -> None:
    from tests.gateway.test_attachments import rtf_file

    # The Outlook-made RTF with a picture group added (the shape Word writes: hex data of a PNG).
    with_picture = rtf_file(CLEAN).replace(
        b"\\htmlrtf0 ", b"\\htmlrtf0 {\\pict\\pngblip\\picw10\\pich10 89504e47}", 1
    )
    text, _, _ = scan_measured(mail_with("brev.rtf", with_picture, "application/rtf"))
    assert unscannable_reasons(text) == {
        "attachment:brev.rtf/bild": "bild i RTF-dokumentet kan inte läsas: spara dokumentet som PDF eller .docx"
    }
    assert any("kundnummer 10234" in s.text for s in text.segments if s.part == "attachment:brev.rtf")


# ---- the policy decides: block by default, warn when configured --------------------------------------


def test_lint_blocks_an_unscannable_message_by_default_and_names_the_attachment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = lint_json(mail_with("skyddad.zip", encrypted_zip(tmp_path), "application/zip"), tmp_path, capsys)
    assert result["verdict"] == "block" and result["findings"] == []
    assert result["unscanned"] == [
        {
            "name": "attachment:skyddad.zip",
            "content_type": "application/zip",
            "reason": "lösenordsskyddad (krypterad)",
            "encrypted": False,  # a password-protected file, not encrypted mail (policy.on_encrypted)
        }
    ]


def test_an_unscannable_attachment_named_after_the_number_is_reported_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # lint_json fails if the number appears anywhere in the output.
    name = f"journal_{PNR}.zip"
    result = lint_json(mail_with(name, encrypted_zip(tmp_path), "application/zip"), tmp_path, capsys)
    assert result["verdict"] == "block"
    assert [u["name"] for u in result["unscanned"]] == [f"attachment:journal_{PNR[2:8]}-****.zip"]


def test_lint_warns_about_an_unscannable_message_when_the_policy_says_warn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config.yaml").write_text(
        "policy: {person_name: 'off', on_unscannable: warn}\n", encoding="utf-8"
    )
    result = lint_json(mail_with("plan.pdf", encrypted_pdf("hemligt"), "application/pdf"), tmp_path, capsys)
    assert result["verdict"] == "warn"


@pytest.mark.parametrize(("on_unscannable", "verdict"), [("block", "block"), ("warn", "warn")])
def test_the_policy_decides_an_unscannable_attachment(
    on_unscannable: str, verdict: str, tmp_path: Path
) -> None:
    text = mail.extract(mail_with("bomb.zip", zeros_zip(200 * MIB), "application/zip"), Limits())
    sender = SenderContext(envelope_sender="personal@hemtjanst.example", recipients=("a@b.example",))
    decided = policy.decide((), text.unscanned, sender, Policy(on_unscannable=on_unscannable), Secure())  # type: ignore[arg-type]
    assert decided.verdict == verdict and decided.unscannable


# ---- damaged files: read as far as they can be, or unscannable; never an exception -------------------

# Formats whose first 64 bytes hold nothing readable: cut there, they must be listed as unread.
BINARY = (".pdf", ".docx", ".xlsx", ".xls", ".odt", ".ods", ".zip", ".gz", ".png", ".jpg", ".tif")


@pytest.mark.parametrize(("name", "build", "ctype", "where"), FORMATS, ids=[f[0] for f in FORMATS])
def test_a_damaged_file_is_read_or_unscannable_never_an_error(
    name: str, build: Callable[[str], bytes], ctype: str, where: str
) -> None:
    whole = build(f"Personnummer {PNR}")
    for damaged in (whole[: len(whole) // 2], whole[:64], whole[:-200] + bytes(200)):
        out = Extracted()
        attachments.extract(
            Attachment(
                part=f"attachment:{name}", name=name, content_type=ctype, data=damaged, charset=None, depth=1
            ),
            out,
            Limits(),
        )
        assert all(PNR not in u.reason and PNR[2:] not in u.reason for u in out.unscanned)
        if damaged is not whole and len(damaged) == 64 and name.endswith(BINARY):
            assert out.unscanned, name
