"""Reading the care system's CSV export into clients: columns, encodings, and a reason for every row refused."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from gateway.errors import UserError
from models.register import Client, ImportSummary, RowProblem
from rules import personnummer
from rules.register.folding import fold
from rules.register.keys import RegisterTables, build
from rules.register.normalise import e164, street_address

# Header names as the care system may write them, folded (case, diacritics, spaces as `_`).
COLUMNS: dict[str, tuple[str, ...]] = {
    "customer_number": ("customer_number", "customernumber", "kundnummer", "kundnr", "kund_nr"),
    "first_name": ("first_name", "firstname", "first_names", "fornamn", "fornamn_en"),
    "last_name": ("last_name", "lastname", "surname", "efternamn"),
    "personal_number": ("personal_number", "personnummer", "personal_identity_number", "pnr"),
    "phone": ("phone", "telefon", "telefonnummer", "phone_number", "mobile", "mobil", "mobilnummer"),
    "address": ("address", "adress", "gatuadress", "street_address"),
}
REQUIRED = ("customer_number", "first_name", "last_name", "personal_number")
SWEDISH = {
    "customer_number": "kundnummer",
    "first_name": "förnamn",
    "last_name": "efternamn",
    "personal_number": "personnummer",
}
# A customer number is written into guidance and into --fix output: nothing but a short code.
_CUSTOMER_NUMBER = re.compile(r"[0-9A-Za-z][0-9A-Za-z_./-]{0,31}")
_PHONE_SPLIT = re.compile(r"[,;]|\boch\b")
T = TypeVar("T")
# Below this many rows an import is over before a progress bar would say anything.


def _header_name(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", fold(name.strip().lstrip("\ufeff").strip()))


def decode(data: bytes, path: Path) -> str:
    """UTF-8 with or without BOM, else cp1252, as care systems export."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        raise UserError(f"{path}: neither UTF-8 nor cp1252 text: export the register as CSV again") from None


def delimiter(first_line: str) -> str:
    return ";" if first_line.count(";") > first_line.count(",") else ","


def columns(header: list[str], path: Path) -> dict[str, list[int]]:
    """Column indexes for each field (phone may come from several columns); others are ignored."""
    found: dict[str, list[int]] = {}
    for i, name in enumerate(header):
        folded = _header_name(name)
        for column, aliases in COLUMNS.items():
            if folded in aliases:
                found.setdefault(column, []).append(i)
    missing = [c for c in REQUIRED if c not in found]
    if missing:
        wanted = ", ".join(f"{c}/{SWEDISH[c]}" for c in missing)
        raise UserError(
            f"{path}: missing column(s) {wanted}; the header has: {', '.join(header) or 'nothing'}"
        )
    return found


@dataclass
class Importer:
    """Turns rows into clients, and says for every row it cannot take which and why."""

    today: date
    clients: list[Client] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    rows: int = 0
    _customer_rows: dict[str, int] = field(default_factory=dict)
    _personnummer_rows: dict[str, int] = field(default_factory=dict)

    def reject(self, row: int, reason: str) -> None:
        self.problems.append(RowProblem(row=row, reason=reason, rejected=True))

    def warn(self, row: int, reason: str) -> None:
        self.problems.append(RowProblem(row=row, reason=reason, rejected=False))

    def _identity_number(self, value: str) -> str | None:
        found = personnummer.find(value, self.today)
        if len(found) == 1 and found[0].start == 0 and found[0].end == len(value):
            return found[0].canonical
        return None

    def row(self, row: int, fields: dict[str, list[str]]) -> None:
        self.rows += 1

        def one(column: str) -> str:
            values = fields.get(column, [])
            return values[0].strip() if values else ""

        number = one("customer_number")
        if not number:
            return self.reject(row, "missing customer number")
        if not _CUSTOMER_NUMBER.fullmatch(number) or personnummer.find(number, self.today):
            return self.reject(row, "customer number is not a short code of letters and digits")
        if number in self._customer_rows:
            return self.reject(
                row, f"duplicate customer number {number} (first in row {self._customer_rows[number]})"
            )
        first, last, pnr_written = one("first_name"), one("last_name"), one("personal_number")
        if not first or not last:
            return self.reject(row, "missing first name" if not first else "missing last name")
        if not pnr_written:
            return self.reject(row, "missing personnummer")
        pnr = self._identity_number(pnr_written)
        if pnr is None:
            return self.reject(row, "invalid personnummer (date, serial or check digit)")
        if pnr in self._personnummer_rows:
            self.warn(
                row,
                f"personnummer also in row {self._personnummer_rows[pnr]}: both customer numbers"
                " imported; a finding of the personnummer will name neither",
            )
        else:
            self._personnummer_rows[pnr] = row
        phones: list[str] = []
        for written in fields.get("phone", []):
            for part in _PHONE_SPLIT.split(written):
                if not part.strip():
                    continue
                normalised = e164(part.strip())
                if normalised is None:
                    self.warn(row, "a phone number is not a valid number: left out")
                elif normalised not in phones:
                    phones.append(normalised)
        address = one("address") or None
        if address and street_address(address) is None:
            self.warn(row, "the address has no street and house number: left out")
            address = None
        self._customer_rows[number] = row
        self.clients.append(
            Client(
                customer_number=number,
                first_names=first,
                last_name=last,
                personnummer=pnr,
                phones=tuple(phones),
                address=address,
            )
        )
        return None

    def summary(self) -> ImportSummary:
        rejected = sum(p.rejected for p in self.problems)
        return ImportSummary(
            rows=self.rows,
            imported=len(self.clients),
            rejected=rejected,
            warnings=len(self.problems) - rejected,
            problems=tuple(self.problems),
        )


def records(text: str, path: Path) -> Iterator[tuple[int, dict[str, list[str]]]]:
    """(line where the record starts, fields by column) for every data row of the export."""
    lines = io.StringIO(text, newline="")
    reader = csv.reader(lines, delimiter=delimiter(text.split("\n", 1)[0]))
    try:
        header = next(reader)
    except StopIteration:
        raise UserError(f"{path}: the file is empty: expected a header row and one row per client") from None
    found = columns(header, path)
    try:
        while True:
            start = reader.line_num + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            if not any(v.strip() for v in values):
                continue
            yield start, {c: [values[i] for i in idx if i < len(values)] for c, idx in found.items()}
    except csv.Error as e:
        raise UserError(f"{path}:{reader.line_num}: not valid CSV: {e}") from None


# Wraps a long iteration to show how far it got: (items, how many, what is being done) -> items.
Progress = Callable[[Iterable[T], int, str], Iterable[T]]


def _unwatched(items: Iterable[T], total: int, what: str) -> Iterable[T]:
    return items


def import_clients(data: bytes, path: Path, today: date, progress: Progress[Any] = _unwatched) -> Importer:
    importer = Importer(today)
    text = decode(data, path)
    for row, fields in progress(records(text, path), text.count("\n"), "reading"):
        importer.row(row, fields)
    return importer


def build_register(importer: Importer, key: bytes, progress: Progress[Any] = _unwatched) -> RegisterTables:
    return build(progress(importer.clients, len(importer.clients), "hashing"), key)
