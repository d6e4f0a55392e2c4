"""`brukarvakt register import|info`: build the client register from the care system's CSV export."""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TypeVar

from gateway import register_store
from gateway.cli.common import config_of
from gateway.errors import UserError
from gateway.keys import fingerprint_key
from models.register import Client, ImportSummary, RowProblem
from rules import personnummer
from rules.register.folding import fold
from rules.register.keys import RegisterTables, build
from rules.register.normalise import e164, street_address

EXIT_OK, EXIT_REJECTED = 0, 1
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
PROGRESS_MIN_ROWS = 1000


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


def _progress(items: Iterable[T], total: int, what: str) -> Iterable[T]:
    """A progress bar on standard error, for a large file and only when a person watches it."""
    if total < PROGRESS_MIN_ROWS or not sys.stderr.isatty():
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc=what, unit=" rows", file=sys.stderr, leave=False)


def import_clients(data: bytes, path: Path, today: date) -> Importer:
    importer = Importer(today)
    text = decode(data, path)
    for row, fields in _progress(records(text, path), text.count("\n"), "reading"):
        importer.row(row, fields)
    return importer


def build_register(importer: Importer, key: bytes) -> RegisterTables:
    return build(_progress(importer.clients, len(importer.clients), "hashing"), key)


def _import(args: argparse.Namespace) -> int:
    config = config_of(args)
    path: Path = args.file
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None
    key = fingerprint_key(config.privacy)
    began = time.monotonic()
    importer = import_clients(data, path, date.today())
    summary = importer.summary()
    for p in summary.problems:
        print(f"{path}:{p.row}: {'rejected' if p.rejected else 'warning'}: {p.reason}")
    if not summary.imported:
        raise UserError(
            f"{path}: no row could be imported ({summary.rejected} rejected): the register "
            f"at {config.register.path} is left as it was"
        )
    size = register_store.write(config.register.path, build_register(importer, key), key)
    print(
        f"{path}: {summary.rows} rows: {summary.imported} imported, {summary.rejected} rejected, "
        f"{summary.warnings} warnings; register {config.register.path} written ({size / 1e6:.1f} MB, "
        f"{time.monotonic() - began:.1f} s). A running gateway reads it on SIGHUP."
    )
    return EXIT_REJECTED if summary.rejected else EXIT_OK


def _info(args: argparse.Namespace) -> int:
    config = config_of(args)
    path = config.register.path
    found = register_store.info(path, fingerprint_key(config.privacy))
    if found is None:
        print(f"no register at {path}: build one with `brukarvakt register import FILE`")
        return EXIT_REJECTED
    print(
        f"register {path}: {found.clients} clients, {found.keys} keyed hashes, "
        f"{found.file_bytes / 1e6:.1f} MB, created {found.created}"
    )
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    return _import(args) if args.action == "import" else _info(args)
