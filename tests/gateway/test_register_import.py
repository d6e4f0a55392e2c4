"""`brukarvakt register import|info`: the care system's CSV export in, a register of keyed hashes out."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from gateway import register_store
from gateway.cli import main
from gateway.cli import register as register_cli
from gateway.config import load
from gateway.errors import UserError
from gateway.scanner import Scanner
from models.findings import Segment
from tests.conftest import TEST_KEY, skatteverket, test_personnummer
from tests.rules.register_clients import ROWS, csv_text, leaked

HEADER = "customer_number,first_name,last_name,personal_number,phone,address"


@pytest.fixture()
def config(key_env: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "config.yaml"
    path.write_text("policy: {person_name: 'off'}\nregister: {path: var/register.db}\n", encoding="utf-8")
    return path


def register(config: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["register", "--config", str(config), *args])
    out, err = capsys.readouterr()
    return code, out, err


def import_text(
    config: Path, text: str | bytes, capsys: pytest.CaptureFixture[str], name: str = "export.csv"
) -> tuple[int, str, str]:
    source = config.parent / name
    source.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return register(config, "import", str(source), capsys=capsys)


def customers(config: Path, text: str) -> list[tuple[str, str | None]]:
    scanner = Scanner(load(config))
    return [(f.kind, f.customer_number) for f in scanner.scan_segments([Segment(part="text", text=text)])]


SAMPLE = "Ingegerd Öhrnvall och Karl-Erik Tjärnlöv, fru Berg, tel 031-390 06 33."
SAMPLE_FOUND = [
    ("client_name", "20002"),
    ("client_name", "20001"),
    ("client_name", "20007"),
    ("client_phone", "20003"),
]


@pytest.mark.parametrize(
    ("delimiter", "swedish", "extra", "encoding"),
    [
        (",", False, False, "utf-8"),
        (";", True, False, "utf-8"),
        (";", True, True, "utf-8-sig"),
        (",", True, True, "cp1252"),
        (";", False, True, "cp1252"),
    ],
)
def test_the_export_is_read_with_either_separator_encoding_and_header_language(
    config: Path,
    capsys: pytest.CaptureFixture[str],
    delimiter: str,
    swedish: bool,
    extra: bool,
    encoding: str,
) -> None:
    data = csv_text(delimiter, swedish, extra).encode(encoding)
    code, out, err = import_text(config, data, capsys)
    assert (code, err) == (0, "")
    assert f"{len(ROWS)} rows: {len(ROWS)} imported, 0 rejected, 0 warnings" in out
    assert customers(config, SAMPLE) == SAMPLE_FOUND


def _row(number: str, pnr: str, first: str = "Tyra", last: str = "Quarnlid", phone: str = "") -> str:
    return f"{number},{first},{last},{pnr},{phone},"


def test_bad_rows_are_reported_with_their_row_number_and_reason_and_the_rest_is_imported(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, other = test_personnummer(200), test_personnummer(201)
    wrong_check = good[:-1] + str((int(good[-1]) + 1) % 10)  # invalid on purpose
    lines = [
        HEADER,
        _row("30001", good),  # row 2
        _row("", other),  # row 3: no customer number
        _row("30003", wrong_check),  # row 4: check digit wrong
        _row("30001", other, first="Ylva"),  # row 5: duplicate customer number
        "",  # row 6: blank, not a row
        _row("30006", ""),  # row 7: no personnummer
        _row("30007", other, last=""),  # row 8: no last name
        _row("30008", "2099-01-01", first="Ebba"),  # row 9: not a personnummer at all
        _row("30009", other, first="Maud", last="Ruskvall"),  # row 10: fine
    ]
    code, out, _ = import_text(config, "\n".join(lines) + "\n", capsys)
    assert code == register_cli.EXIT_REJECTED
    reported = [
        line.split(": ", 1)[1] for line in out.splitlines() if ": rejected: " in line or ": warning: " in line
    ]
    rows = [int(line.split(":")[1]) for line in out.splitlines() if ": rejected: " in line]
    assert rows == [3, 4, 5, 7, 8, 9]
    assert reported == [
        "rejected: missing customer number",
        "rejected: invalid personnummer (date, serial or check digit)",
        "rejected: duplicate customer number 30001 (first in row 2)",
        "rejected: missing personnummer",
        "rejected: missing last name",
        "rejected: invalid personnummer (date, serial or check digit)",
    ]
    assert "8 rows: 2 imported, 6 rejected, 0 warnings" in out
    assert customers(config, "Tyra Quarnlid och Maud Ruskvall") == [
        ("client_name", "30001"),
        ("client_name", "30009"),
    ]
    assert good not in out and wrong_check not in out and "Quarnlid" not in out


def test_a_personnummer_on_two_rows_keeps_both_clients_and_names_neither_for_the_number(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pnr = test_personnummer(300)
    text = (
        "\n".join([HEADER, _row("40001", pnr), _row("40002", pnr, first="Ebba", phone="070-1740-6XX")]) + "\n"
    )
    code, out, _ = import_text(config, text, capsys)
    assert code == 0
    assert "export.csv:3: warning: personnummer also in row 2" in out
    assert "export.csv:3: warning: a phone number is not a valid number: left out" in out
    assert "2 rows: 2 imported, 0 rejected, 2 warnings" in out
    assert customers(config, f"Tyra Quarnlid, Ebba Quarnlid, {pnr}") == [
        ("client_name", "40001"),
        ("client_name", "40002"),
        ("personnummer", None),
    ]


def test_a_missing_column_is_one_clear_error_and_nothing_is_written(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = import_text(config, "kundnummer;förnamn;efternamn\n1;Tyra;Quarnlid\n", capsys)
    assert code == 2
    assert err.count("\n") == 1
    assert "missing column(s) personal_number/personnummer" in err
    assert not (config.parent / "var" / "register.db").exists()


def test_an_export_where_no_row_can_be_imported_leaves_the_old_register_alone(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert import_text(config, csv_text(), capsys)[0] == 0
    before = (config.parent / "var" / "register.db").read_bytes()
    code, out, err = import_text(config, HEADER + "\n" + _row("", test_personnummer(1)) + "\n", capsys)
    assert code == 2 and "no row could be imported" in err and "left as it was" in err
    assert (config.parent / "var" / "register.db").read_bytes() == before


def test_the_register_file_and_the_import_output_hold_no_readable_client_data(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = import_text(config, csv_text(";", swedish=True), capsys)
    assert code == 0
    data = (config.parent / "var" / "register.db").read_bytes()
    text = data.decode("latin-1")  # every byte a character: a name in UTF-8 or in Latin-1 shows
    assert leaked(text) == [] and leaked(data.decode("utf-8", "replace")) == []
    assert leaked(out + err) == []
    for row in ROWS:
        assert row[0] in text  # the customer numbers are kept, nothing else


def test_a_new_import_replaces_the_register_atomically_keeping_its_mode(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert import_text(config, csv_text(), capsys)[0] == 0
    path = config.parent / "var" / "register.db"
    os.chmod(path, 0o600)
    reader = path.open("rb")  # a gateway in the middle of reading the old register
    old_inode = os.fstat(reader.fileno()).st_ino
    assert (
        import_text(config, "\n".join([HEADER, _row("50001", test_personnummer(400))]) + "\n", capsys)[0] == 0
    )
    assert reader.read(len(register_store.MAGIC)) == register_store.MAGIC
    assert b'"clients": 12' in reader.read()  # the old file is whole for whoever holds it
    reader.close()
    assert path.stat().st_ino != old_inode and path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["register.db"]  # no temporary file left
    # A new Scanner (what the gateway builds on SIGHUP) sees the new register.
    assert customers(config, "Tyra Quarnlid och Ingegerd Öhrnvall") == [("client_name", "50001")]


def test_a_register_built_with_another_key_or_damaged_is_refused_with_a_clear_error(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert import_text(config, csv_text(), capsys)[0] == 0
    path = config.parent / "var" / "register.db"
    monkeypatch.setenv("BRUKARVAKT_FINGERPRINT_KEY", "another-key-entirely-0123456789")
    with pytest.raises(UserError, match="another fingerprint key"):
        Scanner(load(config))
    monkeypatch.setenv("BRUKARVAKT_FINGERPRINT_KEY", TEST_KEY.decode())
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError, match="damaged"):
        Scanner(load(config))
    code, out, err = register(config, "info", capsys=capsys)
    assert code == 2 and err.startswith("brukarvakt: error: register ") and "damaged" in err


def test_info_counts_the_clients_and_says_when_there_is_no_register(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = register(config, "info", capsys=capsys)
    assert code == 1 and "no register at" in out
    import_text(config, csv_text(), capsys)
    code, out, _ = register(config, "info", capsys=capsys)
    assert code == 0 and f"{len(ROWS)} clients" in out


def test_without_a_register_the_gateway_scans_as_before(config: Path) -> None:
    assert customers(config, "Ingegerd Öhrnvall") == []


def test_a_progress_bar_is_shown_on_a_terminal_for_large_files_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    items: list[object] = []
    assert register_cli._progress(items, 10, "x") is items  # type: ignore[arg-type]
    bar = register_cli._progress(items, 50_000, "x")  # type: ignore[arg-type]
    assert bar is not items and type(bar).__name__ == "tqdm"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert register_cli._progress(items, 50_000, "x") is items  # type: ignore[arg-type]


def test_a_client_with_a_samordningsnummer_is_imported_and_the_number_names_the_customer(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    number = skatteverket()["samordningsnummer"][3]
    code, out, _ = import_text(config, "\n".join([HEADER, _row("60001", number)]) + "\n", capsys)
    assert code == 0 and "1 imported" in out
    assert customers(config, f"Gäller {number[:8]}-{number[8:]}.") == [("samordningsnummer", "60001")]
