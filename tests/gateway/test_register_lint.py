"""Known clients through the linter and the gateway's guidance: customer numbers, never the identifiers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway import replies
from gateway.audit import AuditLog
from gateway.cli import main
from gateway.config import load
from gateway.notice import build_notice
from gateway.pipeline import Stage
from gateway.scanner import Scanner
from models.audit import AuditRecord
from models.findings import SenderContext
from rules.guidance import describe
from tests.conftest import test_personnummer
from tests.rules.register_clients import ROWS, csv_text, leaked, personnummer

PNR_20004 = personnummer(ROWS[3])
UNKNOWN_PNR = test_personnummer(1500)  # not in the register

DRAFT = f"""Hej!

Brukaren Karl-Erik Tjärnlöv (Videvägen 14 B, tel 070-174 06 05) behöver hjälp med dusch.
Ingegerd Ohrnvalls dotter ringde; fru Öhrnvall vill flytta sin tid.
Sälgström, Eva Gunborg har personnummer {PNR_20004[:8]}-{PNR_20004[8:]} och bor på Ljungstigen 7.
Lars Myrbäckens nya nummer är 031-390 06 33. ANNA-LISA FRÄSDAL-RINGQVIST sover.
Okänd brukare med {UNKNOWN_PNR}. Sigvard Berg och herr Holm har fått mat.
Per Ivan Gräsvik bor på Per Albin Hanssons väg 41, mobil +46 70 174 06 99.

Sten, berg och grus ligger kvar vid Strandvägen.
Hälsningar Henrietta Strömvall
"""
EXPECTED = {
    ("client_name", "20001"),
    ("client_address", "20001"),
    ("client_phone", "20001"),
    ("client_name", "20002"),
    ("client_name", "20004"),
    ("personnummer", "20004"),
    ("client_address", "20004"),
    ("client_name", "20003"),
    ("client_phone", "20003"),
    ("client_name", "20005"),
    ("personnummer", None),
    ("client_name", "20007"),
    ("client_name", "20011"),
    ("client_name", "20012"),
    ("client_address", "20012"),
    ("client_phone", "20012"),
}


@pytest.fixture()
def config(key_env: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "config.yaml"
    path.write_text("policy: {person_name: 'off'}\n", encoding="utf-8")
    (tmp_path / "export.csv").write_text(csv_text(";", swedish=True), encoding="utf-8")
    assert main(["register", "--config", str(path), "import", str(tmp_path / "export.csv")]) == 0
    return path


def lint(config: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["lint", "--config", str(config), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_lint_finds_every_identifier_of_known_clients_with_its_customer_number(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    draft = config.parent / "utkast.txt"
    draft.write_text(DRAFT, encoding="utf-8")
    code, out, err = lint(config, "--format", "json", str(draft), capsys=capsys)
    assert code == 1 and err == ""
    findings = json.loads(out)["files"][0]["findings"]
    assert {(f["kind"], f["customer_number"]) for f in findings} == EXPECTED
    assert len(findings) == len(EXPECTED) + 1  # Öhrnvall twice: full name and after "fru"
    for f in findings:
        if f["customer_number"]:
            assert (
                f["suggestion"]
                == f"Skriv kundnummer {f['customer_number']} i stället för "
                + {
                    "client_name": "namnet.",
                    "client_phone": "telefonnumret.",
                    "client_address": "adressen.",
                    "personnummer": "personnumret.",
                }[f["kind"]]
            )
    assert leaked(out) == []
    code, out, _ = lint(config, str(draft), capsys=capsys)
    assert leaked(out) == [] and "kundnummer 20001" in out


def test_fix_replaces_known_clients_by_customer_number_masks_the_rest_and_lints_clean(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    draft = config.parent / "utkast.txt"
    draft.write_text(DRAFT, encoding="utf-8")
    code, fixed, err = lint(config, "--fix", str(draft), capsys=capsys)
    assert code == 0 and err == ""
    assert leaked(fixed) == [] and UNKNOWN_PNR not in fixed
    for number in ("20001", "20002", "20003", "20004", "20005", "20007", "20011", "20012"):
        assert f"kundnummer {number}" in fixed
    assert f"{UNKNOWN_PNR[2:8]}-****" in fixed
    assert "Sten, berg och grus ligger kvar vid Strandvägen." in fixed  # words, not clients
    assert "Hälsningar Henrietta Strömvall" in fixed
    again = config.parent / "fixed.txt"
    again.write_text(fixed, encoding="utf-8")
    code, out, _ = lint(config, str(again), capsys=capsys)
    assert (code, out) == (0, "")


def _mail() -> bytes:
    message = EmailMessage()
    message["From"] = "Henrietta Strömvall <henrietta@hemtjanst.example>"
    message["To"] = "apoteket@example.com"
    message["Subject"] = "Ingegerd Öhrnvall, Videvägen 14 B"
    message.set_content(DRAFT)
    message.add_attachment(
        b"%PDF-1.4 empty",
        maintype="application",
        subtype="octet-stream",
        filename="journal_karl-erik_tjarnlov.bin",
    )
    return message.as_bytes()


def test_the_gateways_reply_notice_and_audit_line_name_customer_numbers_and_no_client(
    config: Path, tmp_path: Path
) -> None:
    scanner = Scanner(load(config))
    scan = scanner.scan_mail(_mail())
    sender = SenderContext(
        envelope_sender="henrietta@hemtjanst.example", recipients=("apoteket@example.com",)
    )
    verdict = scanner.decide(scan, sender)
    assert verdict.verdict == "block"
    assert {"20001", "20002"} <= {f.customer_number for f in verdict.findings}
    reply = replies.block(verdict, marker=None)
    assert "kundnummer 20001" in reply or "kundnummer 20002" in reply
    notice = build_notice(
        _mail(),
        verdict,
        "henrietta@hemtjanst.example",
        ["apoteket@example.com"],
        "gateway.example",
        datetime.now(UTC),
        redact=scanner.redact,
    ).decode("utf-8", "replace")
    log = AuditLog(tmp_path / "audit.jsonl", redact=scanner.redact)
    log.append(
        AuditRecord.from_decision(
            time=datetime.now(UTC),
            message_id=None,
            authenticated_as=None,
            envelope_sender=sender.envelope_sender,
            recipients=sender.recipients,
            verdict=verdict,
            action="rejected",
            size=len(_mail()),
            scan_seconds=0.01,
        )
    )
    audit = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
    guidance = "\n".join(describe(f) for f in verdict.findings)
    for output in (reply, notice, audit, guidance):
        assert leaked(output) == [], output
    assert "20001" in audit and "kundnummer 20001" in guidance


@pytest.mark.parametrize("scan", [True, False])
def test_the_gateways_own_audit_log_masks_client_names_not_only_numbers(config: Path, scan: bool) -> None:
    # --no-scan reads no mail, but its audit lines are masked as carefully.
    state = Stage.build(load(config), scan=scan)
    assert (state.scanner is None) is not scan
    masked = state.audit.redact("Re: Karl-Erik Tjärnlöv och 070-174 06 05")
    assert not leaked(masked), masked


def test_a_staff_member_who_bears_a_clients_name_is_warned_about_not_blocked(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A colleague happens to share client 20001's name: their signature must not block every mail.
    signed = tmp_path / "signed.txt"
    signed.write_text(
        "Hej!\n\nNyckeln ligger i skåpet.\n\nHälsningar\nKarl-Erik Tjärnlöv\n", encoding="utf-8"
    )
    code, out, _ = lint(config, "--format", "json", str(signed), capsys=capsys)
    assert code == 1  # without the staff directory the name is the client's
    staff_config = tmp_path / "staff.yaml"
    staff_config.write_text(
        "policy: {person_name: 'off', staff: [{address: k-e.tjarnlov@hemtjanst.example, name: Karl-Erik Tjärnlöv}]}\n",
        encoding="utf-8",
    )
    code, out, _ = lint(staff_config, "--format", "json", str(signed), capsys=capsys)
    (finding,) = json.loads(out)["files"][0]["findings"]
    assert code == 0
    assert (finding["kind"], finding["severity"], finding["customer_number"]) == (
        "client_name",
        "warn",
        "20001",
    )
    # Another client's name in the same mail still blocks.
    signed.write_text("Lars Myrbäckens nya nummer.\nHälsningar\nKarl-Erik Tjärnlöv\n", encoding="utf-8")
    assert lint(staff_config, str(signed), capsys=capsys)[0] == 1


def test_lint_finds_a_lower_case_name_and_one_part_of_a_hyphenated_first_name(
    key_env: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Made-up clients: "stig" is also a word (a path), "Cecilia-Monica" a hyphenated first name.
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "config.yaml"
    path.write_text("policy: {person_name: 'off'}\n", encoding="utf-8")
    pnr = [test_personnummer(i) for i in (140, 141)]
    (tmp_path / "export.csv").write_text(
        "kundnummer;förnamn;efternamn;personnummer\n"
        f"30001;Stig;Sahlberg;{pnr[0]}\n30003;Cecilia-Monica;Johansson;{pnr[1]}\n",
        encoding="utf-8",
    )
    assert main(["register", "--config", str(path), "import", str(tmp_path / "export.csv")]) == 0
    draft = tmp_path / "utkast.txt"
    draft.write_text(
        "hej!\nkan någon handla åt stig sahlberg i morgon?\nMonica Johansson vill byta tid.\n"
        "Vi tog en stig till sjön. Hälsningar Monica\n",
        encoding="utf-8",
    )
    code, out, err = lint(path, "--format", "json", str(draft), capsys=capsys)
    assert (code, err) == (1, "")
    findings = json.loads(out)["files"][0]["findings"]
    assert [
        (f["kind"], f["customer_number"], f["location"]["line"], f["location"]["column"], f["masked"])
        for f in findings
    ] == [
        ("client_name", "30001", 2, 21, "s*** s*******"),
        ("client_name", "30003", 3, 1, "M***** J********"),
    ]
    for secret in ("stig sahlberg", "Sahlberg", "Monica Johansson", "Johansson", pnr[0], pnr[1]):
        assert secret not in out
