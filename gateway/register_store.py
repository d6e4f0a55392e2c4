"""The client register file: keyed hashes and customer numbers, written whole and replaced atomically.

Layout: a magic line, one line of JSON (counts, creation time, a check of the key, a checksum),
then the customer numbers (UTF-8, one a line) and the two hash tables as little-endian arrays.
Loading is a few reads into flat arrays: a register of 100,000 clients loads in well under a
second and holds no Python object per hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from array import array
from datetime import UTC, datetime
from pathlib import Path

from gateway.errors import UserError
from models.register import RegisterInfo
from rules.register.keys import KeyTable, RegisterTables, key_check
from rules.register.matcher import RegisterIndex

MAGIC = b"BRUKARVAKT-REGISTER\n"
VERSION = 1
NEW_FILE_MODE = 0o640


def _little(a: array) -> bytes:  # type: ignore[type-arg]
    if sys.byteorder == "big":
        a = array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


def _array(typecode: str, data: bytes) -> array:  # type: ignore[type-arg]
    a = array(typecode)
    a.frombytes(data)
    if sys.byteorder == "big":
        a.byteswap()
    return a


def encode(tables: RegisterTables, fingerprint_key: bytes, created: datetime | None = None) -> bytes:
    numbers = "\n".join(tables.customer_numbers).encode("utf-8")
    payload = b"".join(
        (
            numbers,
            _little(tables.phrases.keys),
            _little(tables.phrases.values),
            _little(tables.personnummer.keys),
            _little(tables.personnummer.values),
        )
    )
    header = {
        "version": VERSION,
        "created": (created or datetime.now(UTC)).isoformat(timespec="seconds"),
        "key_check": key_check(fingerprint_key),
        "clients": len(tables.customer_numbers),
        "numbers_bytes": len(numbers),
        "phrase_slots": tables.phrases.size,
        "personnummer_slots": tables.personnummer.size,
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    return MAGIC + json.dumps(header, sort_keys=True).encode("ascii") + b"\n" + payload


def _header(data: bytes, path: Path) -> tuple[dict[str, object], int]:
    damaged = f"register {path} is damaged or not a register file: run `brukarvakt register import` again"
    if not data.startswith(MAGIC):
        raise UserError(damaged)
    end = data.find(b"\n", len(MAGIC))
    try:
        header = json.loads(data[len(MAGIC) : end])
    except ValueError:
        raise UserError(damaged) from None
    if not isinstance(header, dict) or header.get("version") != VERSION:
        raise UserError(f"register {path} has a format this version cannot read: import it again")
    return header, end + 1


def decode(data: bytes, path: Path, fingerprint_key: bytes) -> tuple[RegisterTables, dict[str, object]]:
    header, offset = _header(data, path)
    payload = data[offset:]
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise UserError(
            f"register {path} is damaged (checksum differs): run `brukarvakt register import` again"
        )
    if header.get("key_check") != key_check(fingerprint_key):
        raise UserError(
            f"register {path} was built with another fingerprint key: run `brukarvakt register import` "
            "again with the configuration the gateway uses"
        )
    counts: dict[str, int] = {}
    for name in ("clients", "numbers_bytes", "phrase_slots", "personnummer_slots"):
        value = header.get(name)
        if not isinstance(value, int) or value < 0:
            raise UserError(
                f"register {path} is damaged (bad counts): run `brukarvakt register import` again"
            )
        counts[name] = value
    n_bytes, p_slots, q_slots = counts["numbers_bytes"], counts["phrase_slots"], counts["personnummer_slots"]
    pos = 0

    def take(size: int) -> bytes:
        nonlocal pos
        chunk = payload[pos : pos + size]
        pos += size
        return chunk

    try:
        numbers = take(n_bytes).decode("utf-8")
        tables = RegisterTables(
            customer_numbers=tuple(numbers.split("\n")) if numbers else (),
            phrases=KeyTable(_array("Q", take(8 * p_slots)), _array("I", take(4 * p_slots))),
            personnummer=KeyTable(_array("Q", take(8 * q_slots)), _array("I", take(4 * q_slots))),
        )
    except ValueError:  # also UnicodeDecodeError
        raise UserError(
            f"register {path} is damaged (sizes differ): run `brukarvakt register import` again"
        ) from None
    if len(tables.customer_numbers) != counts["clients"] or pos != len(payload):
        raise UserError(f"register {path} is damaged (sizes differ): run `brukarvakt register import` again")
    return tables, header


def write(path: Path, tables: RegisterTables, fingerprint_key: bytes) -> int:
    """Write the register whole under a temporary name, then rename it over the old one.

    A gateway reloading at any moment sees the old register or the new one, never half of one.
    The new file keeps the old one's owner and mode, so that the gateway can still read it.
    """
    data = encode(tables, fingerprint_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        old = path.stat()
    except FileNotFoundError:
        old = None
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, NEW_FILE_MODE)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                if old is not None:
                    os.fchmod(f.fileno(), old.st_mode & 0o777)
                    # Not root: the file stays ours, as the old one may have been.
                    with contextlib.suppress(PermissionError):
                        os.fchown(f.fileno(), old.st_uid, old.st_gid)
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError as e:
        raise UserError(f"cannot write register {path}: {e.strerror}") from None
    return len(data)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise UserError(f"cannot read register {path}: {e.strerror}") from None


def load(path: Path, fingerprint_key: bytes) -> RegisterIndex | None:
    """The register ready to search, or None when none has been imported yet."""
    data = _read(path)
    if data is None:
        return None
    tables, _ = decode(data, path, fingerprint_key)
    return RegisterIndex(tables, fingerprint_key)


def info(path: Path, fingerprint_key: bytes) -> RegisterInfo | None:
    data = _read(path)
    if data is None:
        return None
    tables, header = decode(data, path, fingerprint_key)
    keys = sum(1 for k in tables.phrases.keys if k) + sum(1 for k in tables.personnummer.keys if k)
    return RegisterInfo(
        clients=len(tables.customer_numbers),
        created=str(header.get("created", "")),
        keys=keys,
        file_bytes=len(data),
    )
