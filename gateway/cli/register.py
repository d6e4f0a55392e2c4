"""`brukarvakt register import|info`: build the client register from the care system's CSV export."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from gateway import register_store
from gateway.cli.common import config_of
from gateway.errors import UserError
from gateway.keys import fingerprint_key
from gateway.register_import import build_register, import_clients

EXIT_OK, EXIT_REJECTED = 0, 1
PROGRESS_MIN_ROWS = 1000
T = TypeVar("T")


def _progress(items: Iterable[T], total: int, what: str) -> Iterable[T]:
    """A progress bar on standard error, for a large file and only when a person watches it."""
    if total < PROGRESS_MIN_ROWS or not sys.stderr.isatty():
        return items
    return tqdm(items, total=total, desc=what, unit=" rows", file=sys.stderr, leave=False)


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
    importer = import_clients(data, path, date.today(), _progress)
    summary = importer.summary()
    for p in summary.problems:
        print(f"{path}:{p.row}: {'rejected' if p.rejected else 'warning'}: {p.reason}")
    if not summary.imported:
        raise UserError(
            f"{path}: no row could be imported ({summary.rejected} rejected): the register "
            f"at {config.register.path} is left as it was"
        )
    size = register_store.write(config.register.path, build_register(importer, key, _progress), key)
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
