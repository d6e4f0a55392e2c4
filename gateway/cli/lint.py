"""`brukarvakt lint`: files and folders in, compiler-style or JSON findings out, exit code by verdict."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Iterator

from gateway.cli.common import config_of
from gateway.errors import UserError
from gateway.lint import FileResult, Linter, is_mail
from gateway.scanner import Scanner
from gateway.text import decode_bytes
from models.findings import Finding, Unscanned

EXIT_CLEAN, EXIT_BLOCK, EXIT_ERROR = 0, 1, 2


def _inputs(paths: list[str]) -> Iterator[str]:
    for p in paths:
        if p != "-" and os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    yield os.path.join(root, name)
        else:
            yield p


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        # Unbuffered: read whole in one call; a buffer per file cost more than the read itself.
        with open(path, "rb", buffering=0) as f:
            return f.readall()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None


def _text_line(path: str, f: Finding) -> str:
    customer = f" kundnummer {f.customer_number}" if f.customer_number else ""
    return (
        f"{path}:{f.location.line}:{f.location.column}: {f.rule} {f.severity} {f.kind} {f.masked}"
        f" i {f.location.part} [{f.fingerprint[:12]}]{customer}: {f.suggestion}"
    )


def _unscanned_line(path: str, u: Unscanned) -> str:
    return f"{path}:0:0: unscannable block {u.name} ({u.content_type}): {u.reason}"


def _json_file(r: FileResult) -> dict[str, object]:
    return {
        "path": r.path,
        "verdict": r.verdict.verdict,
        "findings": [f.public() for f in r.findings],
        "unscanned": [u.model_dump() for u in r.unscanned],
    }


def _fix(linter: Linter, path: str, data: bytes) -> int:
    if is_mail(path, data):
        raise UserError(f"{path}: --fix works on plain text, not on mail messages")
    sys.stdout.write(linter.fixed(decode_bytes(data)))
    sys.stdout.flush()
    return EXIT_CLEAN


def run(args: argparse.Namespace) -> int:
    # What start-up built (pydantic's schemas, the rules' tables) lives as long as the process:
    # kept out of the collector's passes, including the full one at exit, which took a short
    # run over many small files a tenth of its CPU time. Once per process: a test session calls
    # this many times and would freeze its own garbage each time.
    if not gc.get_freeze_count():
        gc.freeze()
    linter = Linter(Scanner(config_of(args)), args.sender)
    if args.fix:
        if len(args.paths) != 1 or os.path.isdir(args.paths[0]):
            raise UserError("--fix takes exactly one file (or - for standard input)")
        return _fix(linter, args.paths[0], _read(args.paths[0]))
    results: list[FileResult] = []
    errors = blocked = 0
    out = sys.stdout
    for path in _inputs(args.paths):
        try:
            data = _read(path)
        except UserError as e:
            print(f"brukarvakt: error: {e}", file=sys.stderr)
            errors += 1
            continue
        # A file named after the person it is about would leak through the output: mask it.
        result = linter.lint(linter.scanner.redact(path), data)
        blocked += result.verdict.verdict == "block"
        if args.format == "json":
            results.append(result)
            continue
        for f in result.findings:
            out.write(_text_line(result.path, f) + "\n")
        for u in result.unscanned:
            out.write(_unscanned_line(result.path, u) + "\n")
    if args.format == "json":
        # dumps, not dump: dump streams through the pure-Python encoder, several times slower.
        out.write(json.dumps({"files": [_json_file(r) for r in results]}, ensure_ascii=False))
        out.write("\n")
    if errors:
        return EXIT_ERROR
    return EXIT_BLOCK if blocked else EXIT_CLEAN
