"""A client's first name and surname in columns of their own are read as the client's name.

A schedule or a client list keeps `Förnamn` and `Efternamn` apart: each cell alone names nobody (a
first name alone is no finding), and the list passed. A row's cells of words only, next to each
other, are read together too; a CSV export's fields are read as tab-separated columns. The clients
are the made-up ones of tests/rules/register_clients.py.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import openpyxl
import pytest

from gateway.cli import main
from gateway.config import load
from gateway.scanner import Scanner
from tests.conftest import TODAY
from tests.rules.register_clients import csv_text

HEADER = ["Tid", "Förnamn", "Efternamn", "Insats"]
ROWS = [["08:00", "Ingegerd", "Öhrnvall", "Dusch"], ["09:30", "Karl-Erik", "Tjärnlöv", "Frukost"]]
CLEAN_ROWS = [["08:00", "Kund", "10234", "Dusch"], ["09:30", "Anna", "Svensson", "Frukost"]]


@pytest.fixture()
def scanner(key_env: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Scanner:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text("policy: {person_name: 'off'}\n", encoding="utf-8")
    (tmp_path / "export.csv").write_text(csv_text(";", swedish=True), encoding="utf-8")
    assert main(["register", "--config", str(config), "import", str(tmp_path / "export.csv")]) == 0
    return Scanner(load(config))


def found(scanner: Scanner, name: str, data: bytes) -> list[tuple[str, str | None]]:
    msg = EmailMessage()
    msg["From"] = "kim@hemtjanst.example"
    msg["To"] = "kollega@example.se"
    msg["Subject"] = "Schema"
    msg.set_content("Schemat för i morgon.")
    msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    scan = scanner.scan_mail(msg.as_bytes(), TODAY)
    assert scan.mail.unscanned == []
    return [(f.location.part, f.customer_number) for f in scan.findings if f.kind == "client_name"]


def workbook(rows: list[list[str]]) -> bytes:
    book = openpyxl.Workbook()
    for row in [HEADER, *rows]:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def csv_export(rows: list[list[str]], delimiter: str) -> bytes:
    return "\r\n".join(delimiter.join(row) for row in [HEADER, *rows]).encode("cp1252") + b"\r\n"


def test_names_in_columns_of_a_workbook_are_the_clients(scanner: Scanner) -> None:
    assert found(scanner, "schema.xlsx", workbook(ROWS)) == [
        ("attachment:schema.xlsx/Sheet!B2:D2", "20002"),
        ("attachment:schema.xlsx/Sheet!B3:D3", "20001"),
    ]


@pytest.mark.parametrize("delimiter", [";", ","])
def test_names_in_columns_of_a_csv_export_are_the_clients(scanner: Scanner, delimiter: str) -> None:
    assert found(scanner, "schema.csv", csv_export(ROWS, delimiter)) == [
        ("attachment:schema.csv", "20002"),
        ("attachment:schema.csv", "20001"),
    ]


def test_surname_first_columns_are_read_as_the_reversed_name(scanner: Scanner) -> None:
    rows = [["08:00", "Öhrnvall", "Ingegerd", "Dusch"]]
    assert found(scanner, "schema.xlsx", workbook(rows)) == [("attachment:schema.xlsx/Sheet!B2:D2", "20002")]


def test_a_list_without_clients_has_nothing_to_find(scanner: Scanner) -> None:
    assert found(scanner, "schema.xlsx", workbook(CLEAN_ROWS)) == []
    assert found(scanner, "schema.csv", csv_export(CLEAN_ROWS, ";")) == []


def test_cells_apart_are_not_read_together(scanner: Scanner) -> None:
    rows = [["Ingegerd", "08:00", "Öhrnvall"]]  # a time between: no name
    assert found(scanner, "schema.xlsx", workbook(rows)) == []


def xls(rows: list[list[str]]) -> bytes:
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("Blad1")
    for r, row in enumerate([HEADER, *rows]):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def ods(rows: list[list[str]]) -> bytes:
    from tests.gateway.test_office_hidden_places import odf_package

    def cell(value: str) -> str:
        return f'<table:table-cell office:value-type="string"><text:p>{value}</text:p></table:table-cell>'

    table = "".join(
        f"<table:table-row>{''.join(cell(v) for v in row)}</table:table-row>" for row in [HEADER, *rows]
    )
    return odf_package(
        "spreadsheet",
        f'<office:spreadsheet><table:table table:name="Blad1">{table}</table:table></office:spreadsheet>',
    )


@pytest.mark.parametrize(("name", "make"), [("schema.xls", xls), ("schema.ods", ods)])
def test_names_in_columns_of_an_old_excel_or_opendocument_sheet_are_the_clients(
    scanner: Scanner, name: str, make: Callable[[list[list[str]]], bytes]
) -> None:
    assert found(scanner, name, make(ROWS)) == [
        (f"attachment:{name}/Blad1!B2:D2", "20002"),
        (f"attachment:{name}/Blad1!B3:D3", "20001"),
    ]
    assert found(scanner, name, make(CLEAN_ROWS)) == []


def outlook_table(rows: list[list[str]]) -> str:
    """An Excel range pasted into Outlook: a table whose cells hold MsoNormal paragraphs."""

    def cell(value: str) -> str:
        return f'<td nowrap><p class=MsoNormal><span style="color:black">{value}<o:p></o:p></span></p></td>'

    body = "".join(f"<tr>{''.join(cell(v) for v in row)}</tr>" for row in [HEADER, *rows])
    return f"<html><body><table border=0 cellpadding=0>{body}</table></body></html>"


def html_mail_found(scanner: Scanner, page: str) -> list[tuple[str, str | None]]:
    msg = EmailMessage()
    msg["From"] = "kim@hemtjanst.example"
    msg["To"] = "kollega@example.se"
    msg["Subject"] = "Schema"
    msg.set_content("Schemat.")
    msg.add_alternative(page, subtype="html")
    scan = scanner.scan_mail(msg.as_bytes(), TODAY)
    return [(f.location.part, f.customer_number) for f in scan.findings if f.kind == "client_name"]


def test_names_in_columns_of_a_table_pasted_into_a_mail_are_the_clients(scanner: Scanner) -> None:
    assert html_mail_found(scanner, outlook_table(ROWS)) == [
        ("body[2]:text/html", "20002"),
        ("body[2]:text/html", "20001"),
    ]
    assert html_mail_found(scanner, outlook_table(CLEAN_ROWS)) == []


def test_names_in_columns_of_a_word_table_are_the_clients(scanner: Scanner) -> None:
    import docx

    document = docx.Document()
    table = document.add_table(rows=0, cols=len(HEADER))
    for row in [HEADER, *ROWS]:
        cells = table.add_row().cells
        for cell, value in zip(cells, row, strict=True):
            cell.text = value
    buffer = io.BytesIO()
    document.save(buffer)
    assert found(scanner, "schema.docx", buffer.getvalue()) == [
        ("attachment:schema.docx/brödtext", "20002"),
        ("attachment:schema.docx/brödtext", "20001"),
    ]
