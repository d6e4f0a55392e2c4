"""`brukarvakt lint` as users call it: output formats, exit codes, stdin, --fix, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.cli import main
from tests.conftest import REPO, TEST_KEY

PNR = "199001079806"  # Skatteverket test numbers
OTHER = "200001121227"


@pytest.fixture(autouse=True)
def _key(key_env: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def lint(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["lint", *args])
    out, err = capsys.readouterr()
    return code, out, err


def write(path: Path, text: str | bytes) -> str:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def test_text_output_is_like_a_compiler(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path / "utkast.txt", f"Hej!\nBrukaren {PNR} behöver hjälp.\n")
    code, out, err = lint(f, capsys=capsys)
    assert code == 1
    assert out.startswith(f"{f}:2:10: id-number ")
    assert "900107-****" in out and PNR not in out and "9806" not in out.replace("[", " ")


def test_json_output_has_the_documented_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path / "a.txt", f"pnr {PNR}")
    code, out, _ = lint("--format", "json", f, capsys=capsys)
    result = json.loads(out)
    (file,) = result["files"]
    assert file["path"] == f and file["verdict"] == "block" and file["unscanned"] == []
    (finding,) = file["findings"]
    assert set(finding) == {
        "rule",
        "kind",
        "severity",
        "location",
        "masked",
        "fingerprint",
        "customer_number",
        "suggestion",
    }
    assert set(finding["location"]) == {"part", "line", "column"}
    assert finding["kind"] == "personnummer" and len(finding["fingerprint"]) == 64
    assert PNR not in out


def test_clean_files_exit_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path / "ok.txt", "Kund 10234 ringer 070-174 06 05 den 2026-12-01.")
    assert lint(f, capsys=capsys) == (0, "", "")


def test_folders_are_read_recursively(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    write(tmp_path / "d" / "ok.txt", "inget")
    write(tmp_path / "d" / "e" / "bad.txt", f"pnr {OTHER}")
    code, out, _ = lint("--format", "json", str(tmp_path / "d"), capsys=capsys)
    verdicts = {Path(f["path"]).name: f["verdict"] for f in json.loads(out)["files"]}
    assert code == 1 and verdicts == {"ok.txt": "pass", "bad.txt": "block"}


def test_a_mail_message_is_recognised_by_its_content_whatever_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write(tmp_path / "message.txt", f"From: a@kommun.se\nSubject: Om {PNR}\n\nHej\n")
    code, out, _ = lint("--format", "json", f, capsys=capsys)
    (finding,) = json.loads(out)["files"][0]["findings"]
    assert code == 1 and finding["location"]["part"] == "header:Subject"


def test_cp1252_text_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path / "a.txt", f"Åsa Öberg {PNR}".encode("cp1252"))
    assert lint(f, capsys=capsys)[0] == 1


def test_mbox_export_every_message_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mbox = (
        f"From a@x Thu Nov 26 10:00:00 2026\nFrom: a@kommun.se\nSubject: ett\n\nhej\n\n"
        f"From b@x Thu Nov 26 11:00:00 2026\nFrom: b@kommun.se\nSubject: två\n\npnr {PNR}\n"
    )
    f = write(tmp_path / "export.mbox", mbox)
    code, out, _ = lint("--format", "json", f, capsys=capsys)
    (finding,) = json.loads(out)["files"][0]["findings"]
    assert code == 1 and finding["location"]["part"] == "message[2]/body:text/plain"


def test_standard_input(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(f"x {PNR}".encode())))
    code, out, _ = lint("-", capsys=capsys)
    assert code == 1 and out.startswith("-:1:3: ")


def test_fix_masks_identifiers_and_its_output_lints_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write(tmp_path / "a.txt", f"Brukaren {PNR} och 000112-1227 ska ha hjälp.\n")
    code, out, _ = lint("--fix", f, capsys=capsys)
    assert code == 0
    assert out == "Brukaren 900107-**** och 000112-**** ska ha hjälp.\n"
    fixed = write(tmp_path / "fixed.txt", out)
    assert lint(fixed, capsys=capsys)[0] == 0


def test_fix_refuses_mail_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path / "a.eml", "From: a@b.se\n\nhej")
    code, _, err = lint("--fix", f, capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and "--fix" in err


def test_sender_who_is_a_manager_on_a_secure_route_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write(tmp_path / "c.yaml", "policy: {managers: [chef@kommun.se]}\nsecure: {domains: [region.se]}\n")
    f = write(tmp_path / "m.eml", f"From: chef@kommun.se\nTo: vard@region.se\nSubject: x\n\npnr {PNR}\n")
    assert lint("--config", cfg, "--sender", "chef@kommun.se", f, capsys=capsys)[0] == 0
    assert lint("--config", cfg, "--sender", "anna@kommun.se", f, capsys=capsys)[0] == 1
    assert lint("--config", cfg, f, capsys=capsys)[0] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nonexistent.txt"], "no such file"),
        (["--config", "missing.yaml", "x"], "cannot read config"),
        (["--format", "xml", "x"], "invalid choice"),
    ],
)
def test_errors_are_one_clear_line_and_exit_two(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) if "--format" in args else _nothing():
        code = main(["lint", *args])
        assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def test_bad_config_value_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path / "c.yaml", "policy: {on_block: bounce}\nlisten: {port: 99999}\n")
    code, _, err = lint("--config", cfg, "-", capsys=capsys)
    assert code == 2
    assert "policy.on_block = 'bounce'" in err and "listen.port = 99999" in err


def test_output_never_holds_the_key_or_an_identifier(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write(
        tmp_path / f"journal_{PNR}.eml",
        f'From: "{PNR}" <a@b.se>\nSubject: {OTHER}\nContent-Type: text/plain\n\n{PNR}\n',
    )
    for fmt in ("text", "json"):
        _, out, err = lint("--format", fmt, f, capsys=capsys)
        assert "journal_900107-****.eml" in out  # the file's name, masked
        for secret in (PNR, PNR[2:], OTHER, OTHER[2:], TEST_KEY.decode()):
            assert secret not in out and secret not in err


MESSAGE = (
    b"From: Anna <a@kommun.se>\r\nTo: b@extern.se\r\nSubject: =?utf-8?q?Hej_d=C3=A4r?=\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\n'
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Brukaren 19900107-98=\r\n06 =C3=A4r hemma.\r\n--b1\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n"
    b"--b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nhej\r\n--b1--\r\n"
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_malformed_messages_never_crash_and_exit_zero_or_one(
    data: st.DataObject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = bytearray(MESSAGE)
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        pos = data.draw(st.integers(0, len(raw) - 1))
        if op == "flip":
            raw[pos] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del raw[pos : pos + data.draw(st.integers(1, 40))]
        elif op == "insert":
            raw[pos:pos] = data.draw(
                st.sampled_from(
                    [b"\r\n", b"--b1\r\n", b"=?", b"=\r\n", b"\x00", b"\xff\xfe", b":", b"\r\n\r\n"]
                )
            )
        else:
            raw[pos:pos] = raw[pos : pos + 60]
        if not raw:
            raw = bytearray(b"x")
    f = write(tmp_path / "fuzz.eml", bytes(raw))
    code = main(["lint", "--format", "json", f])
    out, err = capsys.readouterr()
    assert code in (0, 1), err
    json.loads(out)


def test_the_installed_command_runs_as_a_process(tmp_path: Path) -> None:
    f = write(tmp_path / "a.txt", f"pnr {PNR}\n")
    env = {**os.environ, "BRUKARVAKT_FINGERPRINT_KEY": TEST_KEY.decode()}
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "lint", f],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert proc.returncode == 1 and ":1:5: id-number" in proc.stdout and proc.stderr == ""


def test_without_a_configured_key_a_private_key_file_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BRUKARVAKT_FINGERPRINT_KEY")
    f = write(tmp_path / "a.txt", f"pnr {PNR}\n")
    _, first, _ = lint("--format", "json", f, capsys=capsys)
    key_file = tmp_path / "var" / "fingerprint.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    _, second, _ = lint("--format", "json", f, capsys=capsys)
    fp = json.loads(first)["files"][0]["findings"][0]["fingerprint"]
    assert fp == json.loads(second)["files"][0]["findings"][0]["fingerprint"]


def test_an_unreadable_parts_declared_type_holding_a_number_is_printed_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = (
        "From: a@kommun.se\r\nTo: b@example.se\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSe bilaga.\r\n'
        f"--b\r\nContent-Type: application/x-{PNR}\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\r\n--b--\r\n"
    )
    for form in ("text", "json"):
        code, out, _ = lint("--format", form, write(tmp_path / "brev.eml", raw), capsys=capsys)
        assert code == 1 and "unscan" in out
        assert PNR not in out and PNR[2:] not in out
