"""`brukarvakt audit verify|report`: check the chain, count the decisions."""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from datetime import date

from gateway.audit import DIMENSIONS, csv_cell, report, verify
from gateway.cli.common import config_of
from gateway.errors import UserError


def _print_text(counts: dict[str, Counter[str]], since: date | None) -> None:
    out = sys.stdout
    after = f" since {since.isoformat()}" if since else ""
    out.write(f"decisions{after}: {counts['decisions']['all']}\n")
    for dimension in DIMENSIONS:
        out.write(f"by {dimension}:\n")
        rows = sorted(counts[dimension].items()) if dimension == "day" else counts[dimension].most_common()
        if not rows:
            out.write("  (none)\n")
        width = max((len(k) for k, _ in rows), default=0)
        for key, n in rows:
            out.write(f"  {key.ljust(width)}  {n}\n")


def _print_csv(counts: dict[str, Counter[str]]) -> None:
    # CRLF (RFC 4180): a cell holding a lone CR is quoted too (not with "\n" as the terminator).
    writer = csv.writer(sys.stdout, lineterminator="\r\n")
    writer.writerow(("dimension", "value", "count"))
    for dimension in DIMENSIONS:
        rows = sorted(counts[dimension].items()) if dimension == "day" else counts[dimension].most_common()
        for key, n in rows:
            writer.writerow((dimension, csv_cell(key), n))


def _since(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"--since {value!r}: expected a date as YYYY-MM-DD") from None


def run(args: argparse.Namespace) -> int:
    config = config_of(args)
    path = config.audit.path
    if args.action == "verify":
        try:
            count, problems = verify(path)
        except OSError as e:
            raise UserError(f"cannot read audit log {path}: {e.strerror}") from None
        for problem in problems:
            print(f"{path}: {problem}")
        if problems:
            return 1
        print(f"{path}: ok, {count} entries, chain intact")
        return 0
    since = _since(args.since)
    try:
        counts = report(path, since)
    except OSError as e:
        raise UserError(f"cannot read audit log {path}: {e.strerror}") from None
    if args.format == "csv":
        _print_csv(counts)
    else:
        _print_text(counts, since)
    return 0
